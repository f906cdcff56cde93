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


def _is_pointwise(shape: ConvShape) -> bool:
    return shape.kernel_hw == (1, 1) and shape.stride == (1, 1) and shape.padding == (0, 0) \
        and shape.in_hw == shape.out_hw


def _columns(x, shape: ConvShape):
    """The column matrix [N, C*R*S, P*Q] of x (x itself, reshaped, for a pointwise convolution)."""
    if _is_pointwise(shape):
        return x.reshape(shape.N, shape.C, -1)
    return im2col(x, shape.kernel_hw, shape.stride, shape.padding, shape.dilation, shape.out_hw)


@triton_kernel(kernels.conv2d_forward.im2col)
def conv2d_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    N, K, groups, Kg = shape.N, shape.K, shape.G, shape.Kg
    red, PQ = shape.Cg * shape.R * shape.S, shape.P * shape.Q
    y = torch.empty(shape.y_shape, dtype=x.dtype, device=x.device)
    return batched_gemm(w, _columns(x, shape), y, M=Kg, N=PQ, K=red,
                        a_strides=(red, 1), b_strides=(PQ, 1), c_strides=(PQ, 1),
                        batch=(N, groups), a_batch=(0, Kg * red), b_batch=(groups * red * PQ, red * PQ),
                        c_batch=(K * PQ, Kg * PQ), bias=bias, bias_batch=Kg, act=fused_code(activation),
                        act_param=act_param)


@triton_kernel(kernels.conv2d_backward_input.im2col)
def conv2d_backward_input(gy, w, shape: ConvShape):
    N, K, groups, Kg = shape.N, shape.K, shape.G, shape.Kg
    red, PQ = shape.Cg * shape.R * shape.S, shape.P * shape.Q
    dcols = torch.empty((N, groups * red, PQ), dtype=gy.dtype, device=gy.device)
    batched_gemm(w, gy, dcols, M=red, N=PQ, K=Kg,
                 a_strides=(1, red), b_strides=(PQ, 1), c_strides=(PQ, 1),
                 batch=(N, groups), a_batch=(0, Kg * red), b_batch=(K * PQ, Kg * PQ),
                 c_batch=(groups * red * PQ, red * PQ))
    if _is_pointwise(shape):
        return dcols.reshape(shape.x_shape)
    return col2im(dcols, shape.in_hw, shape.kernel_hw, shape.stride, shape.padding, shape.dilation, shape.out_hw)


@triton_kernel(kernels.conv2d_backward_weight.im2col)
def conv2d_backward_weight(x, gy, shape: ConvShape):
    N, K, groups, Kg = shape.N, shape.K, shape.G, shape.Kg
    red, PQ = shape.Cg * shape.R * shape.S, shape.P * shape.Q
    gw = torch.empty(shape.w_shape, dtype=x.dtype, device=x.device)
    return batched_gemm(gy, _columns(x, shape), gw, M=Kg, N=red, K=PQ,
                        a_strides=(PQ, 1), b_strides=(1, PQ), c_strides=(red, 1),
                        batch=(1, groups), a_batch=(0, Kg * PQ), b_batch=(0, red * PQ), c_batch=(0, Kg * red),
                        reduce=N, a_reduce=K * PQ, b_reduce=groups * red * PQ)


# The im2col/col2im launchers live in _im2col.py with their kernels; registered (and found in the
# interpreted copy) as this module's names.
triton_kernel(kernels.im2col)(im2col)
triton_kernel(kernels.col2im)(col2im)
