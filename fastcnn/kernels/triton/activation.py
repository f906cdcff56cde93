"""Triton activation kernels: element-wise forward/backward, PReLU, Maxout.

Pointer arguments (all contiguous):
    x, y, gy, gx, s : [n] flat storage of one dense tensor (s = saved output or input)
    prelu: x, y, gy, gx : [outer, C, inner];  w : [nw] with nw in (1, C);  gw : [nw]
    maxout: x, gx : [outer, C * K, inner];  y, gy : [outer, C, inner]
"""
import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.kernels.triton._activation_math import act_backward, act_forward
from fastcnn.kernels.triton._conv_common import scalar_as  # float args come as float64 (exact slopes)
from fastcnn.contracts.activation import ACT_KIND
from fastcnn.kernels.triton._stream import STREAM_BLOCK, STREAM_WARPS, stream_grid


@triton.jit
def _forward_kernel(x_ptr, y_ptr, n, p0: tl.float64, p1: tl.float64, KIND: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(y_ptr + offs, act_forward(x, KIND, scalar_as(p0, x), scalar_as(p1, x)).to(x.dtype), mask=mask)


@triton.jit
def _backward_kernel(gy_ptr, s_ptr, gx_ptr, n, p0: tl.float64, p1: tl.float64, KIND: tl.constexpr, FROM_OUTPUT: tl.constexpr,
                     BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    gy = tl.load(gy_ptr + offs, mask=mask)
    s = tl.load(s_ptr + offs, mask=mask)
    tl.store(gx_ptr + offs, act_backward(gy, s, KIND, FROM_OUTPUT, scalar_as(p0, s), scalar_as(p1, s)).to(gy.dtype), mask=mask)


@triton.jit
def _prelu_forward_kernel(x_ptr, w_ptr, y_ptr, C, inner, nw, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)  # one (outer, channel) row per program along axis 0
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < inner
    w = tl.load(w_ptr + (row % C) % nw)
    x = tl.load(x_ptr + row * inner + offs, mask=mask)
    tl.store(y_ptr + row * inner + offs, tl.where(x > 0, x, w * x), mask=mask)


@triton.jit
def _prelu_backward_kernel(gy_ptr, x_ptr, w_ptr, gx_ptr, gw_part_ptr, C, inner, nw, BLOCK: tl.constexpr):
    # Each program writes its partial weight-gradient sum to its own slot (no atomics, deterministic);
    # the launcher sums the slots of each channel.
    row = tl.program_id(0).to(tl.int64)
    blk = tl.program_id(1)
    offs = blk * BLOCK + tl.arange(0, BLOCK)
    mask = offs < inner
    w = tl.load(w_ptr + (row % C) % nw)
    x = tl.load(x_ptr + row * inner + offs, mask=mask, other=0.0)
    gy = tl.load(gy_ptr + row * inner + offs, mask=mask, other=0.0)
    tl.store(gx_ptr + row * inner + offs, tl.where(x > 0, gy, w * gy), mask=mask)
    part = tl.sum(tl.where(x > 0, 0.0, x * gy), axis=0)
    tl.store(gw_part_ptr + row * tl.num_programs(1) + blk, part)


@triton.jit
def _maxout_kernel(x_ptr, y_ptr, gy_ptr, gx_ptr, inner, K: tl.constexpr, BACKWARD: tl.constexpr,
                   BLOCK: tl.constexpr):
    # Forward: y = max over the K rows of each group (NaN propagates, first maximum kept).
    # Backward: recompute that choice and route gy to it, zeros elsewhere.
    row = tl.program_id(0).to(tl.int64)  # output row (outer, channel group)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < inner
    base = x_ptr + row * K * inner + offs
    best = tl.load(base, mask=mask)
    arg = tl.zeros([BLOCK], dtype=tl.int32)
    for p in tl.static_range(1, K):
        v = tl.load(base + p * inner, mask=mask)
        take = (v > best) | ((v != v) & (best == best))
        best = tl.where(take, v, best)
        arg = tl.where(take, p, arg)
    if BACKWARD:
        g = tl.load(gy_ptr + row * inner + offs, mask=mask)
        for p in tl.static_range(0, K):
            tl.store(gx_ptr + row * K * inner + p * inner + offs, tl.where(arg == p, g, 0.0), mask=mask)
    else:
        tl.store(y_ptr + row * inner + offs, best, mask=mask)


@triton_kernel(kernels.activation_forward)
def activation_forward(x, kind, p0=0.0, p1=0.0, out=None):
    y = torch.empty_like(x) if out is None else out
    n = x.numel()
    if n:
        _forward_kernel[stream_grid(n)](x, y, n, float(p0), float(p1), KIND=ACT_KIND[kind], BLOCK=STREAM_BLOCK,
                                        num_warps=STREAM_WARPS)
    return y


@triton_kernel(kernels.activation_backward)
def activation_backward(gy, saved, kind, p0=0.0, p1=0.0, from_output=True):
    gx = torch.empty_like(saved)
    n = saved.numel()
    if n:
        _backward_kernel[stream_grid(n)](gy, saved, gx, n, float(p0), float(p1), KIND=ACT_KIND[kind],
                                         FROM_OUTPUT=bool(from_output), BLOCK=STREAM_BLOCK, num_warps=STREAM_WARPS)
    return gx


def _row_block(inner):
    return min(1024, triton.next_power_of_2(max(inner, 1)))


@triton_kernel(kernels.prelu_forward)
def prelu_forward(x, weight):
    outer, C, inner = x.shape
    y = torch.empty_like(x)
    if x.numel():
        blk = _row_block(inner)
        _prelu_forward_kernel[(outer * C, triton.cdiv(inner, blk))](x, weight, y, C, inner, weight.numel(), BLOCK=blk)
    return y


@triton_kernel(kernels.prelu_backward)
def prelu_backward(gy, x, weight):
    outer, C, inner = x.shape
    gx = torch.empty_like(x)
    blk = _row_block(inner)
    nblk = triton.cdiv(inner, blk)
    parts = torch.zeros((outer, C, nblk), dtype=x.dtype, device=x.device)
    if x.numel():
        _prelu_backward_kernel[(outer * C, nblk)](gy, x, weight, gx, parts, C, inner, weight.numel(), BLOCK=blk)
    gw = parts.sum(dim=(0, 2)) if weight.numel() > 1 else parts.sum().reshape(1)
    return gx, gw


@triton_kernel(kernels.maxout_forward)
def maxout_forward(x, pool_size):
    outer, C, inner = x.shape
    y = x.new_empty((outer, C // pool_size, inner))
    if y.numel():
        blk = _row_block(inner)
        _maxout_kernel[(outer * (C // pool_size), triton.cdiv(inner, blk))](x, y, y, y, inner, K=pool_size,
                                                                            BACKWARD=False, BLOCK=blk)
    return y


@triton_kernel(kernels.maxout_backward)
def maxout_backward(gy, x, pool_size):
    outer, C, inner = x.shape
    gx = torch.empty_like(x)
    if x.numel():
        blk = _row_block(inner)
        _maxout_kernel[(outer * (C // pool_size), triton.cdiv(inner, blk))](x, gx, gy, gx, inner, K=pool_size,
                                                                            BACKWARD=True, BLOCK=blk)
    return gx
