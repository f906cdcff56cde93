"""batch_norm (training forward+backward), softmax and cross_entropy (forward+backward): fastcnn cpu
against torch eager, alternated in one process, median of several runs.

    flock /tmp/fastcnn-bench.lock python bench/bench_norm_loss.py [--repeats 15] [--json out.json]

GB/s = (bytes read + bytes written by the minimal algorithm) / time, with the bytes counted per op
below; compare with the machine's ~32 GB/s DRAM copy bandwidth (DESIGN.md)."""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import _C
from fastcnn import ops


def timed(fn, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def alternate(ours, theirs, repeats):
    """Interleave the two so both see the same machine load; per-round times."""
    ours(), theirs()
    a, b = [], []
    for _ in range(repeats):
        a += timed(ours, 1)
        b += timed(theirs, 1)
    return a, b


def bn_case(shape):
    x = torch.randn(shape, requires_grad=True)
    C = shape[1]
    w, b = torch.ones(C, requires_grad=True), torch.zeros(C, requires_grad=True)
    gy = torch.randn(shape)

    def run(fn):
        def step():
            rm, rv = torch.zeros(C), torch.ones(C)
            y = fn(x, rm, rv, w, b, True, 0.1, 1e-5)
            torch.autograd.grad(y, (x, w, b), gy)
        return step

    # forward: read x twice (stats, normalise), write y; backward: read gy, x (sums), read gy, x, write gx
    nbytes = x.numel() * 4 * (3 + 5)
    return run(lambda *a: ops.batch_norm(*a, backend="cpu")), run(F.batch_norm), nbytes


def softmax_case(shape, dim):
    x = torch.randn(shape, requires_grad=True)
    gy = torch.randn(shape)

    def run(fn):
        def step():
            torch.autograd.grad(fn(x, dim), x, gy)
        return step

    # forward: read x (reduce), read x, write y; backward: read gy, y (reduce), read gy, y, write gx
    nbytes = x.numel() * 4 * (3 + 5)
    return run(lambda x, d: ops.softmax(x, d, backend="cpu")), run(F.softmax), nbytes


def ce_case(shape):
    x = torch.randn(shape, requires_grad=True)
    C = shape[1]
    t = torch.randint(0, C, (shape[0],) + tuple(shape[2:]))

    def run(fn):
        def step():
            torch.autograd.grad(fn(x, t), x)
        return step

    # forward: read x twice (max, sum exp); backward: read x, write gx (targets are small)
    nbytes = x.numel() * 4 * 4
    return run(lambda x, t: ops.cross_entropy(x, t, backend="cpu")), run(F.cross_entropy), nbytes


CASES = [
    ("batch_norm train fwd+bwd", (16, 64, 56, 56), lambda: bn_case((16, 64, 56, 56))),
    ("batch_norm train fwd+bwd", (64, 128, 28, 28), lambda: bn_case((64, 128, 28, 28))),
    ("softmax fwd+bwd dim=1", (256, 1000), lambda: softmax_case((256, 1000), 1)),
    ("softmax fwd+bwd dim=1", (8, 21, 64, 64), lambda: softmax_case((8, 21, 64, 64), 1)),
    ("cross_entropy fwd+bwd", (256, 1000), lambda: ce_case((256, 1000))),
    ("cross_entropy fwd+bwd", (8, 21, 64, 64), lambda: ce_case((8, 21, 64, 64))),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    print(f"threads={torch.get_num_threads()} isa={_C.isa()} torch={torch.__version__}")
    print(f"{'op':28s} {'shape':18s} {'fastcnn ms':>11s} {'torch ms':>9s} {'ratio':>6s} {'GB/s':>6s} {'torch GB/s':>10s}")
    for name, shape, make in CASES:
        ours, theirs, nbytes = make()
        a, b = alternate(ours, theirs, args.repeats)
        ma, mb = statistics.median(a), statistics.median(b)
        row = dict(op=name, shape=list(shape), fastcnn_ms=ma * 1e3, torch_ms=mb * 1e3, ratio=mb / ma,
                   fastcnn_gbs=nbytes / ma / 1e9, torch_gbs=nbytes / mb / 1e9,
                   fastcnn_minmax_ms=[min(a) * 1e3, max(a) * 1e3], torch_minmax_ms=[min(b) * 1e3, max(b) * 1e3])
        rows.append(row)
        print(f"{name:28s} {str(tuple(shape)):18s} {row['fastcnn_ms']:11.2f} {row['torch_ms']:9.2f} "
              f"{row['ratio']:6.2f} {row['fastcnn_gbs']:6.1f} {row['torch_gbs']:10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(threads=torch.get_num_threads(), isa=_C.isa(), torch=torch.__version__, rows=rows),
                      f, indent=1)


if __name__ == "__main__":
    main()
