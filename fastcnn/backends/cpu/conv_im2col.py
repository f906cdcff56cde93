"""cpu kernels of the im2col convolution (csrc/kernels/conv_im2col.cpp): im2col / col2im and
conv2d_{forward,backward_input,backward_weight}.im2col (channel_sum, channel_bias_act: conv_bias.py).

Signatures are those of the convolution kernel interface (fastcnn/contracts/conv.py); the ConvShape
record goes to C++ as its 16 sizes in field order.
"""
from __future__ import annotations

from fastcnn import _C

from ...contracts.activation import fused_code
from ...contracts.conv import ConvShape
from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, new_empty
from .conv_bias import channel_bias_act

_K = _C.conv_im2col


def _columns_shape(N, C, in_hw, kernel_hw, stride, padding, dilation, out_hw) -> ConvShape:
    """The record of the one-output-channel convolution whose columns im2col / col2im move."""
    return ConvShape(N, C, in_hw[0], in_hw[1], 1, kernel_hw[0], kernel_hw[1], out_hw[0], out_hw[1], stride[0],
                     stride[1], padding[0], padding[1], dilation[0], dilation[1], 1)


@cpu_kernel(kernels.im2col)
def im2col(x, kernel_hw, stride, padding, dilation, out_hw):
    N, C, H, W = x.shape
    (R, S), (P, Q) = kernel_hw, out_hw
    cols = new_empty(x, (N, C * R * S, P * Q))
    if cols.numel():
        _K.im2col(_columns_shape(N, C, (H, W), kernel_hw, stride, padding, dilation, out_hw), addr(x), addr(cols),
                  dtype_code(x))
    return cols


@cpu_kernel(kernels.col2im)
def col2im(cols, in_hw, kernel_hw, stride, padding, dilation, out_hw):
    N, CRS, _ = cols.shape
    R, S = kernel_hw
    C = CRS // (R * S)
    x = cols.new_zeros((N, C) + tuple(in_hw))
    if x.numel() and cols.numel():
        _K.col2im(_columns_shape(N, C, in_hw, kernel_hw, stride, padding, dilation, out_hw), addr(cols), addr(x),
                  dtype_code(cols))
    return x


@cpu_kernel(kernels.conv2d_forward.im2col)
def conv2d_forward(x, w, bias, shape: ConvShape, activation, act_param):
    shape.check(x.shape, w.shape)
    y = new_empty(x, shape.y_shape)
    if y.numel() == 0:
        return y
    if shape.C == 0:  # an empty reduction: the epilogue of zeros
        y.zero_()
        return channel_bias_act(y, bias, activation, act_param)
    _K.forward(shape, addr(x), addr(w), 0 if bias is None else addr(bias), addr(y), fused_code(activation),
               float(act_param), 0.0, dtype_code(x))
    return y


@cpu_kernel(kernels.conv2d_backward_input.im2col)
def conv2d_backward_input(gy, w, shape: ConvShape):
    shape.check(w_shape=w.shape, y_shape=gy.shape)
    gx = new_empty(gy, shape.x_shape)
    if gx.numel() == 0:
        return gx
    if shape.K == 0 or shape.P * shape.Q == 0:
        return gx.zero_()
    _K.backward_input(shape, addr(gy), addr(w), addr(gx), dtype_code(gy))
    return gx


@cpu_kernel(kernels.conv2d_backward_weight.im2col)
def conv2d_backward_weight(x, gy, shape: ConvShape):
    shape.check(x.shape, y_shape=gy.shape)
    gw = new_empty(x, shape.w_shape)
    if gw.numel() == 0:
        return gw
    if shape.N == 0 or shape.P * shape.Q == 0:
        return gw.zero_()
    _K.backward_weight(shape, addr(x), addr(gy), addr(gw), dtype_code(x))
    return gw
