"""The cuda backend's tensor-core convolution (algo 'implicit_gemm': conv_implicit_gemm.cu on mma_tile.cuh).

Without a GPU:
  - the compiled code: nvcc for sm_80 and sm_90 emits mma.sync TF32 and cp.async in the PTX, HMMA
    in the SASS, and ptxas reports no spills and no stack frame for any of its kernels;
  - the launches: the real kernel source on the host emulation (tests/cuda_host_emulator.py), whose
    shim models mma.sync from the PTX ISA fragment table, against torch in float64: forward (bias +
    activation), backward input and backward weight (split-K), with TF32 on and off.
On a GPU (marked gpu): the same checks through cupy.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import cuda_host_emulator
from conv_reference import TORCH_ACTIVATIONS, Case, conv_kernel, spelled_out
from fastcnn.backends.cuda import _binaries
from helpers import HAS_GPU, assert_close, round_to_tf32
from fastcnn.contracts import kernels
from test_cuda_conv import CASES, check_conv, make_inputs

from triton_launch_workload import tf32

CUDA_DIR = Path(__file__).resolve().parents[3] / "fastcnn" / "kernels" / "cuda"
NVCC = shutil.which("nvcc")
ALGO = "implicit_gemm"


# ---------------------------------------------------------------------------------------------
# compiled code (nvcc, no GPU)

def _cuobjdump():
    """cuobjdump of the CUDA toolkit, else the copy triton's nvidia backend ships."""
    found = shutil.which("cuobjdump")
    if found:
        return found
    try:
        import triton
    except ImportError:
        return None
    path = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    return str(path) if path.exists() else None


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """PTX for sm_90, SASS (cuobjdump) and ptxas -v of an sm_80 + sm_90 build of conv_implicit_gemm.cu."""
    if NVCC is None:
        pytest.skip("nvcc not on PATH")
    out = tmp_path_factory.mktemp("conv_implicit_gemm")
    common = ["-std=c++17", *_binaries.include_options(), str(CUDA_DIR / "conv_implicit_gemm.cu")]
    ptx = subprocess.run([NVCC, "-ptx", "-arch=compute_90", "-o", str(out / "k.ptx"), *common],
                         capture_output=True, text=True)
    assert ptx.returncode == 0, ptx.stderr
    build = subprocess.run([NVCC, "-cubin", "-arch=sm_80", "-Xptxas", "-v", "-o", str(out / "k80.cubin"), *common],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    build90 = subprocess.run([NVCC, "-cubin", "-arch=sm_90", "-Xptxas", "-v", "-o", str(out / "k90.cubin"), *common],
                             capture_output=True, text=True)
    assert build90.returncode == 0, build90.stderr
    sass = ""
    cuobjdump = _cuobjdump()
    if cuobjdump:
        sass = subprocess.run([cuobjdump, "-sass", str(out / "k90.cubin")], capture_output=True, text=True).stdout
    return {"ptx": (out / "k.ptx").read_text(), "ptxas": build.stderr + build90.stderr, "sass": sass}


KERNELS = [f"conv_implicit_gemm_{d}_{p}_f32" for p in ("tf32", "tf32x3") for d in ("forward", "backward_input", "backward_weight")]


def _ptx_functions(ptx: str) -> dict:
    """PTX text of each .entry, by name."""
    parts = re.split(r"\.visible \.entry (\w+)\(", ptx)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.mark.slow  # three nvcc builds of conv_implicit_gemm.cu, ~50 s on 2 cores
def test_ptx_uses_tensor_cores_and_async_copies(compiled):
    funcs = _ptx_functions(compiled["ptx"])
    assert sorted(funcs) == sorted(KERNELS)
    for name, body in funcs.items():
        mma = body.count("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32")
        # 4 x 4 fragment pairs per 8-wide k step, 2 steps a slice (unrolled); x3 for the split precision
        assert mma == (3 if "tf32x3" in name else 1) * 32, f"{name}: {mma} mma.sync"
        assert "cp.async.ca.shared.global" in body and "cp.async.wait_group" in body, name
        assert "cvt.rna.tf32.f32" in body, name
        assert ".local" not in body, f"{name}: local memory in the PTX"


@pytest.mark.slow  # three nvcc builds of conv_implicit_gemm.cu, ~50 s on 2 cores
def test_no_spills_or_stack(compiled):
    reports = re.findall(r"Compiling entry function '(\w+)' for '(sm_\d+)'\s*\n.*?\n?\s*(\d+) bytes stack frame, "
                         r"(\d+) bytes spill stores, (\d+) bytes spill loads", compiled["ptxas"])
    seen = {(name, arch) for name, arch, *_ in reports}
    assert seen == {(k, a) for k in KERNELS for a in ("sm_80", "sm_90")}, compiled["ptxas"]
    for name, arch, stack, stores, loads in reports:
        assert (stack, stores, loads) == ("0", "0", "0"), f"{name} {arch}: stack {stack}, spills {stores}/{loads}"


@pytest.mark.slow  # three nvcc builds of conv_implicit_gemm.cu, ~50 s on 2 cores
def test_sass_has_hmma(compiled):
    if not compiled["sass"]:
        pytest.skip("no cuobjdump (CUDA toolkit or triton's nvidia backend)")
    parts = re.split(r"Function : (\w+)", compiled["sass"])
    funcs = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    assert sorted(funcs) == sorted(KERNELS)
    for name, body in funcs.items():  # m16n8k8 TF32 tensor-core instruction, one per mma.sync
        assert body.count("HMMA.1688.F32.TF32") == (3 if "tf32x3" in name else 1) * 32, name
        assert "LDGSTS" in body, f"{name}: cp.async did not become LDGSTS"


# ---------------------------------------------------------------------------------------------
# launches on the host emulation

@pytest.fixture
def emulated(monkeypatch):
    cuda_host_emulator.emulate(monkeypatch)
    from fastcnn.backends.cuda import conv_implicit_gemm  # noqa: F401  (registers the kernels)
    return lambda slot: spelled_out(slot.impls["cuda"], slot.name)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[5]], ids=lambda c: c.name)
def test_emulated_tf32x3_matches_float64(emulated, case):
    """TF32 off: the 3xTF32 kernels meet the float32 tolerance in all three passes."""
    with tf32(torch.backends.cudnn, False):
        check_conv(emulated, ALGO, case, torch.float32, "cpu", ("leaky_relu", 0.1))


def check_tf32(kernel, device):
    """TF32 on: each pass equals the float64 convolution of the TF32-rounded operands up to float32
    accumulation (the kernel rounds its inputs with cvt.rna and the fragment layout puts every
    product in its place), and differs from the unrounded one by more than float32 allows."""
    case = Case("tf32_grouped", 2, 8, 9, 10, 6, 3, 3, stride=(1, 2), padding=(1, 1), groups=2)
    x, w, b, gy = make_inputs(case, torch.float32, device, seed=3)
    xr, wr, gyr = (round_to_tf32(t).cpu().double().requires_grad_() for t in (x, w, gy))
    args = (case.stride, case.padding, case.dilation, case.groups)
    lin = F.conv2d(xr, wr, None, *args)
    gx_ref, gw_ref = torch.autograd.grad(lin, (xr, wr), gyr)
    with tf32(torch.backends.cudnn, True):
        y = kernel(kernels.conv2d_forward.algo(ALGO))(x, w, b, *args, case.out_hw, "sigmoid", 0.0)
        gx = kernel(kernels.conv2d_backward_input.algo(ALGO))(gy, w, (case.H, case.W), *args)
        gw = kernel(kernels.conv2d_backward_weight.algo(ALGO))(x, gy, (case.R, case.S), *args)
    cg, kg = case.C // case.groups, case.K // case.groups
    bias = b.cpu().double()[None, :, None, None]
    assert_close(y, torch.sigmoid(lin + bias), reduction=cg * 9, name="forward")
    assert_close(gx, gx_ref, reduction=kg * 9, name="backward input")
    assert_close(gw, gw_ref, reduction=case.N * case.out_hw[0] * case.out_hw[1], name="backward weight")
    # and the rounding is really there: the unrounded float64 result is further away than float32 allows
    exact = F.conv2d(x.cpu().double(), w.cpu().double(), None, *args)
    with pytest.raises(AssertionError):
        assert_close(y, torch.sigmoid(exact + bias), reduction=cg * 9)


def test_emulated_tf32_rounds_operands_and_nothing_else(emulated):
    check_tf32(emulated, "cpu")


def test_emulated_multi_tile_and_split_k(emulated, monkeypatch):
    """More than one 128 x 128 tile in M and N, a reduction over several 16-wide slices with a
    ragged end, and backward weight cut into split-K slices."""
    from fastcnn.backends.cuda import _conv_common, gemm  # _conv_common: the split-K weight-gradient launch
    monkeypatch.setattr(gemm, "SM_COUNT_HINT", 64)
    original = _conv_common.split_k_plan
    monkeypatch.setattr(_conv_common, "split_k_plan", lambda blocks, k, max_splits: original(blocks, k, max_splits, 40))
    case = Case("two_tiles", 2, 5, 9, 8, 130, 3, 3, padding=(1, 1))
    with tf32(torch.backends.cudnn, False):
        check_conv(emulated, ALGO, case, torch.float32, "cpu", ("relu", 0.0))


def test_float64_runs_the_fma_kernels(emulated):
    """No TF32 for float64: implicit_gemm runs algo 'direct''s double-precision kernels."""
    check_conv(emulated, ALGO, CASES[1], torch.float64, "cpu", ("tanh", 0.0))


# ---------------------------------------------------------------------------------------------
# GPU

gpu = pytest.mark.gpu
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU visible to torch")


def _gpu_kernel(slot):
    return conv_kernel("cuda", slot)


@gpu
@needs_gpu
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gpu_conv_implicit_gemm_tf32x3(case):
    with tf32(torch.backends.cudnn, False):
        check_conv(_gpu_kernel, ALGO, case, torch.float32, "cuda", ("elu", 0.7))


@gpu
@needs_gpu
def test_gpu_conv_implicit_gemm_tf32():
    check_tf32(_gpu_kernel, "cuda")


# ---------------------------------------------------------------------------------------------
# auto

def test_auto_takes_tensor_cores_on_big_gpu_layers_only():
    from fastcnn.ops._conv_algo import Layer, heuristic
    options = ["direct", "im2col", "fft", "implicit_gemm"]
    big = Layer(64, 256, 384, (3, 3), gpu=True)
    for direction in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"):
        assert heuristic(options, big, direction) == ALGO
        assert heuristic(options, big._replace(gpu=False), direction) != ALGO
    depthwise = Layer(64, 256, 256, (3, 3), groups=256, gpu=True)
    assert heuristic(options, depthwise) == "direct"
    stem = Layer(64, 3, 64, (7, 7), gpu=True)  # 147-long reduction, but 3 input channels
    assert heuristic(options, stem, "conv2d_forward") == ALGO
    assert heuristic(options, stem, "conv2d_backward_input") != ALGO
