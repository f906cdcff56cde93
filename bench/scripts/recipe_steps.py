"""Training-step time of recipes (`fastcnn train NAME`'s own step: its losses, optimiser and batch)
with fastcnn's network against the same recipe on the eager torch twin, as a table: docs/results.md's
"speed ratio vs torch twin" column (issue #13). The experiments measure the same thing for their own
networks (fastcnn.experiments._speed.step_times); this prints it for any list of recipes.

    .venv/bin/python bench/scripts/recipe_steps.py pspnet pidnet_s hardnet [--rounds 5] [--steps 4]

Each side keeps its fastest of `--rounds` alternating rounds of `--steps` steps on one batch of the
recipe. Ratio = twin / fastcnn (above 1: fastcnn faster). Run it on a quiet machine
(flock /tmp/fastcnn-cpu.lock); srgan, vae and dcgan first train the run they build on in
--reference-dir when it is missing there.
"""
import sys
from pathlib import Path

# Run as a script, Python puts bench/scripts/ on the path, not the checkout: import the fastcnn of
# the checkout this script lives in.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse

import torch

from fastcnn.bench.machine import describe
from fastcnn.experiments._speed import step_times
from fastcnn.train.recipes import RECIPES


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+", choices=sorted(RECIPES), metavar="NAME")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=4, help="steps per timed round")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference-dir", default="runs", help="where srgan / vae / dcgan find the runs they build on")
    args = p.parse_args()
    if args.rounds < 1 or args.steps < 1:
        p.error("--rounds and --steps must be positive")
    torch.set_num_threads(args.threads)
    m = describe()
    print(f"# {m['cpu']}, ISA {m['isa']}, {args.threads} threads, FMA probe {m['peak_gflops']} GFLOP/s, "
          f"commit {m['commit']}; fastest of {args.rounds} rounds of {args.steps} steps")
    print("| network | fastcnn ms/step | twin ms/step | twin / fastcnn |")
    print("|---|---|---|---|")
    for name in args.names:
        s = step_times(name, args.seed, args.steps, rounds=args.rounds, reference_dir=args.reference_dir)
        f, t = s["fastcnn"] * 1e3, s["torch"] * 1e3
        print(f"| {name} | {f:.2f} | {t:.2f} | {t / f:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
