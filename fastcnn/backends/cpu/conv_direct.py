"""cpu kernels of the direct convolution (csrc/kernels/conv_direct*.cpp).

Signatures: the convolution kernel interface (fastcnn/contracts/conv.py); the ConvShape record goes to
C++ as its 16 sizes in field order. The ops layer has checked the arguments; `shape.check` here only
guards the C++ side against reading or writing out of bounds when a kernel is called directly.
"""
from __future__ import annotations

import torch

from fastcnn import _C

from ...contracts.activation import fused_code
from ...contracts.conv import ConvShape
from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, empty

def _check(t, name, dtype):
    if t.device.type != "cpu" or not t.is_contiguous() or t.dtype != dtype:
        raise ValueError(f"{name}: the cpu direct kernel takes contiguous CPU {dtype} tensors, got "
                         f"{t.dtype} on {t.device}, contiguous={t.is_contiguous()}")


@cpu_kernel(kernels.conv2d_forward.direct)
def conv2d_forward_direct(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    _check(x, "input", x.dtype)
    _check(w, "weight", x.dtype)
    shape.check(x.shape, w.shape)
    k = shape.K
    if bias is not None:
        _check(bias, "bias", x.dtype)
        if bias.shape != (k,):
            raise ValueError(f"bias: expected shape ({k},), got {tuple(bias.shape)}")
    code = fused_code(activation)
    y = empty(shape.y_shape, x.dtype)
    if y.numel() == 0:
        return y
    if x.numel() == 0:  # no input channels or pixels: every output is act(bias)
        y.zero_()
        if bias is not None:
            y += bias.view(1, k, 1, 1)
        return _reference_activation(y, activation, act_param)
    _C.conv_direct.forward(dtype_code(x), shape, addr(x), addr(w), 0 if bias is None else addr(bias), addr(y),
                           code, float(act_param))
    return y


def _reference_activation(y, activation, act_param):
    # Only for the degenerate empty-reduction case above; the kernels fuse the activation themselves.
    fns = {None: lambda t: t, "relu": torch.relu, "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, act_param),
           "elu": lambda t: torch.nn.functional.elu(t, act_param), "sigmoid": torch.sigmoid, "tanh": torch.tanh}
    return fns[activation](y)


@cpu_kernel(kernels.conv2d_backward_input.direct)
def conv2d_backward_input_direct(gy, w, shape: ConvShape):
    _check(gy, "grad_output", gy.dtype)
    _check(w, "weight", gy.dtype)
    shape.check(w_shape=w.shape, y_shape=gy.shape)
    if gy.numel() == 0:  # nothing flows back
        return torch.zeros(shape.x_shape, dtype=gy.dtype, device=gy.device)
    gx = empty(shape.x_shape, gy.dtype)  # the kernel writes every element
    if gx.numel() == 0:
        return gx
    _C.conv_direct.backward_input(dtype_code(gy), shape, addr(gy), addr(w), addr(gx))
    return gx


@cpu_kernel(kernels.conv2d_backward_weight.direct)
def conv2d_backward_weight_direct(x, gy, shape: ConvShape):
    _check(x, "input", x.dtype)
    _check(gy, "grad_output", x.dtype)
    shape.check(x.shape, y_shape=gy.shape)
    gw_shape = shape.w_shape
    if gy.numel() == 0 or x.numel() == 0:  # an empty sum
        return torch.zeros(gw_shape, dtype=x.dtype, device=x.device)
    gw = torch.empty(gw_shape, dtype=x.dtype, device=x.device)  # the kernel writes every element
    if gw.numel() == 0:
        return gw
    _C.conv_direct.backward_weight(dtype_code(x), shape, addr(x), addr(gy), addr(gw))
    return gw
