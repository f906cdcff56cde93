"""cuda kernels of the activation family (fastcnn/kernels/cuda/activation.cu)."""
from __future__ import annotations

import numpy as np
import torch

from ...contracts.activation import ACT_KIND
from ...contracts import kernels
from ._lib import cuda_kernel, i64, launch, ptr, scalar, suffix

THREADS = 256


def _blocks(n):
    return (max(1, min((n + THREADS - 1) // THREADS, 65535)),)


@cuda_kernel(kernels.activation_forward)
def activation_forward(x, kind, p0=0.0, p1=0.0, out=None):
    y = torch.empty_like(x) if out is None else out
    n = x.numel()
    if n:
        launch("activation", f"activation_forward_{suffix(x.dtype)}", _blocks(n), (THREADS,),
               (np.int32(ACT_KIND[kind]), ptr(x), ptr(y), i64(n), scalar(p0, x.dtype), scalar(p1, x.dtype)))
    return y


@cuda_kernel(kernels.activation_backward)
def activation_backward(gy, saved, kind, p0=0.0, p1=0.0, from_output=True):
    gx = torch.empty_like(saved)
    n = saved.numel()
    if n:
        launch("activation", f"activation_backward_{suffix(saved.dtype)}", _blocks(n), (THREADS,),
               (np.int32(ACT_KIND[kind]), ptr(gy), ptr(saved), ptr(gx), i64(n), np.int32(bool(from_output)),
                scalar(p0, saved.dtype), scalar(p1, saved.dtype)))
    return gx


@cuda_kernel(kernels.prelu_forward)
def prelu_forward(x, weight):
    outer, C, inner = x.shape
    y = torch.empty_like(x)
    if x.numel():
        launch("activation", f"prelu_forward_{suffix(x.dtype)}", _blocks(x.numel()), (THREADS,),
               (ptr(x), ptr(weight), ptr(y), i64(C), i64(inner), i64(weight.numel()), i64(x.numel())))
    return y


@cuda_kernel(kernels.prelu_backward)
def prelu_backward(gy, x, weight):
    outer, C, inner = x.shape
    gx, gw = torch.empty_like(x), torch.zeros_like(weight)
    if x.numel():
        launch("activation", f"prelu_backward_{suffix(x.dtype)}", (weight.numel(),), (THREADS,),
               (ptr(gy), ptr(x), ptr(weight), ptr(gx), ptr(gw), i64(outer), i64(C), i64(inner), i64(weight.numel())))
    return gx, gw


def _maxout(x, y, gy, gx, pool_size, backward_pass):
    outer, C, inner = x.shape
    n = outer * (C // pool_size) * inner
    if n:
        launch("activation", f"maxout_{suffix(x.dtype)}", _blocks(n), (THREADS,),
               (ptr(x), ptr(y), ptr(gy), ptr(gx), i64(C // pool_size), i64(pool_size), i64(inner), i64(n),
                np.int32(backward_pass)))


@cuda_kernel(kernels.maxout_forward)
def maxout_forward(x, pool_size):
    outer, C, inner = x.shape
    y = x.new_empty((outer, C // pool_size, inner))
    _maxout(x, y, y, y, pool_size, 0)
    return y


@cuda_kernel(kernels.maxout_backward)
def maxout_backward(gy, x, pool_size):
    gx = torch.empty_like(x)
    _maxout(x, gx, gy, gx, pool_size, 1)
    return gx
