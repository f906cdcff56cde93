"""--compare: the torch twin trains the same recipe and its figures land beside fastcnn's."""
import json

import torch

from fastcnn.cli import main


def test_compare_reports_fastcnn_and_the_torch_twin(tmp_path, monkeypatch):
    def no_compiler(model, *a, **k):
        raise RuntimeError("no C++ compiler in this test")
    monkeypatch.setattr(torch, "compile", no_compiler)   # compiling would cost a minute here
    argv = ["train", "lenet", "--steps", "3", "--batch-size", "16", "--no-progress", "--threads", "2", "--compare",
            "--dropout", "0", "--shift", "0", "--out", str(tmp_path)]
    assert main(argv) == 0
    rows = {r["impl"]: r for r in json.loads((tmp_path / "metrics.json").read_text())["compare"]}
    assert rows["fastcnn"]["steps"] == rows["torch eager"]["steps"] == 3
    assert rows["torch eager"]["steps_per_s"] > 0 and 0 <= rows["torch eager"]["metric"] <= 1
    assert rows["torch.compile"]["note"].startswith("did not run: RuntimeError: no C++ compiler")
    assert "torch eager" in (tmp_path / "report.md").read_text()
