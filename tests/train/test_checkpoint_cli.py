"""The command line: a short run's files, resume equality, atomic and checked checkpoints, bad input."""
import json
import os

import pytest
import torch

from fastcnn.cli import main
from fastcnn.train import checkpoint, cli as train_cli

FAST = ["--no-progress", "--threads", "2", "--batch-size", "16"]


def train(*argv):
    return main(["train", *map(str, argv)])


def nets(folder):
    return torch.load(os.path.join(folder, "checkpoint.pt"), weights_only=True)["nets"]


def test_three_steps_write_metrics_report_and_plots(tmp_path):
    assert train("lenet", "--steps", 3, "--out", tmp_path, *FAST) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("network", "metric_name", "metric", "steps", "seconds", "samples_per_s", "backend", "commit"):
        assert key in m, key
    assert m["network"] == "lenet" and m["steps"] == 3 and m["backend"] == "cpu" and 0 <= m["metric"] <= 1
    assert "test_accuracy" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "filters.png").exists()


def test_resume_after_a_stop_gives_the_uninterrupted_weights(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    common = ["lenet", "--steps", 7, "--checkpoint-every", 2, *FAST]
    assert train(*common, "--out", whole) == 0
    assert train(*common, "--out", parts, "--stop-after", 3) == 0
    assert torch.load(parts / "checkpoint.pt", weights_only=True)["step"] == 3
    assert train(*common, "--out", parts, "--resume") == 0
    a, b = nets(whole)["model"], nets(parts)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    m = json.loads((parts / "metrics.json").read_text())
    assert m["steps"] == 7


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "checkpoint.pt")
    checkpoint.save_atomic({"format": checkpoint.FORMAT, "step": 1}, path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_atomic({"format": checkpoint.FORMAT, "step": 2}, path)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_corrupt_checkpoint_is_an_error_naming_the_file(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"\x80\x02 not a checkpoint")
    assert train("lenet", "--steps", 3, "--out", tmp_path, "--resume", *FAST) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "checkpoint.pt") in err and "corrupt" in err


def test_checkpoint_from_another_run_is_refused(tmp_path, capsys):
    assert train("lenet", "--steps", 2, "--out", tmp_path, *FAST) == 0
    assert train("lenet", "--steps", 4, "--out", tmp_path, "--resume", "--no-progress", "--batch-size", 32) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and "batch_size is 16 there, 32 here" in err


@pytest.mark.parametrize("argv, message", [
    (["no_such_net"], "unknown network 'no_such_net'; known names: "),
    (["lenet", "--batch-size", 0], "--batch-size must be a positive integer, got 0"),
    (["lenet", "--steps", -5], "--steps must be a positive integer, got -5"),
    (["lenet", "--epochs", 0], "--epochs must be a positive integer"),
])
def test_bad_input_is_refused_before_work(tmp_path, capsys, argv, message):
    assert train(*argv, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert message in err
    if "known names" in err:
        assert "lenet" in err and "dcgan" in err and "stylegan_xl" in err
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_unwritable_out_is_refused(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert train("lenet", "--out", blocker / "runs") == 2
    assert f"--out {blocker / 'runs'} is not a writable folder" in capsys.readouterr().err


def test_canonical_too_large_names_the_parameter_count(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train_cli, "CPU_CANONICAL_LIMIT", 10_000)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train("lenet", "--size", "canonical", "--out", tmp_path) == 2
    assert "lenet --size canonical has 21,840 parameters: too large" in capsys.readouterr().err


def test_seconds_after_resume_count_the_whole_training(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from fastcnn.train import loop

    ticks = iter(range(10**6))   # a clock that advances 1 s per reading: every step takes exactly 1 s
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    common = ["lenet", "--steps", 5, "--checkpoint-every", 2, "--eval-every", 2, *FAST]
    assert train(*common, "--out", tmp_path, "--stop-after", 3) == 0
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["progress"]["seconds"] == 3.0
    assert train(*common, "--out", tmp_path, "--resume") == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["seconds"] == 5.0 and m["samples_per_s"] == 16.0
    assert [e[:2] for e in m["evaluations"]] == [[2, 2.0], [4, 4.0], [5, 5.0]]
