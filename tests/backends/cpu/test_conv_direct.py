"""The direct convolution's cpu kernels (conv2d_forward/backward_input/backward_weight.direct)
against plain torch in float64, on deliberately odd shapes, under every compiled ISA copy."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from conv_reference import conv_kernel
from helpers import assert_close, gradcheck, isa, rms  # noqa: F401  (isa is a fixture)
from conv_reference import TORCH_ACTIVATIONS
from fastcnn.contracts import kernels

FWD = kernels.conv2d_forward.direct
BWD_IN = kernels.conv2d_backward_input.direct
BWD_W = kernels.conv2d_backward_weight.direct


def k(slot):
    return conv_kernel("cpu", slot)


def reference_conv(x, w, bias, stride, padding, dilation, groups, out_hw):
    """Convolution with top/left padding `padding` and the bottom/right padding implied by out_hw."""
    (sh, sw), (ph, pw), (dh, dw), (P, Q) = stride, padding, dilation, out_hw
    R, S = w.shape[2:]
    need_h, need_w = (P - 1) * sh + (R - 1) * dh + 1, (Q - 1) * sw + (S - 1) * dw + 1
    xp = F.pad(x, (pw, max(0, need_w - x.shape[3] - pw), ph, max(0, need_h - x.shape[2] - ph)))
    return F.conv2d(xp, w, bias, stride, 0, dilation, groups)[:, :, :P, :Q]


class Case:
    def __init__(self, N, C, H, W, K, R, S, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, out_hw=None):
        self.N, self.C, self.H, self.W, self.K, self.R, self.S = N, C, H, W, K, R, S
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        if out_hw is None:  # symmetric padding, as torch
            out_hw = tuple((size + 2 * p - d * (r - 1) - 1) // s + 1
                           for size, p, d, r, s in zip((H, W), padding, dilation, (R, S), stride))
        self.out_hw = out_hw

    def tensors(self, dtype, bias=True):
        g = torch.Generator().manual_seed(hash(repr(self.__dict__)) % 2**31)
        x = torch.randn(self.N, self.C, self.H, self.W, generator=g, dtype=torch.float64).to(dtype)
        w = torch.randn(self.K, self.C // self.groups, self.R, self.S, generator=g, dtype=torch.float64).to(dtype)
        b = torch.randn(self.K, generator=g, dtype=torch.float64).to(dtype) if bias else None
        gy = torch.randn(self.N, self.K, *self.out_hw, generator=g, dtype=torch.float64).to(dtype)
        return x, w, b, gy

    def conv_args(self):
        return self.stride, self.padding, self.dilation, self.groups

    def __repr__(self):
        return (f"N{self.N}C{self.C}H{self.H}W{self.W}K{self.K}R{self.R}S{self.S}s{self.stride}p{self.padding}"
                f"d{self.dilation}g{self.groups}o{self.out_hw}")


CASES = [
    Case(2, 3, 7, 9, 5, 3, 3, padding=(1, 1)),                                   # first layer, C = 3
    Case(1, 1, 11, 8, 4, 5, 5, padding=(2, 2)),                                  # one input channel, batch 1
    Case(2, 32, 9, 11, 20, 3, 2, stride=(2, 3), padding=(1, 0), dilation=(1, 2)),  # K not a multiple of 16
    Case(2, 17, 10, 9, 33, 1, 1),                                                # 1x1, C and K odd
    Case(1, 6, 9, 11, 9, 3, 3, stride=(2, 1), padding=(2, 1), groups=3),         # groups 3, pad > half
    Case(2, 40, 8, 8, 24, 3, 3, padding=(1, 1), groups=2),                       # groups 2, partial blocks
    Case(2, 8, 9, 11, 16, 3, 3, stride=(1, 2), padding=(1, 1), dilation=(2, 1), groups=8),  # depthwise x2
    Case(2, 20, 9, 11, 20, 5, 3, stride=(3, 2), padding=(2, 1), groups=20),      # depthwise, 2 blocks
    Case(1, 3, 23, 21, 7, 11, 11, stride=(4, 4), padding=(2, 3)),                # AlexNet conv1 style
    Case(2, 5, 13, 11, 7, 3, 3, padding=(3, 3), dilation=(3, 3)),                # dilation 3
    Case(1, 4, 12, 10, 6, 4, 4, padding=(1, 2), out_hw=(12, 10)),                # 'same' with an even kernel
    Case(2, 18, 9, 7, 19, 3, 5, stride=(2, 2), padding=(0, 2), out_hw=(3, 4)),   # cropped bottom/right
    Case(1, 16, 5, 6, 16, 2, 7, padding=(1, 3), out_hw=(6, 8)),                  # out_hw beyond the input
    Case(2, 6, 30, 3, 5, 1, 3, stride=(1, 1), padding=(0, 1)),                   # narrow image
    # Rows of 8+ pixels: the blocked copies go through 8 x 8 register transposes plus a tail.
    Case(3, 70, 6, 21, 67, 3, 3, padding=(1, 1)),                                # 9 input blocks, partial last
    Case(2, 36, 5, 19, 20, 3, 3, padding=(2, 1), groups=2, out_hw=(6, 17)),     # groups, cropped right
    Case(2, 24, 4, 17, 48, 3, 3, padding=(1, 1), groups=24),                     # depthwise x2: lane stride 2
    # DCGAN-style k4 s2 p1 with full input blocks: the AVX-512 tiles that take two lanes (two gy
    # pixels for the weight gradient) per iteration; 3 output blocks, then 2 + 2 with a partial one.
    Case(2, 32, 10, 13, 48, 4, 4, stride=(2, 2), padding=(1, 1)),
    Case(1, 35, 11, 9, 50, 4, 4, stride=(2, 2), padding=(1, 1)),
    # Row-by-row tiles (one base pointer per tile): 53-pixel rows of one output block -> tiles of
    # 18/18/17 pixels (more than GCC unrolls by default), 30 -> 15 + 15; 5-pixel rows are joined
    # into the band's tiles (pixel pointers gathered across rows).
    Case(2, 16, 6, 53, 16, 7, 7, padding=(3, 3)),
    Case(1, 19, 5, 30, 13, 5, 5, padding=(2, 2)),
    Case(2, 16, 9, 5, 16, 3, 3, padding=(1, 1)),
    # Weight gradient of blocks with few input lanes: several taps per tile (C = 1, 2, 3; the
    # 4-lane last block of C = 20), strided phases and dilated taps, 1-3 output blocks.
    Case(2, 3, 9, 21, 16, 7, 7, padding=(3, 3)),
    Case(1, 1, 12, 13, 10, 5, 5),
    Case(2, 2, 8, 11, 48, 3, 3, padding=(1, 1)),
    Case(2, 20, 7, 9, 24, 3, 3, padding=(0, 2)),
    Case(2, 3, 17, 15, 8, 3, 3, stride=(2, 2), padding=(1, 1)),
    Case(1, 3, 11, 12, 5, 3, 3, padding=(2, 2), dilation=(2, 2)),
    # Kernels >= 7 wide (stride and dilation 1 along the row; AVX-512): a kernel row's taps per tile
    # (up to 7: 9 = 5 + 4). Weight gradient: two input lanes at a time (odd blocks end on one), gy
    # pixels in groups of 8 (rows of 23 / 13 leave a remainder), output blocks one at a time; on
    # every ISA a unit's rows in L1-sized slices (20 rows of 40 pixels: several slices). Forward /
    # stride-1 backward-input of one output block: row tiles of 8-16 pixels (rows of 9 / 12 / 23 /
    # 40), partial input blocks (21 = 16 + 5, 12 per group), a reduction in chunks (64 channels).
    Case(1, 21, 6, 23, 20, 3, 9, padding=(1, 4)),
    Case(1, 21, 6, 23, 12, 3, 9, padding=(1, 4)),
    Case(2, 9, 13, 13, 14, 3, 7, stride=(2, 1), padding=(1, 3), dilation=(2, 1)),
    Case(2, 24, 7, 12, 10, 3, 7, padding=(1, 3), groups=2),
    Case(2, 16, 20, 40, 16, 7, 7, padding=(3, 3)),
    Case(1, 64, 5, 9, 16, 7, 7, padding=(3, 3)),
]

# Few channels per group (stride 1, K/g <= 8 and C/g <= 16 for the forward, C/g <= 8 and K/g <= 16 for
# backward-input, both <= 8 for backward-weight; csrc/kernels/conv_direct_few.cpp): vectors along
# the output row. Rows not a multiple of the vector (16 / 8 / 4 floats, 8 / 4 / 2 doubles) leave a
# tail; rows of more than 6 vectors take several tiles; outputs whose taps all read padding (FCN's
# pad 100) get the bias alone; K/g of 5-8 take one tile of all channels.
FEW_CASES = [
    Case(2, 4, 19, 37, 4, 3, 3, padding=(1, 1)),                                # FCN's 4->4, odd rows
    Case(1, 3, 6, 5, 4, 3, 3, padding=(9, 11)),                                 # FCN stem: pad >> image
    Case(2, 8, 7, 131, 8, 3, 3, padding=(1, 1)),                                # 8->8: 9 tiles of a row
    Case(1, 1, 9, 23, 5, 5, 5, padding=(2, 2)),                                 # LeNet-like, C = 1
    Case(2, 5, 8, 17, 3, 3, 3, padding=(0, 2), dilation=(2, 1)),                # dilated rows, K = 3
    Case(1, 6, 9, 21, 4, 3, 5, padding=(2, 0), groups=2),                       # groups, 3 in, 2 out each
    Case(2, 16, 5, 33, 1, 3, 3, padding=(1, 1)),                                # 16->1: the widest forward
    Case(1, 3, 5, 50, 8, 1, 7, padding=(0, 3), dilation=(1, 2), out_hw=(6, 47)),  # 1x7 dilated, cropped
    Case(2, 4, 6, 9, 2, 2, 4, padding=(1, 2), out_hw=(7, 12)),                  # output beyond the input
    Case(1, 2, 11, 1, 2, 3, 1, padding=(1, 0)),                                 # one column
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", FEW_CASES, ids=repr)
def test_few_channels(case, dtype, isa):
    x, w, b, gy = case.tensors(dtype)
    y = k(FWD)(x, w, b, *case.conv_args(), case.out_hw, "leaky_relu", 0.1)
    expected = F.leaky_relu(reference_conv(x.double(), w.double(), b.double(), *case.conv_args(), case.out_hw), 0.1)
    assert_close(y, expected, reduction=case.C // case.groups * case.R * case.S, name="y")
    gx_ref, gw_ref = reference_grads(case, x, w, gy)
    gx = k(BWD_IN)(gy, w, (case.H, case.W), *case.conv_args())
    assert_close(gx, gx_ref, reduction=case.K // case.groups * case.R * case.S, name="grad_input")
    gw = k(BWD_W)(x, gy, (case.R, case.S), *case.conv_args())
    assert_close(gw, gw_ref, reduction=case.N * case.out_hw[0] * case.out_hw[1], name="grad_weight")


def test_few_channels_ignore_columns_beyond_the_output(isa):
    # Cropped output (Q = 10 of 28): the last vector's spare lanes read x columns no output uses; an
    # inf there must not reach y or the weight gradient (0 * inf).
    case = Case(2, 3, 5, 30, 4, 3, 3, out_hw=(3, 10))
    x, w, b, gy = case.tensors(torch.float32)
    x[..., 12:] = float("inf")
    y = k(FWD)(x, w, b, *case.conv_args(), case.out_hw, None, 0.0)
    expected = reference_conv(x[..., :12].double(), w.double(), b.double(), *case.conv_args(), case.out_hw)
    assert_close(y, expected, reduction=27, name="y")
    _, gw_ref = reference_grads(case, x[..., :12], w, gy)
    assert_close(k(BWD_W)(x, gy, (3, 3), *case.conv_args()), gw_ref, reduction=2 * 30, name="grad_weight")


def reference_grads(case, x, w, gy):
    """gx, gw from autograd through reference_conv in float64."""
    xd = x.detach().double().requires_grad_()
    wd = w.detach().double().requires_grad_()
    y = reference_conv(xd, wd, None, *case.conv_args(), case.out_hw)
    return torch.autograd.grad(y, (xd, wd), gy.double())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_forward_backward(case, dtype, isa):
    check_forward_backward(case, dtype)


def check_forward_backward(case, dtype):
    """The three passes of `case` against autograd through reference_conv in float64."""
    x, w, b, gy = case.tensors(dtype)
    red = case.C // case.groups * case.R * case.S
    y = k(FWD)(x, w, b, *case.conv_args(), case.out_hw, None, 0.0)
    expected = reference_conv(x.double(), w.double(), b.double(), *case.conv_args(), case.out_hw)
    assert_close(y, expected, reduction=red, name="y")

    gx_ref, gw_ref = reference_grads(case, x, w, gy)
    gx = k(BWD_IN)(gy, w, (case.H, case.W), *case.conv_args())
    assert_close(gx, gx_ref, reduction=case.K // case.groups * case.R * case.S, name="grad_input")
    gw = k(BWD_W)(x, gy, (case.R, case.S), *case.conv_args())
    assert_close(gw, gw_ref, reduction=case.N * case.out_hw[0] * case.out_hw[1], name="grad_weight")


# Where 512-bit FMAs issue at half rate (Zen 4), the AVX-512 copy hands passes whose vectors would sit
# half empty to the AVX2 copy (conv_direct_blocks.h narrow_copy_pays). Each case takes the hand-off in
# at least one pass; with it and without, the AVX-512 copy must give the reference's results,
# whatever this CPU measured.
HAND_OFF_CASES = [
    Case(2, 8, 13, 15, 8, 4, 4, stride=(2, 2), padding=(1, 1)),  # StyleGAN-XL D's 8->8 4x4 s2: every pass
    Case(2, 3, 23, 21, 24, 11, 11, stride=(4, 4)),  # AlexNet's stem: the last 16-lane block holds 8 channels
    Case(1, 8, 9, 11, 16, 3, 3, stride=(2, 2), padding=(1, 1)),  # 8 input lanes forward, 8 gx lanes backward
    Case(2, 16, 7, 9, 8, 3, 3, padding=(1, 1)),  # stride 1: few-channel forward, handed-off weight gradient
    Case(1, 5, 8, 7, 3, 3, 3, padding=(1, 1)),  # a few-channel weight gradient, handed off too
    Case(1, 12, 6, 7, 12, 3, 3, padding=(1, 1), groups=12),  # depthwise: never handed off
]


@pytest.mark.parametrize("half_rate", [False, True], ids=["full_rate", "half_rate"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", HAND_OFF_CASES, ids=repr)
def test_half_rate_hand_off(case, dtype, half_rate):
    from fastcnn import _C
    if _C.best_isa() != "avx512":
        pytest.skip("the hand-off is from the AVX-512 copy")
    previous, measured = _C.isa(), _C.half_rate_zmm()
    try:
        _C.set_isa("avx512")
        _C.set_half_rate_zmm(half_rate)
        check_forward_backward(case, dtype)
    finally:
        _C.set_isa(previous)
        _C.set_half_rate_zmm(measured)


@pytest.mark.parametrize("setting", ["0", "1", None], ids=["env0", "env1", "measured"])
def test_half_rate_setting(setting):
    """FASTCNN_HALF_RATE_ZMM decides; unset, the probe does, and says False without AVX-512."""
    from fastcnn import _C
    env = {name: value for name, value in os.environ.items() if name != "FASTCNN_HALF_RATE_ZMM"}
    if setting is not None:
        env["FASTCNN_HALF_RATE_ZMM"] = setting
    out = subprocess.run([sys.executable, "-c", "from fastcnn import _C; print(_C.half_rate_zmm())"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    if setting is not None:
        assert out == str(setting == "1")
    else:
        assert out in ("True", "False") and (out == "False" or _C.best_isa() == "avx512")


# Dilated layers with wide padding: the row-by-row tiles leave out the kernel columns that read only
# padding (conv_direct.cpp ColumnTiles); enough channels for the blocked tiles in forward and in
# the stride-1 backward-input (K > 8, C > 16 or K > 16), rows wide enough to be tiled one by one.
# Each of the first two takes that path under every ISA and dtype, forward and backward-input.
PAD_COLUMN_CASES = [
    Case(1, 16, 20, 32, 21, 2, 2, padding=(8, 8), dilation=(16, 16)),  # R2D2's dilation-16 2x2, narrower
    Case(1, 17, 19, 29, 19, 2, 2, padding=(7, 7), dilation=(13, 13)),
    Case(2, 20, 13, 11, 21, 3, 3, padding=(4, 4), dilation=(4, 4)),
    Case(1, 18, 5, 7, 19, 3, 3, padding=(9, 9), dilation=(2, 2)),  # padding wider than the image
    Case(2, 20, 13, 35, 21, 2, 2, stride=(2, 2), padding=(6, 6), dilation=(5, 5)),
    Case(1, 37, 20, 32, 37, 2, 2, padding=(8, 8), dilation=(16, 16), groups=37),  # depthwise
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", PAD_COLUMN_CASES, ids=repr)
def test_kernel_columns_in_the_padding(case, dtype, isa):
    x, w, b, gy = case.tensors(dtype)
    y = k(FWD)(x, w, b, *case.conv_args(), case.out_hw, "leaky_relu", 0.1)
    pre = reference_conv(x.double(), w.double(), b.double(), *case.conv_args(), case.out_hw)
    assert_close(y, F.leaky_relu(pre, 0.1), reduction=case.C // case.groups * case.R * case.S, name="y")
    gx_ref, gw_ref = reference_grads(case, x, w, gy)
    gx = k(BWD_IN)(gy, w, (case.H, case.W), *case.conv_args())
    assert_close(gx, gx_ref, reduction=case.K // case.groups * case.R * case.S, name="grad_input")
    gw = k(BWD_W)(x, gy, (case.R, case.S), *case.conv_args())
    assert_close(gw, gw_ref, reduction=case.N * case.out_hw[0] * case.out_hw[1], name="grad_weight")


def test_matches_torch_grad_functions(isa):
    # The same as reference_grads, through the functions torch itself names for these gradients.
    case = Case(2, 12, 11, 10, 10, 3, 3, stride=(2, 2), padding=(1, 1), dilation=(1, 2), groups=2)
    x, w, _, gy = case.tensors(torch.float64, bias=False)
    gx = k(BWD_IN)(gy, w, (case.H, case.W), *case.conv_args())
    gw = k(BWD_W)(x, gy, (case.R, case.S), *case.conv_args())
    assert_close(gx, torch.nn.grad.conv2d_input(x.shape, w, gy, *case.conv_args()), reduction=45, name="grad_input")
    assert_close(gw, torch.nn.grad.conv2d_weight(x, w.shape, gy, *case.conv_args()), reduction=2 * 6 * 4, name="grad_weight")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("activation,param", [(None, 0.0), ("relu", 0.0), ("leaky_relu", 0.1), ("elu", 0.7),
                                              ("sigmoid", 0.0), ("tanh", 0.0)])
@pytest.mark.parametrize("case", [CASES[2], CASES[6]], ids=repr)
def test_fused_activation(case, activation, param, dtype, isa):
    x, w, b, _ = case.tensors(dtype)
    y = k(FWD)(x, w, b, *case.conv_args(), case.out_hw, activation, param)
    pre = reference_conv(x.double(), w.double(), b.double(), *case.conv_args(), case.out_hw)
    expected = TORCH_ACTIVATIONS[activation](pre, param)
    assert_close(y, expected, reduction=case.C // case.groups * case.R * case.S, name=f"y ({activation})")


def test_no_bias_and_large_blocks(isa):
    # Several full channel blocks in and out (the AVX-512 fast path) and no bias.
    case = Case(2, 48, 7, 9, 40, 3, 3, padding=(1, 1))
    x, w, _, _ = case.tensors(torch.float32, bias=False)
    y = k(FWD)(x, w, None, *case.conv_args(), case.out_hw, None, 0.0)
    expected = reference_conv(x.double(), w.double(), None, *case.conv_args(), case.out_hw)
    assert_close(y, expected, reduction=48 * 9)


def test_scratch_reuse_across_shapes(isa):
    # The blocked copies live in per-thread scratch buffers kept between calls: a call after a larger
    # one (stale data in the buffer) and after a smaller one (the buffer grows) must both be exact.
    cases = [Case(2, 40, 12, 20, 24, 3, 3, padding=(1, 1)), Case(1, 9, 5, 9, 8, 3, 3, padding=(2, 0)),
             Case(2, 40, 12, 20, 24, 3, 3, padding=(1, 1))]
    for case in cases:
        x, w, b, gy = case.tensors(torch.float32)
        y = k(FWD)(x, w, b, *case.conv_args(), case.out_hw, None, 0.0)
        expected = reference_conv(x.double(), w.double(), b.double(), *case.conv_args(), case.out_hw)
        assert_close(y, expected, reduction=case.C * 9, name=f"y {case}")
        gx_ref, gw_ref = reference_grads(case, x, w, gy)
        assert_close(k(BWD_IN)(gy, w, (case.H, case.W), *case.conv_args()), gx_ref, reduction=case.K * 9, name="grad_input")
        assert_close(k(BWD_W)(x, gy, (case.R, case.S), *case.conv_args()), gw_ref,
                     reduction=case.N * case.out_hw[0] * case.out_hw[1], name="grad_weight")


def test_tasks_shared_between_threads(isa):
    # Large enough for several images per thread: the forward and stride-1 backward-input hand
    # images out to the threads one at a time from a shared counter; every output must be written once.
    case = Case(7, 40, 15, 15, 36, 3, 3, padding=(1, 1))
    x, w, b, gy = case.tensors(torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        y = k(FWD)(x, w, b, *case.conv_args(), case.out_hw, "relu", 0.0)
        gx = k(BWD_IN)(gy, w, (case.H, case.W), *case.conv_args())
    finally:
        torch.set_num_threads(threads)
    expected = torch.relu(reference_conv(x.double(), w.double(), b.double(), *case.conv_args(), case.out_hw))
    assert_close(y, expected, reduction=case.C * 9, name="y")
    gx_ref, _ = reference_grads(case, x, w, gy)
    assert_close(gx, gx_ref, reduction=case.K * 9, name="grad_input")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("threads", [1, 2])
def test_tasks_of_several_images(threads, dtype, isa):
    # Deep layers on small maps (pspnet's 1024->128 3x3 on 9x9): weights beyond the L2 budget and a
    # whole image per row block, so a task takes several images and runs each output-block group
    # (and, AVX-512 float, each chunk of 4 of the 38 input blocks, the last of 2 with 8 lanes) over
    # all of them before the next. 11 images on 1 thread: groups of 3, 3, 3, 2; 19 on 2: 2 ... 2, 1.
    # C = 600 and K = 40 leave partial blocks in both passes.
    case = Case(11 if threads == 1 else 19, 600, 5, 6, 40, 3, 3, padding=(1, 1))
    x, w, b, gy = case.tensors(dtype)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        y = k(FWD)(x, w, b, *case.conv_args(), case.out_hw, None, 0.0)
        gx = k(BWD_IN)(gy, w, (case.H, case.W), *case.conv_args())
        gw = k(BWD_W)(x, gy, (case.R, case.S), *case.conv_args())
    finally:
        torch.set_num_threads(saved)
    expected = reference_conv(x.double(), w.double(), b.double(), *case.conv_args(), case.out_hw)
    assert_close(y, expected, reduction=case.C * 9, name="y")
    gx_ref, gw_ref = reference_grads(case, x, w, gy)
    assert_close(gx, gx_ref, reduction=case.K * 9, name="grad_input")
    assert_close(gw, gw_ref, reduction=case.N * case.out_hw[0] * case.out_hw[1], name="grad_weight")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", [
    Case(4, 260, 8, 7, 20, 3, 3, padding=(1, 1)),  # 260 channels: a partial last input block on every ISA
    Case(3, 2 * 200, 9, 9, 2 * 12, 3, 3, padding=(4, 4), dilation=(4, 4), groups=2),  # pspnet's d4, grouped
    Case(5, 200, 9, 8, 16, 3, 3, stride=(2, 2), padding=(1, 1)),
], ids=repr)
def test_weight_gradient_split_over_input_blocks(case, dtype, isa):
    # Many input blocks (>= 4 per thread, here up to 3 threads, on every ISA): the threads split the
    # input blocks, each filling its part of one gradient over all images, so every element is summed
    # in the same order whatever the thread count (one thread runs the same order unsplit): the
    # results are identical, and match the reference. (Split over images, 2 and 3 threads differ.)
    x, w, _, gy = case.tensors(dtype)
    saved = torch.get_num_threads()
    grads = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            grads.append(k(BWD_W)(x, gy, (case.R, case.S), *case.conv_args()))
    finally:
        torch.set_num_threads(saved)
    _, gw_ref = reference_grads(case, x, w, gy)
    assert_close(grads[0], gw_ref, reduction=case.N * case.out_hw[0] * case.out_hw[1], name="grad_weight")
    assert torch.equal(grads[1], grads[0]) and torch.equal(grads[2], grads[0])


class _DirectConv(torch.autograd.Function):
    """The three kernels as one autograd function, so gradcheck ties the backward to the forward."""

    @staticmethod
    def forward(ctx, x, w, case):
        ctx.save_for_backward(x, w)
        ctx.case = case
        return k(FWD)(x, w, None, *case.conv_args(), case.out_hw, None, 0.0)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        c = ctx.case
        gy = gy.contiguous()
        return (k(BWD_IN)(gy, w, (c.H, c.W), *c.conv_args()), k(BWD_W)(x, gy, (c.R, c.S), *c.conv_args()), None)


GRADCHECK_CASES = [  # tiny: gradcheck runs the forward twice per input element
    Case(1, 3, 5, 4, 2, 2, 3, stride=(2, 1), padding=(1, 1)),
    Case(1, 2, 5, 5, 4, 3, 3, stride=(2, 2), padding=(1, 1), groups=2),
    Case(1, 4, 5, 4, 4, 2, 2, padding=(0, 1), dilation=(2, 1), groups=2, out_hw=(3, 4)),
    Case(1, 5, 4, 9, 3, 2, 7, padding=(0, 3)),  # the row tiles of every pass (7 wide, 5 lanes, 9 pixels)
    Case(1, 3, 4, 19, 4, 3, 3, padding=(1, 1), groups=1),  # few channels: vectors along the row, a tail
]


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=repr)
def test_gradcheck(case):
    x, w, _, _ = case.tensors(torch.float64, bias=False)
    x.requires_grad_()
    w.requires_grad_()
    gradcheck(lambda a, b: _DirectConv.apply(a, b, case), (x, w))


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_configurations(data):
    groups = data.draw(st.sampled_from([1, 1, 2, 3, "dw"]), label="groups")
    cg = data.draw(st.integers(1, 20), label="C/g")
    if groups == "dw":
        groups = data.draw(st.integers(2, 20), label="channels")
        cg = 1
    kg = data.draw(st.integers(1, 20), label="K/g")
    R, S = data.draw(st.integers(1, 5), label="R"), data.draw(st.integers(1, 5), label="S")
    sh, sw = data.draw(st.integers(1, 3), label="sh"), data.draw(st.integers(1, 3), label="sw")
    dh, dw = data.draw(st.integers(1, 3), label="dh"), data.draw(st.integers(1, 3), label="dw")
    ph, pw = data.draw(st.integers(0, 3), label="ph"), data.draw(st.integers(0, 3), label="pw")
    H = data.draw(st.integers(max(1, (R - 1) * dh + 1 - 2 * ph), 14), label="H")
    W = data.draw(st.integers(max(1, (S - 1) * dw + 1 - 2 * pw), 14), label="W")
    P0 = (H + 2 * ph - dh * (R - 1) - 1) // sh + 1
    Q0 = (W + 2 * pw - dw * (S - 1) - 1) // sw + 1
    P = data.draw(st.integers(max(1, P0 - 1), P0 + 1), label="P")
    Q = data.draw(st.integers(max(1, Q0 - 1), Q0 + 1), label="Q")
    N = data.draw(st.integers(1, 3), label="N")
    case = Case(N, cg * groups, H, W, kg * groups, R, S, (sh, sw), (ph, pw), (dh, dw), groups, (P, Q))
    x, w, b, gy = case.tensors(torch.float32)
    y = k(FWD)(x, w, b, *case.conv_args(), case.out_hw, "relu", 0.0)
    expected = torch.relu(reference_conv(x.double(), w.double(), b.double(), *case.conv_args(), case.out_hw))
    # Each result is a sum that may cancel (hypothesis found x*w + b = 0.0101 from terms near 1): its
    # rounding error follows the terms' magnitudes, the same sums over absolute values.
    magnitude = reference_conv(x.double().abs(), w.double().abs(), b.double().abs(), *case.conv_args(), case.out_hw)
    assert_close(y, expected, reduction=cg * R * S, scale=rms(magnitude), name="y")
    gx_ref, gw_ref = reference_grads(case, x, w, gy)
    gx_mag, gw_mag = reference_grads(case, x.abs(), w.abs(), gy.abs())
    assert_close(k(BWD_IN)(gy, w, (H, W), *case.conv_args()), gx_ref, reduction=kg * R * S, scale=rms(gx_mag),
                 name="grad_input")
    assert_close(k(BWD_W)(x, gy, (R, S), *case.conv_args()), gw_ref, reduction=N * P * Q, scale=rms(gw_mag),
                 name="grad_weight")


def test_rejects_bad_arguments():
    x = torch.randn(1, 4, 6, 6)
    w = torch.randn(8, 4, 3, 3)
    args = ((1, 1), (1, 1), (1, 1), 1, (6, 6))
    with pytest.raises(ValueError, match="activation"):
        k(FWD)(x, w, None, *args, "gelu", 0.0)
    with pytest.raises(ValueError, match="input"):
        k(FWD)(x.transpose(2, 3), w, None, *args, None, 0.0)
    with pytest.raises(ValueError, match="weight"):
        k(FWD)(x, w.double(), None, *args, None, 0.0)
    with pytest.raises(ValueError, match="weight"):
        k(FWD)(x, torch.randn(8, 3, 3, 3), None, *args, None, 0.0)
    with pytest.raises(ValueError, match="groups"):
        k(FWD)(x, torch.randn(6, 1, 3, 3), None, (1, 1), (1, 1), (1, 1), 4, (6, 6), None, 0.0)
    with pytest.raises(ValueError, match="bias"):
        k(FWD)(x, w, torch.randn(7), *args, None, 0.0)
    with pytest.raises(ValueError, match="grad_output"):
        k(BWD_IN)(torch.randn(1, 7, 6, 6), w, (6, 6), (1, 1), (1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match="grad_output"):
        k(BWD_W)(x, torch.randn(2, 8, 6, 6), (3, 3), (1, 1), (1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match="stride"):
        k(FWD)(x, w, None, (0, 1), (1, 1), (1, 1), 1, (6, 6), None, 0.0)


def test_empty_batch():
    x = torch.randn(0, 4, 6, 6)
    w = torch.randn(8, 4, 3, 3)
    y = k(FWD)(x, w, None, (1, 1), (1, 1), (1, 1), 1, (6, 6), None, 0.0)
    assert y.shape == (0, 8, 6, 6)
    gw = k(BWD_W)(x, torch.randn(0, 8, 6, 6), (3, 3), (1, 1), (1, 1), (1, 1), 1)
    assert torch.equal(gw, torch.zeros(8, 4, 3, 3))


def test_auto_heuristic_takes_fft_for_3x3_on_large_images_only():
    from fastcnn.ops import _conv_algo

    def pick(options, N, C, K, in_hw=None):
        return _conv_algo.heuristic(options, _conv_algo.Layer(N, C, K, (3, 3), in_hw))
    every = ["direct", "im2col", "fft"]
    assert pick(every, 4, 64, 64, in_hw=(64, 64)) == "fft"
    assert pick(every, 256, 64, 64, in_hw=(16, 16)) == "direct"
    assert pick(every, 4, 64, 64) == "direct"  # no image size: no guess
    assert pick(every, 4, 32, 64, in_hw=(64, 64)) == "direct"  # too few channels
    assert pick(["direct", "im2col"], 4, 64, 64, in_hw=(64, 64)) == "direct"