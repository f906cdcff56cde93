"""Triton kernels of the loss family. Signatures: fastcnn/ops/loss.py.

Class-index losses on x[N, C, S], target[N, S]: one program per (n, block of BLOCK_S pixels) walks
C in tiles of BLOCK_C (rows, S == 1: BLOCK_S = 1 and long C tiles). Cross-entropy forward uses an
online max/sum; its backward writes softmax - onehot (scaled, with label smoothing) in one pass.
loss_sum reduces in two stages (per-program partial sums in float64, then again until one value)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels

from ._reduce import block_sum, online_logsumexp, reduction_program
from ._stream import STREAM_BLOCK, STREAM_WARPS, stream_grid
from .softmax import tiles

_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}


@triton.jit
def _ce_forward(x_ptr, t_ptr, w_ptr, loss_ptr, wt_ptr, lse_ptr, C, S, ignore_index, coef_ptr,
                HAS_W: tl.constexpr, SMOOTH: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr,
                BLOCK_S: tl.constexpr):
    """x: [N,C,S]; t: [N,S] int64; w: [C]; loss, wt, lse: [N,S]; coef = [1 - e, e / C] in x's dtype.
    Grid (N, cdiv(S, BLOCK_S))."""
    keep = tl.load(coef_ptr).to(ACC)
    spread = tl.load(coef_ptr + 1).to(ACC)
    n, base, s, smask = reduction_program(C, S, BLOCK_S)
    m_safe, acc = online_logsumexp(x_ptr, base, C, S, s, smask, ACC, BLOCK_C)
    wx = tl.full([BLOCK_S], 0.0, dtype=ACC)   # sum_c w[c] (x[c] - max): centred, so W (lse - max) - wx does not cancel
    wsum = tl.full([BLOCK_S], 0.0, dtype=ACC)  # sum_c w[c]
    if SMOOTH:
        for c0 in range(0, C, BLOCK_C):
            c = c0 + tl.arange(0, BLOCK_C)
            cmask = c < C
            mask = cmask[:, None] & smask[None, :]
            x = tl.load(x_ptr + base + c[:, None] * S + s[None, :], mask=mask, other=0.0).to(ACC)
            if HAS_W:
                wc = tl.load(w_ptr + c, mask=cmask, other=0.0).to(ACC)
            else:
                wc = tl.where(cmask, 1.0, 0.0).to(ACC)
            wx += block_sum(tl.where(mask, x - m_safe[None, :], 0.0) * wc[:, None], 0)
            wsum += block_sum(wc, 0)
    log_sum = tl.log(tl.where(smask, acc, 1.0))
    lse = m_safe + log_sum
    t = tl.load(t_ptr + n * S + s, mask=smask, other=0)
    valid = smask & (t != ignore_index)
    t_safe = tl.where(valid, t, 0)
    x_t = tl.load(x_ptr + base + t_safe * S + s, mask=valid, other=0.0).to(ACC)
    if HAS_W:
        w_t = tl.load(w_ptr + t_safe, mask=valid, other=0.0).to(ACC)
    else:
        w_t = tl.where(valid, 1.0, 0.0).to(ACC)
    loss = keep * w_t * ((m_safe - x_t) + log_sum)
    if SMOOTH:
        loss += spread * (wsum * log_sum - wx)
    loss = tl.where(valid, loss, 0.0)
    tl.store(loss_ptr + n * S + s, loss, mask=smask)
    tl.store(wt_ptr + n * S + s, w_t, mask=smask)
    tl.store(lse_ptr + n * S + s, lse, mask=smask)


@triton.jit
def _ce_backward(x_ptr, t_ptr, w_ptr, lse_ptr, g_ptr, gx_ptr, C, S, ignore_index, coef_ptr, g_stride,
                 HAS_W: tl.constexpr, SMOOTH: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr,
                 BLOCK_S: tl.constexpr):
    """gx = a (p - onehot) + b (W p - w), p = exp(x - lse); a = (1-e) g w[t], b = e/C g. Grid as forward."""
    keep = tl.load(coef_ptr).to(ACC)
    spread = tl.load(coef_ptr + 1).to(ACC)
    n, base, s, smask = reduction_program(C, S, BLOCK_S)
    i = n * S + s
    t = tl.load(t_ptr + i, mask=smask, other=0)
    valid = smask & (t != ignore_index)
    t_safe = tl.where(valid, t, 0)
    g = tl.load(g_ptr + i * g_stride, mask=smask, other=0.0).to(ACC)
    if HAS_W:
        w_t = tl.load(w_ptr + t_safe, mask=valid, other=0.0).to(ACC)
    else:
        w_t = tl.where(valid, 1.0, 0.0).to(ACC)
    a = keep * g * w_t
    b = tl.where(valid, spread * g, 0.0)
    wsum = tl.full([BLOCK_S], 0.0, dtype=ACC)
    if SMOOTH:
        for c0 in range(0, C, BLOCK_C):
            c = c0 + tl.arange(0, BLOCK_C)
            if HAS_W:
                wsum += block_sum(tl.load(w_ptr + c, mask=c < C, other=0.0).to(ACC), 0)
            else:
                wsum += block_sum(tl.where(c < C, 1.0, 0.0).to(ACC), 0)
    lse = tl.load(lse_ptr + i, mask=smask, other=0.0).to(ACC)
    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)
        cmask = c < C
        mask = cmask[:, None] & smask[None, :]
        offs = base + c[:, None] * S + s[None, :]
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        p = tl.exp(x - lse[None, :])
        gx = a[None, :] * (p - tl.where(c[:, None] == t_safe[None, :], 1.0, 0.0))
        if SMOOTH:
            if HAS_W:
                wc = tl.load(w_ptr + c, mask=cmask, other=0.0).to(ACC)
            else:
                wc = tl.where(cmask, 1.0, 0.0).to(ACC)
            gx += b[None, :] * (wsum[None, :] * p - wc[:, None])
        tl.store(gx_ptr + offs, gx, mask=mask)


@triton.jit
def _soft_class_weights(w_ptr, c, cmask, HAS_W: tl.constexpr, ACC: tl.constexpr):
    if HAS_W:
        return tl.load(w_ptr + c, mask=cmask, other=0.0).to(ACC)
    return tl.where(cmask, 1.0, 0.0).to(ACC)


@triton.jit
def _soft_target_block(t_ptr, w_ptr, base, c0, C, S, s, smask, keep, spread, HAS_W: tl.constexpr,
                       ACC: tl.constexpr, BLOCK_C: tl.constexpr):
    """Classes [c0, c0 + BLOCK_C) at columns s: (offsets, mask, w[c], the weighted smoothed target
    w[c] (keep t + spread)), each [BLOCK_C, BLOCK_S] but w[c] ([BLOCK_C, 1])."""
    c = c0 + tl.arange(0, BLOCK_C)
    cmask = c < C
    mask = cmask[:, None] & smask[None, :]
    offs = base + c[:, None] * S + s[None, :]
    t = tl.load(t_ptr + offs, mask=mask, other=0.0).to(ACC)
    wc = _soft_class_weights(w_ptr, c, cmask, HAS_W, ACC)[:, None]
    return offs, mask, wc, wc * (keep * t + spread)


@triton.jit
def _soft_ce_forward(x_ptr, t_ptr, w_ptr, loss_ptr, lse_ptr, C, S, coef_ptr, HAS_W: tl.constexpr, ACC: tl.constexpr,
                     BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr):
    """Class-probability targets t: [N,C,S] like x. loss = sum_c w[c] t'[c] (lse - x[c]), t' = keep t +
    spread (coef = [1 - e, e / C]). Grid (N, cdiv(S, BLOCK_S))."""
    keep = tl.load(coef_ptr).to(ACC)
    spread = tl.load(coef_ptr + 1).to(ACC)
    n, base, s, smask = reduction_program(C, S, BLOCK_S)
    m_safe, acc = online_logsumexp(x_ptr, base, C, S, s, smask, ACC, BLOCK_C)
    lse = m_safe + tl.log(tl.where(smask, acc, 1.0))
    loss = tl.full([BLOCK_S], 0.0, dtype=ACC)
    for c0 in range(0, C, BLOCK_C):
        offs, mask, wc, target = _soft_target_block(t_ptr, w_ptr, base, c0, C, S, s, smask, keep, spread, HAS_W,
                                                    ACC, BLOCK_C)
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        loss += block_sum(tl.where(mask, target * (lse[None, :] - x), 0.0), 0)
    tl.store(loss_ptr + n * S + s, loss, mask=smask)
    tl.store(lse_ptr + n * S + s, lse, mask=smask)


@triton.jit
def _soft_ce_backward(x_ptr, t_ptr, w_ptr, lse_ptr, g_ptr, gx_ptr, gt_ptr, C, S, coef_ptr, g_stride,
                      HAS_W: tl.constexpr, NEED_X: tl.constexpr, NEED_T: tl.constexpr, ACC: tl.constexpr,
                      BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr):
    """gx = g (p A - w t'), A = sum_c w[c] t'[c], p = exp(x - lse); gt = g (1 - e) w (lse - x)."""
    keep = tl.load(coef_ptr).to(ACC)
    spread = tl.load(coef_ptr + 1).to(ACC)
    n, base, s, smask = reduction_program(C, S, BLOCK_S)
    i = n * S + s
    g = tl.load(g_ptr + i * g_stride, mask=smask, other=0.0).to(ACC)
    lse = tl.load(lse_ptr + i, mask=smask, other=0.0).to(ACC)
    A = tl.full([BLOCK_S], 0.0, dtype=ACC)
    if NEED_X:
        for c0 in range(0, C, BLOCK_C):
            _, mask, _, target = _soft_target_block(t_ptr, w_ptr, base, c0, C, S, s, smask, keep, spread, HAS_W,
                                                    ACC, BLOCK_C)
            A += block_sum(tl.where(mask, target, 0.0), 0)
    for c0 in range(0, C, BLOCK_C):
        offs, mask, wc, target = _soft_target_block(t_ptr, w_ptr, base, c0, C, S, s, smask, keep, spread, HAS_W,
                                                    ACC, BLOCK_C)
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        if NEED_X:
            p = tl.exp(x - lse[None, :])
            tl.store(gx_ptr + offs, g[None, :] * (p * A[None, :] - target), mask=mask)
        if NEED_T:
            tl.store(gt_ptr + offs, g[None, :] * keep * wc * (lse[None, :] - x), mask=mask)


@triton.jit
def _nll_forward(x_ptr, t_ptr, w_ptr, out_ptr, wt_ptr, total, C, S, ignore_index, HAS_W: tl.constexpr,
                 ACC: tl.constexpr, BLOCK: tl.constexpr):
    """out[i] = -w[t] x[n,t,s], wt[i] = w[t] (0 where ignored); flat over N*S."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    imask = i < total
    t = tl.load(t_ptr + i, mask=imask, other=0)
    valid = imask & (t != ignore_index)
    t_safe = tl.where(valid, t, 0)
    n = i // S
    x_t = tl.load(x_ptr + (n * C + t_safe) * S + (i - n * S), mask=valid, other=0.0).to(ACC)
    if HAS_W:
        w_t = tl.load(w_ptr + t_safe, mask=valid, other=0.0).to(ACC)
    else:
        w_t = tl.where(valid, 1.0, 0.0).to(ACC)
    tl.store(out_ptr + i, -w_t * x_t, mask=imask)
    tl.store(wt_ptr + i, w_t, mask=imask)


@triton.jit
def _nll_backward(t_ptr, w_ptr, g_ptr, gx_ptr, C, S, ignore_index, g_stride, HAS_W: tl.constexpr,
                  ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr):
    """gx[n,c,s] = -w[t] g[i] where c == t, else 0 (every element written). Grid (N, cdiv(S, BLOCK_S))."""
    n, _, s, smask = reduction_program(C, S, BLOCK_S)
    i = n * S + s
    t = tl.load(t_ptr + i, mask=smask, other=0)
    valid = smask & (t != ignore_index)
    t_safe = tl.where(valid, t, -1)
    g = tl.load(g_ptr + i * g_stride, mask=smask, other=0.0).to(ACC)
    if HAS_W:
        w_t = tl.load(w_ptr + tl.where(valid, t, 0), mask=valid, other=0.0).to(ACC)
    else:
        w_t = tl.where(valid, 1.0, 0.0).to(ACC)
    val = -w_t * g
    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)
        mask = (c < C)[:, None] & smask[None, :]
        gx = tl.where(c[:, None] == t_safe[None, :], val[None, :], 0.0)
        tl.store(gx_ptr + n * C * S + c[:, None] * S + s[None, :], gx, mask=mask)


@triton.jit
def _partial_sums(v_ptr, out_ptr, total, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    """out[p] = sum of v[p*CHUNK : (p+1)*CHUNK] in float64."""
    p = tl.program_id(0).to(tl.int64)
    acc = tl.full([BLOCK], 0.0, dtype=tl.float64)
    for k in range(0, CHUNK, BLOCK):
        offs = p * CHUNK + k + tl.arange(0, BLOCK)
        acc += tl.load(v_ptr + offs, mask=offs < total, other=0.0).to(tl.float64)
    tl.store(out_ptr + p, block_sum(acc, 0))


@triton.jit
def _pointwise_loss(x_ptr, y_ptr, w_ptr, pw_ptr, g_ptr, out_ptr, n, g_stride, KIND: tl.constexpr,
                    BACKWARD: tl.constexpr, HAS_W: tl.constexpr, HAS_PW: tl.constexpr, ACC: tl.constexpr,
                    BLOCK: tl.constexpr):
    """Element-wise losses (KIND 0 mse, 1 bce, 2 bce with logits; formulas in csrc/kernels/loss.cpp),
    forward (out = loss) or backward (out = g * d loss / dx; KIND 3 / 4: g * d loss / d target of bce /
    bce with logits, backward only). All pointers flat over n elements."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.5).to(ACC)
    y = tl.load(y_ptr + offs, mask=mask, other=0.5).to(ACC)
    if HAS_PW:
        scale = 1.0 + (tl.load(pw_ptr + offs, mask=mask, other=1.0).to(ACC) - 1.0) * y
    else:
        scale = tl.full([BLOCK], 1.0, dtype=ACC)
    if KIND == 0:
        if BACKWARD:
            v = 2.0 * (x - y)
        else:
            v = (x - y) * (x - y)
    elif KIND == 1:
        if BACKWARD:
            v = (x - y) / tl.maximum((1.0 - x) * x, 1e-12)
        else:
            v = -(y * tl.maximum(tl.log(x), -100.0) + (1.0 - y) * tl.maximum(tl.log(1.0 - x), -100.0))
    elif KIND == 3:
        v = tl.log(1.0 - x) - tl.log(x)
    elif KIND == 4:
        if HAS_PW:
            pw = tl.load(pw_ptr + offs, mask=mask, other=1.0).to(ACC)
            v = (pw - 1.0) * (tl.log(1.0 + tl.exp(-tl.abs(x))) + tl.maximum(-x, 0.0)) - x
        else:
            v = -x
    else:
        if BACKWARD:
            v = (1.0 - y) - scale / (1.0 + tl.exp(x))
        else:
            v = (1.0 - y) * x + scale * (tl.log(1.0 + tl.exp(-tl.abs(x))) + tl.maximum(-x, 0.0))
    if HAS_W:
        v = v * tl.load(w_ptr + offs, mask=mask, other=0.0).to(ACC)
    if BACKWARD:
        v = v * tl.load(g_ptr + offs * g_stride, mask=mask, other=0.0).to(ACC)
    tl.store(out_ptr + offs, v, mask=mask)


def _pointwise(kind, x, y, weight, pos_weight, g, backward):
    out = torch.empty_like(x)
    n = x.numel()
    if n:  # a memory-bound stream: the wide launch shape of _stream.py
        _pointwise_loss[stream_grid(n)](
            x, y, _w(weight, x), _w(pos_weight, x), g if g is not None else x, out, n,
            0 if g is None or g.numel() == 1 else 1, KIND=int(kind), BACKWARD=backward, HAS_W=weight is not None,
            HAS_PW=pos_weight is not None, ACC=_ACC[x.dtype], BLOCK=STREAM_BLOCK, num_warps=STREAM_WARPS)
    return out


@triton_kernel(kernels.pointwise_loss_forward)
def pointwise_loss_forward(kind, x, y, weight, pos_weight):
    return _pointwise(kind, x, y, weight, pos_weight, None, False)


@triton_kernel(kernels.pointwise_loss_backward)
def pointwise_loss_backward(kind, x, y, weight, pos_weight, g):
    return _pointwise(kind, x, y, weight, pos_weight, g, True)


def _class_grid(x):
    N, C, S = x.shape
    block_c, block_s = tiles(C, S)
    return (N, triton.cdiv(S, block_s)), block_c, block_s


def _w(weight, fallback):
    return weight if weight is not None else fallback


def _smoothing_coefs(x, label_smoothing):
    C = x.shape[1]
    return torch.tensor([1.0 - label_smoothing, label_smoothing / C], dtype=x.dtype, device=x.device)


@triton_kernel(kernels.cross_entropy_forward)
def cross_entropy_forward(x, target, weight, ignore_index, label_smoothing):
    N, C, S = x.shape
    loss, wt, lse = (x.new_empty(N, S) for _ in range(3))
    if loss.numel():
        grid, bc, bs = _class_grid(x)
        _ce_forward[grid](x, target, _w(weight, x), loss, wt, lse, C, S, int(ignore_index),
                          _smoothing_coefs(x, label_smoothing),
                          HAS_W=weight is not None, SMOOTH=label_smoothing > 0, ACC=_ACC[x.dtype], BLOCK_C=bc,
                          BLOCK_S=bs)
    return loss, wt, lse


@triton_kernel(kernels.cross_entropy_backward)
def cross_entropy_backward(x, target, weight, lse, ignore_index, label_smoothing, g):
    N, C, S = x.shape
    gx = torch.empty_like(x)
    if x.numel():
        grid, bc, bs = _class_grid(x)
        _ce_backward[grid](x, target, _w(weight, x), lse, g, gx, C, S, int(ignore_index),
                           _smoothing_coefs(x, label_smoothing),
                           0 if g.numel() == 1 else 1, HAS_W=weight is not None, SMOOTH=label_smoothing > 0,
                           ACC=_ACC[x.dtype], BLOCK_C=bc, BLOCK_S=bs)
    return gx


@triton_kernel(kernels.soft_cross_entropy_forward)
def soft_cross_entropy_forward(x, target, weight, label_smoothing):
    N, C, S = x.shape
    loss, lse = x.new_empty(N, S), x.new_empty(N, S)
    if loss.numel():
        grid, bc, bs = _class_grid(x)
        _soft_ce_forward[grid](x, target, _w(weight, x), loss, lse, C, S, _smoothing_coefs(x, label_smoothing),
                               HAS_W=weight is not None, ACC=_ACC[x.dtype], BLOCK_C=bc, BLOCK_S=bs)
    return loss, lse


@triton_kernel(kernels.soft_cross_entropy_backward)
def soft_cross_entropy_backward(x, target, weight, lse, label_smoothing, g, need_input, need_target):
    gx = torch.empty_like(x) if need_input else None
    gt = torch.empty_like(x) if need_target else None
    if x.numel():
        N, C, S = x.shape
        grid, bc, bs = _class_grid(x)
        _soft_ce_backward[grid](x, target, _w(weight, x), lse, g, _w(gx, x), _w(gt, x), C, S,
                                _smoothing_coefs(x, label_smoothing), 0 if g.numel() == 1 else 1,
                                HAS_W=weight is not None, NEED_X=need_input, NEED_T=need_target, ACC=_ACC[x.dtype],
                                BLOCK_C=bc, BLOCK_S=bs)
    return gx, gt


@triton_kernel(kernels.nll_loss_forward)
def nll_loss_forward(x, target, weight, ignore_index):
    N, C, S = x.shape
    out, wt = x.new_empty(N, S), x.new_empty(N, S)
    if out.numel():
        block = 256
        _nll_forward[(triton.cdiv(N * S, block),)](x, target, _w(weight, x), out, wt, N * S, C, S, int(ignore_index),
                                                   HAS_W=weight is not None, ACC=_ACC[x.dtype], BLOCK=block)
    return out, wt


@triton_kernel(kernels.nll_loss_backward)
def nll_loss_backward(target, weight, ignore_index, g, shape):
    N, C, S = shape
    gx = g.new_empty(N, C, S)
    if gx.numel():
        grid, bc, bs = _class_grid(gx)
        _nll_backward[grid](target, _w(weight, g), g, gx, C, S, int(ignore_index), 0 if g.numel() == 1 else 1,
                            HAS_W=weight is not None, ACC=_ACC[g.dtype], BLOCK_C=bc, BLOCK_S=bs)
    return gx


@triton_kernel(kernels.loss_sum)
def loss_sum(v):
    chunk, block = 4096, 1024
    v = v.reshape(-1)
    if v.numel() == 0:
        return torch.zeros((), dtype=torch.float64, device=v.device)
    while True:
        parts = v.new_empty(triton.cdiv(v.numel(), chunk), dtype=torch.float64)
        _partial_sums[(parts.numel(),)](v, parts, v.numel(), CHUNK=chunk, BLOCK=block)
        if parts.numel() == 1:
            return parts.reshape(())
        v = parts
