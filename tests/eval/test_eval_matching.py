"""fastcnn.eval.matching against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn.eval import matching


def _identity(xy):
    xy = np.asarray(xy, dtype=float)
    return xy, np.ones(len(xy), dtype=bool)


def test_mutual_nearest_neighbours():
    d1 = np.array([[0.0, 0], [1, 0], [5, 5]])
    d2 = np.array([[0.1, 0], [5, 5.2], [0.2, 0]])
    i, j = matching.mutual_nearest_neighbours(d1, d2)
    # 0<->0 mutual, 1->2 and 2 -> 0 (not mutual), 2<->1 mutual
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 0), (2, 1)]
    empty = matching.mutual_nearest_neighbours(np.zeros((0, 2)), d2)
    assert len(empty[0]) == 0


def test_mma_identity_offsets_and_unknown_truth():
    xy = np.random.default_rng(0).uniform(0, 100, size=(30, 2))
    idx = np.arange(30)
    assert matching.matching_accuracy(xy, xy, (idx, idx), _identity)["mma@1"] == 1.0
    moved = xy + [2.0, 0.0]
    out = matching.matching_accuracy(xy, moved, (idx, idx), _identity)
    assert (out["mma@1"], out["mma@3"], out["mma@5"]) == (0.0, 1.0, 1.0)
    # half the matches are 2 px off, half 4 px off
    mixed = xy + np.where(idx[:, None] < 15, [2.0, 0.0], [0.0, 4.0])
    out = matching.matching_accuracy(xy, mixed, (idx, idx), _identity)
    assert (out["mma@1"], out["mma@3"], out["mma@5"]) == (0.0, 0.5, 1.0)

    def half_unknown(p):
        return np.asarray(p, float), np.arange(len(p)) % 2 == 0
    wrong = xy + np.where(idx[:, None] % 2 == 0, 0.0, 50.0)   # wrong only where the truth is unknown
    out = matching.matching_accuracy(xy, wrong, (idx, idx), half_unknown)
    assert out["mma@1"] == 1.0 and out["matches"] == 15 and out["matches_total"] == 30
    assert matching.matching_accuracy(xy, xy, (idx[:0], idx[:0]), _identity)["mma@3"] == 0.0


def test_fpr95():
    labels = np.r_[np.ones(20), np.zeros(20)]
    separable = np.r_[np.linspace(0, 1, 20), np.linspace(1.5, 3, 20)]
    assert matching.fpr_at_95_recall(separable, labels) == 0.0
    # positives 0..19: 95% recall needs threshold 18 (19 of 20); negatives 10..29 at or below 18: 9
    dist = np.r_[np.arange(20), np.arange(10, 30)].astype(float)
    assert matching.fpr_at_95_recall(dist, labels) == pytest.approx(9 / 20)
    assert matching.fpr_at_95_recall(-separable, labels) == 1.0
    with pytest.raises(ValueError, match="both"):
        matching.fpr_at_95_recall(np.ones(3), np.ones(3))
