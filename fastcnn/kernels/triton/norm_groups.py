"""Triton kernels of row-group normalisation (group_norm, layer_norm, instance_norm). Signatures and
the row view: fastcnn/ops/norm_groups.py.

x[R, L]: one program per row reduces its L elements (shifted sums about the row's first element,
accumulated in ACC = the input's dtype) into mean, rstd (and the biased variance for running
statistics); flat element-wise kernels (the wide stream launch of _stream.py) apply the affine
transform and the input gradient; one program per parameter entry k sums its gradient over the
(outer, span) elements that use it. Parameter index of element (r, l): k = ((r % G) * L + l) // S.
Scalars (eps, momentum) travel in a small tensor of the input's dtype so float64 stays float64.
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
def _row_stats(x_ptr, params_ptr, mean_ptr, rstd_ptr, var_ptr, L, ACC: tl.constexpr, BLOCK: tl.constexpr):
    r = tl.program_id(0).to(tl.int64)
    base = r * L
    pivot = tl.load(x_ptr + base).to(ACC)
    acc1 = tl.full([BLOCK], 0.0, dtype=ACC)
    acc2 = tl.full([BLOCK], 0.0, dtype=ACC)
    for l0 in range(0, L, BLOCK):
        offs = l0 + tl.arange(0, BLOCK)
        m = offs < L
        d = tl.where(m, tl.load(x_ptr + base + offs, mask=m, other=0.0).to(ACC) - pivot, 0.0)
        acc1 += d
        acc2 += d * d
    dmean = block_sum(acc1, axis=0) / L
    var = block_sum(acc2, axis=0) / L - dmean * dmean
    var = tl.where(var < 0.0, 0.0, var)  # rounding can dip below 0; NaN stays NaN
    eps = tl.load(params_ptr).to(ACC)
    tl.store(mean_ptr + r, pivot + dmean)
    tl.store(rstd_ptr + r, 1.0 / tl.sqrt(var + eps))
    tl.store(var_ptr + r, var)


@triton.jit
def _running_update(mean_ptr, var_ptr, rm_ptr, rv_ptr, params_ptr, outer, G, L, ACC: tl.constexpr):
    """rm[g], rv[g] <- (1 - momentum) * old + momentum * (outer-average of the rows' mean, unbiased var)."""
    g = tl.program_id(0).to(tl.int64)
    momentum = tl.load(params_ptr + 1).to(ACC)
    sm = tl.load(mean_ptr + g).to(ACC) * 0.0
    sv = sm
    for o in range(outer):
        sm += tl.load(mean_ptr + o * G + g).to(ACC)
        sv += tl.load(var_ptr + o * G + g).to(ACC)
    count = sm * 0.0 + L  # in ACC: a bare `L - 1.0` would be float32
    unbias = count / (count - 1.0)
    tl.store(rm_ptr + g, (1.0 - momentum) * tl.load(rm_ptr + g).to(ACC) + momentum * sm / outer)
    tl.store(rv_ptr + g, (1.0 - momentum) * tl.load(rv_ptr + g).to(ACC) + momentum * sv * unbias / outer)


@triton.jit
def _row_elementwise(u_ptr, x_ptr, out_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, cb_ptr, cc_ptr, total, L, G, S,
                     HAS_W: tl.constexpr, HAS_B: tl.constexpr, BACKWARD: tl.constexpr, BLOCK: tl.constexpr):
    """Forward (u = x): out = (x - mean[r]) rstd[r] w[k] + b[k].
    Backward (u = gy): out = rstd[r] w[k] gy + cc[r] (x - mean[r]) + cb[r]."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    r = offs // L
    k = ((r % G) * L + offs % L) // S
    u = tl.load(u_ptr + offs, mask=mask, other=0.0)
    mean = tl.load(mean_ptr + r, mask=mask, other=0.0)
    rstd = tl.load(rstd_ptr + r, mask=mask, other=0.0)
    w = rstd
    if HAS_W:
        w = tl.load(w_ptr + k, mask=mask, other=0.0) * rstd
    if BACKWARD:
        xc = tl.load(x_ptr + offs, mask=mask, other=0.0) - mean
        out = u * w + xc * tl.load(cc_ptr + r, mask=mask, other=0.0) + tl.load(cb_ptr + r, mask=mask, other=0.0)
    else:
        out = (u - mean) * w
        if HAS_B:
            out += tl.load(b_ptr + k, mask=mask, other=0.0)
    tl.store(out_ptr + offs, out, mask=mask)


@triton.jit
def _row_grad_sums(gy_ptr, x_ptr, w_ptr, mean_ptr, rstd_ptr, cb_ptr, cc_ptr, L, G, S, HAS_W: tl.constexpr,
                   ACC: tl.constexpr, BLOCK: tl.constexpr):
    """Per row, with g = w[k] gy: cb = -rstd sum(g) / L, cc = -rstd^3 sum(g (x - mean)) / L."""
    r = tl.program_id(0).to(tl.int64)
    base = r * L
    mean = tl.load(mean_ptr + r).to(ACC)
    rstd = tl.load(rstd_ptr + r).to(ACC)
    acc1 = tl.full([BLOCK], 0.0, dtype=ACC)
    acc2 = tl.full([BLOCK], 0.0, dtype=ACC)
    for l0 in range(0, L, BLOCK):
        offs = l0 + tl.arange(0, BLOCK)
        m = offs < L
        g = tl.load(gy_ptr + base + offs, mask=m, other=0.0).to(ACC)
        if HAS_W:
            g = g * tl.load(w_ptr + ((r % G) * L + offs) // S, mask=m, other=0.0).to(ACC)
        acc1 += g
        acc2 += tl.where(m, g * (tl.load(x_ptr + base + offs, mask=m, other=0.0).to(ACC) - mean), 0.0)
    tl.store(cb_ptr + r, -rstd * block_sum(acc1, axis=0) / L)
    tl.store(cc_ptr + r, -rstd * rstd * rstd * block_sum(acc2, axis=0) / L)


@triton.jit
def _param_grads(gy_ptr, x_ptr, mean_ptr, rstd_ptr, gw_ptr, gb_ptr, outer, L, G, S, NEED_W: tl.constexpr,
                 NEED_B: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """Entry k: sums over its outer * S elements (row o*G + g, offsets j*S + [0, S)) of gy*xhat and gy."""
    k = tl.program_id(0).to(tl.int64)
    per_group = L // S
    g = k // per_group
    j = k % per_group
    acc_w = tl.full([BLOCK], 0.0, dtype=ACC)
    acc_b = tl.full([BLOCK], 0.0, dtype=ACC)
    n = outer * S
    for i0 in range(0, n, BLOCK):
        idx = i0 + tl.arange(0, BLOCK)
        m = idx < n
        r = (idx // S) * G + g
        addr = r * L + j * S + idx % S
        gy = tl.load(gy_ptr + addr, mask=m, other=0.0).to(ACC)
        acc_b += gy
        if NEED_W:
            xhat = (tl.load(x_ptr + addr, mask=m, other=0.0).to(ACC) - tl.load(mean_ptr + r, mask=m, other=0.0)) \
                * tl.load(rstd_ptr + r, mask=m, other=0.0)
            acc_w += tl.where(m, gy * xhat, 0.0)
    if NEED_W:
        tl.store(gw_ptr + k, block_sum(acc_w, axis=0))
    if NEED_B:
        tl.store(gb_ptr + k, block_sum(acc_b, axis=0))


def _reduce_block(n):
    return max(16, min(_REDUCE_BLOCK, triton.next_power_of_2(max(n, 1))))


@triton_kernel(kernels.group_rows_forward)
def group_rows_forward(x, groups, span, weight, bias, eps, running_mean, running_var, momentum):
    R, L = x.shape
    params = torch.tensor([eps, momentum], dtype=x.dtype, device=x.device)
    mean, rstd, var = (x.new_empty(R) for _ in range(3))
    y = torch.empty_like(x)
    if R and L:
        _row_stats[(R,)](x, params, mean, rstd, var, L, ACC=_ACC[x.dtype], BLOCK=_reduce_block(L))
        if running_mean is not None:
            _running_update[(groups,)](mean, var, running_mean, running_var, params, R // groups, groups, L,
                                       ACC=_ACC[x.dtype])
        _row_elementwise[stream_grid(R * L)](
            x, x, y, weight if weight is not None else mean, bias if bias is not None else mean, mean, rstd, mean,
            mean, R * L, L, groups, span, HAS_W=weight is not None, HAS_B=bias is not None, BACKWARD=False,
            BLOCK=STREAM_BLOCK, num_warps=STREAM_WARPS)
    return y, mean, rstd


@triton_kernel(kernels.group_rows_backward)
def group_rows_backward(gy, x, groups, span, weight, mean, rstd, need_input, need_weight, need_bias):
    R, L = x.shape
    n_params = groups * (L // span)
    gx = torch.empty_like(x) if need_input else None
    gw = x.new_empty(n_params) if need_weight else None
    gb = x.new_empty(n_params) if need_bias else None
    w = weight if weight is not None else mean
    if need_input:
        cb, cc = x.new_empty(R), x.new_empty(R)
        _row_grad_sums[(R,)](gy, x, w, mean, rstd, cb, cc, L, groups, span, HAS_W=weight is not None,
                             ACC=_ACC[x.dtype], BLOCK=_reduce_block(L))
        _row_elementwise[stream_grid(R * L)](
            gy, x, gx, w, w, mean, rstd, cb, cc, R * L, L, groups, span, HAS_W=weight is not None, HAS_B=False,
            BACKWARD=True, BLOCK=STREAM_BLOCK, num_warps=STREAM_WARPS)
    if need_weight or need_bias:
        _param_grads[(n_params,)](gy, x, mean, rstd, gw if gw is not None else mean, gb if gb is not None else mean,
                                  R // groups, L, groups, span, NEED_W=need_weight, NEED_B=need_bias,
                                  ACC=_ACC[x.dtype], BLOCK=_reduce_block((R // groups) * span))
    return gx, gw, gb
