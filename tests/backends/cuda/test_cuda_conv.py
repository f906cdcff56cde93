"""cuda backend GEMM and convolution kernels (fastcnn/kernels/cuda/{gemm,conv_*}.cu).

Three layers, so that most of it runs on a machine without a GPU:
  (a) compile: every .cu compiles with NVRTC as cupy runs it (needs only libnvrtc, no GPU) and
      only includes standard headers where NVRTC does not see them (nvcc for sm_80 / sm_90 with warnings as errors: tests/backends/cuda/test_cuda_compile.py, which
      compiles every .cu in fastcnn/kernels/cuda);
  (b) geometry: conv_geometry.cuh, compiled into fastcnn._C.cuda_geometry, against plain Python;
  (c) launches: every launcher against torch (float64 reference) on odd shapes, both
      - on CPU tensors, with the kernel source executed by the host emulation
        (tests/cuda_host_emulator.py: real kernel code, host threads, no GPU), and
      - on a CUDA GPU through cupy/NVRTC (marked gpu; skipped with the reason printed here).
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st
import torch.nn.functional as F

import cuda_host_emulator
from conv_reference import TORCH_ACTIVATIONS, Case, conv_cases, conv_kernel, reference_conv, spelled_out
import nvrtc_compile
from fastcnn.backends.cuda import _binaries
from helpers import HAS_GPU, assert_close
from fastcnn.contracts import kernels

CUDA_DIR = Path(__file__).resolve().parents[3] / "fastcnn" / "kernels" / "cuda"
OWN_CU = ["gemm.cu", "conv_im2col.cu", "conv_direct.cu", "conv_fft.cu", "conv_implicit_gemm.cu"]
SHARED_DIR = _binaries.shared_dir(CUDA_DIR)  # host/device headers the C++ extension includes too
OWN_HEADERS = ["common.cuh", "conv_shape.cuh", "conv_geometry.cuh", "conv_epilogue.cuh", "conv_stores.cuh",
               "gemm_tile.cuh", "mma_tile.cuh"]


# ---------------------------------------------------------------------------------------------
# (a) compile

@pytest.mark.parametrize("source", OWN_CU + OWN_HEADERS)
def test_sources_are_nvrtc_safe(source):
    """NVRTC has no standard library: a <...> include must sit under `#if !defined(__CUDACC_RTC__)`,
    and kernels are extern "C" with the _f32 / _f64 names the launchers ask for."""
    text = (CUDA_DIR / source if (CUDA_DIR / source).exists() else SHARED_DIR / source).read_text()
    guard_depth, stack = 0, []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#if"):
            guarded = "!defined(__CUDACC_RTC__)" in s.replace(" ", "")
            stack.append(guarded)
            guard_depth += guarded
        elif s.startswith("#endif"):
            guard_depth -= stack.pop()
        elif s.startswith("#include <"):
            assert guard_depth > 0, f"{source}: '{s}' is visible to NVRTC, which has no standard headers"
    if source.endswith(".cu"):
        names = cuda_host_emulator._kernels(source[:-3])
        assert names, f"{source}: no extern \"C\" kernels"
        for name, _ in names:
            assert name.endswith(("_f32", "_f64")), f"{source}: kernel {name} lacks the _f32/_f64 suffix"


@pytest.mark.parametrize("arch", [80, pytest.param(90, marks=pytest.mark.slow)], ids=["compute_80", "compute_90"])
@pytest.mark.parametrize("source", OWN_CU)
def test_cu_compiles_with_nvrtc(source, arch):
    """The run-time path: NVRTC with cupy's options (-std=c++17, -I kernels/cuda and kernels/shared), no warnings."""
    lib = nvrtc_compile.find_library()
    if lib is None:
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc, or set FASTCNN_NVRTC_LIB)")
    res, log = nvrtc_compile.compile_source(lib, CUDA_DIR / source,
                                            ["-std=c++17", *_binaries.include_options(),
                                             f"--gpu-architecture=compute_{arch}"])
    assert res == 0, f"NVRTC failed on {source} (compute_{arch}):\n{log}"
    assert "warning" not in log.lower(), f"NVRTC warnings on {source}:\n{log}"


# ---------------------------------------------------------------------------------------------
# (b) geometry header against plain Python

def _geometry():
    fastcnn_C = pytest.importorskip("fastcnn._C", reason="C++ extension not built")
    return fastcnn_C.cuda_geometry


def test_conv_out_size_matches_formula_and_torch():
    g = _geometry()
    checked = 0
    for n in (1, 2, 5, 8, 13):
        for k in (1, 2, 3, 4, 7):
            for stride in (1, 2, 3):
                for dil in (1, 2, 3):
                    for pad in (0, 1, 4):
                        for extra in (0, 1):
                            pb, pe = pad, pad + extra
                            span = dil * (k - 1) + 1
                            want = (n + pb + pe - span) // stride + 1 if n + pb + pe >= span else 0
                            assert g.conv_out_size(n, k, stride, pb, pe, dil) == want
                            checked += 1
    assert checked == 5 * 5 * 3 * 3 * 3 * 2
    # spot check against torch's own shape rule (symmetric padding)
    x = torch.zeros(1, 1, 11, 9)
    for (r, s, st, pd, dl) in [((3, 2), (2, 1), (2, 3), (1, 2), (2, 1)), ((5, 1), (3, 3), (1, 1), (2, 0), (1, 1))]:
        y = F.conv2d(x, torch.zeros(1, 1, *r), stride=st, padding=pd, dilation=dl)
        assert y.shape[2] == g.conv_out_size(11, r[0], st[0], pd[0], pd[0], dl[0])
        assert y.shape[3] == g.conv_out_size(9, r[1], st[1], pd[1], pd[1], dl[1])


def test_conv_in_and_out_coords_are_inverse():
    """conv_out_coord(i, tap) is the unique output o with conv_in_coord(o, tap) == i, else -1."""
    g = _geometry()
    for stride in (1, 2, 3):
        for dil in (1, 2, 3):
            for pad in (0, 1, 3, 5):
                for k in (1, 2, 3, 5):
                    n_in = 9
                    n_out = g.conv_out_size(n_in, k, stride, pad, pad, dil)
                    for tap in range(k):
                        for o in range(n_out):
                            assert g.conv_in_coord(o, tap, stride, pad, dil) == o * stride - pad + tap * dil
                        for i in range(-3, n_in + 3):
                            hits = [o for o in range(n_out) if o * stride - pad + tap * dil == i]
                            want = hits[0] if hits else -1
                            assert g.conv_out_coord(i, tap, stride, pad, dil, n_out) == want, (i, tap, stride, pad, dil)


def test_conv_coords_are_64_bit():
    g = _geometry()
    big = 3 * 2 ** 33
    assert g.conv_in_coord(big, 2, 3, 1, 2) == big * 3 - 1 + 4
    assert g.conv_out_coord(big * 3 - 1 + 4, 2, 3, 1, 2, big + 1) == big
    assert g.conv_out_size(big, 3, 1, 1, 1, 1) == big


def test_fft_tile_counts():
    g = _geometry()
    for tile in (8, 16, 32):
        assert g.fft_freq_count(tile) == tile * (tile // 2 + 1)
        for k in range(1, tile + 1):
            step = g.fft_tile_step(tile, k)
            assert step == tile - k + 1
            for out in (1, step - 1, step, step + 1, 3 * step + 2):
                if out < 1:
                    continue
                n = g.fft_tile_count(out, step)
                assert (n - 1) * step < out <= n * step


def test_dft_twiddles_match_cmath():
    g = _geometry()
    for tile in (8, 16, 32):
        for m in list(range(-tile, 2 * tile)) + [10 ** 12 + 3, -(10 ** 12) - 5]:
            for sign in (-1, 1):
                re, im = g.dft_twiddle(m, tile, sign)
                angle = 2 * math.pi * (m % tile) / tile
                assert abs(re - math.cos(angle)) < 1e-15
                assert abs(im - sign * math.sin(angle)) < 1e-15


# ---------------------------------------------------------------------------------------------
# (c) launches: shared case list and checks, run on the host emulation and on a GPU

CASES = [
    Case("odd_s23_d21_g2", 2, 6, 9, 11, 4, 3, 2, stride=(2, 3), padding=(2, 1), dilation=(2, 1), groups=2),
    Case("one_channel_pad_gt_half", 1, 1, 5, 7, 3, 3, 3, padding=(4, 3)),
    Case("pointwise_g3", 3, 3, 8, 6, 3, 1, 1, groups=3),
    Case("k7x5_t16", 2, 4, 12, 13, 5, 7, 5, padding=(3, 1)),
    Case("same_even_kernel", 1, 2, 6, 7, 3, 4, 2, padding=(1, 0), out_hw=(6, 7)),
    Case("stride3_dil3", 2, 3, 14, 10, 2, 2, 3, stride=(3, 3), padding=(0, 2), dilation=(3, 2)),
]
SLOW_CASES = [
    Case("k11_t32", 1, 2, 20, 18, 3, 11, 9, padding=(5, 4)),
    Case("wide_channels", 2, 40, 7, 9, 36, 3, 3, padding=(1, 1), groups=4),
]
ALGOS = ["direct", "im2col", "fft"]
ACTIVATIONS = [(None, 0.0), ("relu", 0.0), ("leaky_relu", 0.1), ("elu", 1.3), ("sigmoid", 0.0), ("tanh", 0.0)]


def make_inputs(case, dtype, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case.N, case.C, case.H, case.W, generator=gen, dtype=torch.float64)
    w = torch.randn(case.K, case.C // case.groups, case.R, case.S, generator=gen, dtype=torch.float64)
    b = torch.randn(case.K, generator=gen, dtype=torch.float64)
    gy = torch.randn(case.N, case.K, *case.out_hw, generator=gen, dtype=torch.float64)
    return [t.to(device=device, dtype=dtype) for t in (x, w, b, gy)]


def fft_extra_terms(case):
    """The FFT path adds a forward and an inverse TS x TS transform to every product: counted as
    TS*TS more terms in the reduction length used for the tolerance."""
    from fastcnn.backends.cuda.conv_fft import fft_tile_size
    ts = fft_tile_size(case.R, case.S)
    return ts * ts


def check_conv(kernel, algo, case, dtype, device, activation=(None, 0.0)):
    """Forward (with bias + activation), backward input and backward weight against torch in float64."""
    if algo == "fft" and not case.fft_ok:
        pytest.skip("fft takes stride 1 and dilation 1 only (tested to raise in test_fft_rejects_*)")
    x, w, b, gy = make_inputs(case, dtype, device)
    x64, w64, b64, gy64 = (t.detach().cpu().double().requires_grad_() for t in (x, w, b, gy))
    kind, p = activation
    y_ref = TORCH_ACTIVATIONS[kind](reference_conv(x64, w64, b64, case), p)
    lin = reference_conv(x64, w64, None, case)
    gx_ref, gw_ref = torch.autograd.grad(lin, (x64, w64), gy64)

    cg, kg = case.C // case.groups, case.K // case.groups
    extra = fft_extra_terms(case) if algo == "fft" else 0
    y = kernel(kernels.conv2d_forward.algo(algo))(x, w, b, case.stride, case.padding, case.dilation, case.groups,
                                                  case.out_hw, kind, p)
    assert y.dtype == dtype and y.device.type == torch.device(device).type
    assert_close(y, y_ref, reduction=cg * case.R * case.S + extra * cg, name=f"{algo} forward")
    gx = kernel(kernels.conv2d_backward_input.algo(algo))(gy, w, (case.H, case.W), case.stride, case.padding,
                                                          case.dilation, case.groups)
    assert_close(gx, gx_ref, reduction=kg * case.R * case.S + extra * kg, name=f"{algo} backward input")
    gw = kernel(kernels.conv2d_backward_weight.algo(algo))(x, gy, (case.R, case.S), case.stride, case.padding,
                                                           case.dilation, case.groups)
    n_pq = case.N * case.out_hw[0] * case.out_hw[1]
    assert_close(gw, gw_ref, reduction=n_pq + extra * n_pq, name=f"{algo} backward weight")


def check_gemm_family(kernel, dtype, device):
    gen = torch.Generator().manual_seed(1)
    for (M, K, N) in [(37, 29, 131), (1, 1, 1), (130, 9, 257), (64, 0, 5)]:
        a = torch.randn(M, K, generator=gen, dtype=torch.float64)
        bm = torch.randn(K, N, generator=gen, dtype=torch.float64)
        c = kernel(kernels.gemm)(a.to(device, dtype), bm.to(device, dtype))
        assert_close(c, a @ bm, reduction=K, name=f"gemm {M}x{K}x{N}")
    a = torch.randn(3, 17, 40, generator=gen, dtype=torch.float64)
    bm = torch.randn(3, 40, 12, generator=gen, dtype=torch.float64)
    assert_close(kernel(kernels.gemm)(a.to(device, dtype), bm.to(device, dtype)), a @ bm, reduction=40, name="batched gemm")
    gy = torch.randn(3, 5, 4, 7, generator=gen, dtype=torch.float64)
    assert_close(kernel(kernels.channel_sum)(gy.to(device, dtype)), gy.sum((0, 2, 3)), reduction=3 * 4 * 7,
                 name="channel_sum")


def check_im2col_pair(kernel, dtype, device):
    case = CASES[0]
    x, _, _, _ = make_inputs(case, dtype, device)
    args = ((case.R, case.S), case.stride, case.padding, case.dilation)
    col = kernel(kernels.im2col)(x, *args, case.out_hw)
    ref = F.unfold(x.cpu().double(), (case.R, case.S), case.dilation, case.padding, case.stride)
    assert_close(col, ref, name="im2col")
    fold = F.fold(ref, (case.H, case.W), (case.R, case.S), case.dilation, case.padding, case.stride)
    back = kernel(kernels.col2im)(col, (case.H, case.W), *args, case.out_hw)
    assert_close(back, fold, reduction=case.R * case.S, name="col2im")


# --- host emulation (CPU tensors, kernel source on host threads) ------------------------------

@pytest.fixture
def emulated(monkeypatch):
    cuda_host_emulator.emulate(monkeypatch)
    from fastcnn.backends.cuda import conv_bias, conv_direct, conv_fft, conv_im2col, gemm  # noqa: F401  (register the kernels)

    def kernel(slot):  # the registered cuda kernel, without the backend's GPU probe
        return spelled_out(slot.impls["cuda"], slot.name)
    return kernel


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_emulated_gemm_and_channel_sum(emulated, dtype):
    check_gemm_family(emulated, dtype, "cpu")


def test_emulated_im2col_col2im(emulated):
    check_im2col_pair(emulated, torch.float64, "cpu")


@pytest.mark.parametrize("case", CASES, ids=repr)
@pytest.mark.parametrize("algo", ALGOS)
def test_emulated_conv(emulated, algo, case):
    check_conv(emulated, algo, case, torch.float64, "cpu", ("relu", 0.0))


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: str(a[0]))
def test_emulated_fused_activation(emulated, activation):
    check_conv(emulated, "direct", CASES[1], torch.float64, "cpu", activation)


@pytest.mark.parametrize("algo", ALGOS)
def test_emulated_conv_float32(emulated, algo):
    check_conv(emulated, algo, CASES[3], torch.float32, "cpu", ("elu", 0.7))


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=repr)
@pytest.mark.parametrize("algo", ALGOS)
def test_emulated_conv_slow(emulated, algo, case):
    check_conv(emulated, algo, case, torch.float64, "cpu", ("tanh", 0.0))


def test_emulated_split_k_weight_grad(emulated, monkeypatch):
    """Force several K splits so the split-K slices and sum_slices are exercised."""
    from fastcnn.backends.cuda import _conv_common, conv_fft, gemm
    monkeypatch.setattr(gemm, "SM_COUNT_HINT", 4096)
    original = gemm.split_k_plan
    for module in (_conv_common, conv_fft):  # the direct weight gradient's split-K launch, the fft's
        monkeypatch.setattr(module, "split_k_plan", lambda blocks, k, max_splits: original(blocks, k, max_splits, 8))
        splits, _ = module.split_k_plan(1, 200, 100)
        assert splits > 1
    case = Case("split", 3, 2, 20, 20, 3, 2, 2, padding=(1, 0))
    for algo in ("direct", "fft"):
        check_conv(emulated, algo, case, torch.float64, "cpu")


# --- argument errors (no launch needed) -------------------------------------------------------

def test_fft_rejects_stride_and_dilation():
    from fastcnn.backends.cuda import conv_fft
    x, w = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match="stride"):
        spelled_out(conv_fft._fft_forward, "conv2d_forward.fft")(x, w, None, (2, 2), (0, 0), (1, 1), 1, (3, 3))
    with pytest.raises(ValueError, match="dilation"):
        spelled_out(conv_fft._fft_backward_input, "conv2d_backward_input.fft")(torch.zeros(1, 1, 4, 4), w, (8, 8), (1, 1),
                                                                          (0, 0), (2, 1), 1)
    with pytest.raises(ValueError, match="stride"):
        spelled_out(conv_fft._fft_backward_weight, "conv2d_backward_weight.fft")(x, torch.zeros(1, 1, 3, 3), (3, 3), (1, 2),
                                                                            (0, 0), (1, 1), 1)


def test_fft_rejects_kernels_beyond_the_largest_tile():
    from fastcnn.backends.cuda import conv_fft
    assert conv_fft.fft_tile_size(17, 3) == 32
    with pytest.raises(ValueError, match="kernel_size"):
        conv_fft.fft_tile_size(18, 3)


def test_unknown_activation_is_rejected():
    from fastcnn.contracts.activation import fused_code
    with pytest.raises(ValueError, match="activation"):
        fused_code("gelu")


# --- GPU (cupy + NVRTC) -----------------------------------------------------------------------

def _cuda_reason():
    if not HAS_GPU:
        return "no CUDA GPU on this machine: cuda kernel launch tests skipped"
    from fastcnn._registry import available_backends
    info = available_backends()["cuda"]
    return None if info["available"] else f"cuda backend unavailable: {info['reason']}"


def _gpu_kernel(slot):
    return conv_kernel("cuda", slot)


def _gpu_skip():
    reason = _cuda_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_gpu_gemm_and_channel_sum(dtype):
    _gpu_skip()
    check_gemm_family(_gpu_kernel, dtype, "cuda")


@pytest.mark.gpu
def test_gpu_im2col_col2im():
    _gpu_skip()
    for dtype in (torch.float64, torch.float32):
        check_im2col_pair(_gpu_kernel, dtype, "cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES + SLOW_CASES, ids=repr)
@pytest.mark.parametrize("algo", ALGOS)
def test_gpu_conv(algo, case, dtype):
    _gpu_skip()
    check_conv(_gpu_kernel, algo, case, dtype, "cuda", ("leaky_relu", 0.2))


@pytest.mark.gpu
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: str(a[0]))
@pytest.mark.parametrize("algo", ALGOS)
def test_gpu_fused_activation(algo, activation):
    _gpu_skip()
    check_conv(_gpu_kernel, algo, CASES[1], torch.float64, "cuda", activation)


@pytest.mark.gpu
@pytest.mark.parametrize("algo", ALGOS)
def test_gpu_conv_larger(algo):
    """Shapes with many tiles in every grid dimension, split-K and vectorised loads."""
    _gpu_skip()
    check_conv(_gpu_kernel, algo, Case("larger", 16, 64, 30, 28, 96, 5, 5, padding=(2, 2)), torch.float32, "cuda",
               ("relu", 0.0))


@pytest.mark.gpu
@pytest.mark.slow
def test_gpu_direct_index_math_past_2_31():
    """x has more than 2^31 elements: every flat index must be 64-bit."""
    _gpu_skip()
    free, _ = torch.cuda.mem_get_info()
    if free < 24 * 2 ** 30:
        pytest.skip("needs about 24 GiB of free GPU memory")
    x = torch.randn(2, 4, 16384, 16385, device="cuda")  # 2^31 + 2^17 elements
    w = torch.randn(2, 4, 3, 3, device="cuda")
    y = _gpu_kernel(kernels.conv2d_forward.direct)(x, w, None, (1, 1), (1, 1), (1, 1), 1, (16384, 16385), None, 0.0)
    ref = F.conv2d(x[1:, :, -40:, -40:].double(), w.double(), padding=1)
    assert_close(y[1:, :, -39:-1, -39:-1], ref[..., 1:-1, 1:-1], reduction=36, name="tail of a >2^31 tensor")


# --- property-based: random valid shapes on the host emulation ---------------------------------

@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(case=conv_cases("hyp", 3, 11), algo=st.sampled_from(ALGOS))
def test_emulated_conv_random_shapes(algo, case):
    ok, why = cuda_host_emulator.available()
    if not ok:
        pytest.skip(why)
    from fastcnn.backends.cuda import _lib
    from fastcnn.backends.cuda import conv_direct, conv_fft, conv_im2col  # noqa: F401  (register the kernels)
    saved = _lib.launch
    _lib.launch = cuda_host_emulator.launch  # hypothesis reruns the body: no function-scoped fixture
    try:
        if algo == "fft":  # same draw with stride 1, dilation 1 (and room for the kernel)
            case = Case("hyp_fft", case.N, case.C, case.H + 4, case.W + 4, case.K, case.R, case.S,
                        padding=case.padding, groups=case.groups)
        check_conv(lambda slot: spelled_out(slot.impls["cuda"], slot.name), algo, case, torch.float64, "cpu", ("sigmoid", 0.0))
    finally:
        _lib.launch = saved
