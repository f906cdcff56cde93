"""Pieces shared by the Triton GEMM and convolution kernels: the fused activation epilogue, exact
float64 scalar arguments, block-size helpers and the one place kernels are launched.

Re-imported under the interpreter together with the kernel modules (see
fastcnn/backends/triton/kernels.py), so everything @triton.jit here works on both devices. The
@triton.jit functions of triton.language's standard library (tl.cdiv, tl.zeros, tl.sum, tl.max,
tl.sigmoid, ...) were decorated when triton was imported, outside interpreter mode, so they cannot
be called from the interpreted copies: the kernels use builtins only (tl.full, tl.reduce with
`add` below, integer arithmetic).
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

# Numbering shared with csrc/common/activation_math.h (enum class Act) and the CUDA kernels.
ACTIVATION_CODES = {None: 0, "relu": 1, "leaky_relu": 2, "elu": 3, "sigmoid": 4, "tanh": 5}


def activation_code(activation) -> int:
    """The epilogue code of a fused activation; ValueError naming `activation` otherwise."""
    if activation not in ACTIVATION_CODES:
        names = ", ".join(repr(a) for a in ACTIVATION_CODES)
        raise ValueError(f"activation: expected one of {names}, got {activation!r}")
    return ACTIVATION_CODES[activation]


@triton.jit
def scalar_as(value, like):
    """A float kernel argument (annotated tl.float64 so float64 kernels see it unrounded) as a
    scalar of `like`'s dtype."""
    return tl.full([], value, tl.float64).to(like.dtype)


@triton.jit
def apply_activation(x, ACT: tl.constexpr, act_param):
    """y = f(x) for the fused epilogue; act_param is leaky_relu's slope or elu's alpha (already in
    x's dtype). Written with exp only so it lowers for float32 and float64 alike."""
    if ACT == 1:
        x = tl.where(x > 0, x, 0.0)
    elif ACT == 2:
        x = tl.where(x > 0, x, x * act_param)
    elif ACT == 3:
        # exp(x) - 1 loses relative accuracy near 0, but only by eps absolute: within the bound.
        x = tl.where(x > 0, x, act_param * (tl.exp(tl.minimum(x, 0.0)) - 1.0))
    elif ACT == 4:
        x = 1.0 / (1.0 + tl.exp(-x))
    elif ACT == 5:
        t = tl.exp(-2.0 * tl.abs(x))  # in (0, 1]: no overflow for any x
        mag = (1.0 - t) / (1.0 + t)
        x = tl.where(x < 0, -mag, mag)
    return x


@triton.jit
def add(a, b):
    """Combine function for tl.reduce (tl.sum is off limits, see the module docstring)."""
    return a + b


def dot_precision(dtype) -> str:
    """tl.dot input precision of the GEMM-like kernels: "ieee" (exact float32 products) unless
    FASTCNN_TRITON_TF32=1 asks for TF32 tensor cores on float32 (about 1e-3 relative error; the
    FFT transforms stay ieee). float64 is always ieee."""
    if dtype == torch.float32 and os.environ.get("FASTCNN_TRITON_TF32", "0") == "1":
        return "tf32"
    return "ieee"


def pow2_clamp(n: int, lo: int, hi: int) -> int:
    """Smallest power of two >= n, clamped to [lo, hi] (tl.arange needs powers of two and tl.dot
    needs every dimension >= 16 on the GPU)."""
    return max(lo, min(hi, triton.next_power_of_2(max(1, int(n)))))


# Tests replace this to compile every launched kernel for a GPU target instead of running it (see
# tests/test_triton_conv.py): one hook, so every launcher is covered without listing signatures.
LAUNCH_HOOK = None


def launch(kernel, grid, *args, num_warps: int = 4, num_stages: int = 3, **constexprs) -> None:
    """kernel[grid](*args, **constexprs) with the launch options every launcher states explicitly."""
    if LAUNCH_HOOK is not None:
        LAUNCH_HOOK(kernel, grid, args, constexprs, num_warps, num_stages)
        return
    kernel[grid](*args, num_warps=num_warps, num_stages=num_stages, **constexprs)
