"""Short diagnostic runs of a segmentation recipe: the loss every few steps, then the per-class IoU and
the share of pixels predicted background on the first test images (how docs/results.md's diagnosis of
the background collapse was measured).

    PYTHONPATH=$PWD python scripts/segmentation_probe.py fcn8s --steps 100 class_weights=none lr=1e-4
"""
from __future__ import annotations

import argparse
import time

import torch

import fastcnn  # noqa: F401
from fastcnn.eval.segmentation import SegmentationScore
from fastcnn.models import FAST, TORCH
from fastcnn.train.recipes import RECIPES
from fastcnn.train.recipes.segmentation import NUM_CLASSES
from fastcnn.train.task import Settings


def parse_option(text: str):
    key, value = text.split("=", 1)
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(value, value)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("options", nargs="*", help="recipe options key=value (class_weights, lr, optimizer, zero_scores)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--test-images", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", default="small", help="the zoo network's size (small or canonical)")
    p.add_argument("--twin", action="store_true", help="train the network's torch twin (same recipe, seed, data)")
    args = p.parse_intermixed_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    task = RECIPES[args.name](Settings(size=args.size, steps=args.steps, batch_size=args.batch_size, lib=TORCH if args.twin else FAST,
                                       options=dict(parse_option(o) for o in args.options)))
    n = len(task.train_set)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(n, generator=g)
    task.train_mode(True)
    losses, t0 = [], time.perf_counter()
    for step in range(args.steps):
        idx = order[(step * args.batch_size) % n:][:args.batch_size].tolist()
        batch = [torch.stack(t) for t in zip(*[task.train_set[i] for i in idx])]
        losses.append(task.step(batch, step)["loss"])
        if (step + 1) % 10 == 0:
            print(f"step {step + 1:4d} loss {sum(losses[-10:]) / 10:.4f}", flush=True)
    seconds = time.perf_counter() - t0
    task.train_mode(False)
    score = SegmentationScore(NUM_CLASSES)
    with torch.no_grad():
        x, labels, boundary = task.test_set_batch(0, args.test_images)
        pred = task.predict(x)
        score.update(pred, labels, gt_boundary=boundary)
    res = score.result()
    print(f"{args.name}{' (torch twin)' if args.twin else ''} {' '.join(args.options)}: {args.steps} steps in {seconds:.0f} s; mIoU {res['mIoU']:.3f}, "
          f"IoU per class {[round(v, 3) for v in res['iou_per_class']]}, predicted background "
          f"{(pred == 0).float().mean():.3f} (truth {(labels == 0).float().mean():.3f})")
    # the same images through train-mode BatchNorm (batch statistics): tells a train/eval gap from not learning
    task.train_mode(True)
    with torch.no_grad():
        pred = task.predict(x)
    score = SegmentationScore(NUM_CLASSES)
    score.update(pred, labels, gt_boundary=boundary)
    print(f"  train-mode BN: mIoU {score.result()['mIoU']:.3f}, predicted background {(pred == 0).float().mean():.3f}")


if __name__ == "__main__":
    main()
