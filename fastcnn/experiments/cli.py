"""`fastcnn experiment NAME [NAME ...] | all`: regenerate the lecture's comparisons."""
from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="experiments to run ('all' for every one; none: list them)")
    p.add_argument("--runs", default="runs", help="folder of `fastcnn train` runs (finished ones are reused)")
    p.add_argument("--out", default="docs/results", help="folder for each experiment's JSON and pictures")
    p.add_argument("--quick", action="store_true", help="a smoke run: a few training steps, figures meaningless")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for the training runs")


def run(args) -> int:
    from . import EXPERIMENTS, Context, list_experiments

    names = list_experiments()
    if not args.names:
        for n in names:
            e = EXPERIMENTS[n]
            print(f"{n:24s} {e.summary}  (trains: {', '.join(e.networks) or '-'})")
        return 0
    wanted = names if args.names == ["all"] else args.names
    unknown = [n for n in wanted if n not in EXPERIMENTS]
    if unknown:
        print(f"fastcnn experiment: error: unknown experiment(s) {', '.join(unknown)}; known: {', '.join(names)}",
              file=sys.stderr)
        return 2
    if args.threads is not None and args.threads <= 0:
        print(f"fastcnn experiment: error: --threads must be a positive integer, got {args.threads}", file=sys.stderr)
        return 2
    for n in wanted:
        ctx = Context(n, runs_dir=args.runs, out_dir=args.out, quick=args.quick, seed=args.seed, threads=args.threads)
        EXPERIMENTS[n].run(ctx)
        path = ctx.write()
        print(f"## {n}\n\n{ctx.markdown()}\n\n(written to {path})\n")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastcnn experiment", description="regenerate the lecture's comparisons")
    add_arguments(parser)
    return run(parser.parse_args(argv))
