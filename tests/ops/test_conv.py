"""conv2d / conv_transpose2d for every (backend, algorithm) with registered kernels, linear / matmul,
the nn modules and convert(), bad input, the autotuner's cache; against float64 torch."""
import copy
import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings, strategies as st
from torch import nn

import fastcnn
from fastcnn import ops
from fastcnn.contracts import kernels
from fastcnn.ops import _conv_algo
from helpers import CPU_BACKENDS, assert_close, backend_params, gradcheck, isa, rms  # noqa: F401

ALGOS = ("direct", "im2col", "fft", "implicit_gemm")


def _algo_params():
    """(backend, device, algo) for every kernel backend and algorithm; skipped with the reason when
    the backend registers no forward kernel for it."""
    params = []
    for p in backend_params():
        backend, device = p.values
        for algo in ALGOS:
            marks = list(p.marks)
            if not any(m.name == "skip" for m in marks) and not kernels.conv2d_forward.algo(algo).offered_by(backend):
                marks.append(pytest.mark.skip(reason=f"backend '{backend}' registers no conv2d_forward.{algo}"))
            if backend == "triton" and device == "cpu":
                # Under the interpreter this matrix takes most of an hour: the Triton kernels are
                # covered in the default run by tests/backends/triton/test_triton_conv.py and by
                # test_triton_through_public_op below; `-m slow` runs the full matrix.
                marks.append(pytest.mark.slow)
            params.append(pytest.param(backend, device, algo, id=f"{p.id}-{algo}", marks=marks))
    return params


ALGO_PARAMS = _algo_params()

# The cpu direct kernel cuts a reduction into chunks when one tile's weights (three 16-lane output
# blocks, float32) or a thread's weight gradient exceed 512 KB (csrc/kernels/conv_direct.cpp
# reduction_chunk, conv_direct_wgrad.cpp kAccChunkBytes): 603 input channels of a 3x3 kernel do,
# in float32 and float64, with AVX-512 and AVX2, and leave a partial last block.
DEEP_CHUNKED = (603, 35, 3)  # C, K, R


# (N, C, H, W, K, R, S, stride, padding, dilation, groups): deliberately odd.
CASES = {
    "odd-3x2": (2, 3, 7, 9, 4, 3, 2, 1, 1, 1, 1),
    "one-channel-1x1-batch1": (1, 1, 5, 6, 2, 1, 1, 1, 0, 1, 1),
    "pointwise-groups2": (2, 4, 6, 7, 6, 1, 1, 1, 0, 1, 2),
    "stride3-dil2-groups3": (1, 6, 11, 10, 9, 3, 3, 3, (2, 1), (2, 1), 3),
    "depthwise-stride2": (2, 4, 9, 9, 4, 3, 3, 2, 1, 1, 4),
    "11x11": (1, 2, 13, 12, 3, 11, 11, 1, 5, 1, 1),
    "stride4-dil3-even": (2, 3, 8, 9, 5, 2, 4, (1, 4), (0, 3), (3, 1), 1),
    "pad-beyond-half": (1, 3, 6, 6, 3, 5, 3, 1, (4, 1), 1, 1),
    "1x3-groups2-stride21": (3, 2, 5, 4, 4, 1, 3, (2, 1), (0, 1), 1, 2),
    "5x5-64ch": (2, 16, 10, 10, 16, 5, 5, 1, 2, 1, 1),
    "whole-image": (3, 5, 6, 5, 7, 6, 5, 1, 0, 1, 1),  # one output pixel: im2col's one-GEMM-per-pass case
    # More input blocks than the direct kernel reduces at once (DEEP_CHUNKED below), a partial last
    # block, and rows that take two row blocks: its chunked forward and weight gradient.
    "deep-chunked": (1, DEEP_CHUNKED[0], 12, 30, DEEP_CHUNKED[1], DEEP_CHUNKED[2], DEEP_CHUNKED[2], 1, 1, 1, 1),
}
TINY = {"odd-3x2", "one-channel-1x1-batch1", "stride3-dil2-groups3", "depthwise-stride2"}


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _skip_unsupported(backend, device, algo, stride=1, dilation=1, case=None):
    if algo == "fft" and (_pair(stride) != (1, 1) or _pair(dilation) != (1, 1)):
        pytest.skip("fft takes stride 1 and dilation 1 only")
    if backend == "triton" and device == "cpu" and case is not None and case not in TINY:
        pytest.skip("Triton runs under its interpreter on CPU: tiny cases only")


def _make(case, dtype, device="cpu", bias=True):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = CASES[case]
    x = torch.randn(N, C, H, W, dtype=dtype, device=device)
    w = torch.randn(K, C // groups, R, S, dtype=dtype, device=device)
    b = torch.randn(K, dtype=dtype, device=device) if bias else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _reduction(w):
    return w.shape[1] * w.shape[2] * w.shape[3]


@pytest.mark.parametrize("backend,device,algo", ALGO_PARAMS)
@pytest.mark.parametrize("case", list(CASES))
def test_forward_float32(backend, device, algo, case):
    x, w, b, kw = _make(case, torch.float32, device)
    _skip_unsupported(backend, device, algo, kw["stride"], kw["dilation"], case)
    y = ops.conv2d(x, w, b, **kw, algo=algo, backend=backend)
    expected = F.conv2d(x.double(), w.double(), b.double(), **kw)
    assert_close(y, expected, reduction=_reduction(w) + 1)


@pytest.mark.parametrize("backend,device,algo", ALGO_PARAMS)
@pytest.mark.parametrize("case", list(CASES))
def test_gradients_float64(backend, device, algo, case):
    x, w, b, kw = _make(case, torch.float64, device)
    _skip_unsupported(backend, device, algo, kw["stride"], kw["dilation"], case)
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    ref_leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    y = ops.conv2d(*leaves, **kw, algo=algo, backend=backend)
    ref = F.conv2d(*ref_leaves, **kw)
    assert_close(y, ref, reduction=_reduction(w) + 1)
    gy = torch.randn_like(ref)
    got = torch.autograd.grad(y, leaves, gy)
    want = torch.autograd.grad(ref, ref_leaves, gy)
    N, K, P, Q = ref.shape
    groups = kw["groups"]
    # The gradients are sums of products that may cancel (two weights here can be a near-zero sum of
    # N*P*Q terms): their rounding error is relative to the terms' magnitudes |w||gy| and |x||gy|, the
    # same gradients taken of the absolute values, not to the cancelled result.
    abs_x, abs_w = (t.detach().abs().requires_grad_() for t in (x, w))
    mag_x, mag_w = torch.autograd.grad(F.conv2d(abs_x, abs_w, None, **kw), (abs_x, abs_w), gy.abs())
    assert_close(got[0], want[0], reduction=K // groups * w.shape[2] * w.shape[3], scale=rms(mag_x),
                 name="grad input")
    assert_close(got[1], want[1], reduction=N * P * Q, scale=rms(mag_w), name="grad weight")
    assert_close(got[2], want[2], reduction=N * P * Q, name="grad bias")



@pytest.mark.parametrize("backend,device,algo", ALGO_PARAMS)
def test_gradcheck(backend, device, algo):
    stride, dilation = ((1, 1), (1, 1)) if algo == "fft" else ((2, 1), (1, 2))
    x = torch.randn(2, 4, 5, 4, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.randn(6, 2, 3, 2, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, device=device, requires_grad=True)
    gradcheck(lambda x, w, b: ops.conv2d(x, w, b, stride, (1, 0), dilation, 2, algo=algo, backend=backend), (x, w, b))


def test_gradcheck_deep_reduction():
    """float64 gradcheck (fast mode: the full Jacobian of 307 channels is too slow) of the chunked
    direct passes, with a fused activation applied after the last chunk only."""
    C, K, R = DEEP_CHUNKED
    x = torch.randn(2, C, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(K, C, R, R, dtype=torch.float64, requires_grad=True)
    b = torch.randn(K, dtype=torch.float64, requires_grad=True)
    gradcheck(lambda x, w, b: ops.conv2d(x, w, b, 1, 1, algo="direct", activation="tanh", backend="cpu"), (x, w, b),
              fast_mode=True)


ACTIVATIONS = [("relu", None), ("leaky_relu", 0.2), ("elu", 0.7), ("sigmoid", None), ("tanh", None)]


@pytest.mark.skipif("triton" not in CPU_BACKENDS, reason="triton is not usable here")
@pytest.mark.parametrize("algo", ALGOS)
def test_triton_through_public_op(algo):
    """Each Triton algorithm through ops.conv2d / conv_transpose2d (autograd, algo choice) on one
    tiny case, forward and all gradients against torch in float64."""
    if not kernels.conv2d_forward.algo(algo).offered_by("triton"):
        pytest.skip(f"backend 'triton' registers no conv2d_forward.{algo}")
    torch.manual_seed(3)
    x = torch.randn(1, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    y = ops.conv2d(x, w, b, padding=1, groups=2, algo=algo, backend="triton")
    gy = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, w, b), gy)
    y_ref = F.conv2d(x, w, b, padding=1, groups=2)
    ref = torch.autograd.grad(y_ref, (x, w, b), gy)
    assert_close(y, y_ref, reduction=12)
    for g, r, name in zip(grads, ref, ("input", "weight", "bias")):
        assert_close(g, r, reduction=60, name=f"grad {name}")
    wt = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    yt = ops.conv_transpose2d(x, wt, stride=2, algo=algo if algo != "fft" else "auto", backend="triton")
    assert_close(yt, F.conv_transpose2d(x, wt, stride=2), reduction=12, name="conv_transpose2d")


@pytest.mark.parametrize("backend,device,algo", ALGO_PARAMS)
@pytest.mark.parametrize("activation,param", ACTIVATIONS)
def test_fused_activation_forward(backend, device, algo, activation, param):
    x, w, b, kw = _make("odd-3x2", torch.float32, device)
    y = ops.conv2d(x, w, b, **kw, algo=algo, activation=activation, activation_param=param, backend=backend)
    expected = ops.conv2d(x.double(), w.double(), b.double(), **kw, activation=activation, activation_param=param,
                          backend="reference")
    assert_close(y, expected, reduction=_reduction(w) + 1)


@pytest.mark.parametrize("backend,device,algo", ALGO_PARAMS)
@pytest.mark.parametrize("activation,param", ACTIVATIONS)
def test_fused_activation_gradcheck(backend, device, algo, activation, param):
    if not kernels.activation_backward.offered_by(backend):
        pytest.skip(f"backend '{backend}' has no activation_backward kernel yet")
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.randn(3, 2, 2, 3, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, device=device, requires_grad=True)
    gradcheck(lambda x, w, b: ops.conv2d(x, w, b, 1, 1, algo=algo, activation=activation, activation_param=param,
                                         backend=backend), (x, w, b))


@pytest.mark.parametrize("backend,device,algo", ALGO_PARAMS)
@pytest.mark.parametrize("kernel_hw,dilation", [((2, 2), 1), ((4, 3), 1), ((2, 5), 2)])
def test_same_padding_even_kernels(backend, device, algo, kernel_hw, dilation):
    _skip_unsupported(backend, device, algo, 1, dilation)
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.randn(4, 3, *kernel_hw, dtype=torch.float64, device=device, requires_grad=True)
    y = ops.conv2d(x, w, None, 1, "same", dilation, algo=algo, backend=backend)
    with warnings.catch_warnings():  # torch warns that it pads a copy for even kernels
        warnings.simplefilter("ignore", UserWarning)
        ref = F.conv2d(x, w, None, 1, "same", dilation)
    assert y.shape == x.shape[:1] + (4,) + x.shape[2:]
    assert_close(y, ref, reduction=3 * kernel_hw[0] * kernel_hw[1])
    gy = torch.randn_like(ref)
    for got, want, name in zip(torch.autograd.grad(y, (x, w), gy), torch.autograd.grad(ref, (x, w), gy), "xw"):
        assert_close(got, want, reduction=4 * 7 * 8 * 2, name=f"grad {name}")


TRANSPOSE_CASES = {
    # (N, Cin, H, W, Cout, R, S, stride, padding, output_padding, groups, dilation)
    "stride2-op1": (2, 4, 4, 5, 3, 3, 3, 2, 1, 1, 1, 1),
    "stride31-op2-groups2": (1, 4, 3, 4, 6, 2, 3, (3, 1), (0, 1), (2, 0), 2, 1),
    "dil2-op1": (2, 3, 4, 3, 2, 3, 2, 1, 1, (1, 0), 1, 2),
}


@pytest.mark.parametrize("backend,device,algo", ALGO_PARAMS)
@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
def test_conv_transpose2d(backend, device, algo, case):
    N, Cin, H, W, Cout, R, S, stride, padding, output_padding, groups, dilation = TRANSPOSE_CASES[case]
    _skip_unsupported(backend, device, algo, stride, dilation)
    if not kernels.conv2d_backward_input.algo(algo).offered_by(backend):
        pytest.skip(f"backend '{backend}' registers no conv2d_backward_input.{algo}")
    x = torch.randn(N, Cin, H, W, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.randn(Cin, Cout // groups, R, S, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.randn(Cout, dtype=torch.float64, device=device, requires_grad=True)
    args = (stride, padding, output_padding, groups, dilation)
    y = ops.conv_transpose2d(x, w, b, *args, algo=algo, backend=backend)
    ref = F.conv_transpose2d(x, w, b, *args)
    assert_close(y, ref, reduction=Cin * R * S)
    gy = torch.randn_like(ref)
    got, want = torch.autograd.grad(y, (x, w, b), gy), torch.autograd.grad(ref, (x, w, b), gy)
    for g, e, name in zip(got, want, ("input", "weight", "bias")):
        assert_close(g, e, reduction=y[0].numel(), name=f"grad {name}")
    gradcheck(lambda x, w, b: ops.conv_transpose2d(x, w, b, *args, algo=algo, backend=backend),
              (x[:1].detach().requires_grad_(), w, b))


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C = groups * draw(st.integers(1, 3))
    K = groups * draw(st.integers(1, 3))
    R, S = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    span = (dilation[0] * (R - 1) + 1, dilation[1] * (S - 1) + 1)
    H = draw(st.integers(max(1, span[0] - 2 * padding[0]), span[0] + 8))
    W = draw(st.integers(max(1, span[1] - 2 * padding[1]), span[1] + 8))
    N = draw(st.integers(1, 3))
    return (N, C, H, W, K, R, S, stride, padding, dilation, groups)


@pytest.mark.parametrize("backend,device,algo", ALGO_PARAMS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=conv_configs())
def test_hypothesis_random_configs(backend, device, algo, cfg):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = cfg
    if algo == "fft":
        stride = dilation = (1, 1)
    if backend == "triton" and device == "cpu":
        N, H, W = 1, min(H, dilation[0] * (R - 1) + 3), min(W, dilation[1] * (S - 1) + 3)
    x = torch.randn(N, C, H, W, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.randn(K, C // groups, R, S, dtype=torch.float64, device=device, requires_grad=True)
    y = ops.conv2d(x, w, None, stride, padding, dilation, groups, algo=algo, backend=backend)
    ref = F.conv2d(x, w, None, stride, padding, dilation, groups)
    assert_close(y, ref, reduction=C // groups * R * S)
    gy = torch.randn_like(ref)
    got, want = torch.autograd.grad(y, (x, w), gy), torch.autograd.grad(ref, (x, w), gy)
    assert_close(got[0], want[0], reduction=K // groups * R * S, name="grad input")
    assert_close(got[1], want[1], reduction=max(1, ref[:, 0].numel()), name="grad weight")


@pytest.mark.parametrize("algo", ["im2col", "direct"])
@pytest.mark.parametrize("case", ["odd-3x2", "pointwise-groups2", "stride3-dil2-groups3", "whole-image", "deep-chunked"])
def test_cpu_every_isa(isa, algo, case):  # noqa: F811
    x, w, b, kw = _make(case, torch.float32)
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    y = ops.conv2d(*leaves, **kw, algo=algo, activation="relu", backend="cpu")
    ref = F.conv2d(x.double(), w.double(), b.double(), **kw).relu()
    assert_close(y, ref, reduction=_reduction(w) + 1)
    if not kernels.activation_backward.offered_by("cpu"):
        pytest.skip("forward checked; the cpu backend has no activation_backward kernel for the gradients")
    y.sum().backward()
    ref_leaves = [t.double().requires_grad_() for t in (x, w, b)]
    F.conv2d(*ref_leaves, **kw).relu().sum().backward()
    for got, want in zip(leaves, ref_leaves):
        assert_close(got.grad, want.grad, reduction=y[0].numel())


# (C, H, K, R, stride, groups); about 15 MFLOP per image: enough work for the kernels to use
# several threads. "phases": the strided backward-input by phases (runs of several images per GEMM).
THREAD_SPLIT_LAYERS = {"groups2": (32, 40, 32, 3, 1, 2), "phases": (_conv_algo.PHASE_MIN_CHANNELS, 12, 48, 4, 2, 1)}


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("N", [1, 2, 5, 8])
@pytest.mark.parametrize("layer", list(THREAD_SPLIT_LAYERS))
def test_cpu_im2col_thread_splits(threads, N, layer):
    """By-image and within-image threading, weight-gradient partial sums included."""
    C, H, K, R, stride, groups = THREAD_SPLIT_LAYERS[layer]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(N, C, H, H, dtype=torch.float64, requires_grad=True)
        w = torch.randn(K, C // groups, R, R, dtype=torch.float64, requires_grad=True)
        y = ops.conv2d(x, w, None, stride, 1, 1, groups, algo="im2col", backend="cpu")
        ref = F.conv2d(x, w, None, stride, 1, 1, groups)
        gy = torch.randn_like(ref)
        assert_close(y, ref, reduction=w[0].numel())
        got, want = torch.autograd.grad(y, (x, w), gy), torch.autograd.grad(ref, (x, w), gy)
        assert_close(got[0], want[0], reduction=K // groups * R * R, name="grad input")
        assert_close(got[1], want[1], reduction=N * ref[0, 0].numel(), name="grad weight")
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------------------
# The column-matrix kernels and channel_sum

def _registered(slot):
    params = [pytest.param(b, id=b) for b in CPU_BACKENDS if slot.offered_by(b)]
    return params or [pytest.param("cpu", marks=pytest.mark.skip(reason=f"no backend registers {slot.name}"))]


@pytest.mark.parametrize("backend", _registered(kernels.im2col))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_im2col_col2im_match_unfold_fold(backend, dtype):
    x = torch.randn(2, 3, 7, 9, dtype=dtype)
    kw = dict(kernel_hw=(3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1))
    out_hw = ((7 + 2 - 2 * 2 - 1) // 1 + 1, (9 - 1 - 1) // 2 + 1)
    cols = kernels.im2col[backend](x, kw["kernel_hw"], kw["stride"], kw["padding"], kw["dilation"], out_hw)
    ref = F.unfold(x.double(), kw["kernel_hw"], kw["dilation"], kw["padding"], kw["stride"])
    assert_close(cols, ref)
    back = kernels.col2im[backend](ref.to(dtype), (7, 9), kw["kernel_hw"], kw["stride"], kw["padding"],
                                   kw["dilation"], out_hw)
    assert_close(back, F.fold(ref, (7, 9), kw["kernel_hw"], kw["dilation"], kw["padding"], kw["stride"]), reduction=6)


@pytest.mark.parametrize("backend", _registered(kernels.channel_sum))
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 7, 9), (2, 70, 1, 33)])
def test_channel_sum(backend, shape):
    t = torch.randn(*shape)
    n = shape[0] * shape[2] * shape[3]
    assert_close(kernels.channel_sum[backend](t), t.double().sum((0, 2, 3)), reduction=n)


# --------------------------------------------------------------------------------------------------
# linear and matmul

GEMM_BACKENDS = [pytest.param(b, id=b) for b in CPU_BACKENDS if kernels.gemm.offered_by(b)]


@pytest.mark.parametrize("backend", GEMM_BACKENDS)
@pytest.mark.parametrize("lead", [(), (5,), (2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(backend, lead, bias):
    x = torch.randn(*lead, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(9, 7, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, dtype=torch.float64, requires_grad=True) if bias else None
    assert_close(ops.linear(x, w, b, backend=backend), F.linear(x, w, b), reduction=8)
    gradcheck(lambda *t: ops.linear(*t, backend=backend), [t for t in (x, w, b) if t is not None])
    y32 = ops.linear(x.float().detach(), w.float().detach(), None if b is None else b.float().detach(), backend=backend)
    assert_close(y32, F.linear(x, w, b), reduction=8)


@pytest.mark.parametrize("backend", GEMM_BACKENDS)
@pytest.mark.parametrize("shapes", [((3,), (3,)), ((4, 3), (3,)), ((3,), (3, 5)), ((6, 5), (5, 4)),
                                    ((2, 4, 3), (3, 5)), ((2, 4, 3), (2, 3, 5)), ((4, 3), (2, 3, 5)),
                                    ((2, 2, 4, 3), (2, 2, 3, 1))])
def test_matmul(backend, shapes):
    a = torch.randn(*shapes[0], dtype=torch.float64, requires_grad=True)
    b = torch.randn(*shapes[1], dtype=torch.float64, requires_grad=True)
    assert_close(ops.matmul(a, b, backend=backend), torch.matmul(a, b), reduction=a.shape[-1])
    gradcheck(lambda a, b: ops.matmul(a, b, backend=backend), (a, b))


def test_matmul_and_linear_errors():
    with pytest.raises(ValueError, match="b"):
        ops.matmul(torch.randn(3, 4), torch.randn(5, 2))
    with pytest.raises(ValueError, match="batch"):
        ops.matmul(torch.randn(2, 3, 4), torch.randn(3, 4, 2))
    with pytest.raises(TypeError, match="b"):
        ops.matmul(torch.randn(3, 4), torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="weight"):
        ops.linear(torch.randn(3, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match="bias"):
        ops.linear(torch.randn(3, 4), torch.randn(5, 4), torch.randn(4))


# --------------------------------------------------------------------------------------------------
# Modules and convert()

def test_convert_matches_torch_model():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 8, (3, 2), stride=2, groups=2, dilation=(1, 2)),
                      nn.ConvTranspose2d(8, 4, 3, stride=2, output_padding=1)),
        nn.Conv2d(4, 4, 1, bias=False), nn.Flatten(), nn.Linear(4 * 14 * 14, 10)).double()
    reference = copy.deepcopy(model)
    converted = fastcnn.nn.convert(model)
    assert converted is model
    assert type(model[0]) is fastcnn.nn.Conv2d and type(model[2][1]) is fastcnn.nn.ConvTranspose2d
    assert type(model[5]) is fastcnn.nn.Linear
    assert model.state_dict().keys() == reference.state_dict().keys()
    x = torch.randn(2, 3, 13, 13, dtype=torch.float64)
    y, y_ref = model(x), reference(x)
    assert_close(y, y_ref, reduction=4 * 14 * 14)
    gy = torch.randn_like(y)
    y.backward(gy)
    y_ref.backward(gy)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert_close(p.grad, q.grad, reduction=2 * 13 * 13 * 8, name=name)


def test_convert_single_layer_and_shared_parameters():
    conv = nn.Conv2d(2, 3, 3)
    ours = fastcnn.nn.convert(conv)
    assert type(ours) is fastcnn.nn.Conv2d and ours.weight is conv.weight


def test_modules_load_state_dict_both_ways():
    ours = fastcnn.nn.Conv2d(4, 6, (3, 1), stride=2, padding=1, groups=2)
    theirs = nn.Conv2d(4, 6, (3, 1), stride=2, padding=1, groups=2)
    theirs.load_state_dict(ours.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 4, 7, 7)
    assert_close(ours(x), theirs.double()(x.double()), reduction=7)
    lin = fastcnn.nn.Linear(5, 3)
    assert set(lin.state_dict()) == {"weight", "bias"}
    tr = fastcnn.nn.ConvTranspose2d(4, 2, 3, stride=2)
    x = torch.randn(1, 4, 3, 3)
    ref = nn.ConvTranspose2d(4, 2, 3, stride=2)
    ref.load_state_dict(tr.state_dict())
    assert_close(tr(x, output_size=(8, 8)), ref.double()(x.double(), output_size=(8, 8)), reduction=36)


def test_conv_transpose_rejects_padding_modes():
    # (Conv2d's reflect / replicate / circular run on fastcnn.ops.pad: tests/ops/test_pad.py)
    with pytest.raises(ValueError, match="padding_mode"):
        fastcnn.nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode"):
        fastcnn.nn.Conv2d(2, 2, 3, padding_mode="symmetric")


# --------------------------------------------------------------------------------------------------
# Bad input and algorithm choice

@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_conv2d_bad_input(backend):
    x, w = torch.randn(1, 4, 8, 8), torch.randn(6, 2, 3, 3)
    cases = [
        (ValueError, "groups", lambda: ops.conv2d(torch.randn(1, 5, 8, 8), torch.randn(6, 1, 3, 3), groups=2,
                                                  backend=backend)),
        (ValueError, "weight", lambda: ops.conv2d(x, torch.randn(6, 3, 3, 3), backend=backend)),
        (ValueError, "weight", lambda: ops.conv2d(torch.randn(1, 4, 2, 2), torch.randn(6, 4, 5, 5), padding=1,
                                                  backend=backend)),
        (TypeError, "weight", lambda: ops.conv2d(x, w.double(), groups=2, backend=backend)),
        (TypeError, "input", lambda: ops.conv2d(x.half(), w.half(), groups=2, backend=backend)),
        (TypeError, "input", lambda: ops.conv2d(x.long(), w, groups=2, backend=backend)),
        (ValueError, "padding", lambda: ops.conv2d(x, w, padding="full", groups=2, backend=backend)),
        (ValueError, "padding", lambda: ops.conv2d(x, w, stride=2, padding="same", groups=2, backend=backend)),
        (ValueError, "padding", lambda: ops.conv2d(x, w, padding=-1, groups=2, backend=backend)),
        (ValueError, "stride", lambda: ops.conv2d(x, w, stride=0, groups=2, backend=backend)),
        (ValueError, "input", lambda: ops.conv2d(torch.randn(8, 8), w, groups=2, backend=backend)),
        (ValueError, "bias", lambda: ops.conv2d(x, w, torch.randn(5), groups=2, backend=backend)),
        (ValueError, "groups", lambda: ops.conv2d(x, w, groups=0, backend=backend)),
        (ValueError, "activation", lambda: ops.conv2d(x, w, groups=2, activation="gelu", backend=backend)),
        (ValueError, "algo", lambda: ops.conv2d(x, w, groups=2, algo="winograd7", backend=backend)),
        (ValueError, "output_padding", lambda: ops.conv_transpose2d(x, torch.randn(4, 2, 3, 3), stride=2,
                                                                    output_padding=2, backend=backend)),
    ]
    for exc, word, call in cases:
        with pytest.raises(exc, match=word):
            call()


def test_conv2d_device_mismatch_named():
    if not torch.cuda.is_available():
        meta_w = torch.randn(2, 2, 3, 3, device="meta")
        with pytest.raises(ValueError, match="weight"):
            ops.conv2d(torch.randn(1, 2, 5, 5), meta_w)
    else:
        with pytest.raises(ValueError, match="weight"):
            ops.conv2d(torch.randn(1, 2, 5, 5), torch.randn(2, 2, 3, 3, device="cuda"))


def test_explicit_algo_limits():
    x, w = torch.randn(1, 2, 8, 8), torch.randn(2, 2, 3, 3)
    with pytest.raises(ValueError, match="fft.*stride 1"):
        ops.conv2d(x, w, stride=2, algo="fft", backend="cpu")
    with pytest.raises(ValueError, match="fft.*dilation"):
        ops.conv2d(x, w, dilation=2, algo="fft", backend="cpu")
    missing = [a for a in ALGOS if not kernels.conv2d_forward.algo(a).offered_by("cpu")]
    if not missing:
        pytest.skip("every algorithm is registered on cpu: nothing unregistered to ask for")
    with pytest.raises(NotImplementedError, match=missing[0]):
        ops.conv2d(x, w, algo=missing[0], backend="cpu")


def test_auto_heuristic_only_picks_registered():
    def pick(options, N, C, K, kernel_hw):
        return _conv_algo.heuristic(options, _conv_algo.Layer(N, C, K, kernel_hw))
    assert pick(["im2col"], 32, 128, 128, (5, 5)) == "im2col"
    assert pick(["direct", "im2col", "fft"], 32, 128, 128, (5, 5)) == "fft"
    assert pick(["direct", "im2col", "fft"], 32, 128, 128, (1, 1)) == "im2col"
    assert pick(["direct", "im2col", "fft"], 8, 128, 128, (5, 5)) == "direct"
    assert pick(["im2col", "fft"], 2, 3, 4, (3, 3)) == "im2col"
    options = _conv_algo.candidates("cpu", "conv2d_forward", (2, 2), (1, 1))
    assert "fft" not in options and all(kernels.conv2d_forward.algo(a).offered_by("cpu") for a in options)


# --------------------------------------------------------------------------------------------------
# Autotuner

def test_autotune_cache_survives_corrupt_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_conv_algo, "_memory", {})
    path = _conv_algo.cache_path()
    path.write_text("{ this is not json")
    calls = []
    winner = _conv_algo.tuned("k1", ["im2col", "direct"], lambda a: calls.append(a))
    assert winner in ("im2col", "direct") and set(calls) == {"im2col", "direct"}
    assert json.loads(path.read_text()) == {"k1": winner}
    path.write_text('["a list, not a dict"]')
    monkeypatch.setattr(_conv_algo, "_memory", {})
    assert _conv_algo.tuned("k2", ["im2col"], lambda a: None) == "im2col"
    assert json.loads(path.read_text()) == {"k2": "im2col"}


def test_autotune_reads_cached_winner_without_timing(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_conv_algo, "_memory", {})
    _conv_algo.cache_path().write_text(json.dumps({"k": "direct", "bad": "nonsense"}))
    assert _conv_algo.tuned("k", ["im2col", "direct"], lambda a: pytest.fail("timed a cached key")) == "direct"


def test_autotuned_conv2d_is_correct(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_conv_algo, "_memory", {})
    (tmp_path / "conv_autotune.json").write_bytes(b"\x00\xff garbage")
    ops.autotune(True)
    try:
        x, w = torch.randn(2, 3, 9, 9, dtype=torch.float64), torch.randn(4, 3, 3, 3, dtype=torch.float64)
        assert_close(ops.conv2d(x, w, None, 1, 1, backend="cpu"), F.conv2d(x, w, None, 1, 1), reduction=27)
    finally:
        ops.autotune(False)
    n_options = len(_conv_algo.candidates("cpu", "conv2d_forward", (1, 1), (1, 1)))
    if n_options > 1:
        assert len(json.loads((tmp_path / "conv_autotune.json").read_text())) == 1
