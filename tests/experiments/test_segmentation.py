"""The segmentation recipes (FCN, SegNet, PSPNet, PIDNet-S on synthetic shapes) and their experiment.
Smoke tests shrink the data (a few images); the slow test trains one network for real."""
import json
import math

import pytest
import torch

import fastcnn  # noqa: F401  (sets up triton's interpreter before anything else imports triton)
from fastcnn.experiments import EXPERIMENTS, list_experiments
from fastcnn.experiments.cli import main as experiment_main
from fastcnn.train.recipes import RECIPES
from fastcnn.train.recipes.segmentation import Segmenter
from fastcnn.train.task import Settings

NETWORKS = ("fcn32s", "fcn16s", "fcn8s", "segnet", "segnet_basic", "pspnet", "pidnet_s")


@pytest.fixture
def tiny_data(monkeypatch):
    """A few training and test images, so that a smoke run costs seconds."""
    monkeypatch.setenv("FASTCNN_BACKEND", "cpu")
    monkeypatch.setattr(Segmenter, "train_length", 8)
    monkeypatch.setattr(Segmenter, "test_length", 4)
    monkeypatch.setattr(Segmenter, "batch_size", 4)


@pytest.mark.parametrize("name", NETWORKS)
def test_two_steps_change_the_weights_and_the_metric_is_finite(name, tiny_data):
    torch.manual_seed(0)
    task = RECIPES[name](Settings(steps=2))
    before = {k: v.detach().clone() for k, v in task.nets["model"].named_parameters()}
    batch = [torch.stack(t) for t in zip(*[task.train_set[i] for i in range(4)])]
    task.train_mode(True)
    losses = [task.step(batch, s)["loss"] for s in range(2)]
    assert all(math.isfinite(v) for v in losses), losses
    changed = [k for k, v in task.nets["model"].named_parameters() if not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} parameters moved"
    task.train_mode(False)
    with torch.no_grad():
        miou = task.evaluate()
        pred = task.predict(batch[0])
    assert 0.0 <= miou <= 1.0
    assert pred.shape == batch[1].shape and pred.dtype == torch.int64
    assert 0.0 < task.details["majority_class_mIoU"] < 1.0
    if name == "pidnet_s":
        assert 0.0 <= task.details["boundary_head_f1_2px"] <= 1.0


def test_image_size_option_sets_the_train_and_test_images(tiny_data):
    task = RECIPES["pidnet_s"](Settings(steps=1, options={"image_size": 32}))
    assert task.train_set[0][0].shape == (3, 32, 32) and task.test_set[0][1].shape == (32, 32)
    batch = [torch.stack(t) for t in zip(*[task.train_set[i] for i in range(4)])]
    task.train_mode(True)
    assert math.isfinite(task.step(batch, 0)["loss"])
    assert task.details["image_size"] == 32
    with pytest.raises(ValueError, match="image_size"):
        RECIPES["pidnet_s"](Settings(steps=1, options={"image_size": 8}))


@pytest.mark.parametrize("class_weights", ("none", "median_frequency"))
def test_pidnet_loss_is_the_papers_four_terms(tiny_data, class_weights):
    """0.4 CE(P) + OHEM CE(main) + 20 weighted BCE(D) + OHEM CE(main where sigmoid(D) > 0.8), the terms
    recomputed here with torch's functions on the same outputs; the cross-entropies carry the run's class
    weights (the reference's criterion takes the dataset's; the recipe ignored the option before)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    task = RECIPES["pidnet_s"](Settings(steps=1, options={"class_weights": class_weights}))
    w = task.class_weights
    assert (w is None) == (class_weights == "none")
    x, labels, boundary = (torch.stack(t) for t in zip(*[task.train_set[i] for i in range(2)]))
    task.train_mode(True)
    with torch.no_grad():
        p, main, d = task.forward(x)
        got = task.loss((p, main, d), labels, boundary)

    def ohem(logits, target):
        loss = F.cross_entropy(logits, target, weight=w, ignore_index=255, reduction="none").flatten()
        keep = target.flatten() != 255
        prob = logits.softmax(1).gather(1, target.clamp_max(logits.shape[1] - 1)[:, None]).flatten()[keep]
        loss = loss[keep]
        kth = prob.sort().values[min(int(target.numel() / 8), prob.numel() - 1)]
        return loss[prob < max(kth.item(), 0.9)].mean()

    pos = boundary.mean()
    weight = torch.where(boundary > 0.5, 1 - pos, pos)[:, None]
    bce = F.binary_cross_entropy_with_logits(d, boundary[:, None], weight=weight)
    bd_labels = torch.where(torch.sigmoid(d[:, 0]) > 0.8, labels, torch.full_like(labels, 255))
    terms = [0.4 * F.cross_entropy(p, labels, weight=w), ohem(main, labels), 20 * bce]
    if (bd_labels != 255).any():
        terms.append(ohem(main, bd_labels))
    want = sum(terms)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5), (got.item(), want.item())


def test_quick_experiment_writes_seven_rows_and_the_picture(tiny_data, tmp_path):
    assert "segmentation" in list_experiments()
    assert EXPERIMENTS["segmentation"].networks == NETWORKS
    rc = experiment_main(["segmentation", "--quick", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
                          "--threads", "2"])
    assert rc == 0
    result = json.loads((tmp_path / "out" / "segmentation.json").read_text())
    assert [r["network"] for r in result["rows"]] == list(NETWORKS)
    assert all(0.0 <= float(r["figure"].split(";")[0]) <= 1.0 for r in result["rows"])
    assert "boundary F1" in result["rows"][-1]["figure"]
    assert result["images"] == ["segmentation_overlays.png"]
    assert (tmp_path / "out" / "segmentation_overlays.png").stat().st_size > 0
    assert "FCN-32s" in result["figures"]["combining_layers"] and "PSPNet" in result["figures"]["context"]


@pytest.mark.slow
def test_pspnet_training_beats_the_majority_class(tmp_path, monkeypatch):
    """The real recipe (800 steps, a few minutes on 2 cores): mIoU above labelling everything background
    (the old recipe's 300 steps measured 0.248 against 0.165; the current recipe's run is not measured
    yet, docs/results.md)."""
    from fastcnn.cli import main

    monkeypatch.setenv("FASTCNN_BACKEND", "cpu")
    out = tmp_path / "pspnet"
    assert main(["train", "pspnet", "--out", str(out), "--no-progress", "--threads", "2"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["metric"] > m["details"]["majority_class_mIoU"] + 0.05, m


def test_step_speedup_against_the_twin_is_a_positive_ratio(tiny_data):
    from fastcnn.experiments._speed import step_speedup

    ratio = step_speedup("segnet_basic", seed=0, steps=1, warmup=1, rounds=2)
    assert math.isfinite(ratio) and ratio > 0
    with pytest.raises(ValueError, match="rounds"):
        step_speedup("segnet_basic", seed=0, rounds=0)


def test_median_frequency_weights_follow_segnets_definition():
    """freq(c) = pixels of c / pixels of the images where c appears; weight = median(freq) / freq(c)."""
    from fastcnn.train.recipes.segmentation import median_frequency_weights

    labels = torch.zeros(2, 2, 4, dtype=torch.int64)   # 8 pixels per image
    labels[0, 0, :2] = 1                                # class 1: 2 of image 0's 8 pixels
    labels[1, :, :] = 2                                 # class 2: all of image 1
    labels[1, 0, 0] = 0
    w = median_frequency_weights(labels, num_classes=3)
    freq = torch.tensor([(6 + 1) / 16, 2 / 8, 7 / 8])
    assert torch.allclose(w, freq.median() / freq)
    with pytest.raises(ValueError, match="labels"):
        median_frequency_weights(labels, num_classes=4)


@pytest.mark.parametrize("name", ("fcn32s", "fcn8s"))
def test_fcn_recipe_starts_with_zero_scores_and_batch_norm(name, tiny_data):
    """The FCN recipe's initialisation (docs/results.md): scoring layers at zero (the paper), so the first
    output is uniform over the classes; the from-scratch backbone has BatchNorm."""
    torch.manual_seed(0)
    task = RECIPES[name](Settings(steps=1))
    net = task.nets["model"]
    scores = [m for n, m in net.named_children() if n.startswith("score_")]
    assert scores and all(not m.weight.any() and not m.bias.any() for m in scores)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    task.train_mode(False)
    with torch.no_grad():
        out = task.forward(torch.rand(2, 3, 64, 64))
    assert torch.equal(out, torch.zeros_like(out))
    plain = RECIPES[name](Settings(steps=1, options={"batch_norm": False, "init": "zoo"})).nets["model"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert plain.score_fr.weight.any()
