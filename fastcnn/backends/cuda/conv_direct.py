"""cuda direct convolution (implicit GEMM, conv_direct.cu): forward, backward input and backward weight.

Signatures: the convolution kernel interface (fastcnn/contracts/conv.py).
Tensors arrive contiguous, same dtype and device (the op layer checks).
"""
from __future__ import annotations

from ...contracts.activation import fused_code
from ...contracts import kernels
from ...contracts.conv import ConvShape
from . import _lib
from ._conv_common import (_backward_input_setup, _backward_weight_setup, _check_grid_groups, _forward_setup,
                           launch_weight_grad_split_k)
from ._lib import cuda_kernel, i64, suffix
from .gemm import BLOCK_M, BLOCK_N, THREADS, addr, cdiv, null


@cuda_kernel(kernels.conv2d_forward.direct)
def _direct_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    _check_grid_groups(shape.G)
    kind = fused_code(activation)
    s, y = _forward_setup(x, shape)
    if y.numel() == 0:
        return y
    crs = s.Cg * s.RS
    vec_w = crs % 4 == 0 and w.data_ptr() % 16 == 0
    grid = (cdiv(s.N * s.PQ, BLOCK_N), cdiv(s.Kg, BLOCK_M), s.G)
    _lib.launch("conv_direct", f"conv_direct_forward_{suffix(x.dtype)}", grid, (THREADS,),
                (addr(x), addr(w), addr(bias) if bias is not None else null(), addr(y), *s.args(), i64(kind),
                 _lib.scalar(act_param, x.dtype), i64(int(vec_w))))
    return y


@cuda_kernel(kernels.conv2d_backward_input.direct)
def _direct_backward_input(gy, w, shape: ConvShape):
    _check_grid_groups(shape.G)
    s, gx = _backward_input_setup(gy, shape)
    if gx.numel() == 0:
        return gx
    grid = (cdiv(s.N * s.H * s.W, BLOCK_N), cdiv(s.Cg, BLOCK_M), s.G)
    _lib.launch("conv_direct", f"conv_direct_backward_input_{suffix(gy.dtype)}", grid, (THREADS,),
                (addr(gy), addr(w), addr(gx), *s.args()))
    return gx


@cuda_kernel(kernels.conv2d_backward_weight.direct)
def _direct_backward_weight(x, gy, shape: ConvShape):
    _check_grid_groups(shape.G)
    s, gw = _backward_weight_setup(x, shape)
    if gw.numel() == 0:
        return gw
    return launch_weight_grad_split_k("conv_direct", f"conv_direct_backward_weight_{suffix(x.dtype)}", x, gy, gw, s,
                                      BLOCK_M, BLOCK_N, THREADS)
