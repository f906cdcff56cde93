"""The StyleGAN-XL recipe: two steps (one training the feature network D projects onto, one GAN step)
change G, D's discriminators and the feature network, and the run's metric and pictures are computed."""
import json
import math

import pytest
import torch

from fastcnn.cli import main
from fastcnn.train.recipes import generative
from fastcnn.train.recipes.classify import LeNetTask
from fastcnn.train.recipes.stylegan import StyleGANXLTask, diff_augment
from fastcnn.train.task import Settings


@pytest.fixture
def short_references(monkeypatch):
    """The LeNet / VAE / DCGAN that judge the samples, trained for 3 steps (the test checks the plumbing,
    not their quality), and fewer samples to judge."""
    for task in (LeNetTask, generative.VAETask, generative.DCGANTask):
        monkeypatch.setattr(task, "steps", 3)
    monkeypatch.setattr(generative._JudgedByLeNet, "samples_for_metric", 200)


def test_two_steps_change_both_networks_and_compute_the_metric(tmp_path, short_references):
    out = tmp_path / "stylegan_xl"
    args = ["train", "stylegan_xl", "--steps", "2", "--batch-size", "16", "--out", str(out), "--no-progress",
            "--threads", "2", "--eval-every", "2", "--reference-dir", str(tmp_path)]
    assert main(args) == 0
    torch.manual_seed(0)   # the CLI builds the networks right after seeding with --seed (0)
    fresh = StyleGANXLTask(Settings(batch_size=16, steps=2))
    trained = torch.load(out / "checkpoint.pt", weights_only=True)["nets"]
    for key in ("G", "D", "G_ema", "feature_head"):
        before, after = fresh.nets[key].state_dict(), trained[key]
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert changed, key
    d_before, d_after = fresh.nets["D"].state_dict(), trained["D"]
    for part in ("discs.", "feature_network.pretrained."):   # GAN step and feature step both ran
        assert any(not torch.equal(d_before[k], d_after[k]) for k in d_before if k.startswith(part)), part
    # the random projections stay fixed
    assert all(torch.equal(d_before[k], d_after[k]) for k in d_before if k.startswith("feature_network.ccm."))
    m = json.loads((out / "metrics.json").read_text())
    assert m["metric_name"] == "frechet_distance_lenet" and math.isfinite(m["metric"]) and m["metric"] > 0
    d = m["details"]
    assert 0 <= d["samples_lenet_class_accuracy"] <= 1 and sum(d["samples_lenet_class_counts"]) == 200
    assert math.isfinite(m["target"]) and m["target"] == d["dcgan_frechet_distance_lenet"]
    for png in ("samples.png", "interpolation.png", "loss.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_diff_augment_is_differentiable_and_random_per_sample():
    torch.manual_seed(1)
    x = torch.rand(8, 3, 16, 16, requires_grad=True)
    y = diff_augment(x)
    assert y.shape == x.shape
    assert not torch.allclose(y[0] - x[0], y[1] - x[1])
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
