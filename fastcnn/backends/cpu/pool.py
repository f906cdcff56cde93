"""cpu kernels of the pooling family (signatures: fastcnn/ops/pool.py), on fastcnn._C.pool.

Tensors arrive 4-D, all contiguous NCHW or all channels_last (fastcnn/ops/_pool_layout.py);
outputs are allocated in the same memory format, and the C++ kernels run a layout-specific path
(vectorised along output columns in NCHW, along channels in NHWC) without converting.
"""
from __future__ import annotations

import torch

from fastcnn import _C

from ...ops._pool_layout import empty as _layout_empty
from ...ops._pool_layout import is_channels_last as _is_channels_last
from ._lib import addr, cpu_kernel, dtype_code, fresh


def _empty(*args):
    return fresh(_layout_empty(*args))


def _geom(t, in_hw, out_hw, kernel=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """The kernels' geometry tuple; batch and channels from t."""
    return (*t.shape[:2], *in_hw, *out_hw, *kernel, *stride, *padding, *dilation)


def _output(src, out_hw, dtype=None):
    """A [N, C, *out_hw] tensor in src's memory format."""
    return _empty((*src.shape[:2], *out_hw), src, _is_channels_last(src), dtype)


def _pooled(src, out_hw, run):
    """The [N, C, *out_hw] output in src's memory format, filled by run(out, channels_last) unless empty."""
    out = _output(src, out_hw)
    if out.numel():
        run(out, _is_channels_last(src))
    return out


@cpu_kernel()
def max_pool2d_forward(x, kernel_size, stride, padding, dilation, out_hw, with_indices):
    idx = _output(x, out_hw, torch.int64) if with_indices else None
    geom = _geom(x, x.shape[2:], out_hw, kernel_size, stride, padding, dilation)
    y = _pooled(x, out_hw, lambda y, cl: _C.pool.max_forward(addr(x), addr(y), addr(idx) if idx is not None else 0,
                                                             geom, cl, dtype_code(x)))
    return y, idx


@cpu_kernel()
def avg_pool2d_forward(x, kernel_size, stride, padding, out_hw, count_include_pad, divisor_override):
    geom = _geom(x, x.shape[2:], out_hw, kernel_size, stride, padding)
    return _pooled(x, out_hw, lambda y, cl: _C.pool.avg_forward(addr(x), addr(y), geom, cl, bool(count_include_pad),
                                                                int(divisor_override or 0), dtype_code(x)))


@cpu_kernel()
def avg_pool2d_backward(gy, in_hw, kernel_size, stride, padding, count_include_pad, divisor_override):
    geom = _geom(gy, in_hw, gy.shape[2:], kernel_size, stride, padding)
    return _pooled(gy, in_hw, lambda gx, cl: _C.pool.avg_backward(addr(gy), addr(gx), geom, cl,
                                                                  bool(count_include_pad), int(divisor_override or 0),
                                                                  dtype_code(gy)))


@cpu_kernel()
def adaptive_max_pool2d_forward(x, out_hw):
    idx = _output(x, out_hw, torch.int64)
    y = _pooled(x, out_hw, lambda y, cl: _C.pool.adaptive_max_forward(addr(x), addr(y), addr(idx),
                                                                      _geom(x, x.shape[2:], out_hw), cl, dtype_code(x)))
    return y, idx


@cpu_kernel()
def adaptive_avg_pool2d_forward(x, out_hw):
    return _pooled(x, out_hw, lambda y, cl: _C.pool.adaptive_avg_forward(addr(x), addr(y), _geom(x, x.shape[2:], out_hw),
                                                                         cl, dtype_code(x)))


@cpu_kernel()
def adaptive_avg_pool2d_backward(gy, in_hw):
    return _pooled(gy, in_hw, lambda gx, cl: _C.pool.adaptive_avg_backward(addr(gy), addr(gx),
                                                                           _geom(gy, in_hw, gy.shape[2:]), cl,
                                                                           dtype_code(gy)))


@cpu_kernel()
def pool_index_scatter(src, indices, out_hw, accumulate):
    return _pooled(src, out_hw, lambda out, cl: _C.pool.index_scatter(addr(src), addr(indices), addr(out),
                                                                      _geom(src, out_hw, src.shape[2:]), cl,
                                                                      bool(accumulate), dtype_code(src)))


@cpu_kernel()
def pool_index_gather(src, indices):
    return _pooled(src, indices.shape[2:], lambda out, cl: _C.pool.index_gather(
        addr(src), addr(indices), addr(out), _geom(src, src.shape[2:], indices.shape[2:]), cl, dtype_code(src)))
