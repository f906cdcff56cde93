"""fft convolution (cpu) against torch eager and NNPACK on the 5x5 / 9x9 layers it targets.

Run from the repository root:  flock /tmp/fastcnn-bench.lock python bench/scripts/fft_layers.py [--reps 7]

Alternates fastcnn and each baseline in one process (median of --reps timed runs after a warm-up),
float32, NCHW, torch.get_num_threads() threads (2 here). Nominal GFLOP/s = 2*N*K*(C/g)*R*S*P*Q / time
(forward; forward+backward counts 3x). Ratio = baseline time / fastcnn time (> 1: fastcnn faster).
NNPACK (torch._nnpack_spatial_convolution) takes groups=1 only: for grouped layers it is timed on
the per-group slices (48->128 halves for AlexNet conv2), run one after the other, which is what a
caller of NNPACK would do; the input slices are made contiguous outside the timed region.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from fastcnn._registry import kernel

LAYERS = [  # name, N, C, H, W, K, R, S, pad, groups
    ("AlexNet conv2", 16, 96, 27, 27, 256, 5, 5, 2, 2),
    ("LeNet conv1", 16, 1, 32, 32, 6, 5, 5, 0, 1),
    ("LeNet conv2", 16, 6, 14, 14, 16, 5, 5, 0, 1),
    ("DCGAN D conv2 (5x5, s1 variant)", 16, 64, 32, 32, 128, 5, 5, 2, 1),
    ("DCGAN G 5x5 (128->64, 32x32)", 16, 128, 32, 32, 64, 5, 5, 2, 1),
    ("SRResNet conv1 9x9", 16, 3, 96, 96, 64, 9, 9, 4, 1),
]


def timeit(fn, reps):
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def alternate(fns, reps):
    """Median time of each fn, runs interleaved so background load hits all alike."""
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", default=None, help="substring of a layer name")
    ap.add_argument("--no-backward", action="store_true")
    args = ap.parse_args()
    fwd = kernel("cpu", "conv2d_forward.fft")
    bwi = kernel("cpu", "conv2d_backward_input.fft")
    bww = kernel("cpu", "conv2d_backward_weight.fft")
    from fastcnn import _C
    assert torch._nnpack_available(), "NNPACK is not available in this torch build"  # also initialises it
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, fastcnn ISA {_C.isa()}")
    for name, N, C, H, W, K, R, S, pad, g in LAYERS:
        if args.only and args.only not in name:
            continue
        torch.manual_seed(0)
        x = torch.randn(N, C, H, W)
        w = torch.randn(K, C // g, R, S) * 0.1
        b = torch.randn(K)
        P, Q = H + 2 * pad - R + 1, W + 2 * pad - S + 1
        flops = 2.0 * N * K * (C // g) * R * S * P * Q
        tile = _C.conv_fft.choose_tile(N, C, K, g, R, S, P, Q)
        ours = lambda: fwd(x, w, b, (1, 1), (pad, pad), (1, 1), g, (P, Q), None, 0.0)
        ref = F.conv2d(x.double(), w.double(), b.double(), padding=pad, groups=g)
        err = ((ours().double() - ref).abs().max() / ref.abs().max()).item()
        # NNPACK's pthreadpool workers spin for a while after each call and compete with the next
        # op's threads on a 2-core machine, so it is timed in its own alternation.
        t = alternate({"fastcnn": ours, "torch": lambda: F.conv2d(x, w, b, padding=pad, groups=g)}, args.reps)
        xs, ws, bs = [v.contiguous() for v in x.chunk(g, 1)], w.chunk(g, 0), b.chunk(g, 0)
        tn = alternate({"fastcnn": ours, "nnpack": lambda: [
            torch._nnpack_spatial_convolution(xs[i], ws[i], bs[i], [pad, pad]) for i in range(g)]}, args.reps)
        t["nnpack"], t["fastcnn_n"] = tn["nnpack"], tn["fastcnn"]
        print(f"{name:34s} fwd  T={tile:2d} fastcnn {t['fastcnn']*1e3:7.2f} ms {flops/t['fastcnn']/1e9:6.1f} GF/s | "
              f"torch {t['torch']*1e3:7.2f} ms ratio {t['torch']/t['fastcnn']:.2f} | "
              f"nnpack {t['nnpack']*1e3:7.2f} ms ratio {t['nnpack']/t['fastcnn_n']:.2f} | max rel err {err:.1e}")
        if args.no_backward:
            continue
        gy = torch.randn(N, K, P, Q)

        def ours_fb():
            fwd(x, w, b, (1, 1), (pad, pad), (1, 1), g, (P, Q), None, 0.0)
            bwi(gy, w, (H, W), (1, 1), (pad, pad), (1, 1), g)
            bww(x, gy, (R, S), (1, 1), (pad, pad), (1, 1), g)
            gy.sum((0, 2, 3))  # the bias gradient both sides compute

        xg, wg, bg = x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()

        def torch_fb():
            xg.grad = wg.grad = bg.grad = None
            F.conv2d(xg, wg, bg, padding=pad, groups=g).backward(gy)

        tb = alternate({"fastcnn": ours_fb, "torch": torch_fb}, args.reps)
        tin = alternate({"bi": lambda: bwi(gy, w, (H, W), (1, 1), (pad, pad), (1, 1), g),
                         "bw": lambda: bww(x, gy, (R, S), (1, 1), (pad, pad), (1, 1), g)}, args.reps)
        print(f"{name:34s} f+b       fastcnn {tb['fastcnn']*1e3:7.2f} ms {3*flops/tb['fastcnn']/1e9:6.1f} GF/s | "
              f"torch {tb['torch']*1e3:7.2f} ms ratio {tb['torch']/tb['fastcnn']:.2f} | "
              f"(bwd input {tin['bi']*1e3:.2f} ms, bwd weight {tin['bw']*1e3:.2f} ms)")


if __name__ == "__main__":
    main()
