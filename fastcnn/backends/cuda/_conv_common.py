"""What the cuda convolution algorithms share (conv_direct.py, conv_im2col.py, conv_fft.py,
conv_implicit_gemm.py): the ConvShape record with its launch helpers, each direction's (uninitialised) result,
and the split-K launch of the implicit-GEMM weight gradients (algos direct and implicit_gemm)."""
from __future__ import annotations

import torch

from ...contracts.conv import ConvShape
from . import _lib
from ._lib import i64
from .gemm import addr, cdiv, split_k_plan, sum_slices


class Shape(ConvShape):
    """The ConvShape record (one field order with kernels/shared/conv_shape.cuh ConvShape) with the launch helpers."""
    __slots__ = ()

    @property
    def RS(self):
        return self.R * self.S

    @property
    def PQ(self):
        return self.P * self.Q

    def args(self):
        return tuple(i64(v) for v in self)


def make_shape(x_shape, w_shape, in_hw, out_hw, stride, padding, dilation, groups) -> Shape:
    N, C = x_shape[0], x_shape[1]
    K, _, R, S = w_shape
    return Shape(N, C, in_hw[0], in_hw[1], K, R, S, out_hw[0], out_hw[1], stride[0], stride[1],
                 padding[0], padding[1], dilation[0], dilation[1], groups)


def _check_grid_groups(groups: int) -> None:
    if groups > 65535:
        raise ValueError(f"groups: at most 65535 on the cuda backend (one grid z slice per group), got {groups}")


# The shape of each direction's call and its (uninitialised) result, shared by the three algorithms.

def _forward_setup(x, shape):
    s = Shape(*shape)
    return s, torch.empty(s.y_shape, dtype=x.dtype, device=x.device)


def _backward_input_setup(gy, shape):
    s = Shape(*shape)
    return s, torch.empty(s.x_shape, dtype=gy.dtype, device=gy.device)


def _backward_weight_setup(x, shape):
    s = Shape(*shape)
    return s, torch.empty(s.w_shape, dtype=x.dtype, device=x.device)


def launch_weight_grad_split_k(family: str, kernel: str, x, gy, gw, s: Shape, block_m: int, block_n: int,
                               threads: int):
    """gw [K, C/G, R, S] by an implicit-GEMM weight-gradient kernel: per group a [K/G x C/G*R*S] output
    in block_m x block_n tiles, reduced over the N*P*Q pixels. Where the tiles alone are too few for the
    GPU, the reduction is split (grid z = groups x splits, each split writing its own slice of a
    scratch buffer) and the slices summed in order afterwards (deterministic)."""
    crs = s.Cg * s.RS
    tiles = cdiv(s.Kg, block_m) * cdiv(crs, block_n) * s.G
    splits, kchunk = split_k_plan(tiles, s.N * s.PQ, max(1, 65535 // s.G))
    out = gw if splits == 1 else torch.empty(splits * gw.numel(), dtype=x.dtype, device=x.device)
    grid = (cdiv(crs, block_n), cdiv(s.Kg, block_m), s.G * splits)
    _lib.launch(family, kernel, grid, (threads,), (addr(x), addr(gy), addr(out), *s.args(), i64(splits), i64(kchunk)))
    if splits > 1:
        sum_slices(out, gw, gw.numel(), splits)
    return gw
