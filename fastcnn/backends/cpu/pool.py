"""cpu kernels of the pooling family (signatures: fastcnn/ops/pool.py), on fastcnn._C.pool.

Tensors arrive 4-D, all contiguous NCHW or all channels_last (fastcnn/contracts/pool.py);
outputs are allocated in the same memory format, and the C++ kernels run a layout-specific path
(vectorised along output columns in NCHW, along channels in NHWC) without converting.
"""
from __future__ import annotations

import torch

from fastcnn import _C

from ...contracts.pool import is_channels_last as _is_channels_last
from ...contracts.pool import memory_format
from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, empty


def _out(like: torch.Tensor, hw, dtype=None) -> torch.Tensor:
    """An uninitialised [N, C, *hw] tensor in like's memory format (and dtype unless given)."""
    return empty((*like.shape[:2], *hw), dtype or like.dtype, memory_format(_is_channels_last(like)))


def _geom(like, in_hw, out_hw, kernel=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """The pool geometry record the C++ kernels take; N, C from like."""
    return (*like.shape[:2], *in_hw, *out_hw, *kernel, *stride, *padding, *dilation)


@cpu_kernel(kernels.max_pool2d_forward)
def max_pool2d_forward(x, kernel_size, stride, padding, dilation, out_hw, with_indices):
    y = _out(x, out_hw)
    idx = _out(x, out_hw, torch.int64) if with_indices else None
    if y.numel():
        _C.pool.max_forward(addr(x), addr(y), addr(idx) if idx is not None else 0,
                            _geom(x, x.shape[2:], out_hw, kernel_size, stride, padding, dilation),
                            _is_channels_last(x), dtype_code(x))
    return y, idx


@cpu_kernel(kernels.avg_pool2d_forward)
def avg_pool2d_forward(x, kernel_size, stride, padding, out_hw, count_include_pad, divisor_override):
    y = _out(x, out_hw)
    if y.numel():
        _C.pool.avg_forward(addr(x), addr(y), _geom(x, x.shape[2:], out_hw, kernel_size, stride, padding),
                            _is_channels_last(x), bool(count_include_pad), int(divisor_override or 0), dtype_code(x))
    return y


@cpu_kernel(kernels.avg_pool2d_backward)
def avg_pool2d_backward(gy, in_hw, kernel_size, stride, padding, count_include_pad, divisor_override):
    gx = _out(gy, in_hw)
    if gx.numel():
        _C.pool.avg_backward(addr(gy), addr(gx), _geom(gy, in_hw, gy.shape[2:], kernel_size, stride, padding),
                             _is_channels_last(gy), bool(count_include_pad), int(divisor_override or 0),
                             dtype_code(gy))
    return gx


@cpu_kernel(kernels.adaptive_max_pool2d_forward)
def adaptive_max_pool2d_forward(x, out_hw):
    y = _out(x, out_hw)
    idx = _out(x, out_hw, torch.int64)
    if y.numel():
        _C.pool.adaptive_max_forward(addr(x), addr(y), addr(idx), _geom(x, x.shape[2:], out_hw),
                                     _is_channels_last(x), dtype_code(x))
    return y, idx


@cpu_kernel(kernels.adaptive_avg_pool2d_forward)
def adaptive_avg_pool2d_forward(x, out_hw):
    y = _out(x, out_hw)
    if y.numel():
        _C.pool.adaptive_avg_forward(addr(x), addr(y), _geom(x, x.shape[2:], out_hw), _is_channels_last(x),
                                     dtype_code(x))
    return y


@cpu_kernel(kernels.adaptive_avg_pool2d_backward)
def adaptive_avg_pool2d_backward(gy, in_hw):
    gx = _out(gy, in_hw)
    if gx.numel():
        _C.pool.adaptive_avg_backward(addr(gy), addr(gx), _geom(gy, in_hw, gy.shape[2:]), _is_channels_last(gy),
                                      dtype_code(gy))
    return gx


@cpu_kernel(kernels.pool_index_scatter)
def pool_index_scatter(src, indices, out_hw, accumulate):
    out = _out(src, out_hw)
    if out.numel():
        _C.pool.index_scatter(addr(src), addr(indices), addr(out), _geom(src, out_hw, src.shape[2:]),
                              _is_channels_last(src), bool(accumulate), dtype_code(src))
    return out


@cpu_kernel(kernels.pool_index_gather)
def pool_index_gather(src, indices):
    out = _out(src, indices.shape[2:])
    if out.numel():
        _C.pool.index_gather(addr(src), addr(indices), addr(out), _geom(src, src.shape[2:], indices.shape[2:]),
                             _is_channels_last(src), dtype_code(src))
    return out
