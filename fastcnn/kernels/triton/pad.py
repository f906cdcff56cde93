"""Triton kernels of 2-D padding (constant, reflect, replicate, circular). Signatures:
fastcnn/ops/pad.py. Tensors are [P, H, W, K] views whose storage is dense in that order.

Forward: one flat program per block of output elements, each reading its source position.
Backward is a gather (no atomics, deterministic): each input-gradient element sums gy over its
interior output position and the padded positions whose source it is, found by walking the
(small) pad bands: rows [0, top) and [top + H, Ho), columns [0, left) and [left + W, Wo).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.kernels.triton._conv_common import scalar_as  # float args come as float64 (exact pad value)

_BLOCK = 1024


@triton.jit
def _source(o, lo, n, MODE: tl.constexpr):
    """(source index, whether it reads the input) of padded index o along a dimension of n."""
    i = o - lo
    inside = (i >= 0) & (i < n)
    if MODE == 1:  # reflect
        s = tl.where(i < 0, -i, tl.where(i >= n, 2 * (n - 1) - i, i))
    elif MODE == 2:  # replicate
        s = tl.minimum(tl.maximum(i, 0), n - 1)
    elif MODE == 3:  # circular
        s = ((i % n) + n) % n
    else:  # constant: reads only inside
        s = i
    if MODE != 0:
        inside = inside | (o == o)
    return s, inside


@triton.jit
def _pad_forward(x_ptr, y_ptr, value: tl.float64, total, H, W, K, Ho, Wo, top, left, MODE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    k = offs % K
    j = (offs // K) % Wo
    i = (offs // (K * Wo)) % Ho
    p = offs // (K * Wo * Ho)
    si, in_i = _source(i, top, H, MODE)
    sj, in_j = _source(j, left, W, MODE)
    valid = mask & in_i & in_j
    v = tl.load(x_ptr + ((p * H + si) * W + sj) * K + k, mask=valid, other=0.0)
    tl.store(y_ptr + offs, tl.where(valid, v, scalar_as(value, v)), mask=mask)  # value: exact in float64


@triton.jit
def _row_gather(gy_ptr, row_base, sw, W, K, Wo, left, k, mask, MODE: tl.constexpr):
    """Sum over the output columns of one output row whose source column is sw."""
    acc = tl.load(gy_ptr + row_base + (sw + left) * K + k, mask=mask, other=0.0)
    for j in range(0, left):
        s, inside = _source(j + sw * 0, left, W, MODE)
        m = mask & inside & (s == sw)
        acc += tl.load(gy_ptr + row_base + j * K + k, mask=m, other=0.0)
    for j in range(left + W, Wo):
        s, inside = _source(j + sw * 0, left, W, MODE)
        m = mask & inside & (s == sw)
        acc += tl.load(gy_ptr + row_base + j * K + k, mask=m, other=0.0)
    return acc


@triton.jit
def _pad_backward(gy_ptr, gx_ptr, total, H, W, K, Ho, Wo, top, left, MODE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    k = offs % K
    w = (offs // K) % W
    h = (offs // (K * W)) % H
    p = offs // (K * W * H)
    plane = p * Ho
    acc = _row_gather(gy_ptr, (plane + h + top) * Wo * K, w, W, K, Wo, left, k, mask, MODE)
    for i in range(0, top):
        s, inside = _source(i + h * 0, top, H, MODE)
        m = mask & inside & (s == h)
        acc += _row_gather(gy_ptr, (plane + i) * Wo * K, w, W, K, Wo, left, k, m, MODE)
    for i in range(top + H, Ho):
        s, inside = _source(i + h * 0, top, H, MODE)
        m = mask & inside & (s == h)
        acc += _row_gather(gy_ptr, (plane + i) * Wo * K, w, W, K, Wo, left, k, m, MODE)
    tl.store(gx_ptr + offs, acc, mask=mask)


def _out(like, P, H, W, K):
    """A fresh [P, H, W, K] tensor laid out (P, H, W, K) in memory, as the view it replaces."""
    if K > 1:
        return torch.empty((P, K, H, W), dtype=like.dtype, device=like.device,
                           memory_format=torch.channels_last).permute(0, 2, 3, 1)
    return torch.empty((P, H, W, 1), dtype=like.dtype, device=like.device)


@triton_kernel(kernels.pad2d_forward)
def pad2d_forward(x, top, bottom, left, right, mode, value):
    P, H, W, K = x.shape
    Ho, Wo = H + top + bottom, W + left + right
    y = _out(x, P, Ho, Wo, K)
    total = y.numel()
    if total:
        _pad_forward[(triton.cdiv(total, _BLOCK),)](x, y, float(value), total, H, W, K, Ho, Wo, top, left, MODE=mode,
                                                    BLOCK=_BLOCK)
    return y


@triton_kernel(kernels.pad2d_backward)
def pad2d_backward(gy, H, W, top, bottom, left, right, mode):
    P, Ho, Wo, K = gy.shape
    gx = _out(gy, P, H, W, K)
    total = gx.numel()
    if total:
        _pad_backward[(triton.cdiv(total, _BLOCK),)](gy, gx, total, H, W, K, Ho, Wo, top, left, MODE=mode,
                                                     BLOCK=_BLOCK)
    return gx
