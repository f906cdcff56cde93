"""cpu kernels of the tiled FFT convolution (csrc/kernels/conv_fft.cpp), stride 1 and dilation 1.

Signatures: the convolution kernel interface (fastcnn/contracts/conv.py), each with a keyword-only
`tile` (8, 16 or 32; None: the cost model's choice) so tests and benchmarks can pin the transform size.

Each entry takes the ConvShape as its list (the C++ side's ConvShape, fastcnn/kernels/shared/conv_shape.cuh).
Backward input is the forward correlation of gy with the flipped, channel-transposed kernel and
top/left padding R-1-ph (negative when ph > R-1: the tiles just start inside gy): the C++ binding
builds that correlation's shape (input_gradient_correlation).
"""
from __future__ import annotations

from fastcnn import _C

from ...contracts.activation import fused_code
from ...contracts import kernels
from ...contracts.conv import ConvShape, check_applicable
from ._lib import addr, cpu_kernel, dtype_code, new_empty

_F = _C.conv_fft


def _tile(tile):
    if tile is None:
        return 0
    if tile not in (8, 16, 32):
        raise ValueError(f"tile: expected 8, 16, 32 or None, got {tile!r}")
    return int(tile)


def bias_epilogue(x, bias, out_shape, activation, act_param):
    """The output of a convolution with no input channels: the bias (or 0) broadcast to out_shape,
    through the fused activation."""
    N, K, P, Q = out_shape
    z = (bias.view(1, K, 1, 1) if bias is not None else x.new_zeros(1, K, 1, 1)).expand(N, K, P, Q)
    from .activation import activation_forward
    return activation_forward(z.contiguous(), "identity" if activation is None else activation, act_param)


def tile_forward(launch, x, w, bias, shape: ConvShape, activation, act_param):
    """The forward pass of a tile-transform algorithm (fft, winograd) around its C++ call:
    contiguous operands, the output, the degenerate cases; launch(x, w, bias_addr, y) runs the kernel."""
    x, w = x.contiguous(), w.contiguous()
    shape.check(x.shape, w.shape)
    y = new_empty(x, shape.y_shape)
    if y.numel() == 0:
        return y
    if shape.C == 0:  # nothing to sum: the epilogue of the bias alone
        return bias_epilogue(x, bias, shape.y_shape, activation, act_param)
    b = bias.contiguous() if bias is not None else None
    launch(x, w, addr(b) if b is not None else 0, y)
    return y


def tile_backward_input(launch, gy, w, shape: ConvShape):
    """The input gradient of a tile-transform algorithm around its C++ call, the forward correlation
    of gy with the flipped kernel: gx[n,c,h,w] = sum_{k,r,s} gy[n,k,h+ph-r,w+pw-s] w[k,c,r,s];
    launch(gy, w, gx) runs the kernel."""
    gy, w = gy.contiguous(), w.contiguous()
    shape.check(w_shape=w.shape, y_shape=gy.shape)
    gx = new_empty(gy, shape.x_shape)
    if gx.numel() == 0:
        return gx
    if shape.K == 0 or shape.P == 0 or shape.Q == 0:
        return gx.zero_()
    launch(gy, w, gx)
    return gx


def tile_backward_weight(launch, x, gy, shape: ConvShape):
    """The weight gradient of a tile-transform algorithm around its C++ call: contiguous operands,
    the result, the degenerate cases (nothing to sum: zeros); launch(x, gy, gw) runs the kernel."""
    x, gy = x.contiguous(), gy.contiguous()
    shape.check(x.shape, y_shape=gy.shape)
    gw = new_empty(x, shape.w_shape)
    if gw.numel() == 0:
        return gw
    if shape.N * shape.P * shape.Q == 0:
        return gw.zero_()
    launch(x, gy, gw)
    return gw


@cpu_kernel(kernels.conv2d_forward.fft)
def conv2d_forward_fft(x, w, bias, shape: ConvShape, activation=None, act_param=0.0, *, tile=None):
    check_applicable("fft", shape, "conv2d_forward.fft")

    def launch(x, w, b, y):
        _F.forward(dtype_code(x), list(shape), addr(x), addr(w), b, addr(y), fused_code(activation), float(act_param),
                   _tile(tile))
    return tile_forward(launch, x, w, bias, shape, activation, act_param)


@cpu_kernel(kernels.conv2d_backward_input.fft)
def conv2d_backward_input_fft(gy, w, shape: ConvShape, *, tile=None):
    check_applicable("fft", shape, "conv2d_backward_input.fft")

    def launch(gy, w, gx):
        _F.backward_input(dtype_code(gy), list(shape), addr(gy), addr(w), addr(gx), _tile(tile))
    return tile_backward_input(launch, gy, w, shape)


@cpu_kernel(kernels.conv2d_backward_weight.fft)
def conv2d_backward_weight_fft(x, gy, shape: ConvShape, *, tile=None):
    check_applicable("fft", shape, "conv2d_backward_weight.fft")

    def launch(x, gy, gw):
        _F.weight_grad(dtype_code(x), list(shape), addr(x), addr(gy), addr(gw), _tile(tile))
    return tile_backward_weight(launch, x, gy, shape)
