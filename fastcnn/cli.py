"""The `fastcnn` command: `fastcnn demo`, `fastcnn bench ...`, `fastcnn backends`."""
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
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return 1 if run_demo() else 0
    if args.command == "backends":
        from . import available_backends

        print(json.dumps(available_backends(), indent=2))
        return 0
    from .bench.cli import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
