"""cpu kernels of the Winograd F(4x4,3x3) / F(6x6,3x3) convolution (csrc/kernels/conv_winograd.cpp): 3x3
kernels, stride 1, dilation 1, any padding and groups.

Forward and backward-input take a keyword `tile` (output tile 4 or 6; None: the measured choice,
`choose_tile`) so tests and benchmarks can pin it, as the fft kernels pin their transform size.

Signatures: the convolution kernel interface (fastcnn/contracts/conv.py).
Backward weight is the forward's adjoint in the kernel: per 4x4 gy tile, G^T [(A gy_t A^T) . (B^T d_t B)] G
summed over images and tiles (the sum as one GEMM per transform point and group).

Backward input is the forward correlation of gy with the flipped, channel-transposed kernel and
top/left padding 2-ph (negative when ph > 2: the tiles just start inside gy); the C++ binding builds
that correlation's shape from the ConvShape list (input_gradient_correlation).
"""
from __future__ import annotations

import torch

from fastcnn import _C

from ._lib import DTYPE_CODE, addr, cpu_kernel, dtype_code
from ...contracts.activation import fused_code
from ...contracts import kernels
from ...contracts.conv import ConvShape, check_applicable
from .conv_fft import tile_backward_input, tile_backward_weight, tile_forward

_W = _C.conv_winograd
TILES = (4, 6)


def _tile(tile):
    if tile is None:
        return 0
    if tile not in TILES:
        raise ValueError(f"tile: expected 4, 6 or None, got {tile!r}")
    return int(tile)


def choose_tile(shape: ConvShape, dtype=torch.float32, direction: str = "conv2d_forward") -> int:
    """The output tile the `direction` pass of `shape` runs with when none is pinned (the active ISA)."""
    if direction == "conv2d_backward_input":  # the correlation of gy [N, K, P, Q] into gx [N, C, H, W]
        shape = shape.input_gradient_correlation()
    return _W.choose_tile(DTYPE_CODE[dtype], list(shape))


@cpu_kernel(kernels.conv2d_forward.winograd)
def conv2d_forward_winograd(x, w, bias, shape: ConvShape, activation=None, act_param=0.0, *, tile=None):
    check_applicable("winograd", shape, "conv2d_forward.winograd")

    def launch(x, w, b, y):
        _W.forward(dtype_code(x), list(shape), addr(x), addr(w), b, addr(y), fused_code(activation), float(act_param),
                   _tile(tile))
    return tile_forward(launch, x, w, bias, shape, activation, act_param)


@cpu_kernel(kernels.conv2d_backward_input.winograd)
def conv2d_backward_input_winograd(gy, w, shape: ConvShape, *, tile=None):
    check_applicable("winograd", shape, "conv2d_backward_input.winograd")

    def launch(gy, w, gx):
        _W.backward_input(dtype_code(gy), list(shape), addr(gy), addr(w), addr(gx), _tile(tile))
    return tile_backward_input(launch, gy, w, shape)


@cpu_kernel(kernels.conv2d_backward_weight.winograd)
def conv2d_backward_weight_winograd(x, gy, shape: ConvShape):
    check_applicable("winograd", shape, "conv2d_backward_weight.winograd")

    def launch(x, gy, gw):
        _W.backward_weight(dtype_code(x), list(shape), addr(x), addr(gy), addr(gw))
    return tile_backward_weight(launch, x, gy, shape)
