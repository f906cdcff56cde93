"""Triton dropout mask * scale (forward and backward). Signatures: fastcnn/ops/dropout.py."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.kernels.triton._conv_common import scalar_as  # scale 1/(1-p) exact for float64
from fastcnn.kernels.triton._stream import STREAM_BLOCK, STREAM_WARPS, stream_grid


@triton.jit
def _masked_scale(x_ptr, keep_ptr, y_ptr, n, group, scale: tl.float64, BLOCK: tl.constexpr):
    """y[i] = keep[i // group] ? x[i] * scale : 0; x, y flat [n], keep uint8 [n // group]."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    k = tl.load(keep_ptr + offs // group, mask=mask, other=0)
    tl.store(y_ptr + offs, tl.where(k != 0, x * scalar_as(scale, x), 0.0), mask=mask)


@triton_kernel(kernels.dropout_masked_scale)
def dropout_masked_scale(x, keep, group, scale, out=None):
    y = torch.empty_like(x) if out is None else out
    if x.numel():
        # scale passed as float64 (annotated) and turned into x's dtype in the kernel
        _masked_scale[stream_grid(x.numel())](x, keep, y, x.numel(), int(group), float(scale), BLOCK=STREAM_BLOCK,
                                              num_warps=STREAM_WARPS)
    return y
