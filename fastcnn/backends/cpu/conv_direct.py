"""cpu kernels of the direct convolution (csrc/kernels/conv_direct*.cpp).

Registered names and signatures (the convolution kernel interface; all tensors contiguous NCHW,
float32 or float64, one dtype):
    conv2d_forward.direct(x[N,C,H,W], w[K,C/g,R,S], bias[K] | None, stride, padding, dilation,
                          groups, out_hw, activation, act_param) -> y[N,K,P,Q]
    conv2d_backward_input.direct(gy[N,K,P,Q], w, in_hw, stride, padding, dilation, groups) -> gx
    conv2d_backward_weight.direct(x, gy, kernel_hw, stride, padding, dilation, groups) -> gw[K,C/g,R,S]
padding is the top/left padding; the bottom/right padding follows from out_hw / the gy size.
The ops layer has checked the arguments; the checks here only guard the C++ side against reading
or writing out of bounds when a kernel is called directly.
"""
from __future__ import annotations

import torch

from fastcnn import _C

from ._lib import addr, cpu_kernel, dtype_code, empty

# fastcnn::Act codes (csrc/common/activation_math.h) of the activations a conv epilogue may fuse.
ACT_CODES = {None: 0, "relu": 1, "leaky_relu": 2, "elu": 3, "sigmoid": 4, "tanh": 5}


def _act_code(activation) -> int:
    try:
        return ACT_CODES[activation]
    except (KeyError, TypeError):
        raise ValueError(f"activation: expected one of {sorted(ACT_CODES, key=str)}, got {activation!r}") from None


def _ints2(value, name):
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a pair of ints, got {value!r}") from None
    return a, b


def _shape(x_shape, k, out_hw, kernel_hw, stride, padding, dilation, groups):
    """The 16 sizes of csrc/kernels/conv_direct.h ConvShape, checked for consistency."""
    n, c, h, w = (int(v) for v in x_shape)
    p, q = _ints2(out_hw, "out_hw")
    r, s = _ints2(kernel_hw, "kernel_hw")
    sh, sw = _ints2(stride, "stride")
    ph, pw = _ints2(padding, "padding")
    dh, dw = _ints2(dilation, "dilation")
    g = int(groups)
    if min(sh, sw, dh, dw, g, r, s) < 1 or min(ph, pw, p, q) < 0:
        raise ValueError("stride, dilation, groups and kernel size must be >= 1; padding and out_hw >= 0")
    if c % g or k % g:
        raise ValueError(f"groups: {g} must divide the input channels {c} and output channels {k}")
    # Any out_hw is safe: the kernels copy the input into a zero-padded buffer that covers every tap.
    return [n, c, h, w, k, p, q, r, s, sh, sw, ph, pw, dh, dw, g]


def _check(t, name, dtype):
    if t.device.type != "cpu" or not t.is_contiguous() or t.dtype != dtype:
        raise ValueError(f"{name}: the cpu direct kernel takes contiguous CPU {dtype} tensors, got "
                         f"{t.dtype} on {t.device}, contiguous={t.is_contiguous()}")


@cpu_kernel("conv2d_forward.direct")
def conv2d_forward_direct(x, w, bias, stride, padding, dilation, groups, out_hw, activation=None, act_param=0.0):
    _check(x, "input", x.dtype)
    _check(w, "weight", x.dtype)
    k, cg, r, s = w.shape
    shape = _shape(x.shape, k, out_hw, (r, s), stride, padding, dilation, groups)
    if cg * shape[15] != shape[1]:
        raise ValueError(f"weight: expected {shape[1] // shape[15]} input channels per group, got {cg}")
    if bias is not None:
        _check(bias, "bias", x.dtype)
        if bias.shape != (k,):
            raise ValueError(f"bias: expected shape ({k},), got {tuple(bias.shape)}")
    code = _act_code(activation)
    y = empty((shape[0], k, shape[5], shape[6]), x.dtype)
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


@cpu_kernel("conv2d_backward_input.direct")
def conv2d_backward_input_direct(gy, w, in_hw, stride, padding, dilation, groups):
    _check(gy, "grad_output", gy.dtype)
    _check(w, "weight", gy.dtype)
    k, cg, r, s = w.shape
    h, wd = _ints2(in_hw, "in_hw")
    n, kk, p, q = gy.shape
    if kk != k:
        raise ValueError(f"grad_output: expected {k} channels like weight, got {kk}")
    shape = _shape((n, cg * int(groups), h, wd), k, (p, q), (r, s), stride, padding, dilation, groups)
    if gy.numel() == 0:  # nothing flows back
        return torch.zeros((n, shape[1], h, wd), dtype=gy.dtype)
    gx = empty((n, shape[1], h, wd), gy.dtype)  # the kernel writes every element
    if gx.numel() == 0:
        return gx
    _C.conv_direct.backward_input(dtype_code(gy), shape, addr(gy), addr(w), addr(gx))
    return gx


@cpu_kernel("conv2d_backward_weight.direct")
def conv2d_backward_weight_direct(x, gy, kernel_hw, stride, padding, dilation, groups):
    _check(x, "input", x.dtype)
    _check(gy, "grad_output", x.dtype)
    n, k, p, q = gy.shape
    if n != x.shape[0]:
        raise ValueError(f"grad_output: expected batch {x.shape[0]} like input, got {n}")
    shape = _shape(x.shape, k, (p, q), kernel_hw, stride, padding, dilation, groups)
    gw_shape = (k, shape[1] // shape[15], shape[7], shape[8])
    if gy.numel() == 0 or x.numel() == 0:  # an empty sum
        return torch.zeros(gw_shape, dtype=x.dtype)
    gw = torch.empty(gw_shape, dtype=x.dtype)  # the kernel writes every element
    if gw.numel() == 0:
        return gw
    _C.conv_direct.backward_weight(dtype_code(x), shape, addr(x), addr(gy), addr(gw))
    return gw
