"""Triton kernel `channel_sum`: the bias gradient, sum of gy[N, K, P, Q] over N, P, Q per channel."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels

from ._conv_common import add, launch, pow2_clamp


@triton.jit
def channel_sum_kernel(t_ptr, out_ptr, N, K, PQ, BLOCK: tl.constexpr):  # t[N, K, PQ], out[K]
    k = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    partial = tl.full((BLOCK,), 0.0, out_ptr.dtype.element_ty)  # BLOCK running sums, added last
    for n in range(0, N):
        base = t_ptr + (tl.full([], n, tl.int64) * K + k) * PQ
        for i0 in range(0, PQ, BLOCK):
            i = i0 + offs
            partial += tl.load(base + i, mask=i < PQ, other=0.0)
    tl.store(out_ptr + k, tl.reduce(partial, 0, add))


@triton_kernel(kernels.channel_sum)
def channel_sum(t):
    """t[N, K, P, Q] -> [K]."""
    N, K, P, Q = t.shape
    out = torch.empty((K,), dtype=t.dtype, device=t.device)
    if K == 0:
        return out
    block = pow2_clamp(P * Q, 16, 1024)
    launch(channel_sum_kernel, (K,), t, out, N, K, P * Q, BLOCK=block, num_warps=4)
    return out
