"""Descriptor matching metrics: mutual nearest neighbours, mean matching accuracy, FPR95."""

from __future__ import annotations

import numpy as np
import torch


def mutual_nearest_neighbours(desc1, desc2) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (i, j) of the pairs where desc2[j] is desc1[i]'s nearest neighbour (Euclidean) and
    desc1[i] is desc2[j]'s. Ties go to the lower index."""
    d1 = torch.as_tensor(np.asarray(desc1), dtype=torch.float64)
    d2 = torch.as_tensor(np.asarray(desc2), dtype=torch.float64)
    if d1.ndim != 2 or d2.ndim != 2 or d1.shape[1] != d2.shape[1]:
        raise ValueError(f"descriptors must be (N, D) and (M, D), got {tuple(d1.shape)} and {tuple(d2.shape)}")
    if len(d1) == 0 or len(d2) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    dist = torch.cdist(d1, d2)
    nn12 = dist.argmin(dim=1)
    nn21 = dist.argmin(dim=0)
    i = torch.arange(len(d1))
    mutual = nn21[nn12] == i
    return i[mutual].numpy(), nn12[mutual].numpy()


def matching_accuracy(xy1, xy2, matches, correspond, thresholds=(1, 3, 5)) -> dict:
    """Mean matching accuracy (D2-Net / R2D2 on HPatches): the fraction of matches (i, j) whose point
    xy2[j] lies within each threshold (px) of the true position of xy1[i]. ``correspond(xy) ->
    (mapped, valid)`` is the ground truth (HomographyPair.correspond, StereoPair.correspond); matches
    whose true position is unknown (inf disparity, outside the image) are not counted.
    Returns {"mma@t": ...,"matches": valid matches, "matches_total": all}; no valid match -> MMA 0."""
    i, j = matches
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    xy1, xy2 = np.asarray(xy1, dtype=np.float64).reshape(-1, 2), np.asarray(xy2, dtype=np.float64).reshape(-1, 2)
    out = {"matches_total": int(len(i))}
    if len(i):
        truth, valid = correspond(xy1[i])
        error = np.linalg.norm(truth[valid] - xy2[j][valid], axis=1)
    else:
        error = np.zeros(0)
    out["matches"] = int(len(error))
    for t in thresholds:
        out[f"mma@{t}"] = float((error <= t).mean()) if len(error) else 0.0
    return out


def fpr_at_95_recall(distances, labels) -> float:
    """False positive rate at 95% true positive rate (Brown et al.; HardNet's FPR95): the fraction of
    non-matching pairs (label 0) whose distance is at most the smallest threshold that accepts 95% of
    the matching pairs (label 1)."""
    distances = np.asarray(distances, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if distances.shape != labels.shape:
        raise ValueError("distances and labels must have the same length")
    positives, negatives = np.sort(distances[labels]), distances[~labels]
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError("labels must contain both matching (1) and non-matching (0) pairs")
    threshold = positives[int(np.ceil(0.95 * len(positives))) - 1]
    return float((negatives <= threshold).mean())


def descriptor_distances(desc_a, desc_b) -> np.ndarray:
    """Euclidean distance between row k of ``desc_a`` and row k of ``desc_b``."""
    return np.linalg.norm(np.asarray(desc_a, dtype=np.float64) - np.asarray(desc_b, dtype=np.float64), axis=1)
