"""Training-step time of a recipe (`fastcnn train NAME`'s own step: its losses, optimiser, batch and
data) with fastcnn's network against the same recipe on the eager torch twin: docs/results.md's
"speed ratio vs torch twin" column (issue #13).

    .venv/bin/python bench/scripts/recipe_steps.py pspnet pidnet_s hardnet [--rounds 3] [--steps 4]

Both tasks are built from the same seed; after two warm-up steps each, `--rounds` blocks of `--steps`
steps alternate fastcnn / twin / fastcnn ... on the recipe's training batches (the loop's order), and
the median block gives each side's time per step. Ratio = twin / fastcnn (above 1: fastcnn faster).
Timing only: the runs' metrics are not evaluated. Run it on a quiet machine (flock /tmp/fastcnn-cpu.lock).
"""
import sys
from pathlib import Path

# Run as a script, Python puts bench/scripts/ on the path, not the checkout: import the fastcnn of
# the checkout this script lives in.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader

from fastcnn.bench.machine import describe
from fastcnn.models import FAST, TORCH
from fastcnn.train.distributed import World
from fastcnn.train.loop import epoch_batches
from fastcnn.train.recipes import RECIPES
from fastcnn.train.task import Settings


def make_task(name, lib, reference_dir):
    torch.manual_seed(0)
    task = RECIPES[name](Settings(size="small", seed=0, lib=lib, reference_dir=reference_dir))
    task.train_mode(True)
    return task


def batches(task):
    """The recipe's training batches in the loop's order (epoch 0, then 1, ...), without end."""
    epoch = 0
    while True:
        plan = epoch_batches(len(task.train_set), task.batch_size, task.s.seed, epoch, world=World())
        yield from DataLoader(task.train_set, batch_sampler=plan, num_workers=0)
        epoch += 1


def timed_block(task, source, first_step, steps):
    t0 = time.perf_counter()
    for i in range(steps):
        task.step(task.to_device(next(source)), first_step + i)
    return (time.perf_counter() - t0) / steps


def measure(name, rounds, steps, reference_dir):
    sides = {label: make_task(name, lib, reference_dir) for label, lib in (("fastcnn", FAST), ("twin", TORCH))}
    sources = {label: batches(task) for label, task in sides.items()}
    done = {label: 0 for label in sides}
    times = {label: [] for label in sides}
    for label, task in sides.items():   # warm-up: first calls allocate and pick algorithms
        timed_block(task, sources[label], 0, 2)
        done[label] = 2
    for _ in range(rounds):
        for label, task in sides.items():
            times[label].append(timed_block(task, sources[label], done[label], steps))
            done[label] += steps
    per_step = {label: statistics.median(t) for label, t in times.items()}
    return per_step, sides["fastcnn"].batch_size


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+", choices=sorted(RECIPES), metavar="NAME")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=4, help="steps per timed block")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reference-dir", default="runs", help="where vae / dcgan / stylegan_xl find their lenet / vae runs")
    args = p.parse_args()
    if args.rounds < 1 or args.steps < 1:
        p.error("--rounds and --steps must be positive")
    torch.set_num_threads(args.threads)
    m = describe()
    print(f"# {m['cpu']}, ISA {m['isa']}, {args.threads} threads, FMA probe {m['peak_gflops']} GFLOP/s, commit {m['commit']}; "
          f"median of {args.rounds} blocks of {args.steps} steps")
    print("| network | batch | fastcnn ms/step | twin ms/step | twin / fastcnn |")
    print("|---|---|---|---|---|")
    for name in args.names:
        per_step, batch = measure(name, args.rounds, args.steps, args.reference_dir)
        f, t = per_step["fastcnn"] * 1e3, per_step["twin"] * 1e3
        print(f"| {name} | {batch} | {f:.2f} | {t:.2f} | {t / f:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
