"""The one tiled GEMM every Triton matrix product goes through (the public `gemm` kernel, the im2col
convolution, the FFT convolution's per-frequency complex products).

    C[b] = act(alpha * sum_r A[b, r] @ B[b, r] + beta * C[b] + bias[b])

Matrices are addressed by strides, so transposes and views cost nothing. `b` is a two-level batch
(b1, b2) with its own strides per operand (e.g. image x group); `r` is an optional extra reduction
axis (e.g. the batch of images in a weight gradient) so a sum of products is one launch, summed in
a fixed order (deterministic). bias is indexed by the row (output channel) and the inner batch b2.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._conv_common import apply_activation, dot_precision, launch, pow2_clamp, scalar_as


@triton.jit
def gemm_kernel(a_ptr, b_ptr, c_ptr, bias_ptr,  # A[M, K], B[K, N], C[M, N], bias[M] (per b2)
                M, N, K, B2, RB,
                s_am, s_ak, s_bk, s_bn, s_cm, s_cn,
                s_a1, s_a2, s_b1, s_b2, s_c1, s_c2, s_bias2, s_ar, s_br,
                alpha: tl.float64, beta: tl.float64, act_param: tl.float64,
                PRECISION: tl.constexpr, ACCUMULATE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    # Grouped ordering: GROUP_M row-blocks share each column panel of B while it sits in L2.
    # One flat grid axis (batch-major): axis 1 would cap the batch at 65535 on CUDA.
    grid_m = (M + BLOCK_M - 1) // BLOCK_M
    grid_n = (N + BLOCK_N - 1) // BLOCK_N
    pid_b = tl.program_id(0) // (grid_m * grid_n)
    pid = tl.program_id(0) % (grid_m * grid_n)
    per_group = GROUP_M * grid_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = tl.minimum(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_rows
    pid_n = (pid % per_group) // group_rows

    b1 = (pid_b // B2).to(tl.int64)
    b2 = (pid_b % B2).to(tl.int64)
    a_ptr += b1 * s_a1 + b2 * s_a2
    b_ptr += b1 * s_b1 + b2 * s_b2
    c_ptr += b1 * s_c1 + b2 * s_c2

    rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K).to(tl.int64)
    row_ok = rows < M
    col_ok = cols < N

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, c_ptr.dtype.element_ty)
    for r in range(0, RB):
        r64 = tl.full([], r, tl.int64)
        a_r = a_ptr + r64 * s_ar
        b_r = b_ptr + r64 * s_br
        for k0 in range(0, K, BLOCK_K):
            kk = k0 + ks
            k_ok = kk < K
            a = tl.load(a_r + rows[:, None] * s_am + kk[None, :] * s_ak, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            b = tl.load(b_r + kk[:, None] * s_bk + cols[None, :] * s_bn, mask=k_ok[:, None] & col_ok[None, :], other=0.0)
            acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=acc.dtype)

    acc = acc * scalar_as(alpha, acc)
    c_ptrs = c_ptr + rows[:, None] * s_cm + cols[None, :] * s_cn
    c_mask = row_ok[:, None] & col_ok[None, :]
    if ACCUMULATE:
        acc += scalar_as(beta, acc) * tl.load(c_ptrs, mask=c_mask, other=0.0)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + b2 * s_bias2 + rows, mask=row_ok, other=0.0)[:, None]
    acc = apply_activation(acc, ACT, scalar_as(act_param, acc))
    tl.store(c_ptrs, acc, mask=c_mask)


def gemm_config(dtype: torch.dtype, M: int, N: int):
    """(BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages). float32: 64x64x32 tiles, 4 warps,
    3 stages (the Triton tutorial's safe middle; ieee float32 runs on FMA units, so larger tiles buy
    little); float64 halves the K step for registers. Small matrices shrink the tile (>= 16, tl.dot's
    minimum) so few lanes are masked. Untuned: see docs/backend-triton.md."""
    bk = 32 if dtype == torch.float32 else 16
    return pow2_clamp(M, 16, 64), pow2_clamp(N, 16, 64), bk, 8, 4, 3


def batched_gemm(a, b, c, *, M, N, K, a_strides, b_strides, c_strides,
                 batch=(1, 1), a_batch=(0, 0), b_batch=(0, 0), c_batch=(0, 0),
                 reduce=1, a_reduce=0, b_reduce=0,
                 alpha=1.0, beta=0.0, bias=None, bias_batch=0, act=0, act_param=0.0):
    """C = act(alpha * sum_r A @ B + beta * C + bias) over the batch; see the module docstring.
    a, b, c (and bias) are tensors whose data_ptr is element (0, 0) of batch 0; *_strides are the
    (row, col) strides in elements, *_batch the (b1, b2) strides, *_reduce the r strides."""
    if M == 0 or N == 0 or batch[0] * batch[1] == 0:
        return c
    bm, bn, bk, group_m, warps, stages = gemm_config(c.dtype, M, N)
    grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn) * batch[0] * batch[1],)
    launch(gemm_kernel, grid, a, b, c, bias if bias is not None else c,
           M, N, K, batch[1], reduce,
           *a_strides, *b_strides, *c_strides,
           *a_batch, *b_batch, *c_batch, bias_batch, a_reduce, b_reduce,
           float(alpha), float(beta), float(act_param),
           num_warps=warps, num_stages=stages,
           PRECISION=dot_precision(c.dtype, matmul=True), ACCUMULATE=beta != 0, HAS_BIAS=bias is not None, ACT=act,
           BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=group_m)
    return c
