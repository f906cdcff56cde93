"""cpu kernels of the activation family (csrc/kernels/activation.cpp)."""
from __future__ import annotations

import torch

from fastcnn import _C

from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, empty_like, new_empty
from ...contracts.activation import ACT_KIND

_A = _C.activation
_DTYPES = {torch.float32: _C.Dtype(0), torch.float64: _C.Dtype(1)}  # built once: a pybind enum costs 0.3 us


def _dtype(t):
    d = _DTYPES.get(t.dtype)
    return d if d is not None else _C.Dtype(dtype_code(t))  # dtype_code raises the clear TypeError


@cpu_kernel(kernels.activation_forward)
def activation_forward(x, kind, p0=0.0, p1=0.0, out=None):
    y = empty_like(x) if out is None else out
    _A.forward(ACT_KIND[kind], addr(x), addr(y), x.numel(), float(p0), float(p1), _dtype(x))
    return y


@cpu_kernel(kernels.activation_backward)
def activation_backward(gy, saved, kind, p0=0.0, p1=0.0, from_output=True):
    gx = empty_like(saved)
    _A.backward(ACT_KIND[kind], addr(gy), addr(saved), addr(gx), saved.numel(), bool(from_output), float(p0),
                float(p1), _dtype(saved))
    return gx


@cpu_kernel(kernels.prelu_forward)
def prelu_forward(x, weight):
    outer, C, inner = x.shape
    y = empty_like(x)
    _A.prelu_forward(addr(x), addr(weight), addr(y), outer, C, inner, weight.numel(), _dtype(x))
    return y


@cpu_kernel(kernels.prelu_backward)
def prelu_backward(gy, x, weight):
    outer, C, inner = x.shape
    gx, gw = empty_like(x), empty_like(weight)
    _A.prelu_backward(addr(gy), addr(x), addr(weight), addr(gx), addr(gw), outer, C, inner, weight.numel(),
                      _dtype(x))
    return gx, gw


@cpu_kernel(kernels.maxout_forward)
def maxout_forward(x, pool_size):
    outer, C, inner = x.shape
    y = new_empty(x, (outer, C // pool_size, inner))
    _A.maxout_forward(addr(x), addr(y), outer, C // pool_size, pool_size, inner, _dtype(x))
    return y


@cpu_kernel(kernels.maxout_backward)
def maxout_backward(gy, x, pool_size):
    outer, C, inner = x.shape
    gx = empty_like(x)
    _A.maxout_backward(addr(gy), addr(x), addr(gx), outer, C // pool_size, pool_size, inner, _dtype(x))
    return gx
