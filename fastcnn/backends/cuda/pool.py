"""cuda kernels of the pooling family (signatures: fastcnn/ops/pool.py), launching
fastcnn/kernels/cuda/pool.cu. The kernels address tensors through element strides, so NCHW and
channels_last need no conversion; outputs are allocated in the input's layout (fastcnn/contracts/pool.py)."""
from __future__ import annotations

import torch

from ...contracts.pool import empty, is_channels_last
from ...contracts import kernels
from ._lib import cuda_kernel, i32, i64, launch, ptr, suffix

BLOCK = 256
MAX_BLOCKS = 65535 * 8  # grid-stride loops cover the rest


def _grid(total: int):
    return (max(1, min(MAX_BLOCKS, (total + BLOCK - 1) // BLOCK)),)


def _geom(n, c, in_hw, out_hw, kernel=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    return [i64(v) for v in (n, c, *in_hw, *out_hw, *kernel, *stride, *padding, *dilation)]


def _strides(t: torch.Tensor):
    return [i64(s) for s in t.stride()]


def _like(t: torch.Tensor, hw, dtype=None):
    """An [N, C, *hw] result in t's layout (NCHW or channels_last) and, unless given, dtype."""
    return empty((*t.shape[:2], *hw), t, is_channels_last(t), dtype)


def _run(name: str, like: torch.Tensor, total: int, args):
    if total:
        launch("pool", f"{name}_{suffix(like.dtype)}", _grid(total), (BLOCK,), args)


@cuda_kernel(kernels.max_pool2d_forward)
def max_pool2d_forward(x, kernel_size, stride, padding, dilation, out_hw, with_indices):
    n, c = x.shape[:2]
    y = _like(x, out_hw)
    idx = _like(x, out_hw, torch.int64) if with_indices else y.new_empty(0, dtype=torch.int64)
    _run("max_pool2d_forward", x, y.numel(),
         [ptr(x), ptr(y), ptr(idx), *_geom(n, c, x.shape[2:], out_hw, kernel_size, stride, padding, dilation),
          *_strides(x), *_strides(y), i32(with_indices)])
    return y, (idx if with_indices else None)


@cuda_kernel(kernels.avg_pool2d_forward)
def avg_pool2d_forward(x, kernel_size, stride, padding, out_hw, count_include_pad, divisor_override):
    n, c = x.shape[:2]
    y = _like(x, out_hw)
    _run("avg_pool2d_forward", x, y.numel(),
         [ptr(x), ptr(y), *_geom(n, c, x.shape[2:], out_hw, kernel_size, stride, padding), *_strides(x),
          *_strides(y), i32(count_include_pad), i64(divisor_override or 0)])
    return y


@cuda_kernel(kernels.avg_pool2d_backward)
def avg_pool2d_backward(gy, in_hw, kernel_size, stride, padding, count_include_pad, divisor_override):
    n, c = gy.shape[:2]
    gx = _like(gy, in_hw)
    _run("avg_pool2d_backward", gy, gx.numel(),
         [ptr(gy), ptr(gx), *_geom(n, c, in_hw, gy.shape[2:], kernel_size, stride, padding), *_strides(gy),
          *_strides(gx), i32(count_include_pad), i64(divisor_override or 0)])
    return gx


@cuda_kernel(kernels.adaptive_max_pool2d_forward)
def adaptive_max_pool2d_forward(x, out_hw):
    n, c = x.shape[:2]
    y = _like(x, out_hw)
    idx = _like(x, out_hw, torch.int64)
    _run("adaptive_max_pool2d_forward", x, y.numel(),
         [ptr(x), ptr(y), ptr(idx), *_geom(n, c, x.shape[2:], out_hw), *_strides(x), *_strides(y)])
    return y, idx


@cuda_kernel(kernels.adaptive_avg_pool2d_forward)
def adaptive_avg_pool2d_forward(x, out_hw):
    n, c = x.shape[:2]
    y = _like(x, out_hw)
    _run("adaptive_avg_pool2d_forward", x, y.numel(),
         [ptr(x), ptr(y), *_geom(n, c, x.shape[2:], out_hw), *_strides(x), *_strides(y)])
    return y


@cuda_kernel(kernels.adaptive_avg_pool2d_backward)
def adaptive_avg_pool2d_backward(gy, in_hw):
    n, c = gy.shape[:2]
    gx = _like(gy, in_hw)
    _run("adaptive_avg_pool2d_backward", gy, gx.numel(),
         [ptr(gy), ptr(gx), *_geom(n, c, in_hw, gy.shape[2:]), *_strides(gy), *_strides(gx)])
    return gx


@cuda_kernel(kernels.pool_index_scatter)
def pool_index_scatter(src, indices, out_hw, accumulate):
    n, c = src.shape[:2]
    out = _like(src, out_hw).zero_()
    _run("pool_index_scatter", src, src.numel(),
         [ptr(src), ptr(indices), ptr(out), *_geom(n, c, out_hw, src.shape[2:]), *_strides(src), *_strides(out),
          i32(accumulate)])
    return out


@cuda_kernel(kernels.pool_index_gather)
def pool_index_gather(src, indices):
    n, c = src.shape[:2]
    out = _like(src, indices.shape[2:])
    _run("pool_index_gather", src, out.numel(),
         [ptr(src), ptr(indices), ptr(out), *_geom(n, c, src.shape[2:], indices.shape[2:]), *_strides(src),
          *_strides(out)])
    return out
