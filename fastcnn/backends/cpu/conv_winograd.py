"""cpu kernels of the Winograd F(4x4,3x3) convolution (csrc/kernels/conv_winograd.cpp): 3x3 kernels,
stride 1, dilation 1, any padding and groups.

Signatures (the convolution kernel interface, see fastcnn/ops/conv.py):
  conv2d_forward.winograd(x[N,C,H,W], w[K,C/g,3,3], bias[K]|None, stride, padding, dilation, groups, out_hw,
                          activation, act_param) -> y[N,K,P,Q]
  conv2d_backward_input.winograd(gy[N,K,P,Q], w[K,C/g,3,3], in_hw, stride, padding, dilation, groups) -> gx[N,C,H,W]
  conv2d_backward_weight.winograd(x[N,C,H,W], gy[N,K,P,Q], kernel_hw, stride, padding, dilation, groups)
                                  -> gw[K,C/g,3,3]
Backward weight is the forward's adjoint in the kernel: per 4x4 gy tile, G^T [(A gy_t A^T) . (B^T d_t B)] G
summed over images and tiles (the sum as one GEMM per transform point and group).

Backward input is the forward correlation of gy with the flipped, channel-transposed kernel and
top/left padding 2-ph (negative when ph > 2: the tiles just start inside gy).
"""
from __future__ import annotations

from fastcnn import _C
from fastcnn.ops._conv_algo import check_winograd as check_applicable

from ._lib import addr, cpu_kernel, dtype_code, new_empty
from .conv_fft import _act_code, _groups, bias_epilogue

_W = _C.conv_winograd


@cpu_kernel("conv2d_forward.winograd")
def conv2d_forward_winograd(x, w, bias, stride, padding, dilation, groups, out_hw, activation=None, act_param=0.0):
    N, C, H, W = x.shape
    K, Cg = w.shape[:2]
    P, Q = out_hw
    check_applicable(w.shape[2:], stride, dilation, "conv2d_forward.winograd")
    _groups(C, K, Cg, groups, "conv2d_forward.winograd")
    x, w = x.contiguous(), w.contiguous()
    y = new_empty(x, (N, K, P, Q))
    if y.numel() == 0:
        return y
    if C == 0:  # nothing to sum: the epilogue of the bias alone
        return bias_epilogue(x, bias, (N, K, P, Q), activation, act_param)
    b = bias.contiguous() if bias is not None else None
    _W.forward(dtype_code(x), addr(x), addr(w), addr(b) if b is not None else 0, addr(y), N, C, H, W, K, P, Q,
               padding[0], padding[1], groups, False, _act_code(activation), float(act_param))
    return y


@cpu_kernel("conv2d_backward_input.winograd")
def conv2d_backward_input_winograd(gy, w, in_hw, stride, padding, dilation, groups):
    N, K, P, Q = gy.shape
    Cg = w.shape[1]
    H, W = in_hw
    C = Cg * groups
    check_applicable(w.shape[2:], stride, dilation, "conv2d_backward_input.winograd")
    _groups(C, K, Cg, groups, "conv2d_backward_input.winograd")
    gy, w = gy.contiguous(), w.contiguous()
    gx = new_empty(gy, (N, C, H, W))
    if gx.numel() == 0:
        return gx
    if K == 0 or P == 0 or Q == 0:
        return gx.zero_()
    # gx[n,c,h,w] = sum_{k,r,s} gy[n,k,h+ph-r,w+pw-s] w[k,c,r,s]: a correlation of gy with the flipped kernel.
    _W.forward(dtype_code(gy), addr(gy), addr(w), 0, addr(gx), N, K, P, Q, C, H, W,
               2 - padding[0], 2 - padding[1], groups, True, 0, 0.0)
    return gx


@cpu_kernel("conv2d_backward_weight.winograd")
def conv2d_backward_weight_winograd(x, gy, kernel_hw, stride, padding, dilation, groups):
    N, C, H, W = x.shape
    K, P, Q = gy.shape[1:]
    check_applicable(kernel_hw, stride, dilation, "conv2d_backward_weight.winograd")
    _groups(C, K, C // max(groups, 1), groups, "conv2d_backward_weight.winograd")
    x, gy = x.contiguous(), gy.contiguous()
    gw = new_empty(x, (K, C // groups, 3, 3))
    if gw.numel() == 0:
        return gw
    if N * P * Q == 0:  # nothing to sum
        return gw.zero_()
    _W.backward_weight(dtype_code(x), addr(x), addr(gy), addr(gw), N, C, H, W, K, P, Q, padding[0], padding[1],
                       groups)
    return gw
