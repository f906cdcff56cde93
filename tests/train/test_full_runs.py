"""Full training runs to each network's target (slow: minutes each on 2 cores; run with -m slow)."""
import json

import pytest

from fastcnn.cli import main
from fastcnn.models import list_models

NEEDS = {"perceptron": ["perceptron"], "mlp": ["mlp"], "lenet": ["lenet"], "alexnet": ["alexnet"],
         "conv_autoencoder": ["conv_autoencoder"], "llnet": ["llnet"], "vae": ["vae", "lenet"],
         "dcgan": ["dcgan_generator", "dcgan_discriminator", "vae", "lenet"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NEEDS))
def test_full_run_reaches_the_target(name, tmp_path, monkeypatch):
    missing = [n for n in NEEDS[name] if n not in list_models()]
    if missing:
        pytest.skip(f"the zoo has no {', '.join(missing)} yet")
    monkeypatch.setenv("FASTCNN_BACKEND", "cpu")
    out = tmp_path / name
    assert main(["train", name, "--out", str(out), "--no-progress", "--threads", "2"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["reached"], m
    if name == "perceptron":
        assert m["details"]["agreement_with_sklearn_on_test"] == 1.0
    if name == "llnet":
        assert m["details"]["ssim_above_baselines"], m["details"]
