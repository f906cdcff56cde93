"""Pieces shared by the Triton GEMM and convolution kernels: the fused activation epilogue (the
activation family's math), exact float64 scalar arguments, block-size helpers and the one place
kernels are launched.

Re-imported under the interpreter together with the kernel modules (see
fastcnn/backends/triton/_lib.py), so everything @triton.jit here works on both devices. On a
machine with a GPU, triton.language's own @triton.jit functions (tl.cdiv, tl.zeros, tl.sum,
tl.max, tl.sigmoid, ...) are compiled-mode objects that the interpreted copies used for CPU tensors
cannot call ("Cannot call @triton.jit'd outside of the scope of a kernel"), so these kernels use
builtins only: tl.full, tl.reduce with `add` below, integer arithmetic.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from ._activation_math import act_forward


@triton.jit
def scalar_as(value, like):
    """A float kernel argument (annotated tl.float64 so float64 kernels see it unrounded) as a
    scalar of `like`'s dtype."""
    return tl.full([], value, tl.float64).to(like.dtype)


@triton.jit
def apply_activation(x, ACT: tl.constexpr, act_param):
    """The fused epilogue: act_param (leaky_relu's slope, elu's alpha) already in x's dtype."""
    return act_forward(x, ACT, act_param, act_param)


@triton.jit
def add(a, b):
    """Combine function for tl.reduce (tl.sum is off limits, see the module docstring)."""
    return a + b


def dot_precision(dtype, matmul: bool = False) -> str:
    """tl.dot input precision of the GEMM-like kernels: "ieee" (exact float32 products) unless
    FASTCNN_TRITON_TF32=1 asks for TF32 tensor cores on float32 (about 1e-3 relative error; the
    FFT transforms stay ieee), or, for the GEMM (matmul=True: linear, matmul, im2col's product),
    torch.backends.cuda.matmul.allow_tf32 does (torch's own rule for its matmuls; off by default).
    float64 is always ieee. The implicit_gemm convolution has its own rule (conv_precision)."""
    if dtype == torch.float32 and (os.environ.get("FASTCNN_TRITON_TF32", "0") == "1"
                                   or (matmul and torch.backends.cuda.matmul.allow_tf32)):
        return "tf32"
    return "ieee"


def conv_sizes(shape) -> tuple:
    """A ConvShape's sizes in the order the direct and implicit-GEMM kernels take them:
    N, C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dh, dw, C/G, K/G."""
    return (shape.N, shape.C, shape.H, shape.W, shape.K, shape.P, shape.Q, shape.R, shape.S, *shape.stride,
            *shape.padding, *shape.dilation, shape.Cg, shape.Kg)


def pow2_clamp(n: int, lo: int, hi: int) -> int:
    """Smallest power of two >= n, clamped to [lo, hi] (tl.arange needs powers of two and tl.dot
    needs every dimension >= 16 on the GPU)."""
    return max(lo, min(hi, triton.next_power_of_2(max(1, int(n)))))


def launch(kernel, grid, *args, num_warps: int = 4, num_stages: int = 3, **constexprs) -> None:
    """kernel[grid](*args, **constexprs) with the launch options every launcher states explicitly."""
    if any(g == 0 for g in grid):  # nothing to compute (an empty batch): not every driver takes a 0 grid
        return
    kernel[grid](*args, num_warps=num_warps, num_stages=num_stages, **constexprs)
