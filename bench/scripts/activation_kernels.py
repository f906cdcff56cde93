"""Activation kernels alone, writing into preallocated outputs (no allocation, no page faults):
GB/s of forward (read x, write y) and backward (read gy and y, write gx) on 64 MB float32 tensors,
against the copy probe of the same run. Issue #2's bandwidth clause; the out-of-place ops, with
their fresh outputs, are in `fastcnn bench --suite ops --filter activation`.

    .venv/bin/python bench/scripts/activation_kernels.py [--reps 25]
"""
import sys
from pathlib import Path

# Run as a script, Python puts bench/scripts/ on the path, not the checkout: import the fastcnn of
# the checkout this script lives in (not whichever one an editable install points at).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import statistics
import time

import torch

from fastcnn import _C
from fastcnn.ops.activation import ACT_KIND

PARAM = {"elu": 1.0, "leaky_relu": 0.01}


def median_seconds(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=25)
    args = ap.parse_args()
    _C.set_num_threads(torch.get_num_threads())
    n = 16 << 20
    x, gy = torch.randn(n), torch.randn(n)
    y, gx = torch.zeros(n), torch.zeros(n)  # touched once here: the timed calls never fault
    f32 = _C.Dtype.float32
    copy = 2 * 4 * n / median_seconds(lambda: _C.probe.copy(x.data_ptr(), y.data_ptr(), n), args.reps) / 1e9
    print(f"threads={torch.get_num_threads()} isa={_C.isa()} copy probe {copy:.1f} GB/s")
    for name in ("relu", "sigmoid", "tanh", "elu", "leaky_relu"):
        kind, p = ACT_KIND[name], PARAM.get(name, 0.0)
        fwd = median_seconds(lambda: _C.activation.forward(kind, x.data_ptr(), y.data_ptr(), n, p, 0.0, f32), args.reps)
        bwd = median_seconds(lambda: _C.activation.backward(kind, gy.data_ptr(), y.data_ptr(), gx.data_ptr(), n, True,
                                                            p, 0.0, f32), args.reps)
        f_gbs, b_gbs = 2 * 4 * n / fwd / 1e9, 3 * 4 * n / bwd / 1e9
        print(f"{name:10s} forward {f_gbs:5.1f} GB/s ({100 * f_gbs / copy:3.0f}% of copy)   "
              f"backward {b_gbs:5.1f} GB/s ({100 * b_gbs / copy:3.0f}% of copy)")


if __name__ == "__main__":
    main()
