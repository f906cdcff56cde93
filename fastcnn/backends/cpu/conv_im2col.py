"""cpu kernels of the im2col convolution (csrc/kernels/conv_im2col.cpp): im2col / col2im,
channel_sum, channel_bias_act and conv2d_{forward,backward_input,backward_weight}.im2col.

Signatures are those of the convolution kernel interface (fastcnn/ops/conv.py documents them).
"""
from __future__ import annotations

from fastcnn import _C

from ...ops.activation import ACT_KIND
from ._lib import addr, cpu_kernel, dtype_code, new_empty

_K = _C.conv_im2col


def _geometry(N, C, in_hw, K, kernel_hw, out_hw, stride, padding, dilation, groups):
    return [N, C, in_hw[0], in_hw[1], K, kernel_hw[0], kernel_hw[1], out_hw[0], out_hw[1], stride[0], stride[1],
            padding[0], padding[1], dilation[0], dilation[1], groups]


def _act(activation):
    return ACT_KIND["identity" if activation is None else activation]


@cpu_kernel()
def im2col(x, kernel_hw, stride, padding, dilation, out_hw):
    N, C, H, W = x.shape
    (R, S), (P, Q) = kernel_hw, out_hw
    cols = new_empty(x, (N, C * R * S, P * Q))
    if cols.numel():
        _K.im2col(_geometry(N, C, (H, W), 1, kernel_hw, out_hw, stride, padding, dilation, 1), addr(x), addr(cols),
                  dtype_code(x))
    return cols


@cpu_kernel()
def col2im(cols, in_hw, kernel_hw, stride, padding, dilation, out_hw):
    N, CRS, _ = cols.shape
    R, S = kernel_hw
    C = CRS // (R * S)
    x = cols.new_zeros((N, C) + tuple(in_hw))
    if x.numel() and cols.numel():
        _K.col2im(_geometry(N, C, in_hw, 1, kernel_hw, out_hw, stride, padding, dilation, 1), addr(cols), addr(x),
                  dtype_code(cols))
    return x


@cpu_kernel()
def channel_sum(t):
    N, K = t.shape[:2]
    L = t[0, 0].numel() if t.numel() else 0
    out = t.new_zeros(K)
    if t.numel():
        _K.channel_sum(addr(t), addr(out), N, K, L, dtype_code(t))
    return out


@cpu_kernel()
def channel_bias_act(y, bias, activation=None, act_param=0.0):
    """In place: y[n, k, ...] = activation(y[n, k, ...] + bias[k]) (bias may be None); returns y."""
    N, K = y.shape[:2]
    if y.numel():
        _K.bias_act(addr(y), 0 if bias is None else addr(bias), N, K, y[0, 0].numel(), _act(activation),
                    float(act_param), 0.0, dtype_code(y))
    return y


@cpu_kernel("conv2d_forward.im2col")
def conv2d_forward(x, w, bias, stride, padding, dilation, groups, out_hw, activation, act_param):
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    y = new_empty(x, (N, K) + tuple(out_hw))
    if y.numel() == 0:
        return y
    if C == 0:  # an empty reduction: the epilogue of zeros
        y.zero_()
        return channel_bias_act(y, bias, activation, act_param)
    _K.forward(_geometry(N, C, (H, W), K, (R, S), out_hw, stride, padding, dilation, groups), addr(x), addr(w),
               0 if bias is None else addr(bias), addr(y), _act(activation), float(act_param), 0.0, dtype_code(x))
    return y


@cpu_kernel("conv2d_backward_input.im2col")
def conv2d_backward_input(gy, w, in_hw, stride, padding, dilation, groups):
    N, K, P, Q = gy.shape
    _, Cg, R, S = w.shape
    gx = new_empty(gy, (N, Cg * groups) + tuple(in_hw))
    if gx.numel() == 0:
        return gx
    if K == 0 or P * Q == 0:
        return gx.zero_()
    _K.backward_input(_geometry(N, Cg * groups, in_hw, K, (R, S), (P, Q), stride, padding, dilation, groups),
                      addr(gy), addr(w), addr(gx), dtype_code(gy))
    return gx


@cpu_kernel("conv2d_backward_weight.im2col")
def conv2d_backward_weight(x, gy, kernel_hw, stride, padding, dilation, groups):
    N, C, H, W = x.shape
    _, K, P, Q = gy.shape
    gw = new_empty(x, (K, C // groups) + tuple(kernel_hw))
    if gw.numel() == 0:
        return gw
    if N == 0 or P * Q == 0:
        return gw.zero_()
    _K.backward_weight(_geometry(N, C, (H, W), K, kernel_hw, (P, Q), stride, padding, dilation, groups), addr(x),
                       addr(gy), addr(gw), dtype_code(x))
    return gw
