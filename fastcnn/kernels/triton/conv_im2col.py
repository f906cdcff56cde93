"""Triton convolution, algorithm 'im2col': the column matrix made explicit, then the shared tiled
GEMM (_gemm.py), batched over images and groups, with bias + activation fused into its epilogue.

    forward          y[n, g]  = act(W[g] @ cols(x)[n, g] + bias[g])     W[g]: [K/g, C/g*R*S]
    backward input   gx       = col2im(W[g]^T @ gy[n, g])                (col2im gathers: deterministic)
    backward weight  gw[g]    = sum_n gy[n, g] @ cols(x)[n, g]^T         (one launch, n summed in order)

A 1x1 kernel with stride 1 and no padding needs no column matrix: cols(x) is x itself.
Also exports the kernels `im2col` and `col2im`.
"""
from __future__ import annotations

import torch

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.contracts.activation import fused_code
from fastcnn.contracts.conv import ConvShape

from ._gemm import batched_gemm
from ._im2col import col2im, im2col


def _is_pointwise(kernel_hw, stride, padding, in_hw, out_hw) -> bool:
    return tuple(kernel_hw) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0) \
        and tuple(in_hw) == tuple(out_hw)


def _columns(x, kernel_hw, stride, padding, dilation, out_hw):
    if _is_pointwise(kernel_hw, stride, padding, x.shape[2:], out_hw):
        return x.reshape(x.shape[0], x.shape[1], -1)
    return im2col(x, kernel_hw, stride, padding, dilation, out_hw)


@triton_kernel(kernels.conv2d_forward.im2col)
def conv2d_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    stride, padding, dilation, groups = shape.stride, shape.padding, shape.dilation, shape.G
    out_hw = shape.out_hw
    act = fused_code(activation)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    P, Q = out_hw
    Kg, red, PQ = K // groups, Cg * R * S, P * Q
    y = torch.empty((N, K, P, Q), dtype=x.dtype, device=x.device)
    cols = _columns(x, (R, S), stride, padding, dilation, out_hw)
    return batched_gemm(w, cols, y, M=Kg, N=PQ, K=red,
                        a_strides=(red, 1), b_strides=(PQ, 1), c_strides=(PQ, 1),
                        batch=(N, groups), a_batch=(0, Kg * red), b_batch=(C * R * S * PQ, red * PQ),
                        c_batch=(K * PQ, Kg * PQ), bias=bias, bias_batch=Kg, act=act, act_param=act_param)


@triton_kernel(kernels.conv2d_backward_input.im2col)
def conv2d_backward_input(gy, w, shape: ConvShape):
    stride, padding, dilation, groups = shape.stride, shape.padding, shape.dilation, shape.G
    in_hw = shape.in_hw
    N, K, P, Q = gy.shape
    _, Cg, R, S = w.shape
    C, Kg, red, PQ = Cg * groups, K // groups, Cg * R * S, P * Q
    pointwise = _is_pointwise((R, S), stride, padding, in_hw, (P, Q))
    dcols = torch.empty((N, C * R * S, PQ), dtype=gy.dtype, device=gy.device)
    batched_gemm(w, gy, dcols, M=red, N=PQ, K=Kg,
                 a_strides=(1, red), b_strides=(PQ, 1), c_strides=(PQ, 1),
                 batch=(N, groups), a_batch=(0, Kg * red), b_batch=(K * PQ, Kg * PQ),
                 c_batch=(C * R * S * PQ, red * PQ))
    if pointwise:
        return dcols.reshape(N, C, *in_hw)
    return col2im(dcols, in_hw, (R, S), stride, padding, dilation, (P, Q))


@triton_kernel(kernels.conv2d_backward_weight.im2col)
def conv2d_backward_weight(x, gy, shape: ConvShape):
    stride, padding, dilation, groups = shape.stride, shape.padding, shape.dilation, shape.G
    kernel_hw = shape.kernel_hw
    N, C, H, W = x.shape
    K, P, Q = gy.shape[1:]
    R, S = kernel_hw
    Cg, Kg, PQ = C // groups, K // groups, P * Q
    red = Cg * R * S
    gw = torch.empty((K, Cg, R, S), dtype=x.dtype, device=x.device)
    cols = _columns(x, (R, S), stride, padding, dilation, (P, Q))
    return batched_gemm(gy, cols, gw, M=Kg, N=red, K=PQ,
                        a_strides=(PQ, 1), b_strides=(1, PQ), c_strides=(red, 1),
                        batch=(1, groups), a_batch=(0, Kg * PQ), b_batch=(0, red * PQ), c_batch=(0, Kg * red),
                        reduce=N, a_reduce=K * PQ, b_reduce=C * R * S * PQ)


# The im2col/col2im launchers live in _im2col.py with their kernels; registered (and found in the
# interpreted copy) as this module's names.
triton_kernel(kernels.im2col)(im2col)
triton_kernel(kernels.col2im)(col2im)
