"""cpu kernels of the Winograd F(4x4,3x3) convolution (csrc/kernels/conv_winograd.cpp): 3x3 kernels,
stride 1, dilation 1, any padding and groups.

Signatures: the convolution kernel interface (fastcnn/contracts/conv.py).
Backward weight is the forward's adjoint in the kernel: per 4x4 gy tile, G^T [(A gy_t A^T) . (B^T d_t B)] G
summed over images and tiles (the sum as one GEMM per transform point and group).

Backward input is the forward correlation of gy with the flipped, channel-transposed kernel and
top/left padding 2-ph (negative when ph > 2: the tiles just start inside gy).
"""
from __future__ import annotations

from fastcnn import _C

from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, new_empty
from ...contracts.activation import fused_code
from ...contracts.conv import ConvShape, check_winograd as check_applicable
from .conv_fft import tile_backward_input, tile_forward

_W = _C.conv_winograd


@cpu_kernel(kernels.conv2d_forward.winograd)
def conv2d_forward_winograd(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    check_applicable(shape.kernel_hw, shape.stride, shape.dilation, "conv2d_forward.winograd")
    N, C, H, W, K, R, S, P, Q = shape[:9]

    def launch(x, w, b, y):
        _W.forward(dtype_code(x), addr(x), addr(w), b, addr(y), N, C, H, W, K, P, Q, shape.ph, shape.pw, shape.G,
                   False, fused_code(activation), float(act_param))
    return tile_forward(launch, x, w, bias, shape, activation, act_param)


@cpu_kernel(kernels.conv2d_backward_input.winograd)
def conv2d_backward_input_winograd(gy, w, shape: ConvShape):
    check_applicable(shape.kernel_hw, shape.stride, shape.dilation, "conv2d_backward_input.winograd")
    N, C, H, W, K, R, S, P, Q = shape[:9]

    def launch(gy, w, gx):
        _W.forward(dtype_code(gy), addr(gy), addr(w), 0, addr(gx), N, K, P, Q, C, H, W, 2 - shape.ph, 2 - shape.pw,
                   shape.G, True, 0, 0.0)
    return tile_backward_input(launch, gy, w, shape)


@cpu_kernel(kernels.conv2d_backward_weight.winograd)
def conv2d_backward_weight_winograd(x, gy, shape: ConvShape):
    check_applicable(shape.kernel_hw, shape.stride, shape.dilation, "conv2d_backward_weight.winograd")
    N, C, H, W, K, R, S, P, Q = shape[:9]
    x, gy = x.contiguous(), gy.contiguous()
    gw = new_empty(x, shape.w_shape)
    if gw.numel() == 0:
        return gw
    if N * P * Q == 0:  # nothing to sum
        return gw.zero_()
    _W.backward_weight(dtype_code(x), addr(x), addr(gy), addr(gw), N, C, H, W, K, P, Q, shape.ph, shape.pw, shape.G)
    return gw
