"""The GPU benchmark's timing discipline, checked on the CPU: the first call of every contender
(kernel compilation at first use: Triton JIT, NVRTC; cuDNN autotuning) is timed apart and kept out
of the medians, and a bounded run (--max-seconds) still writes its report."""
from __future__ import annotations

import argparse
import json
import time

import torch

from fastcnn.bench import cli, report
from fastcnn.bench.harness import run_case


def test_bench_first_call_is_reported_apart_from_the_timings():
    """Compilation at first use (Triton JIT, NVRTC) took 95 s inside the first GPU case: the first
    call is timed on its own and kept out of the medians."""
    calls = []

    def slow_first():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.3)
        return torch.ones(3)

    result = run_case("ops", "first-call", "forward", {"fast": slow_first}, {"torch": lambda: torch.ones(3)},
                      reference="torch", budget_s=0.01)
    assert result.first_call_s["fast"] >= 0.3
    assert result.timings["fast"].max < 0.1
    assert set(result.first_call_s) == {"fast", "torch"} and not result.wrong


def test_first_calls_are_listed_in_the_markdown(tmp_path):
    result = run_case("ops", "slow-compile", "forward", {"fast": lambda: torch.ones(2)}, {"torch": lambda: torch.ones(2)},
                      reference="torch", budget_s=0.01)
    result.first_call_s["fast"] = 95.0  # what the first GPU case spent compiling
    report.write_markdown(tmp_path / "report.md", [result], {}, {})
    assert "- slow-compile forward fast: 95.0 s" in (tmp_path / "report.md").read_text()


def test_max_seconds_leaves_cases_out_and_still_writes_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "describe", lambda probe: dict.fromkeys(("cpu", "threads", "isa", "peak_gflops", "copy_gbs"), "-"))  # the machine probe is not what is tested
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--quick", "--suite", "ops", "--filter", "relu", "--backend", "cpu", "--max-seconds", "0",
                              "--out", str(tmp_path)])
    time.sleep(0.01)
    assert cli.run(args) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"] == [] and saved["settings"]["left_out"]
