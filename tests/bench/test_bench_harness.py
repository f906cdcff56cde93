"""The benchmark harness itself, on tiny cases: ratios, FLOP and byte formulas, the re-check that
rejects a wrong kernel, the JSON schema and the report files."""
import json
import time

import torch
import torch.nn.functional as F

from fastcnn.bench import report
from fastcnn.bench.cases import conv_flops, elementwise_bytes, make_call, op_contenders, train_factor
from fastcnn.bench.harness import Result, Timing, relative_error, run_case, time_contenders

MACHINE = {"cpu": "test cpu", "threads": 2, "peak_gflops": 100.0, "copy_gbs": 10.0, "date": "d", "commit": "c"}


def test_conv_flops_convention():
    # AlexNet conv2 at batch 16: 2*N*K*(C/g)*R*S*P*Q
    assert conv_flops(16, 96, 256, 5, 5, 27, 27, groups=2) == 2 * 16 * 256 * 48 * 25 * 27 * 27
    assert train_factor("train") == 3 and train_factor("forward") == 1


def test_elementwise_bytes():
    assert elementwise_bytes(1000, "forward") == 8000  # read x, write y
    assert elementwise_bytes(1000, "train") == 20000  # + read gy and saved, write gx


def test_ratio_is_baseline_over_fastcnn():
    r = Result("ops", "c", "forward", 1e9, 0.0, fastcnn=["fast"], baselines=["torch"])
    r.timings = {"fast": Timing(0.01, 0.01, 0.01, 3), "torch": Timing(0.03, 0.03, 0.03, 3)}
    assert abs(r.ratio("fast", "torch") - 3.0) < 1e-12
    assert abs(r.gflops("fast") - 100.0) < 1e-9


def test_time_contenders_orders_by_speed():
    timings = time_contenders({"slow": lambda: time.sleep(0.004), "fast": lambda: time.sleep(0.001)}, budget_s=0.1)
    assert timings["fast"].median < timings["slow"].median
    assert timings["fast"].runs >= 3 and timings["fast"].min <= timings["fast"].median <= timings["fast"].max


def test_recheck_rejects_a_wrong_kernel():
    x = torch.randn(1000)
    fast = {"right": lambda: torch.relu(x), "wrong": lambda: torch.relu(x) * 1.01}
    r = run_case("ops", "relu", "forward", fast, {"torch": lambda: F.relu(x)}, reference="torch", budget_s=0.05)
    assert "wrong" in r.wrong and "right" not in r.wrong
    assert r.ratio("wrong", "torch") is None and r.ratio("right", "torch") is not None
    assert r.best_fastcnn() == "right"


def test_contender_that_fails_is_reported_not_fatal():
    def broken():
        raise NotImplementedError("no such kernel")
    r = run_case("ops", "x", "forward", {"broken": broken}, {"torch": lambda: torch.ones(2)}, reference="torch",
                 budget_s=0.01)
    assert "NotImplementedError" in r.errors["broken"] and "torch" in r.timings


def test_relative_error():
    a = torch.tensor([1.0, 2.0])
    assert relative_error(a, a) == 0.0
    assert abs(relative_error(a + torch.tensor([0.0, 0.2]), a) - 0.1) < 1e-6
    assert relative_error(torch.ones(3), torch.ones(2)) == float("inf")


def test_train_contenders_share_the_output_gradient():
    x = torch.randn(50)
    fast, base = op_contenders(lambda t, backend=None: torch.tanh(t), torch.tanh, [x], "train", ["cpu"])
    (g_fast,), (g_base,) = fast["fastcnn[cpu]"](), base["torch"]()
    assert torch.allclose(g_fast, g_base)


def test_make_call_forward_returns_output():
    x = torch.randn(4)
    assert torch.equal(make_call(torch.relu, [x], {}, "forward")(), torch.relu(x))


def test_json_and_report_files(tmp_path):
    x = torch.randn(64)
    r = run_case("ops", "relu tiny", "forward", {"fastcnn[cpu]": lambda: torch.relu(x)},
                 {"torch": lambda: F.relu(x)}, reference="torch", nbytes=512, budget_s=0.02)
    doc = report.to_json([r], MACHINE, {"quick": True})
    text = json.dumps(doc, default=str)
    loaded = json.loads(text)
    assert loaded["schema"] == report.SCHEMA_VERSION
    assert {"machine", "settings", "conventions", "results", "summary"} <= set(loaded)
    assert loaded["results"][0]["case"] == "relu tiny" and "timings" in loaded["results"][0]
    assert loaded["summary"][0]["vs torch"] > 0
    report.write_markdown(tmp_path / "report.md", [r], MACHINE, {"quick": True})
    assert "relu tiny" in (tmp_path / "report.md").read_text()
    plots = report.write_plots(tmp_path, [r], MACHINE)
    assert plots and all(p.stat().st_size > 1000 for p in plots)
    assert "relu tiny" in report.table([r], MACHINE)


def test_peak_memory_sees_a_large_temporary():
    from fastcnn.bench import memory

    if not memory.available():
        import pytest
        pytest.skip("no resettable VmHWM here (not Linux)")
    small = memory.peak_bytes(lambda: torch.ones(1000))
    big = memory.peak_bytes(lambda: torch.ones(16 << 20).sum())  # 64 MiB touched, then freed
    assert big >= 60 << 20 and small < 16 << 20


def test_memory_case_reports_peak_columns():
    x = torch.randn(256, 1024)
    r = run_case("networks", "n", "train", {"fastcnn[cpu]": lambda: torch.relu(x)}, {"torch": lambda: F.relu(x)},
                 reference="torch", budget_s=0.01, measure_memory=True)
    assert set(r.peak_bytes) == {"fastcnn[cpu]", "torch"}
    row = report.rows([r], MACHINE)[0]
    assert row["peak MB"] is not None and row["torch peak MB"] is not None


def test_network_compile_source_trains_a_twin_of_its_own():
    """--compile compiles a network's training step on its own twin: compiling the timed torch call
    itself trained one model twice as often as the others and failed the after-timing check."""
    from fastcnn.bench.suites import CASES

    case = next(c for c in CASES if c.suite == "networks" and c.name.startswith("lenet "))
    _, base = case.build("train", ["cpu"])
    first = base["torch"]()
    for _ in range(3):
        base["torch"]()  # the timed twin moves on
    source = case.compile_source("train")
    assert torch.equal(source(), first)  # same weights and input, untouched by the timed calls
    assert not torch.equal(source(), first)  # and its own SGD steps move it
