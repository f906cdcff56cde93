"""cpu kernels of the resampling family (fastcnn._C.resample); signatures in fastcnn/ops/resample.py.
The dtype is passed as its int code (see csrc/host/resample.cpp)."""
from __future__ import annotations

from fastcnn import _C

from ...contracts.resample import shuffle_geometry
from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, empty_like, new_empty

_K = _C.resample


def _interpolate(launch, src, dst_hw, in_hw, out_hw, nearest, align_corners, scales):
    """Runs an interpolate kernel from src [N, C, ...] into a new [N, C, *dst_hw]; in_hw / out_hw
    are the forward's input and output sizes (the backward runs from out_hw back to in_hw)."""
    N, C = src.shape[:2]
    dst = new_empty(src, (N, C, *dst_hw))
    launch(addr(src), addr(dst), N * C, *in_hw, *out_hw, nearest, align_corners, float(scales[0]), float(scales[1]),
           dtype_code(src))
    return dst


@cpu_kernel(kernels.interpolate_forward)
def interpolate_forward(x, out_hw, nearest, align_corners, scales):
    return _interpolate(_K.interpolate_forward, x, out_hw, x.shape[2:], out_hw, nearest, align_corners, scales)


@cpu_kernel(kernels.interpolate_backward)
def interpolate_backward(gy, in_hw, nearest, align_corners, scales):
    return _interpolate(_K.interpolate_backward, gy, in_hw, in_hw, gy.shape[2:], nearest, align_corners, scales)


@cpu_kernel(kernels.pixel_shuffle)
def pixel_shuffle(x, factor, to_space):
    N, r = x.shape[0], factor
    C, H, W, y = shuffle_geometry(x, r, to_space)
    _K.pixel_shuffle(addr(x), addr(y), N, C, H, W, r, to_space, dtype_code(x))
    return y


@cpu_kernel(kernels.grid_sample_forward)
def grid_sample_forward(x, grid, padding, align_corners, nearest):
    N, C, H, W = x.shape
    P, Q = grid.shape[1:3]
    y = new_empty(x, (N, C, P, Q))
    _K.grid_sample_forward(addr(x), addr(grid), addr(y), N, C, H, W, P, Q, padding, align_corners, nearest,
                           dtype_code(x))
    return y


@cpu_kernel(kernels.grid_sample_backward)
def grid_sample_backward(gy, x, grid, padding, align_corners, nearest, need_input, need_grid):
    N, C, H, W = x.shape
    P, Q = grid.shape[1:3]
    gx = empty_like(x) if need_input else None
    ggrid = empty_like(grid) if need_grid else None
    _K.grid_sample_backward(addr(gy), addr(x), addr(grid), addr(gx) if gx is not None else 0,
                            addr(ggrid) if ggrid is not None else 0, N, C, H, W, P, Q, padding,
                            align_corners, nearest, dtype_code(x))
    return gx, ggrid
