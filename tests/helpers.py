"""Shared test tools: which backends run here, tolerances that scale with the reduction length and
the values' size against a float64 reference, a float64 gradcheck wrapper, the ISA switch."""
from __future__ import annotations

import math

import pytest
import torch

import fastcnn
from fastcnn._registry import available_backends as _backends

# The kernel backends usable here, as they declare themselves (fastcnn/backends/<name>/__init__.py).
_USABLE = {name: info["devices"] for name, info in _backends().items() if info["available"] and info["kernels"]}

# Kernel backends that take CPU tensors here (triton runs under its interpreter).
CPU_BACKENDS = [b for b, devices in _USABLE.items() if "cpu" in devices]
HAS_GPU = torch.cuda.is_available()
GPU_BACKENDS = [b for b, devices in _USABLE.items() if "cuda" in devices and HAS_GPU]


def backend_params():
    """pytest params (backend, device): every kernel backend on CPU tensors, plus the GPU ones
    (marked gpu; a skip with the reason printed where there is no GPU)."""
    params = [pytest.param(b, "cpu", id=b) for b in CPU_BACKENDS]
    params += [pytest.param(b, "cuda", id=f"{b}-cuda", marks=pytest.mark.gpu) for b in GPU_BACKENDS]
    if not HAS_GPU:
        params.append(pytest.param("cuda", "cuda", id="cuda-gpu", marks=[
            pytest.mark.gpu, pytest.mark.skip(reason="no CUDA GPU on this machine: cuda/triton GPU launch tests skipped")]))
    return params


EPS = {torch.float32: 2.0 ** -23, torch.float64: 2.0 ** -52, torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, reduction: int = 1, factor: float = 8.0,
                 scale: float = None, name: str = "output") -> None:
    """|actual - expected| <= factor * eps(actual.dtype) * sqrt(reduction + 1) * (|expected| + rms(expected)).

    Compute `expected` in float64 (the reference on float64 copies of the inputs); `reduction` is
    how many products were summed into each result (C/groups*R*S for a convolution), so the bound
    follows both the values' size and the accumulated rounding. `scale` replaces rms(expected) where
    the result's conditioning is set by another tensor (a gradient computed from a rounded output is
    accurate relative to the incoming gradient, not to itself). Never raise `factor` to make a test
    pass: find the bug."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    fin_a, fin_e = torch.isfinite(a), torch.isfinite(e)
    assert torch.equal(fin_a, fin_e), f"{name}: non-finite values at different places"
    assert torch.equal(a[~fin_e], e[~fin_e]), f"{name}: non-finite values differ"
    if e.numel() == 0:
        return
    a, e = a[fin_e], e[fin_e]
    scale = (e.pow(2).mean().sqrt().item() if scale is None else float(scale)) + 1e-30
    tol = factor * EPS[actual.dtype] * math.sqrt(reduction + 1) * (e.abs() + scale)
    err = (a - e).abs()
    bad = err > tol
    if bad.any():
        i = int(torch.argmax(err - tol))
        raise AssertionError(f"{name}: {int(bad.sum())} of {e.numel()} elements off; worst: got "
                             f"{a[i].item():.9g}, expected {e[i].item():.9g}, tolerance {tol[i].item():.3g}")


def rms(t: torch.Tensor) -> float:
    """Root mean square: the scale= of assert_close for results whose terms may cancel (pass the same
    computation on absolute values: the rounding error follows the terms, not their sum)."""
    return t.detach().double().pow(2).mean().sqrt().item()


def reference_f64(fn, *tensors, **kwargs):
    """fn on float64 copies of the tensors (the ground truth for float32 results)."""
    return fn(*[t.detach().double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t
                for t in tensors], **kwargs)


def gradcheck(fn, inputs, **kwargs) -> None:
    """float64 torch.autograd.gradcheck of fn(*inputs)."""
    assert all(x.dtype == torch.float64 for x in inputs if isinstance(x, torch.Tensor) and x.is_floating_point())
    assert torch.autograd.gradcheck(fn, tuple(inputs), eps=1e-6, atol=1e-7, rtol=1e-5, **kwargs)


def supported_isas():
    if "cpu" not in _USABLE:  # the probe's message says why; fixtures then skip the cpu copies
        return []
    from fastcnn import _C

    order = ["generic", "avx2", "avx512"]
    return order[: order.index(_C.best_isa()) + 1]


@pytest.fixture(params=supported_isas())
def isa(request):
    """Runs a cpu-backend test once per compiled ISA copy this CPU can execute."""
    from fastcnn import _C

    previous, half_rate = _C.isa(), _C.half_rate_zmm()
    _C.set_isa(request.param)
    # Each copy's own kernels: no AVX-512 -> AVX2 hand-off where this CPU's 512-bit FMAs run at half
    # rate (tests/backends/cpu/test_conv_direct.py test_half_rate_hand_off runs it).
    _C.set_half_rate_zmm(False)
    yield request.param
    _C.set_isa(previous)
    _C.set_half_rate_zmm(half_rate)


def round_to_tf32(t: torch.Tensor) -> torch.Tensor:
    """float32 -> TF32 (10 mantissa bits), round to nearest with ties away from zero (cvt.rna.tf32)."""
    bits = t.contiguous().view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


# max_pool2d configurations where some window holds no input element (every tap in the padding):
# (input shape, kwargs). tests/ops/test_pool.py and the emulated cuda pooling test check values and
# indices against torch's exactly.
ALL_PADDING_WINDOWS = [
    ((1, 1, 1, 1), dict(kernel_size=(1, 2), padding=(0, 1), dilation=(1, 2))),
    ((2, 3, 1, 7), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1))),
    ((2, 3, 5, 1), dict(kernel_size=(3, 2), padding=(1, 1), dilation=(1, 2))),
    ((1, 2, 1, 1), dict(kernel_size=2, stride=1, padding=1, dilation=2)),
]


def run_with_grads(fn, inputs, gy_seed=0):
    """fn's output and the inputs' gradients (None for a None input) for a fixed upstream gradient:
    what the eager op tests compare between the eager ops and python_path()."""
    leaves = [t.detach().requires_grad_() if t is not None else None for t in inputs]
    y = fn(*leaves)
    gy = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(gy_seed))
    y.backward(gy)
    return y, [t.grad if t is not None else None for t in leaves]


def assert_same_results(fast, python):
    """Two run_with_grads results bit for bit equal."""
    (y1, g1), (y2, g2) = fast, python
    assert torch.equal(y1, y2)
    for a, b in zip(g1, g2):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b)
