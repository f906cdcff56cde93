"""The triton implicit-GEMM convolution (fastcnn/kernels/triton/conv_implicit_gemm.py) beyond the
shared matrix of tests/backends/triton/test_triton_conv.py (which runs it with the other algorithms on odd shapes,
float32 IEEE and float64): the TF32 rule, float16, the strided backward-input phases, split-K,
the autotune configs, and a float64 gradcheck through ops.conv2d. CPU tensors run under the
interpreter; the gpu-marked tests run the same on CUDA tensors where one exists.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fastcnn import ops
from fastcnn.contracts import kernels
from conv_reference import conv_kernel
from helpers import HAS_GPU, assert_close, gradcheck, round_to_tf32

gpu = pytest.mark.gpu
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU")


def _module():
    from fastcnn.kernels.triton import conv_implicit_gemm
    return conv_implicit_gemm


def _passes(x, w, b, gy, stride, padding, dilation, groups):
    fwd = conv_kernel("triton", kernels.conv2d_forward.implicit_gemm)
    bwd_in = conv_kernel("triton", kernels.conv2d_backward_input.implicit_gemm)
    bwd_w = conv_kernel("triton", kernels.conv2d_backward_weight.implicit_gemm)
    y = fwd(x, w, b, stride, padding, dilation, groups, tuple(gy.shape[2:]), None, 0.0)
    gx = bwd_in(gy, w, tuple(x.shape[2:]), stride, padding, dilation, groups)
    gw = bwd_w(x, gy, tuple(w.shape[2:]), stride, padding, dilation, groups)
    return y, gx, gw


def _reference(x, w, b, gy, stride, padding, dilation, groups):
    x64, w64 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    y = F.conv2d(x64, w64, None if b is None else b.double(), stride, padding, dilation, groups)
    y.backward(gy.double())
    return y.detach(), x64.grad, w64.grad


def _inputs(N, C, H, W, K, R, S, stride, padding, dilation, groups, dtype, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    P = (H + 2 * padding[0] - dilation[0] * (R - 1) - 1) // stride[0] + 1
    Q = (W + 2 * padding[1] - dilation[1] * (S - 1) - 1) // stride[1] + 1

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    return randn(N, C, H, W), randn(K, C // groups, R, S), randn(K), randn(N, K, P, Q)


def _check_all(dtype, device, geometry, shape):
    stride, padding, dilation, groups = geometry
    x, w, b, gy = _inputs(*shape, *geometry, dtype=dtype, device=device)
    y, gx, gw = _passes(x, w, b, gy, *geometry)
    ry, rgx, rgw = _reference(x, w, b, gy, *geometry)
    K, Cg, R, S = w.shape
    assert_close(y, ry, reduction=Cg * R * S + 1, name="forward")
    assert_close(gx, rgx, reduction=K // groups * R * S, name="backward input")
    assert_close(gw, rgw, reduction=gy[:, 0].numel(), name="backward weight")


# strided backward input: every phase class, including phases no tap lands on (stride > kernel)
PHASE_CASES = [
    ((3, 2), (1, 0), (1, 1), 1, (2, 3, 10, 9, 4, 3, 3)),
    ((2, 2), (0, 0), (1, 1), 1, (1, 2, 9, 8, 3, 1, 1)),   # 1x1 stride 2: three phases get no tap
    ((2, 3), (2, 1), (2, 1), 2, (1, 4, 11, 10, 6, 3, 2)),  # dilation + groups
    ((4, 1), (1, 1), (1, 1), 1, (1, 2, 9, 6, 2, 2, 3)),   # stride > kernel
]


@pytest.mark.parametrize("stride,padding,dilation,groups,shape", PHASE_CASES)
def test_strided_phases(stride, padding, dilation, groups, shape):
    _check_all(torch.float64, "cpu", (stride, padding, dilation, groups), (*shape[:5], *shape[5:]))


def test_tap_table_lists_the_landing_taps():
    """Phase (a, b) of a stride-2 3x3 pad-1 convolution: rows a=0 are read by taps r=1 only, a=1 by
    r=0 and r=2; the table's (tap, dp, dq) reproduce p = (h + ph - r*dh) / sh."""
    table = _module()._tap_table((3, 3), (2, 2), (1, 1), (1, 1), "cpu")
    assert table.shape == (4, 3 * 3 * 3 + 1)
    counts = table[:, 0].tolist()
    assert counts == [1, 2, 2, 4]
    for phase, (a, b) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for t in range(counts[phase]):
            tap, dp, dq = table[phase, 1 + 3 * t: 4 + 3 * t].tolist()
            r, s = divmod(tap, 3)
            assert (a + 1 - r) % 2 == 0 and (b + 1 - s) % 2 == 0
            assert dp == (a + 1 - r) // 2 and dq == (b + 1 - s) // 2


def test_backward_weight_split_k_is_used_and_exact():
    """A reduction of 2*16*16 pixels over one 3x3 tap grid splits into chunks summed by
    sum_splits_kernel; the result matches the reference like the unsplit path."""
    m = _module()
    assert m.split_count(9, 2 * 16 * 16) == 4
    assert m.split_count(10_000, 1 << 20) == 1  # a full grid needs no split
    _check_all(torch.float64, "cpu", ((1, 1), (1, 1), (1, 1), 1), (2, 3, 16, 16, 4, 3, 3))


def test_float16_accumulates_in_float32():
    """float16 operands, float32 accumulation, float16 output: within float16 rounding of the exact
    result on a reduction of 144 products (a float16 accumulator would drift far beyond)."""
    _check_all(torch.float16, "cpu", ((1, 1), (1, 1), (1, 1), 1), (1, 16, 6, 7, 8, 3, 3))


def test_bfloat16_on_cpu_is_rejected_by_name():
    x, w, b, gy = _inputs(1, 2, 5, 5, 2, 3, 3, (1, 1), (1, 1), (1, 1), 1, torch.bfloat16)
    with pytest.raises(TypeError, match="x: implicit_gemm"):
        conv_kernel("triton", kernels.conv2d_forward.implicit_gemm)(x, w, b, (1, 1), (1, 1), (1, 1), 1, (5, 5), None, 0.0)


def test_precision_follows_torch_flags(monkeypatch):
    """TF32 for float32 exactly when torch.backends.cudnn.allow_tf32 says so (torch's rule for its
    convolutions); float64 always exact; the GEMM follows torch.backends.cuda.matmul.allow_tf32."""
    from fastcnn.kernels.triton._conv_common import dot_precision

    conv_precision = _module().conv_precision
    monkeypatch.delenv("FASTCNN_TRITON_TF32", raising=False)
    from triton_launch_workload import tf32

    with tf32(torch.backends.cudnn, True):
        assert conv_precision(torch.float32) == "tf32" and conv_precision(torch.float64) == "ieee"
    with tf32(torch.backends.cudnn, False):
        assert conv_precision(torch.float32) == "ieee"
    with tf32(torch.backends.cuda.matmul, True):
        assert dot_precision(torch.float32, matmul=True) == "tf32" and dot_precision(torch.float32) == "ieee"
        assert dot_precision(torch.float64, matmul=True) == "ieee"
    with tf32(torch.backends.cuda.matmul, False):
        assert dot_precision(torch.float32, matmul=True) == "ieee"


def test_autotune_configs():
    """Interpreter: one config, so nothing is benchmarked on CPU tensors. The shipped GPU sets: the
    pruner keeps the FMA tiles for float64 and IEEE float32, tensor-core tiles otherwise, drops
    tiles far wider than the channels, and never returns nothing."""
    import triton

    from fastcnn.backends.triton._lib import _import_interpreted

    interpreted = _import_interpreted("fastcnn.kernels.triton.conv_implicit_gemm")
    assert [len(k.configs) for k in (interpreted.igemm_forward_kernel, interpreted.igemm_backward_input_kernel,
                                     interpreted.igemm_backward_weight_kernel)] == [1, 1, 1]
    m = _module()
    gpu_configs = [triton.Config({"BLOCK_M": a, "BLOCK_N": b, "BLOCK_K": c}, num_warps=w, num_stages=s)
                   for a, b, c, w, s in m.TENSOR_CORE_CONFIGS + m.FMA_CONFIGS]
    tf32 = m.configs_for(gpu_configs, torch.float32, "tf32", 1 << 16, 256)
    assert [m._shape(c) for c in tf32] == list(m.TENSOR_CORE_CONFIGS)
    assert m.configs_for(gpu_configs, torch.bfloat16, "tf32", 1 << 16, 256) == tf32
    for dtype, precision in ((torch.float64, "ieee"), (torch.float32, "ieee")):
        assert [m._shape(c) for c in m.configs_for(gpu_configs, dtype, precision, 1 << 16, 256)] == list(m.FMA_CONFIGS)
    narrow = m.configs_for(gpu_configs, torch.float32, "tf32", 1 << 16, 8)
    assert narrow and all(c.kwargs["BLOCK_N"] <= 32 for c in narrow)
    assert m.configs_for(gpu_configs, torch.float16, "tf32", 1, 1)


def test_gradcheck_through_public_op():
    torch.manual_seed(5)
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    gradcheck(lambda x, w, b: ops.conv2d(x, w, b, (2, 1), (1, 0), (1, 2), 2, algo="implicit_gemm",
                                         backend="triton"), (x, w, b))


def test_auto_picks_implicit_gemm_on_a_gpu_only():
    from fastcnn.ops import _conv_algo

    options = ["direct", "im2col", "fft", "implicit_gemm"]
    for direction in _conv_algo.DIRECTIONS:
        gpu_layer = _conv_algo.Layer(16, 256, 384, (3, 3), None, gpu=True)
        assert _conv_algo.heuristic(options, gpu_layer, direction) == "implicit_gemm"
        assert _conv_algo.heuristic(options, gpu_layer._replace(gpu=False), direction) != "implicit_gemm"


# ------------------------------------------------------------------------------------------ GPU

@gpu
@needs_gpu
@pytest.mark.parametrize("geometry", [((1, 1), (1, 1), (1, 1), 1), ((2, 2), (1, 0), (1, 2), 2)])
def test_tf32_on_gpu_is_exact_on_tf32_rounded_inputs(geometry):
    """With allow_tf32 the forward equals the float64 convolution of the TF32-rounded operands up to
    float32 accumulation: the TF32 path rounds the inputs and nothing else."""
    stride, padding, dilation, groups = geometry
    x, w, b, gy = _inputs(2, 32, 12, 11, 64, 3, 3, *geometry, dtype=torch.float32, device="cuda")
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    try:
        y = conv_kernel("triton", kernels.conv2d_forward.implicit_gemm)(x, w, b, stride, padding, dilation, groups,
                                                                        tuple(gy.shape[2:]), None, 0.0)
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    expected = F.conv2d(round_to_tf32(x).double(), round_to_tf32(w).double(), b.double(), stride, padding,
                        dilation, groups)
    assert_close(y, expected, reduction=w[0].numel() + 1)


@gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_gpu_dtypes_and_autotune(dtype):
    """Every dtype on CUDA tensors with the full autotune set (float32 IEEE: conftest turns TF32 off)."""
    _check_all(dtype, "cuda", ((2, 1), (1, 1), (1, 1), 2), (3, 32, 15, 14, 48, 3, 3))
