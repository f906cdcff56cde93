"""im2col convolution (fastcnn cpu, algo='im2col') against torch.nn.functional.conv2d (oneDNN), side by
side in one process, forward and forward+backward.

    flock /tmp/fastcnn-bench.lock python bench/conv_im2col_vs_torch.py [--threads 2] [--reps 5]

GFLOP/s = 2*N*K*(C/groups)*R*S*P*Q / time (forward); ratio = torch_time / fastcnn_time (above 1 =
fastcnn faster); medians of alternated runs after a warm-up.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from fastcnn import ops

# name: (N, C, H, W, K, R, S, stride, padding, groups)
LAYERS = {
    "resnet 3x3 64->64 56x56": (4, 64, 56, 56, 64, 3, 3, 1, 1, 1),
    "resnet 1x1 256->64 56x56": (4, 256, 56, 56, 64, 1, 1, 1, 0, 1),
    "resnet 3x3/2 128->128 28x28": (4, 128, 28, 28, 128, 3, 3, 2, 1, 1),
    "resnet conv1 7x7/2 3->64 224": (2, 3, 224, 224, 64, 7, 7, 2, 3, 1),
    "lenet 5x5 6->16 14x14": (64, 6, 14, 14, 16, 5, 5, 1, 0, 1),
    "vgg 3x3 256->256 28x28": (2, 256, 28, 28, 256, 3, 3, 1, 1, 1),
    "mobilenet dw 3x3 128 56x56": (4, 128, 56, 56, 128, 3, 3, 1, 1, 128),
}


def median_time(fn, inner):
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} float32 NCHW; ratio = torch / fastcnn (above 1 = fastcnn faster)")
    print(f"{'layer':32} {'fwd GFLOP/s ours':>17} {'torch':>7} {'ratio':>6} {'fwd+bwd ratio':>14}")
    for name, (N, C, H, W, K, R, S, stride, pad, groups) in LAYERS.items():
        x = torch.randn(N, C, H, W, requires_grad=True)
        w = torch.randn(K, C // groups, R, S, requires_grad=True)
        b = torch.randn(K, requires_grad=True)
        ours = lambda: ops.conv2d(x, w, b, stride, pad, 1, groups, algo="im2col", backend="cpu")  # noqa: E731
        theirs = lambda: F.conv2d(x, w, b, stride, pad, 1, groups)  # noqa: E731
        y = theirs()
        gy = torch.randn_like(y)
        flop = 2.0 * N * K * (C // groups) * R * S * y.shape[2] * y.shape[3]
        inner = max(1, int(3e8 / flop))
        results = {}
        for mode in ("fwd", "fwd+bwd"):
            def run(f):
                if mode == "fwd":
                    with torch.no_grad():
                        return f()
                torch.autograd.backward(f(), gy)
            run(ours), run(theirs)
            t_o, t_t = [], []
            for _ in range(args.reps):
                t_o.append(median_time(lambda: run(ours), inner))
                t_t.append(median_time(lambda: run(theirs), inner))
            results[mode] = (statistics.median(t_o), statistics.median(t_t))
        (fo, ft), (bo, bt) = results["fwd"], results["fwd+bwd"]
        print(f"{name:32} {flop / fo / 1e9:17.1f} {flop / ft / 1e9:7.1f} {ft / fo:6.2f} {bt / bo:14.2f}")


if __name__ == "__main__":
    main()
