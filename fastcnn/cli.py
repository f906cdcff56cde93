"""The `fastcnn` command: `fastcnn demo`, `fastcnn bench ...`, `fastcnn backends`, `fastcnn train NAME ...`,
`fastcnn experiment NAME`."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastcnn", description="fastcnn: fast CNN kernels for PyTorch")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run every op on every usable backend against the reference")
    sub.add_parser("backends", help="list the backends and why each is (not) usable")
    bench = sub.add_parser("bench", help="benchmark fastcnn against torch (see fastcnn.bench)")
    from .bench.cli import add_arguments

    add_arguments(bench)
    from .train.cli import add_arguments as add_train_arguments

    add_train_arguments(sub.add_parser("train", help="train a zoo network on shipped data (see docs/training.md)"))
    from .experiments.cli import add_arguments as add_experiment_arguments

    add_experiment_arguments(sub.add_parser("experiment", help="regenerate a lecture comparison (see docs/results.md)"))
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return 1 if run_demo() else 0
    if args.command == "backends":
        from . import available_backends

        print(json.dumps(available_backends(), indent=2))
        return 0
    if args.command == "train":
        from .train.cli import run as run_train

        return run_train(args)
    if args.command == "experiment":
        from .experiments.cli import run as run_experiment

        return run_experiment(args)
    from .bench.cli import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
