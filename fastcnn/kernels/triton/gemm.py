"""Triton kernel `gemm`: out = alpha * op(a) @ op(b) + beta * out, op = transpose if trans_*.

The tiled kernel itself lives in _gemm.py (shared with the im2col and FFT convolutions)."""
from __future__ import annotations

import torch

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels

from ._gemm import batched_gemm


@triton_kernel(kernels.gemm)
def gemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """a: [M, K] ([K, M] if trans_a), b: [K, N] ([N, K] if trans_b), same float dtype and device;
    out: optional [M, N], read when beta != 0 and written; returns out (new if None)."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise ValueError(f"{name}: expected a 2-D tensor, got {getattr(t, 'shape', type(t).__name__)}")
    if a.dtype != b.dtype or a.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"b: expected dtype {a.dtype} like a (float32 or float64), got {b.dtype}")
    am, ak = (a.stride(1), a.stride(0)) if trans_a else (a.stride(0), a.stride(1))
    bk, bn = (b.stride(1), b.stride(0)) if trans_b else (b.stride(0), b.stride(1))
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    K2, N = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if K != K2:
        raise ValueError(f"b: inner dimension {K2} does not match a's {K} (trans_a={trans_a}, trans_b={trans_b})")
    if out is None:
        if beta != 0:
            raise ValueError("beta: a nonzero beta needs out= (the matrix it scales)")
        out = torch.empty((M, N), dtype=a.dtype, device=a.device)
    elif tuple(out.shape) != (M, N) or out.dtype != a.dtype or out.device != a.device:
        raise ValueError(f"out: expected a {a.dtype} [{M}, {N}] tensor on {a.device}, got "
                         f"{out.dtype} {list(out.shape)} on {out.device}")
    return batched_gemm(a, b, out, M=M, N=N, K=K, a_strides=(am, ak), b_strides=(bk, bn),
                        c_strides=(out.stride(0), out.stride(1)), alpha=alpha, beta=beta)
