"""Overlays of the finished segmentation runs that exist (a subset of `fastcnn experiment segmentation`'s
seven, when not all were trained): image | ground truth | each run's prediction on the first held-out images.

    PYTHONPATH=$PWD python scripts/segmentation_overlays.py runs/seg docs/results/segmentation_overlays.png
"""
from __future__ import annotations

import os
import sys

import torch

import fastcnn  # noqa: F401
from fastcnn.experiments.segmentation import NETWORKS, OVERLAY_IMAGES, load_trained
from fastcnn.train.recipes.segmentation import overlay_figure, test_set


def main(runs: str, path: str, seed: int = 0) -> None:
    test = test_set(seed, OVERLAY_IMAGES)
    x, labels, _ = (torch.stack(t) for t in zip(*[test[i] for i in range(OVERLAY_IMAGES)]))
    predictions = {}
    for name in NETWORKS:
        folder = os.path.join(runs, name)
        if os.path.exists(os.path.join(folder, "metrics.json")):
            with torch.no_grad():
                predictions[name] = load_trained(name, folder, seed).predict(x)
    overlay_figure(x, labels, predictions, path, "held-out synthetic shapes: image | ground truth | "
                   "each finished run's prediction")
    print(path, list(predictions))


if __name__ == "__main__":
    main(*sys.argv[1:3])
