"""Per-pass timing of the lecture conv layers: forward, backward-input, backward-weight of each
fastcnn cpu algorithm next to torch's own pieces (aten.convolution_backward with one output mask),
alternating, median of runs. Usage: python bench/scripts/conv_passes.py [filter[,filter...]] [--reps N] [--threads 1 (thread CPU time)]
An algorithm may pin the kernel's tile: --algos winograd:4,winograd:6 (fft:8/16/32), forward and
backward-input only."""
import sys
from pathlib import Path

# Run as a script, Python puts bench/scripts/ on the path, not the checkout: import the fastcnn of
# the checkout this script lives in (not whichever one an editable install points at).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from fastcnn.contracts import kernels
from fastcnn.contracts.conv import ConvShape

LAYERS = {  # name: N, C, K, H, W, R, stride, padding, dilation, groups
    "alexnet.stem": (16, 3, 24, 67, 67, 11, 4, 0, 1, 1),  # AlexNet (small size): the 11x11 stride-4 stem
    "alexnet.conv2": (16, 96, 256, 27, 27, 5, 1, 2, 1, 2),
    "alexnet.conv3": (16, 256, 384, 13, 13, 3, 1, 1, 1, 1),
    "alexnet.conv4": (16, 384, 384, 13, 13, 3, 1, 1, 1, 2),
    "alexnet.conv5": (16, 384, 256, 13, 13, 3, 1, 1, 1, 2),
    "hardnet.64-64": (256, 64, 64, 16, 16, 3, 1, 1, 1, 1),
    "hardnet.64-128": (256, 64, 128, 16, 16, 3, 2, 1, 1, 1),
    "r2d2.64-128": (4, 64, 128, 64, 64, 3, 1, 2, 2, 1),
    "r2d2.d16": (16, 32, 32, 32, 32, 2, 1, 8, 16, 1),  # R2D2 (small size): its dilated 2x2 / 3x3 layers
    "r2d2.d8": (16, 32, 32, 32, 32, 2, 1, 4, 8, 1),
    "r2d2.d4": (16, 32, 32, 32, 32, 3, 1, 4, 4, 1),
    "dcgan.d2": (64, 64, 128, 16, 16, 4, 2, 1, 1, 1),
    "stylegan_xl_d.8-8s2": (16, 8, 8, 64, 64, 4, 2, 1, 1, 1),  # StyleGAN-XL D (small size): 8->8 4x4 stride 2
    "hardnet.8-16s2": (16, 8, 16, 32, 32, 3, 2, 1, 1, 1),  # HardNet (small size): 8->16 3x3 stride 2
    "pidnet": (4, 64, 64, 64, 64, 3, 1, 1, 1, 1),
    "srresnet": (16, 64, 64, 96, 96, 3, 1, 1, 1, 1),
    "srresnet.in9": (16, 3, 64, 96, 96, 9, 1, 4, 1, 1),
    "srresnet.out9": (16, 32, 3, 48, 48, 9, 1, 4, 1, 1),  # SRResNet (small size): the 32->3 9x9 output layer
    "segnet.7x7": (4, 64, 64, 45, 60, 7, 1, 3, 1, 1),
    "segnet.64-64": (4, 64, 64, 90, 120, 3, 1, 1, 1, 1),
    "segnet_basic.in7": (16, 3, 16, 48, 64, 7, 1, 3, 1, 1),  # SegNet-Basic (small size, batch 16): the stem
    "segnet_basic.48x64": (16, 16, 16, 48, 64, 7, 1, 3, 1, 1),  # its 16->16 7x7 layers on each map
    "segnet_basic.24x32": (16, 16, 16, 24, 32, 7, 1, 3, 1, 1),
    "segnet_basic.12x16": (16, 16, 16, 12, 16, 7, 1, 3, 1, 1),
    "segnet_basic.6x8": (16, 16, 16, 6, 8, 7, 1, 3, 1, 1),
    "fcn.fc6": (16, 32, 256, 9, 9, 7, 1, 0, 1, 1),  # FCN-8s/16s/32s (small size): fc6 as a 7x7 on pool5
    "pspnet.1024-128": (16, 1024, 128, 9, 9, 3, 1, 1, 1, 1),  # PSPNet's head (small size) on the 9x9 pyramid
    "pspnet.d4": (16, 128, 128, 9, 9, 3, 1, 4, 4, 1),
    "srgan_d.stem": (16, 3, 16, 48, 48, 3, 1, 1, 1, 1),  # SRGAN discriminator (small size), C*R*S = 27
    "pspnet.pool2": (16, 512, 128, 2, 2, 1, 1, 0, 1, 1),  # the pyramid's 1x1 convolutions (1x1 .. 6x6 maps)
    "pspnet.pool3": (16, 512, 128, 3, 3, 1, 1, 0, 1, 1),
    "pspnet.pool6": (16, 512, 128, 6, 6, 1, 1, 0, 1, 1),
    "pspnet.1x1_9": (16, 256, 512, 9, 9, 1, 1, 0, 1, 1),  # VGG16 encoder block 1 at a quarter of 360x480
    # conv_transpose2d layers as their adjoint convolution (forward = backward-input of this)
    "dcgan.g1T": (64, 128, 256, 16, 16, 4, 2, 1, 1, 1),
    "dcgan.g2T": (64, 64, 128, 32, 32, 4, 2, 1, 1, 1),
}


CLOCK = time.perf_counter


def base(algo):
    """'winograd:6' -> 'winograd'."""
    return algo.split(":")[0]


def pin(algo):
    """'winograd:6' -> {'tile': 6}: the kernel's tile keyword; {} for a plain name."""
    return {"tile": int(algo.split(":")[1])} if ":" in algo else {}


def timeit(fn, reps, clock=None):
    """reps timings of fn() after one warm-up call, by `clock` (default CLOCK, wall time)."""
    clock = clock or CLOCK
    fn()
    ts = []
    for _ in range(reps):
        t0 = clock()
        fn()
        ts.append(clock() - t0)
    return ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("filter", nargs="?", default="")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--algos", default="direct,im2col")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stat", choices=("median", "min"), default="median")  # median also prints [min-max]
    ap.add_argument("--passes", default="fwd,bwd_in,bwd_w")
    a = ap.parse_args()
    global CLOCK
    if a.threads == 1:  # both libraries run in this thread: its CPU time ignores other processes' load
        CLOCK = time.thread_time
    torch.set_num_threads(a.threads)
    stat = statistics.median if a.stat == "median" else min
    for name, (N, C, K, H, W, R, st, pd, dl, g) in LAYERS.items():
        if not any(f in name for f in a.filter.split(",")):  # comma-separated substrings
            continue
        x = torch.randn(N, C, H, W)
        w = torch.randn(K, C // g, R, R) * (C * R * R) ** -0.5
        y = F.conv2d(x, w, None, st, pd, dl, g)
        gy = torch.randn_like(y)
        P, Q = y.shape[-2:]
        s2, p2, d2 = (st, st), (pd, pd), (dl, dl)
        shape = ConvShape.of(x.shape, w.shape, s2, p2, d2, g, (P, Q))
        aten = torch.ops.aten.convolution_backward
        pieces = {
            "fwd": (lambda: F.conv2d(x, w, None, st, pd, dl, g),
                    lambda al: kernels.conv2d_forward.algo(base(al))["cpu"](x, w, None, shape, None, 0.0, **pin(al))),
            "bwd_in": (lambda: aten(gy, x, w, None, s2, p2, d2, False, [0, 0], g, [True, False, False]),
                       lambda al: kernels.conv2d_backward_input.algo(base(al))["cpu"](gy, w, shape, **pin(al))),
            "bwd_w": (lambda: aten(gy, x, w, None, s2, p2, d2, False, [0, 0], g, [False, True, False]),
                      lambda al: kernels.conv2d_backward_weight.algo(al)["cpu"](x, gy, shape)),
        }
        unit = st == 1 and dl == 1
        algos = [al for al in a.algos.split(",") if not (base(al) in ("fft", "winograd") and not unit)
                 and not (base(al) == "winograd" and R != 3)]
        flops = 2 * N * K * (C // g) * R * R * P * Q
        line = [f"{name:15s}"]
        for piece, (tf, ff) in pieces.items():
            if piece not in a.passes.split(","):
                continue
            direction = {"fwd": "conv2d_forward", "bwd_in": "conv2d_backward_input",
                         "bwd_w": "conv2d_backward_weight"}[piece]
            here = [al for al in algos if kernels.CONV_PASSES[direction].algo(base(al)).offered_by("cpu")
                    and not (pin(al) and piece == "bwd_w")]
            tt, ft = [], {al: [] for al in here}
            for _ in range(a.reps):
                tt += timeit(tf, 1)
                for al in here:
                    ft[al] += timeit(lambda: ff(al), 1)
            tm = stat(tt)
            parts = [f"torch {tm*1e3:7.2f}ms [{min(tt)*1e3:.2f}-{max(tt)*1e3:.2f}] {flops/tm/1e9:5.1f}GF"]
            for al in here:
                fm = stat(ft[al])
                parts.append(f"{al} {fm*1e3:7.2f} [{min(ft[al])*1e3:.2f}-{max(ft[al])*1e3:.2f}] "
                             f"{flops/fm/1e9:5.1f}GF x{tm/fm:4.2f}")
            line.append(f"{piece}: " + " ".join(parts))
        print("\n   ".join(line), flush=True)


if __name__ == "__main__":
    main()
