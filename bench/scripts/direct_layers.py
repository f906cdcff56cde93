"""Direct convolution (cpu backend) vs torch eager F.conv2d on the lecture layers, side by side.

    flock /tmp/fastcnn-bench.lock python bench/scripts/direct_layers.py [--threads 2] [--reps 5] [--only NAME]
                                                                         [--no-backward]

float32, NCHW in and out (the layout conversion is inside fastcnn's timing). Warm-up, then
fastcnn and torch alternate; the best (minimum) of --reps runs is reported, since on a shared
machine interference only ever adds time (--stat median for the median). --clock cpu times with
the calling thread's CPU time (use with --threads 1: both libraries then run in this thread), which
other processes on the machine barely disturb. GFLOP/s is the nominal
2*N*K*(C/g)*R*S*P*Q / time (backward: twice that, input- plus weight-gradient). ratio =
torch time / fastcnn time (above 1: fastcnn faster).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from fastcnn._registry import kernel

# name: (N, C, H, W, K, R, S, stride, padding, groups)
LAYERS = {
    "alexnet.conv2": (16, 96, 27, 27, 256, 5, 5, 1, 2, 2),
    "alexnet.conv3": (16, 256, 13, 13, 384, 3, 3, 1, 1, 1),
    "alexnet.conv4": (16, 384, 13, 13, 384, 3, 3, 1, 1, 2),
    "alexnet.conv5": (16, 384, 13, 13, 256, 3, 3, 1, 1, 2),
    "srresnet.body": (16, 64, 96, 96, 64, 3, 3, 1, 1, 1),
    "hardnet.64-64": (256, 64, 16, 16, 64, 3, 3, 1, 1, 1),
    "hardnet.64-128": (256, 64, 8, 8, 128, 3, 3, 1, 1, 1),
    "dcgan.d2": (64, 64, 16, 16, 128, 4, 4, 2, 1, 1),
}


CLOCK = {"wall": time.perf_counter, "cpu": time.thread_time}
STAT = {"min": min, "median": statistics.median}


def compare(ours, theirs, reps, clock, stat):
    def timed(fn):
        t0 = clock()
        fn()
        return clock() - t0

    for _ in range(2):
        ours()
        theirs()
    a, b = [], []
    for _ in range(reps):
        a.append(timed(ours))
        b.append(timed(theirs))
    return stat(a), stat(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default=None)
    ap.add_argument("--no-backward", action="store_true")
    ap.add_argument("--clock", choices=CLOCK, default="wall")
    ap.add_argument("--stat", choices=STAT, default="min")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fwd = kernel("cpu", "conv2d_forward.direct")
    bwd_in = kernel("cpu", "conv2d_backward_input.direct")
    bwd_w = kernel("cpu", "conv2d_backward_weight.direct")
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu measures the calling thread only: use --threads 1")
    clock, stat = CLOCK[args.clock], STAT[args.stat]
    print(f"threads={args.threads} reps={args.reps} clock={args.clock} stat={args.stat} torch={torch.__version__}")
    print(f"{'layer':16s} {'fwd ms':>8s} {'torch':>8s} {'GF/s':>6s} {'torch':>6s} {'ratio':>5s} | "
          f"{'f+b ms':>8s} {'torch':>8s} {'GF/s':>6s} {'torch':>6s} {'ratio':>5s}")
    for name, (n, c, h, w, k, r, s, st, pd, g) in LAYERS.items():
        if args.only and args.only not in name:
            continue
        torch.manual_seed(0)
        x = torch.randn(n, c, h, w)
        wt = torch.randn(k, c // g, r, s) * 0.05
        b = torch.randn(k)
        y_ref = F.conv2d(x, wt, b, st, pd, 1, g)
        p, q = y_ref.shape[2:]
        args_c = ((st, st), (pd, pd), (1, 1), g)
        y = fwd(x, wt, b, *args_c[:3], g, (p, q), None, 0.0)
        err = (y - y_ref).abs().max().item() / y_ref.abs().max().item()
        flops = 2.0 * n * k * (c // g) * r * s * p * q
        tf, tt = compare(lambda: fwd(x, wt, b, (st, st), (pd, pd), (1, 1), g, (p, q), None, 0.0),
                         lambda: F.conv2d(x, wt, b, st, pd, 1, g), args.reps, clock, stat)
        line = (f"{name:16s} {tf * 1e3:8.2f} {tt * 1e3:8.2f} {flops / tf / 1e9:6.1f} {flops / tt / 1e9:6.1f} "
                f"{tt / tf:5.2f} |")
        if not args.no_backward:
            gy = torch.randn_like(y_ref)
            xr = x.clone().requires_grad_()
            wr = wt.clone().requires_grad_()

            def ours():
                fwd(x, wt, b, (st, st), (pd, pd), (1, 1), g, (p, q), None, 0.0)
                bwd_in(gy, wt, (h, w), (st, st), (pd, pd), (1, 1), g)
                bwd_w(x, gy, (r, s), (st, st), (pd, pd), (1, 1), g)
                gy.sum(dim=(0, 2, 3))  # bias gradient, as the autograd path does

            def theirs():
                out = F.conv2d(xr, wr, b, st, pd, 1, g)
                out.backward(gy)

            tfb, ttb = compare(ours, theirs, args.reps, clock, stat)
            line += (f" {tfb * 1e3:8.2f} {ttb * 1e3:8.2f} {3 * flops / tfb / 1e9:6.1f} {3 * flops / ttb / 1e9:6.1f} "
                     f"{ttb / tfb:5.2f}")
        print(line + f"   (max rel err {err:.1e})", flush=True)


if __name__ == "__main__":
    main()
