"""The triton backend's GEMM and convolution kernels against plain torch in float64.

Kernels are called through the registry (kernels.<slot>["triton"]) on CPU tensors,
which runs them under the Triton interpreter (tiny shapes), and on CUDA tensors where a GPU exists
(marked gpu). Without a GPU, tests/backends/triton/test_triton_aot.py compiles every kernel launch the launchers
make for sm_90 and sm_80, so a kernel that cannot lower fails there, not on a GPU.
"""
from __future__ import annotations

import zlib

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import torch.nn.functional as F

from fastcnn.contracts import kernels
from conv_reference import TORCH_ACTIVATIONS, Case, conv_cases, conv_kernel, reference_conv
from helpers import HAS_GPU, assert_close, backend_params, reference_f64

ALGOS = ("direct", "im2col", "fft", "implicit_gemm")
DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]


def _devices():
    """'cpu' (interpreter) and 'cuda' (compiled; marked gpu, skipped with a reason without one)."""
    out = []
    for p in backend_params():
        backend, device = p.values
        if device == "cpu" and backend != "triton":
            continue
        if device == "cuda" and backend != "triton" and HAS_GPU:
            continue
        out.append(pytest.param(device, id=f"triton-{device}", marks=p.marks))
    return out


DEVICES = _devices()


def triton_kernel(slot):
    return conv_kernel("triton", slot)


# ----------------------------------------------------------------------------------------------
# Cases (tests/conv_reference.py: Case, reference_conv, TORCH_ACTIVATIONS)

CASES = [
    Case("odd_nonsquare", 2, 3, 7, 9, 4, 3, 2, padding=(1, 0)),
    Case("stride23_groups3", 1, 6, 9, 8, 6, 3, 3, stride=(2, 3), padding=(2, 1), groups=3),
    Case("dilation2_depthwise", 2, 4, 9, 9, 4, 3, 3, padding=(2, 2), dilation=(2, 2), groups=4),
    Case("pointwise_groups2", 1, 4, 6, 7, 6, 1, 1, groups=2),
    Case("stride3_dilation_w2", 2, 2, 8, 8, 3, 5, 3, stride=(3, 2), padding=(0, 1), dilation=(1, 2)),
    Case("same_even_kernel", 2, 3, 6, 7, 2, 4, 4, padding=(1, 1), out_hw=(6, 7)),  # bottom/right pad 2
    Case("padding_over_half", 1, 2, 5, 4, 3, 3, 2, padding=(3, 2)),
    Case("one_channel_5x5", 1, 1, 6, 7, 1, 5, 5, padding=(2, 1)),
    Case("cut_bottom_right", 2, 2, 9, 8, 2, 3, 3, padding=(1, 1), out_hw=(6, 5)),  # rows left unread
    Case("groups2_kernel7", 1, 4, 9, 9, 2, 7, 6, padding=(3, 2), groups=2),
]


def _inputs(case, dtype, device, bias=True):
    g = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))
    P, Q = case.out_hw

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)

    x = randn(case.N, case.C, case.H, case.W)
    w = randn(case.K, case.C // case.groups, case.R, case.S)
    b = randn(case.K) if bias else None
    gy = randn(case.N, case.K, P, Q)
    return x, w, b, gy


def _check_algo(algo, case):
    if algo == "fft" and not case.fft_ok:
        pytest.skip("fft takes stride 1 and dilation 1 only (test_fft_rejects_stride_and_dilation checks the error)")


def _forward(algo, case, x, w, b, activation=None, act_param=0.0):
    return triton_kernel(kernels.conv2d_forward.algo(algo))(x, w, b, case.stride, case.padding, case.dilation, case.groups,
                                                            case.out_hw, activation, act_param)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_forward(algo, case, dtype, device):
    _check_algo(algo, case)
    x, w, b, _ = _inputs(case, dtype, device)
    y = _forward(algo, case, x, w, b)
    expected = reference_f64(reference_conv, x, w, b, case)
    assert_close(y, expected, reduction=w[0].numel(), name=f"conv2d_forward.{algo}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_backward(algo, case, dtype, device):
    _check_algo(algo, case)
    x, w, _, gy = _inputs(case, dtype, device, bias=False)
    x64 = x.detach().double().requires_grad_()
    w64 = w.detach().double().requires_grad_()
    reference_conv(x64, w64, None, case).backward(gy.double())

    gx = triton_kernel(kernels.conv2d_backward_input.algo(algo))(gy, w, (case.H, case.W), case.stride, case.padding,
                                                                 case.dilation, case.groups)
    taps = (case.K // case.groups) * case.R * case.S
    assert_close(gx, x64.grad, reduction=taps, name=f"conv2d_backward_input.{algo}")

    gw = triton_kernel(kernels.conv2d_backward_weight.algo(algo))(x, gy, (case.R, case.S), case.stride, case.padding,
                                                                  case.dilation, case.groups)
    assert_close(gw, w64.grad, reduction=gy[:, 0].numel(), name=f"conv2d_backward_weight.{algo}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation,act_param", [
    ("relu", 0.0), ("leaky_relu", 0.1), ("elu", 0.7), ("sigmoid", 0.0), ("tanh", 0.0)])
@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_forward_fused_activation(algo, activation, act_param, dtype, device):
    case = CASES[0] if algo == "fft" else CASES[1]
    x, w, b, _ = _inputs(case, dtype, device)
    y = _forward(algo, case, x, w, b, activation, act_param)
    expected = TORCH_ACTIVATIONS[activation](reference_f64(reference_conv, x, w, b, case), act_param)
    assert_close(y, expected, reduction=w[0].numel(), name=f"{algo} + {activation}")


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_without_bias_and_empty_batch(algo):
    case = CASES[0]
    x, w, _, _ = _inputs(case, torch.float64, "cpu")
    assert_close(_forward(algo, case, x, w, None), reference_conv(x, w, None, case), reduction=w[0].numel())
    y = _forward(algo, case, x[:0], w, None)
    assert y.shape == (0, case.K, *case.out_hw)
    gw = triton_kernel(kernels.conv2d_backward_weight.algo(algo))(x[:0], torch.empty(0, case.K, *case.out_hw,
                                                                  dtype=x.dtype), (case.R, case.S), case.stride,
                                                                  case.padding, case.dilation, case.groups)
    assert torch.equal(gw, torch.zeros_like(w))


@pytest.mark.parametrize("algo", ALGOS)
def test_unknown_activation_is_rejected(algo):
    case = CASES[0]
    x, w, b, _ = _inputs(case, torch.float32, "cpu")
    with pytest.raises(ValueError, match="activation"):
        _forward(algo, case, x, w, b, "gelu", 0.0)


@pytest.mark.parametrize("name", ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"])
@pytest.mark.parametrize("stride,dilation,word", [((2, 1), (1, 1), "stride"), ((1, 1), (1, 2), "dilation")])
def test_fft_rejects_stride_and_dilation(name, stride, dilation, word):
    x = torch.randn(1, 2, 8, 8)
    w = torch.randn(2, 2, 3, 3)
    gy = torch.randn(1, 2, 4, 4)
    fn = triton_kernel(kernels.CONV_PASSES[name].fft)
    with pytest.raises(ValueError, match=word):
        if name.startswith("conv2d_forward"):
            fn(x, w, None, stride, (0, 0), dilation, 1, (4, 4), None, 0.0)
        elif name.startswith("conv2d_backward_input"):
            fn(gy, w, (8, 8), stride, (0, 0), dilation, 1)
        else:
            fn(x, gy, (3, 3), stride, (0, 0), dilation, 1)


def test_fft_rejects_kernels_larger_than_its_tiles():
    x = torch.randn(1, 1, 40, 40)
    w = torch.randn(1, 1, 33, 3)
    with pytest.raises(ValueError, match="kernel_hw"):
        triton_kernel(kernels.conv2d_forward.fft)(x, w, None, (1, 1), (0, 0), (1, 1), 1, (8, 38), None, 0.0)


@pytest.mark.parametrize("algo", ALGOS)
def test_large_kernel_uses_larger_tiles(algo):
    """An 11x9 kernel needs the 32-point transform in fft; same check for the others."""
    case = Case("kernel11x9", 1, 2, 13, 12, 2, 11, 9, padding=(5, 4))
    x, w, b, _ = _inputs(case, torch.float64, "cpu")
    assert_close(_forward(algo, case, x, w, b), reference_conv(x, w, b, case), reduction=w[0].numel())


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases("hypothesis", 2, 8), algo=st.sampled_from(ALGOS))
def test_conv2d_random_geometry(case, algo):
    if algo == "fft" and not case.fft_ok:
        algo = "direct"
    x, w, b, gy = _inputs(case, torch.float64, "cpu")
    assert_close(_forward(algo, case, x, w, b), reference_conv(x, w, b, case), reduction=w[0].numel())
    x64, w64 = x.clone().requires_grad_(), w.clone().requires_grad_()
    reference_conv(x64, w64, None, case).backward(gy)
    geometry = (case.stride, case.padding, case.dilation, case.groups)
    gx = triton_kernel(kernels.conv2d_backward_input.algo(algo))(gy, w, (case.H, case.W), *geometry)
    assert_close(gx, x64.grad, reduction=(case.K // case.groups) * case.R * case.S)
    gw = triton_kernel(kernels.conv2d_backward_weight.algo(algo))(x, gy, (case.R, case.S), *geometry)
    assert_close(gw, w64.grad, reduction=gy[:, 0].numel())


# ----------------------------------------------------------------------------------------------
# gemm, im2col / col2im, channel_sum

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,N,K", [(5, 7, 3), (33, 17, 70), (20, 65, 19), (1, 1, 1), (70, 3, 129)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm(M, N, K, trans_a, trans_b, dtype, device):
    g = torch.Generator().manual_seed(M * 1000 + N * 10 + K)
    a = torch.randn(*((K, M) if trans_a else (M, K)), generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    b = torch.randn(*((N, K) if trans_b else (K, N)), generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    c = torch.randn(M, N, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    op_a = a.double().T if trans_a else a.double()
    op_b = b.double().T if trans_b else b.double()
    gemm = triton_kernel(kernels.gemm)
    assert_close(gemm(a, b, trans_a=trans_a, trans_b=trans_b), op_a @ op_b, reduction=K)
    out = c.clone()
    result = gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=0.3, beta=-1.7, out=out)
    assert result.data_ptr() == out.data_ptr()
    assert_close(out, 0.3 * (op_a @ op_b) - 1.7 * c.double(), reduction=K + 1)


def test_gemm_strided_views_and_empty_reduction():
    a = torch.randn(9, 12, dtype=torch.float64)
    b = torch.randn(12, 10, dtype=torch.float64)
    gemm = triton_kernel(kernels.gemm)
    assert_close(gemm(a[::2, 1::2], b[::2, :7]), a[::2, 1::2] @ b[::2, :7], reduction=6)
    c = torch.randn(4, 3, dtype=torch.float64)
    out = c.clone()
    gemm(torch.empty(4, 0, dtype=torch.float64), torch.empty(0, 3, dtype=torch.float64), beta=2.0, out=out)
    assert_close(out, 2.0 * c)


def test_gemm_rejects_bad_arguments():
    gemm = triton_kernel(kernels.gemm)
    a = torch.randn(3, 4)
    with pytest.raises(ValueError, match="inner dimension"):
        gemm(a, torch.randn(5, 2))
    with pytest.raises(TypeError, match="b: expected dtype"):
        gemm(a, torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="a: expected a 2-D"):
        gemm(torch.randn(3), torch.randn(3, 2))
    with pytest.raises(ValueError, match="beta"):
        gemm(a, torch.randn(4, 2), beta=1.0)
    with pytest.raises(ValueError, match="out"):
        gemm(a, torch.randn(4, 2), out=torch.empty(2, 3))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", [c for c in CASES if c.groups == 1], ids=str)
def test_im2col_col2im(case, device):
    x, _, _, _ = _inputs(case, torch.float64, device)
    P, Q = case.out_hw
    (ph, pw), kernel_hw = case.padding, (case.R, case.S)
    bottom = (P - 1) * case.stride[0] + case.dilation[0] * (case.R - 1) + 1 - case.H - ph
    right = (Q - 1) * case.stride[1] + case.dilation[1] * (case.S - 1) + 1 - case.W - pw
    cols = triton_kernel(kernels.im2col)(x, kernel_hw, case.stride, case.padding, case.dilation, (P, Q))
    expected = F.unfold(F.pad(x, (pw, right, ph, bottom)), kernel_hw, dilation=case.dilation, stride=case.stride)
    assert torch.equal(cols, expected)
    # col2im is im2col's adjoint: fold, then cut the padding off
    dcols = torch.randn_like(cols)
    gx = triton_kernel(kernels.col2im)(dcols, (case.H, case.W), kernel_hw, case.stride, case.padding, case.dilation, (P, Q))
    padded_hw = (case.H + ph + bottom, case.W + pw + right)
    folded = F.fold(dcols, padded_hw, kernel_hw, dilation=case.dilation, stride=case.stride)
    folded = F.pad(folded, (0, max(0, -right), 0, max(0, -bottom)))  # rows no output reads: zero
    assert_close(gx, folded[:, :, ph:ph + case.H, pw:pw + case.W], reduction=case.R * case.S)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 1, 1, 1), (3, 5, 33, 40)])
def test_channel_sum(shape, dtype, device):
    t = torch.randn(*shape, dtype=torch.float64).to(dtype=dtype, device=device)
    assert_close(triton_kernel(kernels.channel_sum)(t), t.double().sum((0, 2, 3)),
                 reduction=shape[0] * shape[2] * shape[3])
