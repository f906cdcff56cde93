"""Tests of the cpu fft convolution kernels (conv2d_forward.fft, conv2d_backward_input.fft,
conv2d_backward_weight.fft) against plain torch in float64.

Tolerance: helpers.assert_close bounds the error by factor * eps * sqrt(reduction + 1) * (|ref| +
rms(ref)), with the default factor 8 sized for a direct sum. Here every result also passes through
three 2-D transforms of size T x T (input tile and kernel forward, their product inverse), each
2*log2(T) radix-2 butterfly stages deep; each stage adds about one rounding of the tile's rms
magnitude, so the error grows in proportion to log2(T). We keep the default 8 for the smallest
transform (T = 8, three stages per dimension) and scale it by the depth beyond:
factor = 8 * log2(T) / 3, i.e. 8, 10.7 and 13.3 for T = 8, 16 and 32. (Measured worst cases on
the shapes below need a factor of about 1.2.)
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from fastcnn import _C
from fastcnn.contracts import kernels
from conv_reference import conv_kernel
from helpers import assert_close, gradcheck, isa  # noqa: F401  (isa is a fixture)

FWD = kernels.conv2d_forward.fft
BWD_INPUT = kernels.conv2d_backward_input.fft
BWD_WEIGHT = kernels.conv2d_backward_weight.fft
ONE = (1, 1)


def fft_factor(tile: int) -> float:
    return 8.0 * math.log2(tile) / 3.0


def chosen_tile(N, C, K, groups, R, S, P, Q):
    """The C++ cost model's transform size for the stride-1 unpadded convolution with these sizes."""
    return _C.conv_fft.choose_tile([N, C, P + R - 1, Q + S - 1, K, R, S, P, Q, 1, 1, 0, 0, 1, 1, groups])


def reference_conv(x, w, b, pad_tb, pad_lr, groups):
    """torch conv with (top, bottom) / (left, right) padding; a negative pad crops."""
    xp = F.pad(x, (pad_lr[0], pad_lr[1], pad_tb[0], pad_tb[1]))
    return F.conv2d(xp, w, b, groups=groups)


# N, C, H, W, K, R, S, (top, bottom), (left, right), groups
CASES = [
    (2, 3, 11, 9, 4, 3, 5, (1, 1), (2, 2), 1),        # odd sizes, non-square kernel
    (1, 1, 7, 13, 1, 1, 1, (0, 0), (0, 0), 1),         # 1x1 kernel, one channel, batch 1
    (2, 4, 17, 15, 6, 5, 5, (2, 1), (0, 3), 2),        # asymmetric padding, groups 2
    (3, 6, 13, 12, 9, 7, 2, (3, 3), (0, 1), 3),        # groups 3, 7x2 kernel
    (2, 5, 9, 10, 5, 3, 3, (1, 1), (1, 1), 5),         # depthwise
    (1, 2, 25, 23, 3, 11, 11, (5, 5), (5, 5), 1),      # 11x11
    (2, 3, 6, 5, 2, 4, 2, (4, 3), (3, 2), 1),          # padding larger than the kernel's half
    (1, 2, 40, 37, 3, 2, 9, (0, 1), (4, 4), 1),        # many tiles per plane
    (1, 3, 20, 20, 2, 17, 13, (8, 8), (6, 6), 1),      # kernel beyond 16 taps: 32x32 transforms
    (2, 2, 12, 12, 4, 5, 5, (0, -2), (1, -3), 2),      # out_hw smaller than the padded input allows
]


def case_id(c):
    N, C, H, W, K, R, S, tb, lr, g = c
    return f"N{N}C{C}x{H}x{W}K{K}k{R}x{S}p{tb[0]}{tb[1]}{lr[0]}{lr[1]}g{g}"


def make(case, dtype, seed=0):
    N, C, H, W, K, R, S, tb, lr, g = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, H, W, generator=gen, dtype=torch.float64)
    w = torch.randn(K, C // g, R, S, generator=gen, dtype=torch.float64)
    b = torch.randn(K, generator=gen, dtype=torch.float64)
    P, Q = H + tb[0] + tb[1] - R + 1, W + lr[0] + lr[1] - S + 1
    return x, w, b, (P, Q)


def run_all(case, dtype, tile=None, activation=None, act_param=0.0, bias=True):
    """Forward, backward input and backward weight of the fft kernels vs torch's autograd in float64."""
    N, C, H, W, K, R, S, tb, lr, g = case
    x, w, b, (P, Q) = make(case, dtype)
    b = b if bias else None
    fwd, bwi, bww = conv_kernel("cpu", FWD), conv_kernel("cpu", BWD_INPUT), conv_kernel("cpu", BWD_WEIGHT)

    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    pre = reference_conv(xr, wr, b, tb, lr, g)
    gy = torch.randn(pre.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    pre.backward(gy)

    T_fwd = tile or chosen_tile(N, C, K, g, R, S, P, Q)
    T_bi = tile or chosen_tile(N, K, C, g, R, S, H, W)
    T_bw = tile or chosen_tile(N, C, K, g, R, S, P, Q)
    pad = (tb[0], lr[0])
    y = fwd(x.to(dtype), w.to(dtype), None if b is None else b.to(dtype), ONE, pad, ONE, g, (P, Q), activation,
            act_param, tile=tile)
    expected = pre.detach()
    if activation is not None:
        expected = ACTIVATIONS[activation](expected, act_param)
    assert y.dtype == dtype
    assert_close(y, expected, reduction=C // g * R * S, factor=fft_factor(T_fwd), name="y")

    gx = bwi(gy.to(dtype), w.to(dtype), (H, W), ONE, pad, ONE, g, tile=tile)
    assert_close(gx, xr.grad, reduction=K // g * R * S, factor=fft_factor(T_bi), name="grad_input")
    gw = bww(x.to(dtype), gy.to(dtype), (R, S), ONE, pad, ONE, g, tile=tile)
    assert_close(gw, wr.grad, reduction=N * P * Q, factor=fft_factor(T_bw), name="grad_weight")


ACTIVATIONS = {
    "relu": lambda t, p: F.relu(t),
    "leaky_relu": lambda t, p: F.leaky_relu(t, p),
    "elu": lambda t, p: F.elu(t, p),
    "sigmoid": lambda t, p: torch.sigmoid(t),
    "tanh": lambda t, p: torch.tanh(t),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch(case, dtype):
    run_all(case, dtype)


@pytest.mark.parametrize("tile", [8, 16, 32])
def test_every_transform_size(tile):
    # The same odd problem through each transform size (the cost model alone would pick one).
    run_all((2, 3, 19, 14, 4, 5, 3, (2, 1), (1, 2), 1), torch.float32, tile=tile)
    run_all((1, 4, 9, 11, 2, 3, 6, (0, 3), (2, 0), 2), torch.float64, tile=tile)


def test_cost_model_covers_every_size():
    # Guards the test above and the CASES against a cost model that never picks some size.
    picks = {chosen_tile(*args) for args in [(16, 64, 64, 1, 3, 3, 8, 8), (16, 64, 128, 1, 5, 5, 32, 32),
                                             (16, 3, 64, 1, 9, 9, 96, 96)]}
    assert picks == {8, 16, 32}


@pytest.mark.parametrize("activation,param", [("relu", 0.0), ("leaky_relu", 0.1), ("elu", 0.7), ("sigmoid", 0.0),
                                              ("tanh", 0.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_fused_activation(activation, param, dtype):
    run_all((2, 3, 10, 9, 5, 3, 3, (1, 1), (1, 1), 1), dtype, activation=activation, act_param=param)


def test_without_bias():
    run_all(CASES[2], torch.float32, bias=False)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[6]], ids=case_id)
def test_each_isa_copy(isa, case):  # noqa: F811  (isa: fixture switching the compiled copy)
    run_all(case, torch.float32)
    run_all(case, torch.float64)


def test_gradcheck_float64():
    fwd, bwi, bww = conv_kernel("cpu", FWD), conv_kernel("cpu", BWD_INPUT), conv_kernel("cpu", BWD_WEIGHT)
    pad, g = (2, 0), 2

    class Conv(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            P, Q = x.shape[2] + 2 * pad[0] - w.shape[2] + 1, x.shape[3] + 2 * pad[1] - w.shape[3] + 1
            return fwd(x, w, None, ONE, pad, ONE, g, (P, Q), None, 0.0)

        @staticmethod
        def backward(ctx, gy):
            x, w = ctx.saved_tensors
            gy = gy.contiguous()
            return (bwi(gy, w, tuple(x.shape[2:]), ONE, pad, ONE, g),
                    bww(x, gy, tuple(w.shape[2:]), ONE, pad, ONE, g))

    x = torch.randn(2, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    gradcheck(Conv.apply, (x, w))


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_random_shapes(data):
    g = data.draw(st.integers(1, 3), "groups")
    N = data.draw(st.integers(1, 3), "N")
    C = g * data.draw(st.integers(1, 3), "C/g")
    K = g * data.draw(st.integers(1, 3), "K/g")
    R, S = data.draw(st.integers(1, 9), "R"), data.draw(st.integers(1, 9), "S")
    H, W = data.draw(st.integers(1, 20), "H"), data.draw(st.integers(1, 20), "W")
    tb = (data.draw(st.integers(0, R), "top"), data.draw(st.integers(0, R), "bottom"))
    lr = (data.draw(st.integers(0, S), "left"), data.draw(st.integers(0, S), "right"))
    if H + tb[0] + tb[1] < R or W + lr[0] + lr[1] < S:
        tb = (tb[0], tb[1] + R)  # make the padded input at least the kernel's size
        lr = (lr[0], lr[1] + S)
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), "dtype")
    run_all((N, C, H, W, K, R, S, tb, lr, g), dtype)


@pytest.mark.parametrize("name", [FWD, BWD_INPUT, BWD_WEIGHT], ids=lambda slot: slot.name)
@pytest.mark.parametrize("bad", ["stride", "dilation"])
def test_rejects_stride_and_dilation(name, bad):
    x, w = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3)
    gy = torch.randn(1, 3, 6, 6)
    stride, dilation = ((2, 1), ONE) if bad == "stride" else (ONE, (1, 2))
    fn = conv_kernel("cpu", name)
    with pytest.raises(ValueError, match=bad):
        if name == FWD:
            fn(x, w, None, stride, (0, 0), dilation, 1, (6, 6), None, 0.0)
        elif name == BWD_INPUT:
            fn(gy, w, (8, 8), stride, (0, 0), dilation, 1)
        else:
            fn(x, gy, (3, 3), stride, (0, 0), dilation, 1)


def test_rejects_kernel_larger_than_largest_transform():
    x, w = torch.randn(1, 1, 40, 40), torch.randn(1, 1, 33, 3)
    with pytest.raises(ValueError, match="weight"):
        conv_kernel("cpu", FWD)(x, w, None, ONE, (0, 0), ONE, 1, (8, 38), None, 0.0)
    with pytest.raises(ValueError, match="weight"):
        conv_kernel("cpu", BWD_WEIGHT)(x, torch.randn(1, 1, 8, 38), (33, 3), ONE, (0, 0), ONE, 1)


def test_rejects_bad_tile_and_activation():
    x, w = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 9, 3)
    with pytest.raises(ValueError, match="tile"):
        conv_kernel("cpu", FWD)(x, w, None, ONE, (4, 1), ONE, 1, (8, 8), None, 0.0, tile=12)
    with pytest.raises(ValueError, match="weight"):  # a 9x3 kernel does not fit 8x8 transforms
        conv_kernel("cpu", FWD)(x, w, None, ONE, (4, 1), ONE, 1, (8, 8), None, 0.0, tile=8)
    with pytest.raises(ValueError, match="activation"):
        conv_kernel("cpu", FWD)(x, w, None, ONE, (4, 1), ONE, 1, (8, 8), "gelu", 0.0)


def test_binding_takes_the_shape_record_and_guards_it():
    """The C++ entry takes the ConvShape list itself and rejects what it cannot run, even when called
    directly (a wrong record would otherwise read out of bounds)."""
    from fastcnn.backends.cpu._lib import addr, dtype_code
    from fastcnn.contracts.conv import ConvShape

    x, w, y = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3), torch.empty(1, 3, 3, 3)
    strided = ConvShape.of(x.shape, w.shape, (2, 2), (0, 0), ONE, 1, (3, 3))
    with pytest.raises(ValueError, match="stride 1"):
        _C.conv_fft.forward(dtype_code(x), list(strided), addr(x), addr(w), 0, addr(y), 0, 0.0, 0)
    with pytest.raises(ValueError, match="16 sizes"):
        _C.conv_fft.forward(dtype_code(x), list(strided)[:15], addr(x), addr(w), 0, addr(y), 0, 0.0, 0)


@pytest.mark.parametrize("padding,dilation,groups", [((0, 0), ONE, 1), ((2, 1), (2, 1), 2), ((1, 0), ONE, 3)])
def test_input_gradient_correlation_is_the_adjoint(padding, dilation, groups):
    """ConvShape.input_gradient_correlation (the record the fft / winograd input gradients run): the
    correlation of gy with the flipped, channel-transposed kernel over that record is the input gradient."""
    from fastcnn.contracts.conv import ConvShape

    x = torch.randn(2, 6, 9, 8, dtype=torch.float64)
    w = torch.randn(3 * groups, 6 // groups, 3, 2, dtype=torch.float64, requires_grad=True)
    x.requires_grad_(True)
    y = F.conv2d(x, w, None, 1, padding, dilation, groups)
    gy = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, gy)
    shape = ConvShape.of(x.shape, w.shape, ONE, padding, dilation, groups, y.shape[-2:])
    c = shape.input_gradient_correlation()
    assert c.x_shape == tuple(gy.shape) and c.y_shape == tuple(x.shape) and c.stride == ONE
    K, Cg, R, S = w.shape
    w_t = w.detach().view(groups, K // groups, Cg, R, S).transpose(1, 2).reshape(c.w_shape).flip(-1, -2).contiguous()
    got = conv_kernel("cpu", kernels.conv2d_forward.direct)(gy, w_t, None, c.stride, c.padding, c.dilation, c.G, c.out_hw)
    assert_close(got, gx, reduction=c.Cg * R * S)
