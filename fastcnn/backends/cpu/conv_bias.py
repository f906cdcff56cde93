"""cpu kernels of a convolution's bias (fastcnn._C.conv_im2col, csrc/kernels/conv_im2col.cpp):
channel_sum(t[N,K,...]) -> [K] (the bias gradient) and channel_bias_act(y, bias, activation, act_param)
(in place). Same file name on every backend (triton, cuda)."""
from __future__ import annotations

from fastcnn import _C

from ...contracts.activation import fused_code
from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code

_K = _C.conv_im2col


@cpu_kernel(kernels.channel_sum)
def channel_sum(t):
    N, K = t.shape[:2]
    L = t[0, 0].numel() if t.numel() else 0
    out = t.new_zeros(K)
    if t.numel():
        _K.channel_sum(addr(t), addr(out), N, K, L, dtype_code(t))
    return out


@cpu_kernel(kernels.channel_bias_act)
def channel_bias_act(y, bias, activation=None, act_param=0.0):
    """In place: y[n, k, ...] = activation(y[n, k, ...] + bias[k]) (bias may be None); returns y."""
    N, K = y.shape[:2]
    if y.numel():
        _K.bias_act(addr(y), 0 if bias is None else addr(bias), N, K, y[0, 0].numel(), fused_code(activation),
                    float(act_param), 0.0, dtype_code(y))
    return y
