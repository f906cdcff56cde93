"""Triton kernels of the resampling family (signatures in fastcnn/ops/resample.py).

  _interpolate_fwd   one lane per output pixel: two taps per axis, four loads, blend
  _interpolate_bwd   one lane per input pixel: gathers from the output pixels of its contributor
                     window (exact weights recomputed), so no atomics
  _shuffle           one lane per element: pixel_shuffle (to_space) or its inverse
  _grid_fwd          one lane per output pixel
  _grid_bwd          one lane per grid point, looping over channels: grid gradient in registers,
                     input gradient by atomic adds (grid points may share input pixels)
"""
from __future__ import annotations

import math

import numpy as np
import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.contracts.resample import shuffle_geometry
from fastcnn.kernels.triton._resample_coords import (IDENTITY, LINEAR, NEAREST, NEAREST_DOUBLE, axis_tap_weight,
                                                     axis_taps, contributor_first, grid_source,
                                                     round_half_even)

BLOCK = 128


def axis_params(n_in, n_out, nearest, align_corners, scale, dtype):
    """(kind, ratio, nscale, step) of one axis, computed as resample_coords.cuh's make_axis does
    (ratio in the data's dtype, nscale in float32)."""
    np_t = np.float32 if dtype == torch.float32 else np.float64
    if align_corners:
        ratio = np_t(n_in - 1) / np_t(n_out - 1) if n_out > 1 else np_t(0)
    else:
        ratio = np_t(1.0 / scale) if scale > 0 else np_t(n_in) / np_t(n_out)
    nscale = np.float32(1.0 / scale) if scale > 0 else np.float32(n_in) / np.float32(n_out)
    if n_out == n_in:
        kind, step = IDENTITY, 1.0
    elif nearest:
        kind, step = (NEAREST_DOUBLE, 0.5) if n_out == 2 * n_in else (NEAREST, float(nscale))
    else:
        kind, step = LINEAR, float(ratio)
    return kind, ratio, float(nscale), (step if step > 0 else 1e30)


# The interpolation kernels compile without multiply-add contraction: torch rounds every product of
# its source-index math (`ratio * (d + 0.5) - 0.5`, `src - floor(src)`) and of the blend
# (`l0 * (w0 * x00 + w1 * x01) + ...`) separately, and so does the interpreter; a GPU compile with
# fusion on turns them into FMAs, which round once, and a source index or weight 1 ulp away picks
# another tap weight (issue #14: one float64 element off on an H200). tests/backends/triton/test_triton_aot.py
# checks the PTX has no fma.
NO_FMA = {"enable_fp_fusion": False}


def _ratios(ah, aw, like):
    return torch.tensor([float(ah[1]), float(aw[1])], dtype=like.dtype, device=like.device)


@triton.jit
def _interpolate_fwd(x_ptr, y_ptr, ratio_ptr, total, H, W, P, Q, nscale_h, nscale_w,
                     KIND_H: tl.constexpr, KIND_W: tl.constexpr, ALIGN: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    q = offs % Q
    p = (offs // Q) % P
    plane = offs // (P * Q)
    h0, h1, a0, a1 = axis_taps(p, H, tl.load(ratio_ptr), nscale_h, KIND_H, ALIGN)
    w0, w1, b0, b1 = axis_taps(q, W, tl.load(ratio_ptr + 1), nscale_w, KIND_W, ALIGN)
    base = x_ptr + plane * H * W
    v00 = tl.load(base + h0 * W + w0, mask=mask, other=0.0)
    v01 = tl.load(base + h0 * W + w1, mask=mask, other=0.0)
    v10 = tl.load(base + h1 * W + w0, mask=mask, other=0.0)
    v11 = tl.load(base + h1 * W + w1, mask=mask, other=0.0)
    y = a0 * (b0 * v00 + b1 * v01) + a1 * (b0 * v10 + b1 * v11)
    if KIND_H != 3:  # nearest / identity rows: no second tap (keeps inf/nan out of 0 * x)
        y = b0 * v00 + b1 * v01
        if KIND_W != 3:
            y = v00
    elif KIND_W != 3:
        y = a0 * v00 + a1 * v10
    tl.store(y_ptr + offs, y, mask=mask)


@triton.jit
def _interpolate_bwd(gy_ptr, gx_ptr, ratio_ptr, total, H, W, P, Q, nscale_h, nscale_w, step_h, step_w,
                     KH, KW, KIND_H: tl.constexpr, KIND_W: tl.constexpr, ALIGN: tl.constexpr,
                     BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    w = offs % W
    h = (offs // W) % H
    plane = offs // (H * W)
    ratio_h = tl.load(ratio_ptr)
    ratio_w = tl.load(ratio_ptr + 1)
    p_first = contributor_first(h, step_h, P)
    q_first = contributor_first(w, step_w, Q)
    acc = tl.zeros([BLOCK], ratio_h.dtype)
    for kh in range(0, KH):
        p = p_first + kh
        wh = axis_tap_weight(p, h, H, ratio_h, nscale_h, KIND_H, ALIGN)
        row_ok = mask & (p < P) & (wh != 0.0)
        for kw in range(0, KW):
            q = q_first + kw
            ww = axis_tap_weight(q, w, W, ratio_w, nscale_w, KIND_W, ALIGN)
            ok = row_ok & (q < Q) & (ww != 0.0)
            g = tl.load(gy_ptr + (plane * P + p) * Q + q, mask=ok, other=0.0)
            acc += tl.where(ok, g * (wh * ww), 0.0)
    tl.store(gx_ptr + offs, acc, mask=mask)


def _interp_setup(in_hw, out_hw, nearest, align_corners, scales, like):
    ah = axis_params(in_hw[0], out_hw[0], nearest, align_corners, scales[0], like.dtype)
    aw = axis_params(in_hw[1], out_hw[1], nearest, align_corners, scales[1], like.dtype)
    return ah, aw, _ratios(ah, aw, like)


@triton_kernel(kernels.interpolate_forward)
def interpolate_forward(x, out_hw, nearest, align_corners, scales):
    N, C, H, W = x.shape
    P, Q = out_hw
    y = x.new_empty((N, C, P, Q))
    ah, aw, ratios = _interp_setup((H, W), (P, Q), nearest, align_corners, scales, x)
    total = y.numel()
    if total:
        _interpolate_fwd[(triton.cdiv(total, BLOCK),)](x, y, ratios, total, H, W, P, Q, ah[2], aw[2],
                                                      KIND_H=ah[0], KIND_W=aw[0], ALIGN=bool(align_corners),
                                                      BLOCK=BLOCK, **NO_FMA)
    return y


def _window_len(step, n_out):
    """Window length: the .cuh's contributor_window spans at most 2.5 / step + 3 pixels."""
    return int(min(n_out, math.ceil(2.5 / step) + 4))


@triton_kernel(kernels.interpolate_backward)
def interpolate_backward(gy, in_hw, nearest, align_corners, scales):
    N, C, P, Q = gy.shape
    H, W = in_hw
    gx = gy.new_empty((N, C, H, W))
    ah, aw, ratios = _interp_setup((H, W), (P, Q), nearest, align_corners, scales, gy)
    total = gx.numel()
    if total:
        _interpolate_bwd[(triton.cdiv(total, BLOCK),)](gy, gx, ratios, total, H, W, P, Q, ah[2], aw[2], ah[3],
                                                      aw[3], _window_len(ah[3], P), _window_len(aw[3], Q),
                                                      KIND_H=ah[0], KIND_W=aw[0], ALIGN=bool(align_corners),
                                                      BLOCK=BLOCK, **NO_FMA)
    return gx


@triton.jit
def _shuffle(src_ptr, dst_ptr, total, C, H, W, r, TO_SPACE: tl.constexpr, BLOCK: tl.constexpr):
    """Lane e is element e of space[N, C, H*r, W*r]; depth[N, C*r*r, H, W] is the other side."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    Ws = W * r
    ws = offs % Ws
    hs = (offs // Ws) % (H * r)
    nc = offs // (Ws * H * r)
    depth = ((nc * r * r + (hs % r) * r + ws % r) * H + hs // r) * W + ws // r
    if TO_SPACE:
        tl.store(dst_ptr + offs, tl.load(src_ptr + depth, mask=mask), mask=mask)
    else:
        tl.store(dst_ptr + depth, tl.load(src_ptr + offs, mask=mask), mask=mask)


@triton_kernel(kernels.pixel_shuffle)
def pixel_shuffle(x, factor, to_space):
    r = factor
    C, H, W, y = shuffle_geometry(x, r, to_space)
    total = y.numel()
    if total:
        _shuffle[(triton.cdiv(total, BLOCK),)](x, y, total, C, H, W, r, TO_SPACE=bool(to_space), BLOCK=BLOCK)
    return y


@triton.jit
def _grid_taps(grid_ptr, pt, mask, H, W, ALIGN: tl.constexpr, PADDING: tl.constexpr, NEAREST: tl.constexpr):
    """(fx, fy, x0, y0, dsx, dsy): bilinear reads the 2x2 block from (x0, y0); nearest reads (x0, y0)
    alone (fx = fy = 0)."""
    gxc = tl.load(grid_ptr + pt * 2, mask=mask, other=0.0)
    gyc = tl.load(grid_ptr + pt * 2 + 1, mask=mask, other=0.0)
    ix, dsx = grid_source(gxc, W, ALIGN, PADDING)
    iy, dsy = grid_source(gyc, H, ALIGN, PADDING)
    if NEAREST:
        ix = round_half_even(ix)
        iy = round_half_even(iy)
    fx0 = tl.floor(ix)
    fy0 = tl.floor(iy)
    x0 = fx0.to(tl.int64)
    y0 = fy0.to(tl.int64)
    return ix - fx0, iy - fy0, x0, y0, dsx, dsy


@triton.jit
def _grid_fwd(x_ptr, grid_ptr, y_ptr, total, C, H, W, P, Q,
              ALIGN: tl.constexpr, PADDING: tl.constexpr, NEAREST: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    pq = offs % (P * Q)
    n = offs // (C * P * Q)
    c = (offs // (P * Q)) % C
    fx, fy, x0, y0, _, _ = _grid_taps(grid_ptr, n * P * Q + pq, mask, H, W, ALIGN, PADDING, NEAREST)
    base = x_ptr + (n * C + c) * H * W
    if NEAREST:
        y = tl.load(base + y0 * W + x0, mask=mask & (y0 >= 0) & (y0 < H) & (x0 >= 0) & (x0 < W), other=0.0)
    else:
        in_x0 = (x0 >= 0) & (x0 < W)
        in_x1 = (x0 + 1 >= 0) & (x0 + 1 < W)
        in_y0 = (y0 >= 0) & (y0 < H)
        in_y1 = (y0 + 1 >= 0) & (y0 + 1 < H)
        v00 = tl.load(base + y0 * W + x0, mask=mask & in_y0 & in_x0, other=0.0)
        v01 = tl.load(base + y0 * W + x0 + 1, mask=mask & in_y0 & in_x1, other=0.0)
        v10 = tl.load(base + (y0 + 1) * W + x0, mask=mask & in_y1 & in_x0, other=0.0)
        v11 = tl.load(base + (y0 + 1) * W + x0 + 1, mask=mask & in_y1 & in_x1, other=0.0)
        y = (1.0 - fy) * ((1.0 - fx) * v00 + fx * v01) + fy * ((1.0 - fx) * v10 + fx * v11)
    tl.store(y_ptr + offs, y, mask=mask)


@triton.jit
def _grid_bwd(gy_ptr, x_ptr, grid_ptr, gx_ptr, ggrid_ptr, points, C, H, W, P, Q,
              ALIGN: tl.constexpr, PADDING: tl.constexpr, NEAREST: tl.constexpr, NEED_INPUT: tl.constexpr,
              NEED_GRID: tl.constexpr,
              BLOCK: tl.constexpr):
    pt = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = pt < points
    n = pt // (P * Q)
    pq = pt % (P * Q)
    fx, fy, x0, y0, dsx, dsy = _grid_taps(grid_ptr, pt, mask, H, W, ALIGN, PADDING, NEAREST)
    m00 = mask & (y0 >= 0) & (y0 < H) & (x0 >= 0) & (x0 < W)
    # nearest: tap (x0, y0) alone, and a zero grid gradient (as torch)
    m01 = mask & (y0 >= 0) & (y0 < H) & (x0 + 1 >= 0) & (x0 + 1 < W) & (not NEAREST)
    m10 = mask & (y0 + 1 >= 0) & (y0 + 1 < H) & (x0 >= 0) & (x0 < W) & (not NEAREST)
    m11 = mask & (y0 + 1 >= 0) & (y0 + 1 < H) & (x0 + 1 >= 0) & (x0 + 1 < W) & (not NEAREST)
    o00 = y0 * W + x0
    gix = tl.zeros([BLOCK], fx.dtype)
    giy = tl.zeros([BLOCK], fx.dtype)
    for c in range(0, C):
        plane = (n * C + c) * H * W
        g = tl.load(gy_ptr + (n * C + c) * P * Q + pq, mask=mask, other=0.0)
        if NEED_INPUT:
            tl.atomic_add(gx_ptr + plane + o00, (1.0 - fx) * (1.0 - fy) * g, mask=m00)
            tl.atomic_add(gx_ptr + plane + o00 + 1, fx * (1.0 - fy) * g, mask=m01)
            tl.atomic_add(gx_ptr + plane + o00 + W, (1.0 - fx) * fy * g, mask=m10)
            tl.atomic_add(gx_ptr + plane + o00 + W + 1, fx * fy * g, mask=m11)
        if NEED_GRID and not NEAREST:
            v00 = tl.load(x_ptr + plane + o00, mask=m00, other=0.0)
            v01 = tl.load(x_ptr + plane + o00 + 1, mask=m01, other=0.0)
            v10 = tl.load(x_ptr + plane + o00 + W, mask=m10, other=0.0)
            v11 = tl.load(x_ptr + plane + o00 + W + 1, mask=m11, other=0.0)
            gix += g * ((v01 - v00) * (1.0 - fy) + (v11 - v10) * fy)
            giy += g * ((v10 - v00) * (1.0 - fx) + (v11 - v01) * fx)
    if NEED_GRID:
        tl.store(ggrid_ptr + pt * 2, gix * dsx, mask=mask)
        tl.store(ggrid_ptr + pt * 2 + 1, giy * dsy, mask=mask)


@triton_kernel(kernels.grid_sample_forward)
def grid_sample_forward(x, grid, padding, align_corners, nearest):
    N, C, H, W = x.shape
    P, Q = grid.shape[1:3]
    y = x.new_empty((N, C, P, Q))
    total = y.numel()
    if total:
        _grid_fwd[(triton.cdiv(total, BLOCK),)](x, grid, y, total, C, H, W, P, Q, ALIGN=bool(align_corners),
                                               PADDING=int(padding), NEAREST=bool(nearest), BLOCK=BLOCK)
    return y


@triton_kernel(kernels.grid_sample_backward)
def grid_sample_backward(gy, x, grid, padding, align_corners, nearest, need_input, need_grid):
    N, C, H, W = x.shape
    P, Q = grid.shape[1:3]
    gx = torch.zeros_like(x)  # atomic accumulation target (a dummy when not needed)
    ggrid = torch.empty_like(grid)
    points = N * P * Q
    if points:
        _grid_bwd[(triton.cdiv(points, BLOCK),)](gy, x, grid, gx, ggrid, points, C, H, W, P, Q,
                                                ALIGN=bool(align_corners), PADDING=int(padding),
                                                NEAREST=bool(nearest),
                                                NEED_INPUT=bool(need_input), NEED_GRID=bool(need_grid),
                                                BLOCK=BLOCK)
    return (gx if need_input else None), (ggrid if need_grid else None)
