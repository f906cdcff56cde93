"""cuda kernels of the resampling family: launchers of fastcnn/kernels/cuda/resample.cu
(signatures in fastcnn/ops/resample.py). Grid-stride kernels: a fixed block, grid capped."""
from __future__ import annotations

import numpy as np
import torch

from ...contracts.resample import shuffle_geometry
from ...contracts import kernels
from ._lib import cuda_kernel, i64, launch, ptr, suffix

THREADS = 256
MAX_BLOCKS = 65535


def _grid(n):
    return (max(1, min(MAX_BLOCKS, (n + THREADS - 1) // THREADS)),), (THREADS,)


def _null_or_ptr(t):
    return ptr(t) if t is not None else np.uint64(0)


def _interpolate(kernel, src, dst, in_hw, out_hw, nearest, align_corners, scales):
    """Both directions take the same arguments: the planes, the input and output sizes, the mode."""
    if dst.numel():
        N, C = src.shape[:2]
        launch("resample", f"{kernel}_{suffix(src.dtype)}", *_grid(dst.numel()),
               (ptr(src), ptr(dst), i64(N * C), *(i64(v) for v in (*in_hw, *out_hw)), np.int32(nearest),
                np.int32(align_corners), np.float64(scales[0]), np.float64(scales[1])))
    return dst


@cuda_kernel(kernels.interpolate_forward)
def interpolate_forward(x, out_hw, nearest, align_corners, scales):
    N, C, H, W = x.shape
    return _interpolate("interpolate_forward", x, x.new_empty((N, C, *out_hw)), (H, W), out_hw, nearest,
                        align_corners, scales)


@cuda_kernel(kernels.interpolate_backward)
def interpolate_backward(gy, in_hw, nearest, align_corners, scales):
    N, C, P, Q = gy.shape
    return _interpolate("interpolate_backward", gy, gy.new_empty((N, C, *in_hw)), in_hw, (P, Q), nearest,
                        align_corners, scales)


@cuda_kernel(kernels.pixel_shuffle)
def pixel_shuffle(x, factor, to_space):
    N, r = x.shape[0], factor
    C, H, W, y = shuffle_geometry(x, r, to_space)
    if y.numel():
        launch("resample", f"pixel_shuffle_{suffix(x.dtype)}", *_grid(y.numel()),
               (ptr(x), ptr(y), i64(N), i64(C), i64(H), i64(W), i64(r), np.int32(to_space)))
    return y


@cuda_kernel(kernels.grid_sample_forward)
def grid_sample_forward(x, grid, padding, align_corners, nearest):
    N, C, H, W = x.shape
    P, Q = grid.shape[1:3]
    y = x.new_empty((N, C, P, Q))
    if y.numel():
        launch("resample", f"grid_sample_forward_{suffix(x.dtype)}", *_grid(y.numel()),
               (ptr(x), ptr(grid), ptr(y), i64(N), i64(C), i64(H), i64(W), i64(P), i64(Q), np.int32(padding),
                np.int32(align_corners), np.int32(nearest)))
    return y


@cuda_kernel(kernels.grid_sample_backward)
def grid_sample_backward(gy, x, grid, padding, align_corners, nearest, need_input, need_grid):
    N, C, H, W = x.shape
    P, Q = grid.shape[1:3]
    gx = torch.zeros_like(x) if need_input else None  # atomic accumulation target
    ggrid = torch.empty_like(grid) if need_grid else None
    if N * P * Q:
        launch("resample", f"grid_sample_backward_{suffix(x.dtype)}", *_grid(N * P * Q),
               (ptr(gy), ptr(x), ptr(grid), _null_or_ptr(gx), _null_or_ptr(ggrid), i64(N), i64(C), i64(H), i64(W),
                i64(P), i64(Q), np.int32(padding), np.int32(align_corners), np.int32(nearest)))
    return gx, ggrid
