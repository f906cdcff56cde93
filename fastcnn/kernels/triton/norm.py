"""Triton kernels of the norm family. Signatures: fastcnn/ops/norm.py.

Batch norm on x[N, C, S]: one program per channel reduces its N*S elements (shifted sums, the shift
being the channel's first element, accumulated in ACC = the input's dtype) and does the O(1)
per-channel arithmetic (invstd, running-stat update, coefficients); one flat element-wise kernel then
applies out = p[c]*u + q[c]*(v - m[c]) + r[c] (forward: u = x; backward: u = gy, v = x, m = mean).
Scalars (momentum, eps) travel in a small tensor of the input's dtype so float64 stays float64.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels

from ._reduce import block_sum
from ._stream import STREAM_BLOCK, STREAM_WARPS, stream_grid

_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}
_REDUCE_BLOCK = 256


@triton.jit
def _channel_sums(u_ptr, v_ptr, u_shift, v_shift, c, N, C, S, SQUARE: tl.constexpr, ACC: tl.constexpr,
                  BLOCK: tl.constexpr):
    """Over channel c of u, v [N,C,S]: (sum of u - u_shift, sum of (u - u_shift) * (v - v_shift));
    with SQUARE, v is u (and v_ptr, v_shift are not read)."""
    acc1 = tl.full([BLOCK], 0.0, dtype=ACC)
    acc2 = tl.full([BLOCK], 0.0, dtype=ACC)
    for n in range(N):
        base = (n * C + c) * S
        for s0 in range(0, S, BLOCK):
            offs = s0 + tl.arange(0, BLOCK)
            m = offs < S
            d = tl.where(m, tl.load(u_ptr + base + offs, mask=m, other=0.0).to(ACC) - u_shift, 0.0)
            acc1 += d
            if SQUARE:
                acc2 += d * d
            else:
                acc2 += d * (tl.load(v_ptr + base + offs, mask=m, other=0.0).to(ACC) - v_shift)
    return block_sum(acc1, axis=0), block_sum(acc2, axis=0)


@triton.jit
def _bn_forward_channel(x_ptr, w_ptr, b_ptr, rm_ptr, rv_ptr, params_ptr, mean_ptr, invstd_ptr, scale_ptr, shift_ptr,
                        N, C, S, HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_RUNNING: tl.constexpr,
                        TRAINING: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """x[N,C,S]; w, b, rm, rv, mean, invstd, scale, shift: [C]; params = [momentum, eps]. One program per channel."""
    c = tl.program_id(0).to(tl.int64)
    momentum = tl.load(params_ptr).to(ACC)
    eps = tl.load(params_ptr + 1).to(ACC)
    if TRAINING:
        pivot = tl.load(x_ptr + c * S).to(ACC)
        sum_d, sum_dd = _channel_sums(x_ptr, x_ptr, pivot, pivot, c, N, C, S, True, ACC, BLOCK)
        count = tl.full([], N * S, ACC)  # not (N * S).to(): N = S = 1 arrive as constexpr ints
        dmean = sum_d / count
        mean = pivot + dmean
        var = sum_dd / count - dmean * dmean
        var = tl.where(var < 0.0, 0.0, var)  # rounding; NaN (an inf/NaN in the channel) stays NaN, as torch
        if HAS_RUNNING:
            rm = tl.load(rm_ptr + c).to(ACC)
            rv = tl.load(rv_ptr + c).to(ACC)
            tl.store(rm_ptr + c, (1.0 - momentum) * rm + momentum * mean)
            tl.store(rv_ptr + c, (1.0 - momentum) * rv + momentum * var * count / (count - 1.0))
    else:
        mean = tl.load(rm_ptr + c).to(ACC)
        var = tl.load(rv_ptr + c).to(ACC)
    invstd = 1.0 / tl.sqrt(var + eps)
    scale = invstd
    if HAS_W:
        scale = tl.load(w_ptr + c).to(ACC) * invstd
    shift = -mean * scale
    if HAS_B:
        shift += tl.load(b_ptr + c).to(ACC)
    tl.store(mean_ptr + c, mean)
    tl.store(invstd_ptr + c, invstd)
    tl.store(scale_ptr + c, scale)
    tl.store(shift_ptr + c, shift)


@triton.jit
def _bn_backward_channel(gy_ptr, x_ptr, w_ptr, mean_ptr, invstd_ptr, gw_ptr, gb_ptr, a_ptr, b_ptr, k_ptr,
                         N, C, S, HAS_W: tl.constexpr, TRAINING: tl.constexpr, NEED_GW: tl.constexpr,
                         NEED_GB: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """Per channel: sum gy and sum gy*(x-mean) -> grad_weight, grad_bias and the coefficients of
    gx = a*gy + b*(x-mean) + k. gy, x: [N,C,S]; the rest [C]. One program per channel."""
    c = tl.program_id(0).to(tl.int64)
    mean = tl.load(mean_ptr + c).to(ACC)
    invstd = tl.load(invstd_ptr + c).to(ACC)
    sum_gy, sum_gy_xmu = _channel_sums(gy_ptr, x_ptr, 0.0, mean, c, N, C, S, False, ACC, BLOCK)
    if NEED_GW:
        tl.store(gw_ptr + c, sum_gy_xmu * invstd)
    if NEED_GB:
        tl.store(gb_ptr + c, sum_gy)
    a = invstd
    if HAS_W:
        a = tl.load(w_ptr + c).to(ACC) * invstd
    b = a * 0.0
    k = a * 0.0
    if TRAINING:
        count = tl.full([], N * S, ACC)  # not (N * S).to(): N = S = 1 arrive as constexpr ints
        b = -a * invstd * invstd * sum_gy_xmu / count
        k = -a * sum_gy / count
    tl.store(a_ptr + c, a)
    tl.store(b_ptr + c, b)
    tl.store(k_ptr + c, k)


@triton.jit
def _channel_fma(u_ptr, v_ptr, out_ptr, p_ptr, q_ptr, m_ptr, r_ptr, total, C, S, HAS_V: tl.constexpr,
                 BLOCK: tl.constexpr):
    """out = p[c]*u + q[c]*(v - m[c]) + r[c] over flat [N,C,S] (c = (i // S) % C); v unused without HAS_V."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    c = (offs // S) % C
    out = tl.load(u_ptr + offs, mask=mask, other=0.0) * tl.load(p_ptr + c, mask=mask, other=0.0) \
        + tl.load(r_ptr + c, mask=mask, other=0.0)
    if HAS_V:
        v = tl.load(v_ptr + offs, mask=mask, other=0.0) - tl.load(m_ptr + c, mask=mask, other=0.0)
        out += v * tl.load(q_ptr + c, mask=mask, other=0.0)
    tl.store(out_ptr + offs, out, mask=mask)


def _channel_fma_launch(u, v, p, q, m, r):
    out = torch.empty_like(u)
    N, C, S = u.shape
    total = u.numel()
    if total:
        _channel_fma[stream_grid(total)](u, v if v is not None else u, out, p, q if q is not None else p,
                                         m if m is not None else p, r, total, C, S,
                                         HAS_V=v is not None, BLOCK=STREAM_BLOCK, num_warps=STREAM_WARPS)
    return out


def _reduce_block(S):
    return max(16, min(_REDUCE_BLOCK, triton.next_power_of_2(S)))


@triton_kernel(kernels.batch_norm_forward)
def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    N, C, S = x.shape
    params = torch.tensor([momentum, eps], dtype=x.dtype, device=x.device)
    mean, invstd, scale, shift = (x.new_empty(C) for _ in range(4))
    dummy = mean
    _bn_forward_channel[(C,)](x, weight if weight is not None else dummy, bias if bias is not None else dummy,
                              running_mean if running_mean is not None else dummy,
                              running_var if running_var is not None else dummy, params, mean, invstd, scale, shift,
                              N, C, S, HAS_W=weight is not None, HAS_B=bias is not None,
                              HAS_RUNNING=running_mean is not None, TRAINING=bool(training), ACC=_ACC[x.dtype],
                              BLOCK=_reduce_block(S))
    return _channel_fma_launch(x, None, scale, None, None, shift), mean, invstd


@triton_kernel(kernels.batch_norm_backward)
def batch_norm_backward(gy, x, weight, mean, invstd, training, need_input, need_weight, need_bias):
    N, C, S = x.shape
    gw = x.new_empty(C) if need_weight else None
    gb = x.new_empty(C) if need_bias else None
    a, b, k = (x.new_empty(C) for _ in range(3))
    _bn_backward_channel[(C,)](gy, x, weight if weight is not None else a, mean, invstd,
                               gw if gw is not None else a, gb if gb is not None else a, a, b, k, N, C, S,
                               HAS_W=weight is not None, TRAINING=bool(training), NEED_GW=need_weight,
                               NEED_GB=need_bias, ACC=_ACC[x.dtype], BLOCK=_reduce_block(S))
    gx = _channel_fma_launch(gy, x if training else None, a, b, mean, k) if need_input else None
    return gx, gw, gb
