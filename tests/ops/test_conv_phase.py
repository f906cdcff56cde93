"""The cpu im2col backward-input of strided convolutions by phases (sub-pixel decomposition,
csrc/kernels/conv_im2col.cpp backward_input_phases): conv2d's input gradient and conv_transpose2d's
forward, against float64 torch. The phase path runs for a kernel wider than its stride and at least
PHASE_MIN_CHANNELS (128) gx channels per group (phases_pay), so every shape here has that many."""
import pytest
import torch
import torch.nn.functional as F

from fastcnn import ops
from fastcnn.contracts import kernels
from conv_reference import conv_kernel
from fastcnn.ops import _conv_algo
from helpers import CPU_BACKENDS, assert_close, gradcheck, isa  # noqa: F401

pytestmark = pytest.mark.skipif("cpu" not in CPU_BACKENDS, reason="the cpu backend is not built here")
CG = _conv_algo.PHASE_MIN_CHANNELS

# (N, C, H, W, K, R, S, stride, padding, dilation, groups) of the forward convolution; gx is [N, C, H, W].
CASES = {
    "dcgan-k4s2p1": (2, CG, 10, 10, 5, 4, 4, 2, 1, 1, 1),
    "batch1-3x2-s3x2": (1, CG, 11, 9, 3, 3, 2, (3, 2), (1, 0), 1, 1),
    "s4x2-5x3-pad2-odd-channels": (2, CG + 1, 13, 14, 4, 5, 3, (4, 2), (2, 1), 1, 1),
    "groups2-s2": (3, 2 * CG, 9, 7, 6, 3, 3, 2, 1, 1, 2),
    "dil2-s2-phases-without-taps": (2, CG, 12, 11, 3, 3, 3, 2, 2, 2, 1),
    "dil23-s3": (1, CG, 14, 13, 2, 3, 2, 3, (2, 1), (2, 3), 1),
    "1x3-overlap-in-width-only": (2, CG, 9, 10, 3, 1, 3, 2, (0, 1), 1, 1),
}


def _make(case, dtype):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = CASES[case]
    x = torch.randn(N, C, H, W, dtype=dtype)
    w = torch.randn(K, C // groups, R, S, dtype=dtype)
    return x, w, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _gx_reduction(w, groups):
    return w.shape[0] // groups * w.shape[2] * w.shape[3]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_backward_input_kernel_matches_torch(case, dtype):
    x, w, kw = _make(case, dtype)
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    st, pd, dl = pair(kw["stride"]), pair(kw["padding"]), pair(kw["dilation"])
    gy = torch.randn_like(F.conv2d(x, w, None, **kw))
    got = conv_kernel("cpu", kernels.conv2d_backward_input.im2col)(gy, w, tuple(x.shape[-2:]), st, pd, dl, kw["groups"])
    want = torch.ops.aten.convolution_backward(gy.double(), x.double(), w.double(), None, st, pd, dl, False, [0, 0],
                                               kw["groups"], [True, False, False])[0]
    assert_close(got, want, reduction=_gx_reduction(w, kw["groups"]), name="grad input")


@pytest.mark.parametrize("case", list(CASES))
def test_conv2d_all_gradients_float64(case):
    x, w, kw = _make(case, torch.float64)
    b = torch.randn(w.shape[0], dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    ref_leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    y = ops.conv2d(*leaves, **kw, algo="im2col", backend="cpu")
    ref = F.conv2d(*ref_leaves, **kw)
    assert_close(y, ref, reduction=w[0].numel() + 1)
    gy = torch.randn_like(ref)
    got, want = torch.autograd.grad(y, leaves, gy), torch.autograd.grad(ref, ref_leaves, gy)
    assert_close(got[0], want[0], reduction=_gx_reduction(w, kw["groups"]), name="grad input")
    assert_close(got[1], want[1], reduction=ref[:, 0].numel(), name="grad weight")
    assert_close(got[2], want[2], reduction=ref[:, 0].numel(), name="grad bias")


# (N, Cin, H, W, Cout, R, S, stride, padding, output_padding, groups, dilation); Cout/groups >= CG.
TRANSPOSE_CASES = {
    "dcgan-k4s2p1-batch1": (1, 5, 4, 4, CG, 4, 4, 2, 1, 0, 1, 1),
    "s3x2-op21-4x3": (2, 3, 4, 5, CG, 4, 3, (3, 2), (1, 0), (2, 1), 1, 1),
    "s4-op3-groups2": (1, 4, 3, 3, 2 * CG, 5, 5, 4, 2, 3, 2, 1),
    "s2-dil2-op1": (2, 3, 4, 3, CG + 2, 3, 2, 2, (1, 0), 1, 1, 2),
}


@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
def test_conv_transpose2d_forward_and_gradients(case):
    N, Cin, H, W, Cout, R, S, stride, padding, output_padding, groups, dilation = TRANSPOSE_CASES[case]
    x = torch.randn(N, Cin, H, W, dtype=torch.float64, requires_grad=True)
    w = torch.randn(Cin, Cout // groups, R, S, dtype=torch.float64, requires_grad=True)
    b = torch.randn(Cout, dtype=torch.float64, requires_grad=True)
    args = (stride, padding, output_padding, groups, dilation)
    y = ops.conv_transpose2d(x, w, b, *args, algo="im2col", backend="cpu")
    ref = F.conv_transpose2d(x, w, b, *args)
    assert_close(y, ref, reduction=Cin // groups * R * S + 1)
    gy = torch.randn_like(ref)
    got, want = torch.autograd.grad(y, (x, w, b), gy), torch.autograd.grad(ref, (x, w, b), gy)
    for g, e, name in zip(got, want, ("input", "weight", "bias")):
        assert_close(g, e, reduction=y[0].numel(), name=f"grad {name}")


@pytest.mark.parametrize("case", ["dcgan-k4s2p1-batch1", "s3x2-op21-4x3"])
def test_conv_transpose2d_gradcheck(case):
    N, Cin, H, W, Cout, R, S, stride, padding, output_padding, groups, dilation = TRANSPOSE_CASES[case]
    x = torch.randn(1, Cin, H, W, dtype=torch.float64, requires_grad=True)
    w = torch.randn(Cin, Cout // groups, R, S, dtype=torch.float64, requires_grad=True)
    b = torch.randn(Cout, dtype=torch.float64, requires_grad=True)
    args = (stride, padding, output_padding, groups, dilation)
    gradcheck(lambda x, w, b: ops.conv_transpose2d(x, w, b, *args, algo="im2col", backend="cpu"), (x, w, b))


def test_conv2d_gradcheck_input_through_phases():
    x = torch.randn(1, CG, 6, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, CG, 3, 2, dtype=torch.float64, requires_grad=True)
    gradcheck(lambda x, w: ops.conv2d(x, w, None, (2, 3), (1, 1), 1, 1, algo="im2col", backend="cpu"), (x, w))


@pytest.mark.parametrize("case", ["dcgan-k4s2p1", "s4x2-5x3-pad2-odd-channels", "dil2-s2-phases-without-taps"])
def test_every_isa(isa, case):  # noqa: F811
    for dtype in (torch.float32, torch.float64):
        x, w, kw = _make(case, dtype)
        xg = x.clone().requires_grad_()
        y = ops.conv2d(xg, w, None, **kw, algo="im2col", backend="cpu")
        gy = torch.randn_like(y)
        (got,) = torch.autograd.grad(y, xg, gy)
        xr = x.double().requires_grad_()
        (want,) = torch.autograd.grad(F.conv2d(xr, w.double(), None, **kw), xr, gy.double())
        assert_close(got, want, reduction=_gx_reduction(w, kw["groups"]), name=f"grad input {dtype}")


def test_auto_picks_phases_where_they_apply():
    options = ["direct", "im2col"]
    dcgan_g1 = _conv_algo.Layer(64, 128, 256, (4, 4), (16, 16), (2, 2))
    assert _conv_algo.heuristic(options, dcgan_g1, "conv2d_backward_input") == "im2col"
    dcgan_d = _conv_algo.Layer(64, 64, 128, (4, 4), (16, 16), (2, 2))  # 64 gx channels: no phases
    assert _conv_algo.heuristic(options, dcgan_d, "conv2d_backward_input") == "direct"
    dcgan_g2 = _conv_algo.Layer(64, 64, 128, (4, 4), (32, 32), (2, 2))  # no phases, but a large gx: col2im
    assert _conv_algo.heuristic(options, dcgan_g2, "conv2d_backward_input") == "im2col"
    pointwise_s2 = _conv_algo.Layer(16, 256, 512, (1, 1), (28, 28), (2, 2))  # no overlap: a plain GEMM
    assert _conv_algo.heuristic(options, pointwise_s2, "conv2d_backward_input") == "im2col"
