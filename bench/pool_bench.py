"""Pooling speed: fastcnn cpu backend vs torch eager, side by side in one process.

    flock /tmp/fastcnn-bench.lock python bench/pool_bench.py [--threads 2] [--reps 7]

For each case the two implementations alternate (after a warm-up) and the median of the runs is
reported with min-max; ratio = torch_time / fastcnn_time (above 1: fastcnn faster). GB/s counts
the bytes the op must move at least: input read + output written (+ int64 indices when kept for
the backward; + gradients in the backward), so it can be set against the ~32 GB/s copy bandwidth.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import fastcnn


def timed(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def compare(name, ours, theirs, nbytes, reps):
    ours(), theirs()  # warm-up (allocations, first-touch, lazy loads)
    a, b = [], []
    for _ in range(reps):  # alternate so drift hits both alike
        a += timed(ours, 1)
        b += timed(theirs, 1)
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{name:<46} fastcnn {ma * 1e3:8.2f} ms [{min(a) * 1e3:.2f}-{max(a) * 1e3:.2f}] "
          f"({nbytes / ma / 1e9:5.1f} GB/s)   torch {mb * 1e3:8.2f} ms [{min(b) * 1e3:.2f}-{max(b) * 1e3:.2f}]"
          f"   ratio {mb / ma:5.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--shape", type=int, nargs=4, default=[16, 64, 112, 112])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from fastcnn import _C
    print(f"threads {args.threads}, ISA {_C.isa()}, torch {torch.__version__}, shape {args.shape}, float32")
    x0 = torch.randn(*args.shape)
    n, c, h, w = args.shape
    e = 4  # bytes per float32
    for layout, x in (("NCHW", x0), ("channels_last", x0.contiguous(memory_format=torch.channels_last))):
        y = F.max_pool2d(x, 3, 2, 1)
        nin, nout = x.numel(), y.numel()
        compare(f"max_pool2d 3x3/2 pad 1 fwd {layout}",
                lambda: fastcnn.ops.max_pool2d(x, 3, 2, 1, backend="cpu"), lambda: F.max_pool2d(x, 3, 2, 1),
                (nin + nout) * e, args.reps)
        xg = x.detach().requires_grad_()
        gy = torch.randn_like(y)

        def fwd_bwd(op):
            def run():
                out = op(xg)
                out.backward(gy)
                xg.grad = None
            return run

        # forward: read x, write y + int64 indices; backward: read gy + indices, write gx
        compare(f"max_pool2d 3x3/2 pad 1 fwd+bwd {layout}",
                fwd_bwd(lambda t: fastcnn.ops.max_pool2d(t, 3, 2, 1, backend="cpu")),
                fwd_bwd(lambda t: F.max_pool2d(t, 3, 2, 1)),
                (nin + nout + 2 * nout) * e + (nout + nin) * e + 2 * nout * e, args.reps)
        compare(f"avg_pool2d 3x3/2 pad 1 fwd {layout}",
                lambda: fastcnn.ops.avg_pool2d(x, 3, 2, 1, backend="cpu"), lambda: F.avg_pool2d(x, 3, 2, 1),
                (nin + nout) * e, args.reps)
        compare(f"adaptive_avg_pool2d 1x1 fwd {layout}",
                lambda: fastcnn.ops.adaptive_avg_pool2d(x, 1, backend="cpu"), lambda: F.adaptive_avg_pool2d(x, 1),
                (nin + n * c) * e, args.reps)


if __name__ == "__main__":
    main()
