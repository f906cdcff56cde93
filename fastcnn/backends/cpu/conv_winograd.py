"""cpu kernels of the Winograd F(4x4,3x3) convolution (csrc/kernels/conv_winograd.cpp): 3x3 kernels,
stride 1, dilation 1, any padding and groups.

Signatures: the convolution kernel interface (fastcnn/contracts/conv.py).
There is no backward-weight kernel: that pass keeps the per-pass choice among direct/im2col/fft
(a weight gradient by Winograd needs the transforms of gy tiles as kernels: F(3x3, 4x4) would
move more data than it saves on the lecture's layers).

Backward input is the forward correlation of gy with the flipped, channel-transposed kernel and
top/left padding 2-ph (negative when ph > 2: the tiles just start inside gy).
"""
from __future__ import annotations

from fastcnn import _C

from ._lib import addr, cpu_kernel, dtype_code
from ...contracts.activation import fused_code
from ...contracts.conv import ConvShape
from .conv_fft import tile_backward_input, tile_forward

_W = _C.conv_winograd


def check_applicable(kernel_hw, stride, dilation, what):
    """ValueError naming the algorithm and the offending shape unless this is a 3x3 stride-1 dilation-1 conv."""
    if tuple(kernel_hw) != (3, 3):
        raise ValueError(f"weight: algo='winograd' takes 3x3 kernels only, got {tuple(kernel_hw)} ({what}); "
                         "use algo='direct', 'im2col', 'fft' or 'auto'")
    if tuple(stride) != (1, 1):
        raise ValueError(f"stride: algo='winograd' takes stride 1 only, got {tuple(stride)} ({what}); "
                         "use algo='direct', 'im2col' or 'auto'")
    if tuple(dilation) != (1, 1):
        raise ValueError(f"dilation: algo='winograd' takes dilation 1 only, got {tuple(dilation)} ({what}); "
                         "use algo='direct', 'im2col' or 'auto'")


@cpu_kernel("conv2d_forward.winograd")
def conv2d_forward_winograd(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    check_applicable(shape.kernel_hw, shape.stride, shape.dilation, "conv2d_forward.winograd")
    N, C, H, W, K, R, S, P, Q = shape[:9]

    def launch(x, w, b, y):
        _W.forward(dtype_code(x), addr(x), addr(w), b, addr(y), N, C, H, W, K, P, Q, shape.ph, shape.pw, shape.G,
                   False, fused_code(activation), float(act_param))
    return tile_forward(launch, x, w, bias, shape, activation, act_param)


@cpu_kernel("conv2d_backward_input.winograd")
def conv2d_backward_input_winograd(gy, w, shape: ConvShape):
    check_applicable(shape.kernel_hw, shape.stride, shape.dilation, "conv2d_backward_input.winograd")
    N, C, H, W, K, R, S, P, Q = shape[:9]

    def launch(gy, w, gx):
        _W.forward(dtype_code(gy), addr(gy), addr(w), 0, addr(gx), N, K, P, Q, C, H, W, 2 - shape.ph, 2 - shape.pw,
                   shape.G, True, 0, 0.0)
    return tile_backward_input(launch, gy, w, shape)
