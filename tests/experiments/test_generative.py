"""`fastcnn experiment generative --quick`: trains (a few steps) or reuses the runs and writes its rows."""
import json

import pytest

from fastcnn.experiments.cli import main as experiment_main
from fastcnn.train.recipes import generative
from fastcnn.train.recipes.classify import LeNetTask


@pytest.fixture(autouse=True)
def cpu_backend(monkeypatch):
    monkeypatch.setenv("FASTCNN_BACKEND", "cpu")


def test_quick_run_writes_rows_and_pictures(tmp_path, monkeypatch):
    # the judging LeNet and the DCGAN the recipes compare with: as short as the quick runs
    for task in (LeNetTask, generative.VAETask, generative.DCGANTask):
        monkeypatch.setattr(task, "steps", 3)
    monkeypatch.setattr(generative._JudgedByLeNet, "samples_for_metric", 100)
    out = tmp_path / "results"
    assert experiment_main(["generative", "--quick", "--runs", str(tmp_path / "runs"), "--out", str(out),
                            "--threads", "2"]) == 0
    payload = json.loads((out / "generative.json").read_text())
    assert payload["quick"] is True
    assert [r["network"] for r in payload["rows"]] == ["vae", "dcgan", "stylegan_xl"]
    for name in ("vae", "dcgan", "stylegan_xl"):
        f = payload["figures"][name]
        assert f["frechet_distance_lenet"] > 0 and sum(f["lenet_class_counts"]) == f["samples"]
    assert 0 <= payload["figures"]["stylegan_xl"]["lenet_class_accuracy"] <= 1
    for png in payload["images"]:
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
