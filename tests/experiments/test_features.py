"""Local features (issue 13): the HardNet and R2D2 losses on cases with a known answer, two training steps of
each recipe, the patch SIFT descriptor, and the `features` experiment in --quick mode."""
import json
import math

import numpy as np
import pytest
import torch

from fastcnn import ops
from fastcnn.train.recipes import RECIPES
from fastcnn.train.recipes import _feature_losses as L
from fastcnn.train.task import Settings


# ------------------------------------------------------------------------------------------ HardNet loss

def test_triplet_loss_is_zero_when_negatives_are_far():
    e = torch.eye(4, 8)                     # orthonormal rows: positives at distance 0, negatives at sqrt 2
    loss, pos, neg = L.hardest_triplet_loss(ops, e, e.clone(), margin=1.0)
    assert loss.item() == 0.0
    assert torch.allclose(neg, torch.full((4,), math.sqrt(2.0)), atol=1e-5)
    loss2, _, _ = L.hardest_triplet_loss(ops, e, e.clone(), margin=2.0)
    # margin 2: every pair contributes 2 + d(a, p) - sqrt 2, with d(a, p) = sqrt(eps)
    assert loss2.item() == pytest.approx(2.0 + 1e-3 - math.sqrt(2.0 + 1e-6), abs=1e-5)


def test_triplet_loss_picks_the_hardest_negative():
    a = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), dim=1)
    p = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [0.6, 0.8], [-1.0, 0.0]]), dim=1)
    _, _, neg = L.hardest_triplet_loss(ops, a, p)
    d = torch.cdist(a, p)
    for i in range(3):
        others = [j for j in range(3) if j != i]
        assert neg[i].item() == pytest.approx(min(d[i, others].min(), d[others, i].min()).item(), abs=1e-4)


# ------------------------------------------------------------------------------------------ R2D2 losses

def test_ap_of_a_perfect_ranking_is_one_and_of_a_last_ranked_positive_one_quarter():
    scores = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    labels = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 0]])
    ap = L.average_precision(ops, scores, labels, nq=20)
    assert ap[0].item() == pytest.approx(1.0, abs=1e-6)
    assert ap[1].item() == pytest.approx(0.25, abs=1e-6)   # the positive ranks 4th of 4: precision 1/4


def test_ap_equals_sklearn_when_scores_sit_on_bin_centres():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    nq = 21
    for _ in range(5):
        s = rng.permutation(nq)[:12] / (nq - 1)          # distinct bin centres: no soft sharing, no ties
        y = rng.integers(0, 2, 12)
        y[0] = 1
        ap = L.average_precision(ops, torch.tensor(s[None]), torch.tensor(y[None]), nq=nq)
        assert ap.item() == pytest.approx(average_precision_score(y, s), abs=1e-9)


def test_quantizer_memberships_sum_to_one():
    x = torch.linspace(-0.5, 1.5, 41, dtype=torch.float64)[None]
    q = L.quantize(ops, x, nq=20)
    assert torch.allclose(q.sum(dim=1), torch.ones_like(x))


def identity_flow(b, h, w):
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([xs, ys])[None].repeat(b, 1, 1, 1)


def test_reliability_loss_known_values():
    torch.manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(2, 64, 48, 48), dim=1)
    rel = torch.ones(2, 1, 48, 48)
    sampler = L.PixelSampler(border=8)
    loss, ap = L.reliability_loss(ops, sampler, d, d.clone(), rel, rel, identity_flow(2, 48, 48))
    assert ap == pytest.approx(1.0, abs=1e-6) and loss.item() == pytest.approx(0.0, abs=1e-6)
    # zero reliability: the loss is the base 0.5 whatever the AP
    loss0, _ = L.reliability_loss(ops, sampler, d, d.clone(), rel * 0, rel * 0, identity_flow(2, 48, 48))
    assert loss0.item() == pytest.approx(0.5, abs=1e-6)
    # the unweighted form adds 1 - AP (= 0 here) for the descriptors: the same values
    loss_u, _ = L.reliability_loss(ops, sampler, d, d.clone(), rel * 0, rel * 0, identity_flow(2, 48, 48),
                                   unweighted_ap=True)
    assert loss_u.item() == pytest.approx(0.5, abs=1e-6)
    torch.manual_seed(1)
    other = torch.nn.functional.normalize(torch.randn(2, 64, 48, 48), dim=1)   # unrelated: AP well below 1
    lw, ap_w = L.reliability_loss(ops, sampler, d, other, rel, rel, identity_flow(2, 48, 48))
    torch.manual_seed(1)
    other = torch.nn.functional.normalize(torch.randn(2, 64, 48, 48), dim=1)
    lu, ap_u = L.reliability_loss(ops, sampler, d, other, rel, rel, identity_flow(2, 48, 48), unweighted_ap=True)
    assert ap_w < 0.5 and lw.item() == pytest.approx(1 - ap_w, abs=1e-6) and lu.item() == pytest.approx(2 * (1 - ap_u), abs=1e-6)


def test_cosim_is_zero_for_the_same_map_and_peaky_rewards_peaks():
    torch.manual_seed(0)
    rep = torch.rand(1, 1, 40, 40)
    flow = identity_flow(1, 40, 40)
    assert L.cosim_loss(ops, rep, rep.clone(), flow).item() == pytest.approx(0.0, abs=1e-5)
    # a constant map has no peaks: max - mean = 0 everywhere, loss 1
    assert L.peaky_loss(ops, torch.zeros(1, 1, 40, 40)).item() == pytest.approx(1.0, abs=1e-7)
    # 3x3 blobs every 8 px: every 17x17 window holds a blob centre (max 1), the mean is about 9/64
    peaks = torch.zeros(1, 1, 40, 40)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            peaks[..., 4 + dy::8, 4 + dx::8] = 1.0
    assert L.peaky_loss(ops, peaks).item() < 0.3


# ------------------------------------------------------------------------------------------ patch SIFT

def test_patch_sift_puts_a_horizontal_ramp_in_orientation_bin_zero():
    from fastcnn.eval.local_features import patch_sift

    ramp = np.tile(np.linspace(-1, 1, 32), (32, 1))[None]    # gradient along +x everywhere
    d = patch_sift(ramp).reshape(4, 4, 8)
    assert np.linalg.norm(d) == pytest.approx(1.0, abs=1e-6)
    assert d[..., 0].sum() > 0.99 * d.sum()


# ------------------------------------------------------------------------------------------ recipes

def two_steps(name, options, batch_size):
    torch.manual_seed(0)
    task = RECIPES[name](Settings(size="small", steps=2, batch_size=batch_size, options=options))
    before = {k: v.clone() for k, v in task.nets["model"].state_dict().items()}
    loader = torch.utils.data.DataLoader(task.train_set, batch_size=task.batch_size)
    batches = iter(loader)
    for s in range(2):
        logs = task.step(task.to_device(next(batches)), s)
        assert math.isfinite(logs["loss"])
    after = task.nets["model"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    from fastcnn.train.loop import evaluate
    return evaluate(task)


def test_hardnet_recipe_two_steps_change_weights_and_fpr95_is_finite():
    value = two_steps("hardnet", {"eval_pairs": 1, "train_pairs": 2}, 16)
    assert 0.0 <= value <= 1.0


def test_r2d2_recipe_two_steps_change_weights_and_mma_is_finite():
    value = two_steps("r2d2", {"eval_pairs_per_image": 1, "eval_size": 96, "crop": 64}, 2)
    assert 0.0 <= value <= 1.0


# ------------------------------------------------------------------------------------------ the experiment

def test_features_experiment_quick_writes_rows(tmp_path, monkeypatch):
    from fastcnn.experiments.cli import main

    from fastcnn.train.recipes import features as recipes

    monkeypatch.setenv("FASTCNN_BACKEND", "cpu")
    # a smoke run: the recipes evaluate on one held-out pair per image, small ones for R2D2
    monkeypatch.setattr(recipes.HardNetTask, "eval_pairs", 1)
    monkeypatch.setattr(recipes.R2D2Task, "eval_pairs_per_image", 1)
    monkeypatch.setattr(recipes.R2D2Task, "eval_size", 96)
    monkeypatch.setattr(recipes.R2D2Task, "crop", 64)
    out = tmp_path / "results"
    assert main(["features", "--quick", "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    payload = json.loads((out / "features.json").read_text())
    assert payload["quick"] is True
    assert [r["network"] for r in payload["rows"]] == ["hardnet", "hardnet", "r2d2", "r2d2"]
    assert all("mma@3" in payload["figures"][k]["sift"] for k in ("r2d2_stereo", "r2d2_heldout_homographies"))
    assert (out / "features_stereo_matches.png").stat().st_size > 0


@pytest.mark.slow
def test_a_real_hardnet_run_beats_raw_pixels(tmp_path, monkeypatch):
    from fastcnn.cli import main

    monkeypatch.setenv("FASTCNN_BACKEND", "cpu")
    out = tmp_path / "hardnet"
    assert main(["train", "hardnet", "--out", str(out), "--no-progress", "--threads", "2"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["metric"] < m["details"]["raw_pixels_fpr95"], m
