"""cuda im2col convolution (conv_im2col.cu unrolls the image, gemm.cu multiplies): forward,
backward input and backward weight, plus im2col / col2im.

Signatures: the convolution kernel interface (fastcnn/contracts/conv.py), plus
  im2col(x[N,C,H,W], kernel_hw, stride, padding, dilation, out_hw) -> col[N, C*R*S, P*Q]
  col2im(col[N, C*R*S, P*Q], in_hw, kernel_hw, stride, padding, dilation, out_hw) -> x[N,C,H,W]  (sum of taps)
Tensors arrive contiguous, same dtype and device (the op layer checks).
"""
from __future__ import annotations

import torch

from ...contracts.activation import fused_code
from ...contracts.conv import ConvShape
from . import _lib
from ._conv_common import Shape, _backward_input_setup, _backward_weight_setup, _forward_setup, make_shape
from ...contracts import kernels
from ._lib import cuda_kernel, i64, suffix
from .gemm import THREADS, Operand, addr, cdiv, strided_gemm, sum_slices

COLUMN_BYTES = 256 << 20  # im2col: images per chunk chosen so the column matrix stays below this


def _column_workspace(s: Shape, like: torch.Tensor):
    """(images per im2col chunk, column matrix for that many): the matrix stays below COLUMN_BYTES
    and images x groups fit in one grid."""
    per_image = max(1, s.C * s.RS * s.PQ * like.element_size())
    nb = max(1, min(s.N, COLUMN_BYTES // per_image, 65535 // s.G))
    return nb, torch.empty(nb * s.C * s.RS * s.PQ, dtype=like.dtype, device=like.device)


def _launch_column_kernel(kernel: str, total: int, src, dst, nb, s: Shape):
    """im2col / col2im of nb images: one thread per element of dst (grid-stride beyond 2^20 blocks)."""
    if total == 0:
        return
    blocks = min(cdiv(total, THREADS), 1 << 20)
    _lib.launch("conv_im2col", kernel, (blocks,), (THREADS,),
                (src, dst, i64(nb), *(i64(v) for v in (s.C, s.H, s.W, s.R, s.S, s.P, s.Q, s.sh, s.sw, s.ph, s.pw,
                                                       s.dh, s.dw))))


def _launch_im2col(x, col, nb, s: Shape, image_offset=0):
    _launch_column_kernel(f"im2col_{suffix(x.dtype)}", nb * s.C * s.RS * s.PQ,
                          addr(x, image_offset * s.C * s.H * s.W), addr(col), nb, s)


def _launch_col2im(col, x, nb, s: Shape, image_offset=0):
    _launch_column_kernel(f"col2im_{suffix(x.dtype)}", nb * s.C * s.H * s.W,
                          addr(col), addr(x, image_offset * s.C * s.H * s.W), nb, s)


@cuda_kernel(kernels.im2col)
def im2col(x, kernel_hw, stride, padding, dilation, out_hw):
    N, C, H, W = x.shape
    s = make_shape(x.shape, (1, C, *kernel_hw), (H, W), out_hw, stride, padding, dilation, 1)
    col = torch.empty((N, C * s.RS, s.PQ), dtype=x.dtype, device=x.device)
    _launch_im2col(x, col, N, s)
    return col


@cuda_kernel(kernels.col2im)
def col2im(col, in_hw, kernel_hw, stride, padding, dilation, out_hw):
    N = col.shape[0]
    C = col.shape[1] // (kernel_hw[0] * kernel_hw[1])
    s = make_shape((N, C), (1, C, *kernel_hw), in_hw, out_hw, stride, padding, dilation, 1)
    x = torch.empty((N, C, in_hw[0], in_hw[1]), dtype=col.dtype, device=col.device)
    _launch_col2im(col, x, N, s)
    return x


@cuda_kernel(kernels.conv2d_forward.im2col)
def _im2col_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    kind = fused_code(activation)
    s, y = _forward_setup(x, shape)
    if y.numel() == 0:
        return y
    crs = s.Cg * s.RS
    nb, col = _column_workspace(s, x)
    for n0 in range(0, s.N, nb):
        cnt = min(nb, s.N - n0)
        _launch_im2col(x, col, cnt, s, n0)
        # per (image, group): y[n, g*Kg:, :] = w[g] (Kg x CRS) @ col[n, g*CRS:, :] (CRS x PQ)
        strided_gemm(Operand(w, crs, 1, 0, s.Kg * crs),
                     Operand(col, s.PQ, 1, s.C * s.RS * s.PQ, crs * s.PQ),
                     Operand(y, s.PQ, 1, s.K * s.PQ, s.Kg * s.PQ, n0 * s.K * s.PQ),
                     s.Kg, s.PQ, crs, nb1=cnt, nb2=s.G, bias=bias, bias_strides=(0, s.Kg),
                     act=kind, act_param=act_param)
    return y


@cuda_kernel(kernels.conv2d_backward_input.im2col)
def _im2col_backward_input(gy, w, shape: ConvShape):
    s, gx = _backward_input_setup(gy, shape)
    if gx.numel() == 0:
        return gx
    crs = s.Cg * s.RS
    nb, col = _column_workspace(s, gy)
    for n0 in range(0, s.N, nb):
        cnt = min(nb, s.N - n0)
        # per (image, group): col[n, g*CRS:, :] = w[g]^T (CRS x Kg) @ gy[n, g*Kg:, :] (Kg x PQ)
        strided_gemm(Operand(w, 1, crs, 0, s.Kg * crs),
                     Operand(gy, s.PQ, 1, s.K * s.PQ, s.Kg * s.PQ, n0 * s.K * s.PQ),
                     Operand(col, s.PQ, 1, s.C * s.RS * s.PQ, crs * s.PQ),
                     crs, s.PQ, s.Kg, nb1=cnt, nb2=s.G)
        _launch_col2im(col, gx, cnt, s, n0)
    return gx


@cuda_kernel(kernels.conv2d_backward_weight.im2col)
def _im2col_backward_weight(x, gy, shape: ConvShape):
    s, gw = _backward_weight_setup(x, shape)
    if gw.numel() == 0:
        return gw
    crs = s.Cg * s.RS
    nb, col = _column_workspace(s, x)
    per_image = torch.empty(nb * gw.numel(), dtype=x.dtype, device=x.device)
    if s.N == 0:
        sum_slices(per_image, gw, gw.numel(), 0)  # zero slices: writes zeros
    for n0 in range(0, s.N, nb):
        cnt = min(nb, s.N - n0)
        _launch_im2col(x, col, cnt, s, n0)
        # per (image, group): slice[n][g*Kg:, :] = gy[n, g*Kg:, :] (Kg x PQ) @ col[n, g*CRS:, :]^T (PQ x CRS)
        strided_gemm(Operand(gy, s.PQ, 1, s.K * s.PQ, s.Kg * s.PQ, n0 * s.K * s.PQ),
                     Operand(col, 1, s.PQ, s.C * s.RS * s.PQ, crs * s.PQ),
                     Operand(per_image, crs, 1, gw.numel(), s.Kg * crs),
                     s.Kg, crs, s.PQ, nb1=cnt, nb2=s.G)
        sum_slices(per_image, gw, gw.numel(), cnt, accumulate=n0 > 0)  # fixed order over images
    return gw
