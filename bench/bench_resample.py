"""Speed of the resampling ops on the cpu backend against torch eager, side by side.

    flock /tmp/fastcnn-bench.lock python bench/bench_resample.py [--threads 1] [--json out.json]

Alternates fastcnn and torch in the same process (after a warm-up), median of several samples with
min-max, ratio = torch_time / fastcnn_time (above 1 = fastcnn faster). GB/s = (bytes read + bytes
written) / time, with forward reading x and writing y, backward reading gy and writing gx; the copy
bandwidth of this machine (a large tensor copy, measured here) is printed for comparison.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import _C
from fastcnn import ops


def timeit(fn, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def side_by_side(ours, theirs, samples=9, target=0.05):
    ours(); theirs()
    t = timeit(ours, 1)
    reps = max(1, int(target / max(t, 1e-6)))
    a, b = [], []
    for _ in range(samples):
        a.append(timeit(ours, reps))
        b.append(timeit(theirs, reps))
    return a, b


def copy_bandwidth():
    x = torch.randn(64 * 2 ** 20 // 4)
    y = torch.empty_like(x)
    t = statistics.median(timeit(lambda: y.copy_(x), 5) for _ in range(5))
    return 2 * x.numel() * 4 / t / 1e9


def case_interp(shape, kw, phase):
    x = torch.randn(shape)
    y_shape = F.interpolate(x, **kw).shape
    gy = torch.randn(y_shape)
    nbytes = 4 * (x.numel() + gy.numel())
    if phase == "forward":
        return (lambda: ops.interpolate(x, **kw), lambda: F.interpolate(x, **kw)), nbytes
    xg = x.clone().requires_grad_()

    def fwd_bwd(fn):
        def run():
            y = fn(xg, **kw)
            (g,) = torch.autograd.grad(y, xg, gy)
            return g
        return run
    return (fwd_bwd(ops.interpolate), fwd_bwd(F.interpolate)), 2 * nbytes


def case_interp_kernel(shape, kw, phase):
    """Kernels only, outputs preallocated: fastcnn._C.resample against torch's out= ops (no
    allocation, no autograd: on a loaded VM page faults of a fresh output dominate otherwise)."""
    from fastcnn._C import resample as R

    x = torch.randn(shape)
    N, C, H, W = shape
    P, Q = F.interpolate(x, **kw).shape[2:]
    s = float(kw["scale_factor"])
    nearest, align = kw.get("mode", "nearest") == "nearest", bool(kw.get("align_corners"))
    y, gy, gx = torch.empty(N, C, P, Q), torch.randn(N, C, P, Q), torch.empty_like(x)
    scales = (0.0, 0.0) if align else (s, s)  # torch ignores the scales with align_corners
    if phase == "forward":
        ours = lambda: R.interpolate_forward(x.data_ptr(), y.data_ptr(), N * C, H, W, P, Q, nearest, align,  # noqa: E731
                                             *scales, 0)
        theirs = (lambda: torch._C._nn.upsample_nearest2d(x, [P, Q], s, s, out=y)) if nearest else (  # noqa: E731
            lambda: torch._C._nn.upsample_bilinear2d(x, [P, Q], align, s, s, out=y))
    else:
        ours = lambda: R.interpolate_backward(gy.data_ptr(), gx.data_ptr(), N * C, H, W, P, Q, nearest,  # noqa: E731
                                              align, *scales, 0)
        theirs = (lambda: torch.ops.aten.upsample_nearest2d_backward.grad_input(gy, [P, Q], list(shape), s, s, grad_input=gx)) \
            if nearest else (lambda: torch.ops.aten.upsample_bilinear2d_backward.grad_input(gy, [P, Q], list(shape), align, s, s,
                                                                              grad_input=gx))
    return (ours, theirs), 4 * (x.numel() + y.numel())


def case_shuffle(shape, r, phase):
    x = torch.randn(shape)
    nbytes = 2 * 4 * x.numel()
    if phase == "forward":
        return (lambda: ops.pixel_shuffle(x, r), lambda: F.pixel_shuffle(x, r)), nbytes
    xg = x.clone().requires_grad_()
    gy = torch.randn(F.pixel_shuffle(x, r).shape)

    def fwd_bwd(fn):
        def run():
            (g,) = torch.autograd.grad(fn(xg, r), xg, gy)
            return g
        return run
    return (fwd_bwd(ops.pixel_shuffle), fwd_bwd(F.pixel_shuffle)), 2 * nbytes


CASES = [
    ("bilinear x2 [8,64,64,64] align=False", lambda ph: case_interp((8, 64, 64, 64), dict(scale_factor=2, mode="bilinear"), ph)),
    ("bilinear x2 [8,64,64,64] align=True", lambda ph: case_interp((8, 64, 64, 64), dict(scale_factor=2, mode="bilinear", align_corners=True), ph)),
    ("nearest x2 [16,8,7,7]", lambda ph: case_interp((16, 8, 7, 7), dict(scale_factor=2), ph)),
    ("nearest x2 [16,8,14,14]", lambda ph: case_interp((16, 8, 14, 14), dict(scale_factor=2), ph)),
    ("nearest x2 [16,16,14,14]", lambda ph: case_interp((16, 16, 14, 14), dict(scale_factor=2), ph)),
    ("pixel_shuffle r2 [16,256,24,24]", lambda ph: case_shuffle((16, 256, 24, 24), 2, ph)),
]
# (name, make(phase)) with phases "forward" and "backward": kernels only, preallocated outputs.
KERNEL_CASES = [
    ("kernel: bilinear x2 [8,64,64,64] align=False", lambda ph: case_interp_kernel((8, 64, 64, 64), dict(scale_factor=2, mode="bilinear"), ph)),
    ("kernel: bilinear x2 [8,64,64,64] align=True", lambda ph: case_interp_kernel((8, 64, 64, 64), dict(scale_factor=2, mode="bilinear", align_corners=True), ph)),
    ("kernel: nearest x2 [16,16,14,14]", lambda ph: case_interp_kernel((16, 16, 14, 14), dict(scale_factor=2), ph)),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (fastcnn follows it); default: torch's")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bw = copy_bandwidth()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, fastcnn ISA {_C.isa()}, "
          f"copy bandwidth {bw:.1f} GB/s")
    print(f"{'case':46s} {'phase':8s} {'fastcnn ms (min-max)':>24s} {'torch ms (min-max)':>24s} {'ratio':>6s} "
          f"{'GB/s':>6s} {'%copy':>6s}")
    rows = []
    plan = [(name, make, phase) for name, make in CASES for phase in ("forward", "fwd+bwd")]
    plan += [(name, make, phase) for name, make in KERNEL_CASES for phase in ("forward", "backward")]
    for name, make, phase in plan:
        (ours, theirs), nbytes = make(phase)
        a, b = side_by_side(ours, theirs)
        ma, mb = statistics.median(a), statistics.median(b)
        gbs = nbytes / ma / 1e9
        rows.append(dict(case=name, phase=phase, fastcnn_s=ma, torch_s=mb, fastcnn_minmax=[min(a), max(a)],
                         torch_minmax=[min(b), max(b)], ratio=mb / ma, gbs=gbs, bytes=nbytes))
        print(f"{name:46s} {phase:8s} {ma*1e3:8.3f} ({min(a)*1e3:6.3f}-{max(a)*1e3:6.3f}) "
              f"{mb*1e3:8.3f} ({min(b)*1e3:6.3f}-{max(b)*1e3:6.3f}) {mb/ma:6.2f} {gbs:6.1f} {100*gbs/bw:5.0f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=platform.processor() or platform.machine(), torch=torch.__version__,
                           threads=torch.get_num_threads(), isa=_C.isa(), copy_gbs=bw, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
