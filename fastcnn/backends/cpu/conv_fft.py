"""cpu kernels of the tiled FFT convolution (csrc/kernels/conv_fft.cpp), stride 1 and dilation 1.

Signatures (the convolution kernel interface, see fastcnn/ops/conv.py):
  conv2d_forward.fft(x[N,C,H,W], w[K,C/g,R,S], bias[K]|None, stride, padding, dilation, groups, out_hw,
                     activation, act_param) -> y[N,K,P,Q]
  conv2d_backward_input.fft(gy[N,K,P,Q], w[K,C/g,R,S], in_hw, stride, padding, dilation, groups) -> gx[N,C,H,W]
  conv2d_backward_weight.fft(x[N,C,H,W], gy[N,K,P,Q], kernel_hw, stride, padding, dilation, groups) -> gw[K,C/g,R,S]
`padding` is the top/left padding; bottom/right follows from the output size. Each also takes a
keyword-only `tile` (8, 16 or 32; None: the cost model's choice) so tests and benchmarks can pin
the transform size.

Backward input is the forward correlation of gy with the flipped, channel-transposed kernel and
top/left padding R-1-ph (negative when ph > R-1: the tiles just start inside gy).
"""
from __future__ import annotations

from fastcnn import _C

from ._lib import addr, cpu_kernel, dtype_code, new_empty
from ...ops.activation import ACT_KIND

_F = _C.conv_fft


def _unit_stride_dilation(stride, dilation):
    if tuple(stride) != (1, 1):
        raise ValueError(f"stride: the fft convolution takes stride 1 only, got {tuple(stride)}; "
                         "use algo='direct' or 'im2col'")
    if tuple(dilation) != (1, 1):
        raise ValueError(f"dilation: the fft convolution takes dilation 1 only, got {tuple(dilation)}; "
                         "use algo='direct' or 'im2col'")


def _groups(C, K, Cg, groups, what):
    if groups < 1 or C % groups or K % groups or Cg * groups != C:
        raise ValueError(f"groups: {groups} does not split {C} input and {K} output channels with a weight of "
                         f"{Cg} channels per group ({what})")


def _operands(src, w, stride, dilation, groups, channels, out_shape, what):
    """Checks shared by forward and backward input (unit stride and dilation, the groups splitting
    the forward conv's (C, K) channels); returns the contiguous operands and the new output."""
    _unit_stride_dilation(stride, dilation)
    _groups(*channels, w.shape[1], groups, what)
    return src.contiguous(), w.contiguous(), new_empty(src, out_shape)


def _act_code(activation):
    kind = "identity" if activation is None else activation
    if kind not in ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh"):
        raise ValueError(f"activation: expected None, 'relu', 'leaky_relu', 'elu', 'sigmoid' or 'tanh', got {activation!r}")
    return ACT_KIND[kind]


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


@cpu_kernel("conv2d_forward.fft")
def conv2d_forward_fft(x, w, bias, stride, padding, dilation, groups, out_hw, activation=None, act_param=0.0,
                       *, tile=None):
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    P, Q = out_hw
    x, w, y = _operands(x, w, stride, dilation, groups, (C, K), (N, K, P, Q), "conv2d_forward.fft")
    if y.numel() == 0:
        return y
    if C == 0:  # nothing to sum: the epilogue of the bias alone
        return bias_epilogue(x, bias, (N, K, P, Q), activation, act_param)
    b = bias.contiguous() if bias is not None else None
    _F.forward(dtype_code(x), addr(x), addr(w), addr(b) if b is not None else 0, addr(y), N, C, H, W, K, R, S, P, Q,
               padding[0], padding[1], groups, False, _act_code(activation), float(act_param), _tile(tile))
    return y


@cpu_kernel("conv2d_backward_input.fft")
def conv2d_backward_input_fft(gy, w, in_hw, stride, padding, dilation, groups, *, tile=None):
    N, K, P, Q = gy.shape
    Kw, Cg, R, S = w.shape
    H, W = in_hw
    C = Cg * groups
    gy, w, gx = _operands(gy, w, stride, dilation, groups, (C, K), (N, C, H, W), "conv2d_backward_input.fft")
    if gx.numel() == 0:
        return gx
    if K == 0 or P == 0 or Q == 0:
        return gx.zero_()
    # gx[n,c,h,w] = sum_{k,r,s} gy[n,k,h+ph-r,w+pw-s] w[k,c,r,s]: a correlation of gy with the flipped kernel.
    _F.forward(dtype_code(gy), addr(gy), addr(w), 0, addr(gx), N, K, P, Q, C, R, S, H, W,
               R - 1 - padding[0], S - 1 - padding[1], groups, True, 0, 0.0, _tile(tile))
    return gx


@cpu_kernel("conv2d_backward_weight.fft")
def conv2d_backward_weight_fft(x, gy, kernel_hw, stride, padding, dilation, groups, *, tile=None):
    _unit_stride_dilation(stride, dilation)
    x, gy = x.contiguous(), gy.contiguous()
    N, C, H, W = x.shape
    _, K, P, Q = gy.shape
    R, S = kernel_hw
    if groups < 1 or C % groups:
        raise ValueError(f"groups: {groups} does not divide the {C} input channels")
    _groups(C, K, C // groups, groups, "conv2d_backward_weight.fft")
    gw = new_empty(x, (K, C // groups, R, S))
    if gw.numel() == 0:
        return gw
    _F.weight_grad(dtype_code(x), addr(x), addr(gy), addr(gw), N, C, H, W, K, R, S, P, Q, padding[0], padding[1],
                   groups, _tile(tile))
    return gw
