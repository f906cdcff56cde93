"""Triton convolution, algorithm 'direct': implicit GEMM, no column matrix in memory. Each program
computes a BLOCK_M x BLOCK_N tile of a GEMM whose operand tiles are gathered from the tensors on
the fly with masked loads (taps outside the image read zero), one group per program:

    forward          rows n*P*Q + p*Q + q,  cols k (of the group),  reduction c*R*S + r*S + s
    backward input   rows n*H*W + h*W + w,  cols c (of the group),  reduction k*R*S + r*S + s
                     (transposed convolution: output row p = (h + ph - r*dh) / sh where that divides;
                     taps that do not land on an output pixel are masked)
    backward weight  rows k (of the group), cols c*R*S + r*S + s,  reduction n*P*Q + p*Q + q

The forward applies bias + activation in its epilogue. Reduction indices are decoded per BLOCK_K
vector (cheap: 1-D), spatial indices once per program.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.contracts.activation import fused_code
from fastcnn.contracts.conv import ConvShape

from ._conv_common import apply_activation, conv_sizes, dot_precision, launch, pow2_clamp, scalar_as


@triton.jit
def _tile(ROWS, COLS, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """(group, row indices, col indices) of this program's tile of the group's ROWS x COLS GEMM;
    col tiles fastest so neighbours share rows (grid: see _launch_tiles)."""
    tiles_n = (COLS + BLOCK_N - 1) // BLOCK_N
    per_group = (ROWS + BLOCK_M - 1) // BLOCK_M * tiles_n
    pid = tl.program_id(0)
    g = pid // per_group
    rest = pid % per_group
    rows = (rest // tiles_n).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    return g.to(tl.int64), rows, (rest % tiles_n).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)


@triton.jit
def conv_forward_kernel(x_ptr, w_ptr, bias_ptr, y_ptr,  # x[N,C,H,W], w[K,C/g,R,S], bias[K], y[N,K,P,Q]
                        N, C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dh, dw, Cg, Kg,
                        act_param: tl.float64,
                        PRECISION: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    M = N * P * Q
    RED = Cg * R * S
    g, m, k = _tile(M, Kg, BLOCK_M, BLOCK_N)
    n = m // (P * Q)
    pq = m % (P * Q)
    ih0 = (pq // Q) * sh - ph
    iw0 = (pq % Q) * sw - pw
    m_ok = m < M
    x_rows = x_ptr + (n * C + g * Cg) * H * W  # [BLOCK_M] pointers to channel 0 of the group
    k_ok = k < Kg
    w_cols = w_ptr + (g * Kg + k) * RED
    ks = tl.arange(0, BLOCK_K).to(tl.int64)

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, y_ptr.dtype.element_ty)
    for k0 in range(0, RED, BLOCK_K):
        red = k0 + ks
        red_ok = red < RED
        c = red // (R * S)
        r = (red % (R * S)) // S
        s = red % S
        ih = ih0[:, None] + (r * dh)[None, :]
        iw = iw0[:, None] + (s * dw)[None, :]
        a_ok = m_ok[:, None] & red_ok[None, :] & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        a = tl.load(x_rows[:, None] + (c * H * W)[None, :] + ih * W + iw, mask=a_ok, other=0.0)
        b = tl.load(w_cols[None, :] + red[:, None], mask=red_ok[:, None] & k_ok[None, :], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=acc.dtype)

    if HAS_BIAS:
        acc += tl.load(bias_ptr + g * Kg + k, mask=k_ok, other=0.0)[None, :]
    acc = apply_activation(acc, ACT, scalar_as(act_param, acc))
    y_ptrs = y_ptr + (n * K * P * Q + pq)[:, None] + ((g * Kg + k) * P * Q)[None, :]
    tl.store(y_ptrs, acc, mask=m_ok[:, None] & k_ok[None, :])


@triton.jit
def conv_backward_input_kernel(gy_ptr, w_ptr, gx_ptr,  # gy[N,K,P,Q], w[K,C/g,R,S], gx[N,C,H,W]
                               N, C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dh, dw, Cg, Kg,
                               PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    M = N * H * W
    RED = Kg * R * S
    g, m, c = _tile(M, Cg, BLOCK_M, BLOCK_N)
    n = m // (H * W)
    hw = m % (H * W)
    h = hw // W
    w = hw % W
    m_ok = m < M
    gy_rows = gy_ptr + (n * K + g * Kg) * P * Q
    c_ok = c < Cg
    ks = tl.arange(0, BLOCK_K).to(tl.int64)

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, gx_ptr.dtype.element_ty)
    for k0 in range(0, RED, BLOCK_K):
        red = k0 + ks
        red_ok = red < RED
        kk = red // (R * S)
        rs = red % (R * S)
        th = h[:, None] + ph - (rs // S * dh)[None, :]  # = p * sh where tap r of row p reads h
        tw = w[:, None] + pw - (rs % S * dw)[None, :]
        # th, tw < 0 never land; clamping first keeps // and % on non-negative values, where the
        # GPU (truncating) and the interpreter (numpy, flooring) agree
        th_pos = tl.maximum(th, 0)
        tw_pos = tl.maximum(tw, 0)
        p = th_pos // sh
        q = tw_pos // sw
        lands = (th >= 0) & (tw >= 0) & (th_pos % sh == 0) & (tw_pos % sw == 0) & (p < P) & (q < Q)
        a_ok = m_ok[:, None] & red_ok[None, :] & lands
        a = tl.load(gy_rows[:, None] + (kk * P * Q)[None, :] + p * Q + q, mask=a_ok, other=0.0)
        b_ptrs = w_ptr + ((g * Kg + kk) * Cg * R * S + rs)[:, None] + (c * R * S)[None, :]
        b = tl.load(b_ptrs, mask=red_ok[:, None] & c_ok[None, :], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=acc.dtype)

    gx_ptrs = gx_ptr + (n * C * H * W + hw)[:, None] + ((g * Cg + c) * H * W)[None, :]
    tl.store(gx_ptrs, acc, mask=m_ok[:, None] & c_ok[None, :])


@triton.jit
def conv_backward_weight_kernel(x_ptr, gy_ptr, gw_ptr,  # x[N,C,H,W], gy[N,K,P,Q], gw[K,C/g,R,S]
                                N, C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dh, dw, Cg, Kg,
                                PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    COLS = Cg * R * S
    RED = N * P * Q
    g, k, col = _tile(Kg, COLS, BLOCK_M, BLOCK_N)
    k_ok = k < Kg
    col_ok = col < COLS
    c = col // (R * S)
    r = (col % (R * S)) // S
    s = col % S
    ks = tl.arange(0, BLOCK_K).to(tl.int64)

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, gw_ptr.dtype.element_ty)
    for k0 in range(0, RED, BLOCK_K):
        red = k0 + ks
        red_ok = red < RED
        n = red // (P * Q)
        pq = red % (P * Q)
        a_ptrs = gy_ptr + (g * Kg + k)[:, None] * P * Q + (n * K * P * Q + pq)[None, :]
        a = tl.load(a_ptrs, mask=k_ok[:, None] & red_ok[None, :], other=0.0)
        ih = ((pq // Q) * sh - ph)[:, None] + (r * dh)[None, :]
        iw = ((pq % Q) * sw - pw)[:, None] + (s * dw)[None, :]
        b_ok = red_ok[:, None] & col_ok[None, :] & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        b_ptrs = x_ptr + ((n * C + g * Cg) * H * W)[:, None] + (c * H * W)[None, :] + ih * W + iw
        b = tl.load(b_ptrs, mask=b_ok, other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=acc.dtype)

    gw_ptrs = gw_ptr + ((g * Kg + k) * COLS)[:, None] + col[None, :]
    tl.store(gw_ptrs, acc, mask=k_ok[:, None] & col_ok[None, :])


def _config(dtype, rows: int, cols: int):
    """(BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages): rows = the gathered GEMM side (pixels),
    cols = channels. 64 pixels x up to 64 channels x 32 reduction (16 for float64); the channel
    tile shrinks to the group's width (>= 16, tl.dot's minimum). Untuned: docs/backend-triton.md."""
    bk = 32 if dtype == torch.float32 else 16
    return pow2_clamp(rows, 16, 64), pow2_clamp(cols, 16, 64), bk, 4, 2


def _launch_tiles(kernel, inputs, out, shape: ConvShape, rows, cols, config, *scalars, **constexprs):
    """Fills out: one program per (group, BLOCK_M x BLOCK_N tile) of a rows x cols GEMM (the order
    _tile reads); the kernels take the convolution's sizes as conv_sizes lists them."""
    if out.numel() == 0:
        return out
    bm, bn, bk, warps, stages = config
    grid = (shape.G * triton.cdiv(rows, bm) * triton.cdiv(cols, bn),)
    launch(kernel, grid, *inputs, out, *conv_sizes(shape), *scalars, PRECISION=dot_precision(out.dtype),
           BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, num_warps=warps, num_stages=stages, **constexprs)
    return out


@triton_kernel(kernels.conv2d_forward.direct)
def conv2d_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    y = torch.empty(shape.y_shape, dtype=x.dtype, device=x.device)
    rows = shape.N * shape.P * shape.Q
    return _launch_tiles(conv_forward_kernel, (x, w, bias if bias is not None else w), y, shape, rows, shape.Kg,
                         _config(x.dtype, rows, shape.Kg), float(act_param), HAS_BIAS=bias is not None,
                         ACT=fused_code(activation))


@triton_kernel(kernels.conv2d_backward_input.direct)
def conv2d_backward_input(gy, w, shape: ConvShape):
    gx = torch.empty(shape.x_shape, dtype=gy.dtype, device=gy.device)
    rows = shape.N * shape.H * shape.W
    return _launch_tiles(conv_backward_input_kernel, (gy, w), gx, shape, rows, shape.Cg,
                         _config(gy.dtype, rows, shape.Cg))


@triton_kernel(kernels.conv2d_backward_weight.direct)
def conv2d_backward_weight(x, gy, shape: ConvShape):
    gw = torch.empty(shape.w_shape, dtype=x.dtype, device=x.device)
    taps = shape.Cg * shape.R * shape.S
    bm, bn, bk, warps, stages = _config(x.dtype, taps, shape.Kg)
    # rows are output channels here, columns the gathered taps
    return _launch_tiles(conv_backward_weight_kernel, (x, gy), gw, shape, shape.Kg, taps, (bn, bm, bk, warps, stages))
