"""cpu kernel `gemm` (csrc/kernels/gemm.cpp): out = alpha * op(a) @ op(b) + beta * out.

Matrices reach the C++ engine as an address and a row stride, so a transposed view of a contiguous
matrix (a.t()) is passed as-is with the transpose flag flipped, without a copy.
"""
from __future__ import annotations

import torch

from fastcnn import _C

from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, new_empty


def _as_row_major(m: torch.Tensor, trans: bool):
    """(tensor, row stride, trans) describing op(m) with a unit column stride."""
    rows, cols = m.shape
    s0, s1 = m.stride()  # one call: stride(i) is a torch call each time, and this runs per GEMM
    if s1 == 1 and s0 >= cols and s0 >= 1:
        return m, s0, trans
    if s0 == 1 and s1 >= max(1, rows):  # a transposed view: read the other way
        return m, max(1, s1), not trans
    m = m.contiguous()
    return m, max(1, cols), trans


@cpu_kernel(kernels.gemm)
def gemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    M, K = (a.shape[1], a.shape[0]) if trans_a else tuple(a.shape)
    N = b.shape[0] if trans_b else b.shape[1]
    if out is None:
        out = new_empty(a, (M, N))
        beta = 0.0
    a_mem, lda, ta = _as_row_major(a, trans_a)
    b_mem, ldb, tb = _as_row_major(b, trans_b)
    o0, o1 = out.stride()
    if o1 != 1 or o0 < max(1, N):
        raise ValueError(f"out: expected a row-major matrix with unit column stride, got strides {out.stride()}")
    _C.gemm.gemm(ta, tb, M, N, K, float(alpha), addr(a_mem), lda, addr(b_mem), ldb, float(beta), addr(out),
                 max(1, o0), dtype_code(a))
    return out
