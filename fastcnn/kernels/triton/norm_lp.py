"""Triton normalize (L_p over one dim) and local_response_norm (over channels). Signatures:
fastcnn/ops/norm.py.

normalize on x[outer, D, inner]: one program per (outer index, block of BLOCK_I inner positions)
walks D in tiles of BLOCK_D twice: once to reduce (sum |x|^p forward; sum gy*x backward), once to
write (y = x / max(n, eps); gx = gy / max(n, eps) + coef * sign(x)|x|^(p-1)). p = 1 and p = 2 are
compiled as their own variants (P_KIND); other p use exp2(p log2 |x|).

local_response_norm on x[N, C, S]: one program per (n, block of BLOCK_S pixels) walks the channels
with a sliding window (one add and one subtract per channel), as the cpu kernel:
    scale_c = k + alpha/size * sum_{c' in [c - before, c + after]} x_c'^2,   y_c = x_c scale_c^-beta
    gx_j = gy_j scale_j^-beta - 2 alpha beta / size * x_j * sum_{c in [j - after, j + before]} t_c,
    t_c = gy_c x_c scale_c^(-beta-1)
(before = size // 2, after = (size - 1) // 2; the window is cut at 0 and C, i.e. zero-padded.)
Float scalars travel in a small tensor of the input's dtype so float64 stays float64.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.contracts.norm import lrn_window

from ._reduce import block_sum
from .softmax import tiles

_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}
_PIXEL_BLOCK = 128


def _p_kind(p: float) -> int:
    """Compiled variant of the norm order: 1, 2, or 0 (general p through exp2/log2)."""
    return int(p) if p in (1.0, 2.0) else 0


@triton.jit
def _pow_pos(a, e):
    """a^e for a > 0; 0 where a == 0 (e > 0 there), inf for e < 0 as pow."""
    safe = tl.where(a > 0, a, 1.0)
    return tl.where(a > 0, tl.exp2(e * tl.log2(safe)), tl.where(e > 0, 0.0, float("inf")))


@triton.jit
def _lp_term(a, p, P_KIND: tl.constexpr):
    """|a|^p."""
    if P_KIND == 1:
        r = tl.abs(a)
    elif P_KIND == 2:
        r = a * a
    else:
        r = _pow_pos(tl.abs(a), p)
    return r


@triton.jit
def _lp_root(s, p, P_KIND: tl.constexpr):
    """s^(1/p) for s >= 0."""
    if P_KIND == 1:
        r = s
    elif P_KIND == 2:
        r = tl.sqrt(s)
    else:
        r = _pow_pos(s, 1.0 / p)
    return r


@triton.jit
def _lp_grad_term(a, p, P_KIND: tl.constexpr):
    """d||x||_p / dx without the n^(1-p) factor: sign(a) |a|^(p-1) (0 at a == 0)."""
    if P_KIND == 2:
        r = a
    else:
        sign = tl.where(a > 0, 1.0, tl.where(a < 0, -1.0, 0.0))
        if P_KIND == 1:
            r = sign
        else:
            r = tl.where(a == 0, 0.0, sign * _pow_pos(tl.abs(a), p - 1.0))
    return r


@triton.jit
def _line_block(params_ptr, inner, ACC: tl.constexpr, BLOCK_I: tl.constexpr):
    """(outer index, inner positions, their mask, p, eps) of this program: grid (outer, cdiv(inner, BLOCK_I))."""
    i = tl.program_id(1).to(tl.int64) * BLOCK_I + tl.arange(0, BLOCK_I)
    p = tl.load(params_ptr).to(ACC)
    eps = tl.load(params_ptr + 1).to(ACC)
    return tl.program_id(0).to(tl.int64), i, i < inner, p, eps


@triton.jit
def _line_offsets(o, d0, i, imask, D, inner, BLOCK_D: tl.constexpr):
    """Flat offsets and mask of the [BLOCK_D, BLOCK_I] tile at d0 of line block (o, i)."""
    d = d0 + tl.arange(0, BLOCK_D).to(tl.int64)
    offs = o * D * inner + d[:, None] * inner + i[None, :]
    return offs, (d < D)[:, None] & imask[None, :]


@triton.jit
def _normalize_forward(x_ptr, y_ptr, norm_ptr, params_ptr, D, inner, P_KIND: tl.constexpr, ACC: tl.constexpr,
                       BLOCK_D: tl.constexpr, BLOCK_I: tl.constexpr):
    """x, y: [outer, D, inner]; norm: [outer, inner]; params = [p, eps]. Grid (outer, cdiv(inner, BLOCK_I))."""
    o, i, imask, p, eps = _line_block(params_ptr, inner, ACC, BLOCK_I)
    acc = tl.full([BLOCK_I], 0.0, dtype=ACC)
    for d0 in range(0, D, BLOCK_D):
        offs, mask = _line_offsets(o, d0, i, imask, D, inner, BLOCK_D)
        acc += block_sum(_lp_term(tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC), p, P_KIND), 0)
    n = _lp_root(acc, p, P_KIND)
    tl.store(norm_ptr + o * inner + i, n, mask=imask)
    inv = 1.0 / tl.maximum(n, eps)
    for d0 in range(0, D, BLOCK_D):
        offs, mask = _line_offsets(o, d0, i, imask, D, inner, BLOCK_D)
        tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC) * inv[None, :], mask=mask)


@triton.jit
def _normalize_backward(gy_ptr, x_ptr, norm_ptr, gx_ptr, params_ptr, D, inner, P_KIND: tl.constexpr,
                        ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_I: tl.constexpr):
    """gy, x, gx: [outer, D, inner]; norm: [outer, inner]; params = [p, eps].
    gx = gy / max(n, eps) - [n > eps] (gy . x) / n^2 / n^(p-1) * sign(x)|x|^(p-1)."""
    o, i, imask, p, eps = _line_block(params_ptr, inner, ACC, BLOCK_I)
    dot = tl.full([BLOCK_I], 0.0, dtype=ACC)
    for d0 in range(0, D, BLOCK_D):
        offs, mask = _line_offsets(o, d0, i, imask, D, inner, BLOCK_D)
        g = tl.load(gy_ptr + offs, mask=mask, other=0.0).to(ACC)
        dot += block_sum(g * tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC), 0)
    n = tl.load(norm_ptr + o * inner + i, mask=imask, other=1.0).to(ACC)
    if P_KIND == 1:
        n_pm1 = n * 0.0 + 1.0
    elif P_KIND == 2:
        n_pm1 = n
    else:
        n_pm1 = _pow_pos(n, p - 1.0)
    big = n > eps
    n_safe = tl.where(big, n, 1.0)
    coef = tl.where(big, -dot / (n_safe * n_safe) / tl.where(big, n_pm1, 1.0), 0.0)
    inv = 1.0 / tl.maximum(n, eps)
    for d0 in range(0, D, BLOCK_D):
        offs, mask = _line_offsets(o, d0, i, imask, D, inner, BLOCK_D)
        g = tl.load(gy_ptr + offs, mask=mask, other=0.0).to(ACC)
        xv = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        tl.store(gx_ptr + offs, g * inv[None, :] + coef[None, :] * _lp_grad_term(xv, p, P_KIND), mask=mask)


@triton.jit
def _pixel_block(C, S, BLOCK_S: tl.constexpr):
    """(offsets of channel 0 at this program's pixels, their mask, S as int64 so that c * S cannot
    overflow) for grid (N, cdiv(S, BLOCK_S))."""
    n = tl.program_id(0).to(tl.int64)
    s = tl.program_id(1).to(tl.int64) * BLOCK_S + tl.arange(0, BLOCK_S)
    S64 = S + n * 0
    return n * C * S64 + s, s < S, S64


@triton.jit
def _square_at(x_ptr, base, c, C, S, smask):
    """x[c]^2 over the pixel block at base (0 for c outside [0, C))."""
    cv = base * 0 + c  # as a tensor: a Python-int loop index (interpreter) makes a bool mask of the wrong type
    v = tl.load(x_ptr + base + cv * S, mask=smask & (cv >= 0) & (cv < C), other=0.0)
    return v * v


@triton.jit
def _lrn_forward(x_ptr, y_ptr, scale_ptr, params_ptr, C, S, before, after, head, ACC: tl.constexpr,
                 BLOCK_S: tl.constexpr):
    """x, y, scale: [N, C, S]; params = [alpha/size, beta, k]; head = min(C, after). Grid (N, cdiv(S, BLOCK_S))."""
    base, smask, S64 = _pixel_block(C, S, BLOCK_S)
    a = tl.load(params_ptr).to(ACC)
    beta = tl.load(params_ptr + 1).to(ACC)
    k = tl.load(params_ptr + 2).to(ACC)
    window = tl.full([BLOCK_S], 0.0, dtype=ACC)  # sum of squares over [c - before, c + after] within [0, C)
    for c in range(0, head):
        window += _square_at(x_ptr, base, c, C, S64, smask).to(ACC)
    for c in range(0, C):
        window += _square_at(x_ptr, base, c + after, C, S64, smask).to(ACC)
        window -= _square_at(x_ptr, base, c - before - 1, C, S64, smask).to(ACC)
        sc = k + a * window
        offs = base + c * S64
        tl.store(scale_ptr + offs, sc, mask=smask)
        xv = tl.load(x_ptr + offs, mask=smask, other=0.0).to(ACC)
        tl.store(y_ptr + offs, xv * _pow_pos(sc, -beta), mask=smask)


@triton.jit
def _lrn_t_at(gy_ptr, x_ptr, scale_ptr, base, c, C, S, smask, beta, ACC: tl.constexpr):
    """t_c = gy_c x_c scale_c^(-beta-1) over the pixel block (0 for c outside [0, C))."""
    cv = base * 0 + c  # as a tensor, see _square_at
    m = smask & (cv >= 0) & (cv < C)
    offs = base + cv * S
    g = tl.load(gy_ptr + offs, mask=m, other=0.0).to(ACC)
    xv = tl.load(x_ptr + offs, mask=m, other=0.0).to(ACC)
    sc = tl.load(scale_ptr + offs, mask=m, other=1.0).to(ACC)
    return g * xv * _pow_pos(sc, -beta - 1.0)


@triton.jit
def _lrn_backward(gy_ptr, x_ptr, scale_ptr, gx_ptr, params_ptr, C, S, before, after, head, ACC: tl.constexpr,
                  BLOCK_S: tl.constexpr):
    """gy, x, scale, gx: [N, C, S]; params = [-2 alpha beta / size, beta]; head = min(C, before)."""
    base, smask, S64 = _pixel_block(C, S, BLOCK_S)
    factor = tl.load(params_ptr).to(ACC)
    beta = tl.load(params_ptr + 1).to(ACC)
    window = tl.full([BLOCK_S], 0.0, dtype=ACC)  # sum of t_c over c in [j - after, j + before] within [0, C)
    for c in range(0, head):
        window += _lrn_t_at(gy_ptr, x_ptr, scale_ptr, base, c, C, S64, smask, beta, ACC)
    for j in range(0, C):
        window += _lrn_t_at(gy_ptr, x_ptr, scale_ptr, base, j + before, C, S64, smask, beta, ACC)
        window -= _lrn_t_at(gy_ptr, x_ptr, scale_ptr, base, j - after - 1, C, S64, smask, beta, ACC)
        offs = base + j * S64
        g = tl.load(gy_ptr + offs, mask=smask, other=0.0).to(ACC)
        xv = tl.load(x_ptr + offs, mask=smask, other=0.0).to(ACC)
        sc = tl.load(scale_ptr + offs, mask=smask, other=1.0).to(ACC)
        tl.store(gx_ptr + offs, g * _pow_pos(sc, -beta) + factor * xv * window, mask=smask)


def _params(x, *values):
    return torch.tensor(values, dtype=x.dtype, device=x.device)


def _line_grid(x):
    outer, D, inner = x.shape
    block_d, block_i = tiles(max(D, 1), inner)
    return (outer, triton.cdiv(inner, block_i)), block_d, block_i


@triton_kernel(kernels.normalize_forward)
def normalize_forward(x, p, eps):
    outer, D, inner = x.shape
    y = torch.empty_like(x)
    norm = x.new_empty(outer, inner)
    if norm.numel():
        grid, bd, bi = _line_grid(x)
        _normalize_forward[grid](x, y, norm, _params(x, p, eps), D, inner, P_KIND=_p_kind(p), ACC=_ACC[x.dtype],
                                 BLOCK_D=bd, BLOCK_I=bi)
    return y, norm


@triton_kernel(kernels.normalize_backward)
def normalize_backward(gy, x, norm, p, eps):
    outer, D, inner = x.shape
    gx = torch.empty_like(x)
    if x.numel():
        grid, bd, bi = _line_grid(x)
        _normalize_backward[grid](gy, x, norm, gx, _params(x, p, eps), D, inner, P_KIND=_p_kind(p),
                                  ACC=_ACC[x.dtype], BLOCK_D=bd, BLOCK_I=bi)
    return gx


def _pixel_grid(x):
    N, C, S = x.shape
    block = min(_PIXEL_BLOCK, triton.next_power_of_2(S))
    return (N, triton.cdiv(S, block)), block


@triton_kernel(kernels.local_response_norm_forward)
def local_response_norm_forward(x, size, alpha, beta, k):
    N, C, S = x.shape
    y, scale = torch.empty_like(x), torch.empty_like(x)
    if x.numel():
        before, after = lrn_window(size)
        grid, block = _pixel_grid(x)
        _lrn_forward[grid](x, y, scale, _params(x, alpha / size, beta, k), C, S, before, after, min(C, after),
                           ACC=_ACC[x.dtype], BLOCK_S=block)
    return y, scale


@triton_kernel(kernels.local_response_norm_backward)
def local_response_norm_backward(gy, x, scale, size, alpha, beta):
    N, C, S = x.shape
    gx = torch.empty_like(x)
    if x.numel():
        before, after = lrn_window(size)
        grid, block = _pixel_grid(x)
        _lrn_backward[grid](gy, x, scale, gx, _params(x, -2.0 * alpha * beta / size, beta), C, S, before, after,
                            min(C, before), ACC=_ACC[x.dtype], BLOCK_S=block)
    return gx
