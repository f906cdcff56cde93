"""GEMM GFLOP/s: fastcnn's cpu gemm against torch.matmul (MKL/oneDNN), side by side in one process.

    flock /tmp/fastcnn-bench.lock python bench/gemm_vs_torch.py [--sizes 1024 2048 4096] [--threads 2]

Alternates the two for `--reps` rounds after a warm-up and reports medians (min-max), GFLOP/s =
2*M*N*K / time, and the ratio torch_time / fastcnn_time (above 1 = fastcnn faster).
"""
import argparse
import statistics
import time

import torch

from fastcnn._registry import kernel


def timed(fn, inner):
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gemm = kernel("cpu", "gemm")
    dtype = getattr(torch, args.dtype)
    print(f"threads={args.threads} dtype={args.dtype}")
    print(f"{'size':>6} {'fastcnn GFLOP/s':>22} {'torch GFLOP/s':>22} {'ratio':>6}")
    for n in args.sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out = torch.empty(n, n, dtype=dtype)
        ours = lambda: gemm(a, b, out=out)  # noqa: E731
        theirs = lambda: torch.matmul(a, b, out=out)  # noqa: E731
        inner = max(1, int(2e9 / (2 * n ** 3)))
        ours(); theirs()
        t_ours, t_theirs = [], []
        for _ in range(args.reps):
            t_ours.append(timed(ours, inner))
            t_theirs.append(timed(theirs, inner))
        flop = 2.0 * n ** 3
        g = lambda ts: f"{flop / statistics.median(ts) / 1e9:7.1f} ({flop / max(ts) / 1e9:5.1f}-{flop / min(ts) / 1e9:5.1f})"  # noqa: E731
        print(f"{n:>6} {g(t_ours):>22} {g(t_theirs):>22} {statistics.median(t_theirs) / statistics.median(t_ours):6.2f}")


if __name__ == "__main__":
    main()
