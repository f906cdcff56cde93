"""What the cuda convolution algorithms share (conv_direct.py, conv_im2col.py, conv_fft.py,
conv_implicit_gemm.py): the ConvShape record with its launch helpers, and each direction's (uninitialised) result."""
from __future__ import annotations

import torch

from ...contracts.conv import ConvShape
from ._lib import i64

class Shape(ConvShape):
    """The ConvShape record (one field order with conv_geometry.cuh ConvShape) with the launch helpers."""
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
