"""Which convolution algorithm runs: explicit choice checks, the `auto` heuristic, the autotuner.

Algorithms are discovered through the kernel table (fastcnn/contracts/kernels.py), never imported: a
backend offers algorithm `a` for a direction when it registers the slot `kernels.<direction>.<a>`
(directions: conv2d_forward, conv2d_backward_input, conv2d_backward_weight; `kernel_slot` finds the
slot of a direction and algorithm named at run time).

Each pass of a convolution (forward, backward-input, backward-weight) chooses on its own: the
heuristic has per-direction rules, and the autotuner (off by default; `fastcnn.ops.autotune(True)`
or env FASTCNN_AUTOTUNE=1) times every applicable candidate of that pass once per (backend, device,
direction, shapes, stride, padding, dilation, groups, output size, dtype) and keeps the winner in a JSON file, `<cache dir>/fastcnn/conv_autotune.json` (cache dir:
env FASTCNN_CACHE_DIR, else XDG_CACHE_HOME, else ~/.cache). The file is written atomically (temp file
+ os.replace); a corrupt or unreadable file is ignored and rebuilt, never breaks a run.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import torch

from .._cache import atomic_write, cache_dir
from .. import _registry
from .._registry import KernelSlot
from ..contracts import kernels
from ..contracts.conv import check_winograd  # noqa: F401 - part of the algorithm checks

ALGOS = kernels.CONV_ALGOS
CHOICES = ("auto",) + ALGOS
DIRECTIONS = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight")


def kernel_slot(direction: str, algo: str) -> KernelSlot:
    """The slot of pass `direction` ('conv2d_forward', ...) and algorithm `algo`."""
    return kernels.CONV_PASSES[direction].algo(algo)


def why_not_applicable(algo: str, stride, dilation, kernel_hw=None) -> Optional[str]:
    """Why `algo` cannot run this convolution (None if it can); kernel_hw None: not checked."""
    from ..contracts import conv as contract  # the one statement of the algorithms' limits
    return contract.why_not_applicable(algo, stride, dilation, kernel_hw)


def check_explicit(algo: str, backend: str, direction: str, stride, dilation, kernel_hw=None) -> None:
    """Raise a clear error if an explicitly requested algorithm cannot run here."""
    if algo not in CHOICES:
        raise ValueError(f"algo: expected one of {CHOICES}, got {algo!r}")
    if algo == "auto":
        return
    reason = why_not_applicable(algo, stride, dilation, kernel_hw)
    if reason:
        raise ValueError(reason)
    if not kernel_slot(direction, algo).offered_by(backend):
        offered = [a for a in ALGOS if kernel_slot(direction, a).offered_by(backend)]
        raise NotImplementedError(f"fastcnn: algo={algo!r} has no '{direction}' kernel on backend '{backend}'; "
                                  f"this backend offers {offered or 'none'} (or use algo='auto')")


def candidates(backend: str, direction: str, stride, dilation, kernel_hw=None) -> list:
    return [a for a in ALGOS if kernel_slot(direction, a).offered_by(backend)
            and why_not_applicable(a, stride, dilation, kernel_hw) is None]


class Layer(NamedTuple):
    """What the heuristic looks at: the forward convolution x[N, C, *in_hw] (*) w[K, C/groups, *kernel_hw].
    in_hw None (size unknown, or a backend whose timings were not measured): only the rules that do
    not depend on measured cpu timings apply (1x1 -> im2col, fft for large kernels)."""
    N: int
    C: int
    K: int
    kernel_hw: Tuple[int, int]
    in_hw: Optional[Tuple[int, int]] = None
    stride: Tuple[int, int] = (1, 1)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1
    isa: Optional[str] = None  # the cpu backend's instruction set ("avx512", "avx2", "generic"); None: unknown
    gpu: bool = False  # the tensors are on a GPU (tensor-core algorithms apply)
    out_hw: Optional[Tuple[int, int]] = None  # the forward's output size (None: unknown, as in_hw)


_extension = []  # fastcnn._C once imported (an import statement per convolution pass costs more than the call)


def cpu_isa() -> Optional[str]:
    """The instruction set the cpu kernels run with now (FASTCNN_ISA or _C.set_isa may lower it), None
    without the extension."""
    if not _extension:
        try:
            from .. import _C
        except ImportError:
            return None
        _extension.append(_C)
    return _extension[0].isa()


# 7x7 (and wider) kernels with at least 16 input channels (groups 1) on maps of at least this many
# pixels take fft forward and backward-input; backward-weight too with fewer than 16 or at least 64
# output channels, or without AVX-512 (where the direct kernel has no row tiles): fft's cost does
# not grow with the kernel, direct's does by R*S. AVX-512 / AVX2, 1 thread, ms, direct / fft, after
# the direct row tiles (docs/ops-conv.md "SegNet-Basic's 7x7 passes"): SegNet-Basic's 16->16 7x7
# (batch 16) on 24x32 fwd 1.73 / 1.62 and 2.72 / 1.94, bwd_in 1.61 / 1.52 and 2.74 / 1.91, bwd_w
# 1.75 / 1.94 and 3.18 / 2.37; on 48x64 fwd 7.14 / 5.34 and 11.07 / 8.72; on 12x16 fft loses (fwd
# 0.41 / 0.52 and 0.60 / 0.72). Its canonical 64->64 7x7 (batch 4, 45x60): fwd 22.8 / 12.4 and
# 35.8 / 17.8, bwd_w 22.7 / 12.9 and 39.4 / 22.3. With fewer than 16 output channels every pass:
# SRResNet's 32->3 9x9 on 48x48 (batch 16) fwd 14.5 / 4.8 and 14.3 / 7.1, bwd_in 3.5 / 3.1 and 5.9 /
# 4.9, bwd_w 16.8 / 4.9 and 16.9 / 7.7. Stems (C < 16) stay direct (SegNet-Basic's 3->16 7x7, AVX-512:
# fwd 2.07 / 2.28, bwd_w 2.11 / 2.60).
FFT_WIDE_KERNEL_PIXELS = 24 * 32


def _fft_wide_kernel(layer: Layer, direction: str) -> bool:
    if min(layer.kernel_hw) < 7 or layer.C < 16 or layer.groups != 1 or layer.in_hw is None:
        return False
    if layer.in_hw[0] * layer.in_hw[1] < FFT_WIDE_KERNEL_PIXELS:
        return False
    if direction != "conv2d_backward_weight" or layer.K < 16:  # K < 16: direct fills 16-lane blocks with K
        return True
    return layer.isa not in (None, "avx512") or min(layer.C, layer.K) >= 64


def _fft_wins(layer: Layer, direction: str) -> bool:
    R, S = layer.kernel_hw
    if _fft_wide_kernel(layer, direction):
        return True
    if layer.C < 64 or layer.K < 64:
        return False
    if min(R, S) >= 5 and layer.N >= 16:
        return True
    if (R, S) != (3, 3) or layer.in_hw is None or min(layer.in_hw) < 32:
        return False
    # backward-weight sums its products over the batch: fft pays off on many pixels only
    return direction != "conv2d_backward_weight" or layer.N * layer.in_hw[0] * layer.in_hw[1] >= 1 << 16


def _tensor_cores_pay(layer: Layer, direction: str) -> bool:
    """The pass's GEMM (per group) fills the tensor-core fragments: its M side (output channels, or
    input channels for backward-input) and its reduction (or, for backward-weight, the N side
    C/g*R*S) are both at least 16. Depthwise and few-channel groups stay on the FMA kernels."""
    Cg, Kg = layer.C // layer.groups, layer.K // layer.groups
    RS = layer.kernel_hw[0] * layer.kernel_hw[1]
    if direction == "conv2d_backward_input":
        return Cg >= 16 and Kg * RS >= 16
    return Kg >= 16 and Cg * RS >= 16


def _winograd_wins(layer: Layer, direction: str) -> bool:
    if layer.in_hw is None:
        return False
    if layer.kernel_hw != (3, 3) or layer.stride != (1, 1) or layer.dilation != (1, 1):
        return False  # cannot run (candidates() already drops it; kept here so the rule stands alone)
    Cg, Kg = layer.C // layer.groups, layer.K // layer.groups
    if direction == "conv2d_backward_weight":  # the opposite of the forward: wins with many channels only
        return Cg >= 256 and Kg >= 256 and max(layer.in_hw) <= 16
    if direction == "conv2d_backward_input" and Cg >= 192 and 64 <= Kg <= 128 and max(layer.in_hw) <= 16:
        return True  # the few-tiles path: many channels out of a 64-128-channel reduction on small maps
    return 64 <= Cg <= 128 and Kg >= 64 and min(layer.in_hw) >= 16


PHASE_MIN_CHANNELS = 128  # csrc/kernels/conv_im2col.cpp kPhaseMinChannels


def _phases_apply(layer: Layer) -> bool:
    """Whether the cpu im2col backward-input runs a strided convolution by phases (sub-pixel
    decomposition, csrc/kernels/conv_im2col.cpp phases_pay): a kernel wider than its stride and at
    least 128 input channels per group."""
    return _windows_overlap(layer) and layer.C // layer.groups >= PHASE_MIN_CHANNELS


def _windows_overlap(layer: Layer) -> bool:
    """A kernel (dilated) wider than its stride along some axis."""
    spans = [d * (k - 1) + 1 for d, k in zip(layer.dilation, layer.kernel_hw)]
    return any(span > s for span, s in zip(spans, layer.stride))


# Forward / backward-weight reductions (C*R*S, groups 1) shorter than this run on im2col with AVX-512:
# the direct kernel's 16-lane blocked copy of a 1-4 channel input is 4-16x its size (docs/ops-conv.md,
# "Small convolutions of the zoo"): stems 3->8 3x3 s2 128x128 fwd direct 3.55 / im2col 1.33 ms,
# LeNet 1->10 5x5 0.22 / 0.12; SegNet's 3->16 7x7 (147) stays direct (2.25 / 4.90).
# Backward-weight keeps the rule only for one input channel: since the blocked copy lost its
# per-column division (2026-12-06) direct wins the others (AMD EPYC Zen 4, AVX-512, 2 threads, median
# of 15, ms, direct / im2col: 3->8 3x3 s2 on 128x128 0.41 / 1.14, 3->4 0.43 / 1.06, 4->8 3x3 s2 on
# 64x64 0.14 / 0.39, 3->16 3x3 on 48x48 0.28 / 0.40, 3->16 s2 on 65x65 0.23 / 0.43, 4->11 3x3 on 48x64
# 0.45 / 0.88), and loses with one (LeNet's 1->10 5x5 on 28x28 0.28 / 0.21, 1->16 3x3 0.22 / 0.13;
# DCGAN D's 1->32 4x4 s2 0.08 / 0.11). Forward keeps it: im2col still wins there (1 thread: 3->8 s2
# 1.05 / 1.18 direct, 3->16 on 48x48 0.43 / 0.66, 1->16 on 28x28 0.07 / 0.20).
SHORT_REDUCTION = 64

# The direct kernel's few-channel tiles (csrc/kernels/conv_direct_blocks.h few_channels: vectors along
# the output row, no channel padding) take stride-1, non-depthwise passes with at most FEW_MAX_K
# output channels per group and at most FEW_MAX_C input channels per group (backward-weight: at most
# FEW_MAX_K of both; backward-input: the correlation of gy, roles swapped). The short-reduction rule
# above does not apply to them: AVX-512, 1 thread, ms, direct / im2col (docs/ops-conv.md "Few channels
# per group"): FCN's stem 3->4 3x3 p100 on 64x64 fwd 2.03 / 11.5, bwd_w 1.35 / 13.7; 4->4 262x262 fwd
# 4.85 / 16.5, bwd_w 6.5 / 24.0; 4->8 131x131 fwd 2.00 / 4.53, bwd_w 2.8 / 6.0; R2D2's 3->8 32x32 fwd
# 0.11 / 0.15, bwd_w 0.11 / 0.25.
FEW_MAX_K, FEW_MAX_C = 8, 16


def _few_channels(layer: Layer, direction: str) -> bool:
    Cg, Kg = layer.C // layer.groups, layer.K // layer.groups
    if layer.stride != (1, 1) or (Cg == 1 and layer.groups > 1):
        return False
    if direction == "conv2d_backward_input":
        Cg, Kg = Kg, Cg
    return Kg <= FEW_MAX_K and Cg <= (FEW_MAX_K if direction == "conv2d_backward_weight" else FEW_MAX_C)


# Strided backward-input with overlapping windows and at least this many residue classes
# (stride_h * stride_w) runs on im2col with every ISA. FCN's grouped bilinear upsamplings (AVX-512,
# 1 thread, ms, direct / im2col): x32 (1024 classes, 64x64 s32) 40.0 / 19.7, x16 (256, 32x32 s16)
# 15.2 / 19.1, x8 (64, 16x16 s8) 8.0 / 17.9.
MANY_RESIDUE_CLASSES = 1024


# Strided backward-input onto at most this many channels (conv_transpose2d to an image: DCGAN G's last
# layer) runs on im2col with every ISA: the direct kernel fills a 16-lane channel block per output
# pixel that holds C of them. 1 thread, thread CPU time, ms, direct / im2col, gy [16, K, H/2, W/2]
# onto [16, C, H, W] (2026-12-05, Intel Xeon): C=1 K=32 4x4 32x32 0.52 / 0.074 (AVX2 0.47 / 0.086),
# C=3 0.52 / 0.21, C=4 0.52 / 0.27 (AVX2 0.47 / 0.32), 64x64 C=4 K=16 1.18 / 0.77; C=6 1.18 / 1.10 and
# C=8 1.21 / 1.44 (64x64), and the zoo's 8-channel ones (pidnet_s, hardnet, stylegan_xl_discriminator
# 3x3 / 4x4 s2 onto 32x32) stay direct: 0.22-0.31 / 0.26-0.42.
STRIDED_FEW_GRADIENT_CHANNELS = 4


def _im2col_wins(layer: Layer, direction: str) -> bool:
    R, S = layer.kernel_hw
    if (R, S) == (1, 1):
        return True  # a plain GEMM
    if layer.in_hw is None:
        return False
    if layer.out_hw == (1, 1):
        return True  # one output pixel: im2col's whole-image case is one GEMM over the batch (HardNet's 8x8)
    if (direction == "conv2d_forward" or (direction == "conv2d_backward_weight" and layer.C == 1)) and \
            layer.groups == 1 and layer.isa == "avx512" and layer.C * R * S < SHORT_REDUCTION and \
            not _few_channels(layer, direction):
        return True  # few input channels and a small kernel (C=3 3x3 s2 stems): above
    if layer.dilation != (1, 1) and direction == "conv2d_backward_input" and layer.isa != "avx512":
        return True  # the direct kernel's dilated taps stride across gy rows (AVX2 timing; AVX-512: below)
    if layer.stride != (1, 1) and direction == "conv2d_backward_input" and layer.groups == 1 and \
            layer.C <= STRIDED_FEW_GRADIENT_CHANNELS:
        return True  # onto an image of 1-4 channels: above
    if layer.stride != (1, 1) and direction == "conv2d_backward_input" and layer.isa != "avx512" and (
            min(layer.in_hw) >= 32 or _phases_apply(layer)):
        # strided backward-input (conv_transpose2d forward) onto large images (DCGAN G2), by phases (G1);
        # with AVX-512 the direct kernel's residue-class correlation wins these (table below)
        return True
    if direction == "conv2d_backward_input" and layer.stride[0] * layer.stride[1] >= MANY_RESIDUE_CLASSES \
            and _windows_overlap(layer):
        return True  # FCN-32s' x32 upsampling: direct runs 1024 residue classes of a 2x2 sub-kernel each
    return False


def heuristic(options: Sequence[str], layer: Layer, direction: str = "conv2d_forward") -> str:
    """The algorithm for one pass (`direction`) of `layer`, from `options` only.

    Rules from per-pass timings of the lecture layers on the cpu backend, 2 threads, float32
    (bench/scripts/conv_passes.py --algos direct,im2col,fft; ms, fastest marked *):

        layer (N C K HxW RxS s d g)         forward               backward-input        backward-weight
                                            direct im2col  fft    direct im2col  fft    direct im2col  fft
        AlexNet conv3 16 256 384 13 3        32.3  31.1*  41.8    35.5  30.6*  41.9    33.9  30.2*  66.2
        AlexNet conv4 16 384 384 13 3 g2     22.1* 25.6   31.7    23.7* 25.5   33.4    24.9* 25.1   50.0
        AlexNet conv5 16 384 256 13 3 g2     15.3* 19.1   23.3    16.7* 18.6   24.8    22.1* 24.2   43.5
        HardNet 256 64 64 16 3               69.3  78.2   58.2    40.0* 50.6   52.9    38.6* 41.9   49.7
        HardNet 256 64 128 16 3 s2           22.3  20.1*   -      25.1* 26.3    -      23.9  20.4*   -
        R2D2 4 64 128 64 3 d2                16.1* 19.4    -      24.6  18.8*   -      16.6* 17.4    -
        DCGAN D 64 64 128 16 4 s2             7.2*  9.3    -       8.2* 11.4    -       8.5*  9.5    -
        PIDNet 4 64 64 64 3                   7.7  11.9    6.9*    7.7   9.1    7.1*    7.4* 11.4    9.0
        SRResNet 16 64 64 96 3              99.9  110.2  51.2*  118.5 105.5   75.6*  144.2 116.6   75.5*
        DCGAN G1 (adjoint) 64 128 256 16 4 s2 32.9* 42.6   -      37.6  31.6*p  -      32.9* 32.8    -
        DCGAN G2 (adjoint) 64 64 128 32 4 s2  31.8* 35.7   -      53.6  35.2*   -      40.5* 51.1    -

    1x1 -> im2col (a plain GEMM); fft for C, K >= 64 with kernels >= 5x5 and batch >= 16, or 3x3
    kernels on images of at least 32x32 (backward-weight: and at least 64Ki pixels in the batch), or
    7x7+ kernels with C >= 16 on maps of at least 24x32 (_fft_wide_kernel: timings beside it);
    im2col for dilated backward-input and for strided backward-input onto images of at least 32x32
    or by phases (p: a kernel wider than its stride and C/g >= 128; G1's row re-measured with the
    phases, the others predate them); direct otherwise. The table predates the direct kernel's
    transposed packing and per-thread scratch: since, direct beats im2col on AlexNet conv3 too
    (layers suite, whole layer: forward 0.95x against 0.88x torch, training 1.20x against 0.99x),
    so the old "one large GEMM per group -> im2col" rule is gone. Where the table disagrees with the rules, the gap is small
    or a kernel is being improved; the autotuner (FASTCNN_AUTOTUNE=1) measures instead.

    With AVX-512 (2026-12-04, Xeon, 2 threads, median of 5, ms; docs/ops-conv.md "Measured: per-pass
    choice") direct wins the strided backward-input the rule above gives im2col: DCGAN G1 (adjoint)
    direct 19.5 / im2col (phases) 23.2, G2 19.8 / 21.3, DCGAN D 5.4 / 6.8; so that rule applies to
    the AVX2 and generic copies only (Layer.isa).

    winograd (F(4x4,3x3)): forward and backward-input measured
    (2026-12-04, AVX-512, 2 threads, median of 7, ms, fwd / bwd_in; docs/algo-winograd.md):
        HardNet 256 64 64 16     winograd 19.9 / 19.3   direct 25.3 / 25.1   fft 21.7 / 21.7
        PIDNet 4 64 64 64        winograd  5.2 /  5.1   direct  5.5 /  5.5   fft  7.1 /  6.9
        SRResNet 16 64 64 96     winograd 46.8 / 46.1   direct 47.9 / 47.9   fft 47.6 / 47.5
        SegNet 4 64 64 90x120    winograd 14.6 / 14.7   direct 14.5 / 14.2   fft 20.0 / 20.2
        AlexNet conv3 (C 256)    winograd 22.0 / 23.2   direct 17.1 / 17.7
        AlexNet conv5 (C/g 192)  winograd 13.8 / 13.6   direct  9.4 /  9.6
    -> winograd for 3x3 stride-1 dilation-1 layers with 64 <= C/g <= 128, K/g >= 64 on maps of at
    least 16x16 (it beats or ties direct and beats fft there; with more channels per group the GEMMs
    of direct win).
    2026-12-05, fused per-thread blocks (same rule, wider margin; AVX-512, 1 thread, thread CPU time,
    median of 5, ms, forward; docs/algo-winograd.md): HardNet winograd 14.7 (before 35.6) torch 49.0,
    PIDNet 4.1 (9.6) torch 7.7, SRResNet 41.2 (86.8) torch 108, SegNet 13.1 (26.4) torch 19.5;
    AlexNet conv3 (C 256: chunked path, not changed) still loses to direct.
    Backward-weight by winograd (cpu; same machine, median of 5, ms; docs/algo-winograd.md):
        AlexNet conv3 (C 256, K 384)     winograd 14.3   direct 17.1   torch 16.5
        AlexNet conv4 (C/g 192, K/g 192) winograd 14.5   direct 13.4
        AlexNet conv5 (C/g 192, K/g 128) winograd 11.2   direct  8.9
        HardNet 256 64 64 16             winograd 21.7   direct 21.6   fft 20.5
        PIDNet / SRResNet / SegNet 64    winograd 5.5 / 50.6 / 14.8   direct 4.9 / 43.8 / 12.6
    -> winograd for backward-weight with C/g, K/g >= 256 on maps of at most 16x16 (the one layer
    measured faster); the 64-channel layers lose (two lane-gathered transforms per tile against small GEMMs).
    2026-12-05, few channels (AVX-512, 1 thread, thread CPU time, median of 5, ms, fwd / bwd_in;
    bench/scripts/zoo_conv_layers.py --algos winograd; docs/performance.md "FCN against torch
    channels_last"): FCN 4->4 262x262 winograd 10.2 / 10.0 against im2col 15.6 / direct 26.4,
    8->8 131x131 4.6 / 4.6 against direct 8.1 / 8.2, 16->16 66x66 2.1 / 2.1 against 2.9 / 2.9,
    32->32 17x17 0.46 / 0.48 against 0.55 / 0.57; PIDNet 8->8 32x32 bwd_in 0.18 against 0.42; losses
    only below 16x16 (32 8x8 0.17 against 0.14) and for 1-3 channel stems; with AVX2 it loses (4->8
    131x131 6.0 against 5.1 forward). Not taken: with winograd on those layers FCN-16s' float32
    training gradients leave the twin-parity bound (tests/models/test_zoo.py; conv1_2's bias gradient
    -110.1 against -101.4, bound 2.7: the FCN's first-layer gradients are sums of cancelling terms and
    winograd's rounding is ~10x direct's), so the rule stays 64 <= C/g.
    2026-12-06, the few-tiles path (csrc/kernels/conv_winograd.cpp forward_few_tiles: every tile in one
    GEMM, chunks over kernels and channels; AMD EPYC Zen 4, 2 threads, median of 7, ms, direct /
    winograd; docs/algo-winograd.md "Few tiles, many channels"): backward-input of PSPNet's 1024->128 on
    9x9 15.3 / 13.0, 15.4 / 13.2 (AVX2 copy 21.0 / 15.3), AlexNet conv5 (C/g 192 -> K/g 128) 12.6 / 9.2,
    11.9 / 9.7 (AVX2 16.6 / 12.4); forwards level or mixed on AVX-512 (PSPNet 15.9 / 13.3 and 16.0 /
    15.7, 1 thread 30.2 / 32.0), AlexNet conv3 (K 384) and conv4 (K/g 192) backward-input level.
    -> winograd for backward-input with C/g >= 192, 64 <= K/g <= 128 on maps of at most 16x16.
    2026-12-06, 16-32 channels per group, measured and NOT taken (AMD EPYC Zen 4, 2 threads, median
    of 5, ms, direct / winograd, AVX-512 copy then AVX2 copy; bench/scripts/zoo_conv_layers.py <nets>
    --algos direct,winograd): PIDNet-S 16->16 16x16 fwd 0.23 / 0.13, 0.31 / 0.19; SRResNet 32->128
    24x24 fwd 3.92 / 2.28, 4.78 / 3.38; SRGAN D 16->32 24x24 fwd 0.61 / 0.34; SegNet 16->16 12x16
    0.19 / 0.13 (level or lost: 3x4 maps, FCN's 33x33 / 66x66 with AVX2). With winograd on those layers
    (16 <= C/g < 64, maps 6-24) the zoo's twin parity fails: FCN-8s/16s/32s (float32 and float64)
    because half of stages.4.0's pre-activations are exactly 0 in the twin (dead, zero-padded regions)
    and winograd's are +-1e-17 there, so 3328 of 18496 ReLU masks flip; PIDNet-S float64 train by
    18 output elements beyond the generic tolerance (winograd's rounding growth). docs/algo-winograd.md.
    Inside winograd the cpu kernels pick the output tile themselves (F(4x4) or F(6x6), forward and
    backward-input; csrc/kernels/conv_winograd.h winograd_choose_tile, docs/algo-winograd.md
    "F(6x6,3x3)"): 6 for float32 64-channel layers whose outputs 6x6 tiles cover exactly (SRResNet's).

    implicit_gemm (triton: tensor-core tiles, TF32 for float32 as torch.backends.cudnn.allow_tf32 says)
    for every pass on a GPU: the first H200 run measured direct / im2col / fft at 0.01-0.18x cuDNN,
    all on FMA units (issue #15). Not timed on a GPU yet; on CPU tensors (the interpreter) the rules
    above apply and implicit_gemm is only the last resort. The cuda backend's implicit_gemm
    (conv_implicit_gemm.cu, mma.sync TF32 on 128 x 128 tiles) follows the same rule. Both only where the
    GEMM fills tensor-core fragments (_tensor_cores_pay: channels per group and reduction >= 16);
    depthwise and few-channel groups take the rules below (not timed on a GPU either)."""
    if "implicit_gemm" in options and layer.gpu and _tensor_cores_pay(layer, direction):
        return "implicit_gemm"  # tensor cores; nothing else on a GPU uses them
    if "winograd" in options and _winograd_wins(layer, direction):
        return "winograd"
    if "fft" in options and _fft_wins(layer, direction):
        return "fft"
    if "im2col" in options and _im2col_wins(layer, direction):
        return "im2col"
    for algo in ("direct", "im2col", "fft", "implicit_gemm"):
        if algo in options:
            return algo
    raise NotImplementedError("fastcnn: no convolution algorithm is registered for this backend")


# ----------------------------------------------------------------------------------------------------
# Autotuner
_state = {"enabled": None}
_lock = threading.Lock()
_memory: Dict[str, str] = {}


def autotune(enabled: bool = True) -> None:
    """Switch the convolution autotuner on or off for this process (overrides FASTCNN_AUTOTUNE)."""
    _state["enabled"] = bool(enabled)


def autotune_enabled() -> bool:
    if _state["enabled"] is not None:
        return _state["enabled"]
    return _registry.env_value("FASTCNN_AUTOTUNE") not in (None, "", "0", "false", "False")  # asked per pass


def cache_path() -> Path:
    return cache_dir() / "conv_autotune.json"


def _read_cache(path: Path) -> Dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, unreadable, corrupt or half-written by someone else
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and v in ALGOS}


def _write_cache(path: Path, entries: Dict[str, str]) -> None:
    # a read-only cache dir only costs re-tuning next run (atomic_write returns None)
    atomic_write(path, json.dumps(entries, indent=0, sort_keys=True).encode())


def cache_key(backend: str, device: torch.device, direction: str, shapes, params, dtype) -> str:
    dev = str(device)
    if device.type == "cuda":
        dev += ":" + torch.cuda.get_device_name(device)
    return "|".join([backend, dev, direction, repr([tuple(s) for s in shapes]), repr(params), str(dtype)])


def tuned(key: str, options: Sequence[str], run: Callable[[str], object], reps: int = 3) -> str:
    """The fastest of `options` for `key`: from memory, else the cache file, else timed now."""
    with _lock:
        if key in _memory and _memory[key] in options:
            return _memory[key]
        path = cache_path()
        entries = _read_cache(path)
        if entries.get(key) in options:
            _memory[key] = entries[key]
            return entries[key]
    timings = {}
    for algo in options:
        run(algo)  # warm-up (first-call compilation, buffers)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            run(algo)
            best = min(best, time.perf_counter() - t0)
        timings[algo] = best
    winner = min(timings, key=timings.get)
    with _lock:
        _memory[key] = winner
        entries = _read_cache(path)  # re-read: another process may have added entries meanwhile
        entries[key] = winner
        _write_cache(path, entries)
    return winner
