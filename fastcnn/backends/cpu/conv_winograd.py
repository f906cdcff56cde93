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

from ._lib import addr, cpu_kernel, dtype_code, new_empty
from ...contracts.activation import fused_code
from ...contracts.conv import ConvShape
from .conv_fft import bias_epilogue

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
    x, w = x.contiguous(), w.contiguous()
    shape.check(x.shape, w.shape)
    y = new_empty(x, shape.y_shape)
    if y.numel() == 0:
        return y
    if C == 0:  # nothing to sum: the epilogue of the bias alone
        return bias_epilogue(x, bias, shape.y_shape, activation, act_param)
    b = bias.contiguous() if bias is not None else None
    _W.forward(dtype_code(x), addr(x), addr(w), addr(b) if b is not None else 0, addr(y), N, C, H, W, K, P, Q,
               shape.ph, shape.pw, shape.G, False, fused_code(activation), float(act_param))
    return y


@cpu_kernel("conv2d_backward_input.winograd")
def conv2d_backward_input_winograd(gy, w, shape: ConvShape):
    check_applicable(shape.kernel_hw, shape.stride, shape.dilation, "conv2d_backward_input.winograd")
    N, C, H, W, K, R, S, P, Q = shape[:9]
    gy, w = gy.contiguous(), w.contiguous()
    shape.check(w_shape=w.shape, y_shape=gy.shape)
    gx = new_empty(gy, shape.x_shape)
    if gx.numel() == 0:
        return gx
    if K == 0 or P == 0 or Q == 0:
        return gx.zero_()
    # gx[n,c,h,w] = sum_{k,r,s} gy[n,k,h+ph-r,w+pw-s] w[k,c,r,s]: a correlation of gy with the flipped kernel.
    _W.forward(dtype_code(gy), addr(gy), addr(w), 0, addr(gx), N, K, P, Q, C, H, W,
               2 - shape.ph, 2 - shape.pw, shape.G, True, 0, 0.0)
    return gx
