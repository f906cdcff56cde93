"""im2col (gather an image into its column matrix) and col2im (its adjoint, as a gather: each image
element sums the column entries that read it, so no atomics and a deterministic order).

    cols[n, (c*R + r)*S + s, p*Q + q] = x[n, c, p*sh - ph + r*dh, q*sw - pw + s*dw]  (0 outside)
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._conv_common import launch


@triton.jit
def im2col_kernel(x_ptr, cols_ptr,  # x[N, C, H, W], cols[N, C*R*S, P*Q]
                  C, H, W, R, S, P, Q, sh, sw, ph, pw, dh, dw,
                  BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr):
    n_rows = C * R * S
    n_cols = P * Q
    row_blocks = (n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS
    col_blocks = (n_cols + BLOCK_COLS - 1) // BLOCK_COLS
    pid = tl.program_id(0)
    n = (pid // (row_blocks * col_blocks)).to(tl.int64)
    rest = pid % (row_blocks * col_blocks)
    rows = (rest // col_blocks).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = (rest % col_blocks).to(tl.int64) * BLOCK_COLS + tl.arange(0, BLOCK_COLS)
    c = rows // (R * S)
    r = (rows % (R * S)) // S
    s = rows % S
    p = cols // Q
    q = cols % Q
    ih = (p * sh - ph)[None, :] + (r * dh)[:, None]
    iw = (q * sw - pw)[None, :] + (s * dw)[:, None]
    inside = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]
    taps = inside & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
    v = tl.load(x_ptr + n * C * H * W + (c * H * W)[:, None] + ih * W + iw, mask=taps, other=0.0)
    tl.store(cols_ptr + n * n_rows * n_cols + rows[:, None] * n_cols + cols[None, :], v, mask=inside)


@triton.jit
def col2im_kernel(cols_ptr, x_ptr,  # cols[N, C*R*S, P*Q], x[N, C, H, W]
                  C, H, W, R, S, P, Q, sh, sw, ph, pw, dh, dw,
                  BLOCK: tl.constexpr):
    blocks = (H * W + BLOCK - 1) // BLOCK
    pid = tl.program_id(0)
    plane = (pid // blocks).to(tl.int64)  # n * C + c
    hw = (pid % blocks).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    h = hw // W
    w = hw % W
    ok = hw < H * W
    col_base = cols_ptr + plane * R * S * P * Q  # rows c*R*S.. of image n
    acc = tl.full((BLOCK,), 0.0, x_ptr.dtype.element_ty)
    for r in range(0, R):
        th = h + ph - r * dh  # = p*sh for the output row p that reads h through tap r
        p = th // sh
        row_ok = ok & (th >= 0) & (th % sh == 0) & (p < P)
        for s in range(0, S):
            tw = w + pw - s * dw
            q = tw // sw
            hit = row_ok & (tw >= 0) & (tw % sw == 0) & (q < Q)
            acc += tl.load(col_base + (r * S + s) * P * Q + p * Q + q, mask=hit, other=0.0)
    tl.store(x_ptr + plane * H * W + hw, acc, mask=ok)


def _block(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, triton.next_power_of_2(max(1, n))))


def im2col(x, kernel_hw, stride, padding, dilation, out_hw):
    """x[N, C, H, W] -> cols[N, C*R*S, P*Q]."""
    N, C, H, W = x.shape
    (R, S), (P, Q) = kernel_hw, out_hw
    cols = torch.empty((N, C * R * S, P * Q), dtype=x.dtype, device=x.device)
    if cols.numel() == 0:
        return cols
    br, bc = _block(C * R * S, 16, 32), _block(P * Q, 16, 64)
    grid = (N * triton.cdiv(C * R * S, br) * triton.cdiv(P * Q, bc),)
    launch(im2col_kernel, grid, x, cols, C, H, W, R, S, P, Q, *stride, *padding, *dilation,
           BLOCK_ROWS=br, BLOCK_COLS=bc, num_warps=4)
    return cols


def col2im(cols, in_hw, kernel_hw, stride, padding, dilation, out_hw):
    """cols[N, C*R*S, P*Q] -> x[N, C, H, W], x[n, c, h, w] = sum of the entries im2col reads it into."""
    (H, W), (R, S), (P, Q) = in_hw, kernel_hw, out_hw
    N = cols.shape[0]
    C = cols.shape[1] // (R * S)
    x = torch.empty((N, C, H, W), dtype=cols.dtype, device=cols.device)
    if x.numel() == 0:
        return x
    block = _block(H * W, 16, 256)
    launch(col2im_kernel, (N * C * triton.cdiv(H * W, block),), cols, x, C, H, W, R, S, P, Q,
           *stride, *padding, *dilation, BLOCK=block, num_warps=4)
    return x
