"""cuda convolution kernels: direct (implicit GEMM, conv_direct.cu), im2col (+ gemm.cu) and tiled
FFT (conv_fft.cu), forward, backward input and backward weight, plus im2col / col2im.

Signatures: the convolution kernel interface (fastcnn/contracts/conv.py), plus
  im2col(x[N,C,H,W], kernel_hw, stride, padding, dilation, out_hw) -> col[N, C*R*S, P*Q]
  col2im(col[N, C*R*S, P*Q], in_hw, kernel_hw, stride, padding, dilation, out_hw) -> x[N,C,H,W]  (sum of taps)
Tensors arrive contiguous, same dtype and device (the op layer checks).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ...contracts.activation import fused_code
from ...contracts.conv import ConvShape
from . import _lib
from ._lib import cuda_kernel, i64, suffix
from .gemm import (BLOCK_M, BLOCK_N, CBLOCK_M, CBLOCK_N, THREADS, Operand, addr, cdiv, launch_batched, null,
                   split_k_plan, strided_gemm, sum_slices)

COLUMN_BYTES = 256 << 20  # im2col: images per chunk chosen so the column matrix stays below this


class Shape(ConvShape):
    """The ConvShape record (one field order with conv_geometry.cuh ConvShape) with the launch helpers."""
    __slots__ = ()

    @property
    def RS(self):
        return self.R * self.S

    @property
    def PQ(self):
        return self.P * self.Q

    def args(self):
        return tuple(i64(v) for v in self)


def make_shape(x_shape, w_shape, in_hw, out_hw, stride, padding, dilation, groups) -> Shape:
    N, C = x_shape[0], x_shape[1]
    K, _, R, S = w_shape
    return Shape(N, C, in_hw[0], in_hw[1], K, R, S, out_hw[0], out_hw[1], stride[0], stride[1],
                 padding[0], padding[1], dilation[0], dilation[1], groups)


def _check_grid_groups(groups: int) -> None:
    if groups > 65535:
        raise ValueError(f"groups: at most 65535 on the cuda backend (one grid z slice per group), got {groups}")


# The shape of each direction's call and its (uninitialised) result, shared by the three algorithms.

def _forward_setup(x, shape):
    s = Shape(*shape)
    return s, torch.empty(s.y_shape, dtype=x.dtype, device=x.device)


def _backward_input_setup(gy, shape):
    s = Shape(*shape)
    return s, torch.empty(s.x_shape, dtype=gy.dtype, device=gy.device)


def _backward_weight_setup(x, shape):
    s = Shape(*shape)
    return s, torch.empty(s.w_shape, dtype=x.dtype, device=x.device)


# ---------------------------------------------------------------------------------------------
# direct: implicit GEMM

@cuda_kernel("conv2d_forward.direct")
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


@cuda_kernel("conv2d_backward_input.direct")
def _direct_backward_input(gy, w, shape: ConvShape):
    _check_grid_groups(shape.G)
    s, gx = _backward_input_setup(gy, shape)
    if gx.numel() == 0:
        return gx
    grid = (cdiv(s.N * s.H * s.W, BLOCK_N), cdiv(s.Cg, BLOCK_M), s.G)
    _lib.launch("conv_direct", f"conv_direct_backward_input_{suffix(gy.dtype)}", grid, (THREADS,),
                (addr(gy), addr(w), addr(gx), *s.args()))
    return gx


@cuda_kernel("conv2d_backward_weight.direct")
def _direct_backward_weight(x, gy, shape: ConvShape):
    _check_grid_groups(shape.G)
    s, gw = _backward_weight_setup(x, shape)
    if gw.numel() == 0:
        return gw
    crs = s.Cg * s.RS
    n_pix = s.N * s.PQ
    tiles = cdiv(s.Kg, BLOCK_M) * cdiv(crs, BLOCK_N) * s.G
    splits, kchunk = split_k_plan(tiles, n_pix, max(1, 65535 // s.G))
    out = gw if splits == 1 else torch.empty(splits * gw.numel(), dtype=x.dtype, device=x.device)
    grid = (cdiv(crs, BLOCK_N), cdiv(s.Kg, BLOCK_M), s.G * splits)
    _lib.launch("conv_direct", f"conv_direct_backward_weight_{suffix(x.dtype)}", grid, (THREADS,),
                (addr(x), addr(gy), addr(out), *s.args(), i64(splits), i64(kchunk)))
    if splits > 1:
        sum_slices(out, gw, gw.numel(), splits)
    return gw


# ---------------------------------------------------------------------------------------------
# im2col + gemm

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


@cuda_kernel("im2col")
def im2col(x, kernel_hw, stride, padding, dilation, out_hw):
    N, C, H, W = x.shape
    s = make_shape(x.shape, (1, C, *kernel_hw), (H, W), out_hw, stride, padding, dilation, 1)
    col = torch.empty((N, C * s.RS, s.PQ), dtype=x.dtype, device=x.device)
    _launch_im2col(x, col, N, s)
    return col


@cuda_kernel("col2im")
def col2im(col, in_hw, kernel_hw, stride, padding, dilation, out_hw):
    N = col.shape[0]
    C = col.shape[1] // (kernel_hw[0] * kernel_hw[1])
    s = make_shape((N, C), (1, C, *kernel_hw), in_hw, out_hw, stride, padding, dilation, 1)
    x = torch.empty((N, C, in_hw[0], in_hw[1]), dtype=col.dtype, device=col.device)
    _launch_col2im(col, x, N, s)
    return x


@cuda_kernel("conv2d_forward.im2col")
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


@cuda_kernel("conv2d_backward_input.im2col")
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


@cuda_kernel("conv2d_backward_weight.im2col")
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


# ---------------------------------------------------------------------------------------------
# FFT: tiled overlap-save, stride 1 and dilation 1 only

FFT_TILES = (8, 16, 32)
FFT_PER_BLOCK = {8: 16, 16: 4, 32: 1}  # conv_fft.cu TileShape::PER_BLOCK


def fft_tile_size(R: int, S: int) -> int:
    """Smallest tile whose overlap-save step (TS - k + 1) is at least about the kernel size."""
    k = max(R, S)
    for ts in FFT_TILES:
        if 2 * k <= ts + 2:
            return ts
    raise ValueError(f"kernel_size: algo='fft' on the cuda backend takes kernels up to 17x17 (32x32 tiles), "
                     f"got {R}x{S}; use algo='direct' or 'im2col'")


def _check_fft(stride, dilation):
    if tuple(stride) != (1, 1):
        raise ValueError(f"stride: algo='fft' needs stride 1, got {tuple(stride)}; use algo='direct' or 'im2col'")
    if tuple(dilation) != (1, 1):
        raise ValueError(f"dilation: algo='fft' needs dilation 1, got {tuple(dilation)}; use algo='direct' or 'im2col'")


class TileGrid(NamedTuple):
    ts: int
    step_h: int
    step_w: int
    tiles_y: int
    tiles_x: int

    @property
    def count(self):
        return self.tiles_y * self.tiles_x

    @property
    def freqs(self):
        return self.ts * (self.ts // 2 + 1)


def tile_grid(R, S, out_h, out_w) -> TileGrid:
    ts = fft_tile_size(R, S)
    step_h, step_w = ts - R + 1, ts - S + 1
    return TileGrid(ts, step_h, step_w, cdiv(out_h, step_h), cdiv(out_w, step_w))


def _spectrum(freqs, rows, cols, like):
    """Complex workspace [freqs][rows][cols] as interleaved (re, im) of like's dtype."""
    return torch.empty((freqs, rows, cols, 2), dtype=like.dtype, device=like.device)


def _tiles_forward(src, dst, g: TileGrid, n_count, planes_c, H, W, off, take, ld_f, ld_c, flip=False):
    tiles = n_count * planes_c * (g.tiles_y * g.tiles_x)
    if tiles == 0:
        return
    per_block = FFT_PER_BLOCK[g.ts]
    _lib.launch("conv_fft", f"fft_tiles_forward_t{g.ts}_{suffix(src.dtype)}", (cdiv(tiles, per_block),), (THREADS,),
                (addr(src), addr(dst), i64(n_count), i64(planes_c), i64(H), i64(W), i64(g.tiles_y), i64(g.tiles_x),
                 i64(g.step_h), i64(g.step_w), i64(off[0]), i64(off[1]), i64(take[0]), i64(take[1]),
                 i64(ld_f), i64(ld_c), i64(int(flip))))


def _tiles_inverse(src, dst, g: TileGrid, n_count, planes_c, H, W, take, ld_f, ld_c, bias=None, act=0, act_param=0.0):
    tiles = n_count * planes_c * (g.tiles_y * g.tiles_x)
    if tiles == 0:
        return
    per_block = FFT_PER_BLOCK[g.ts]
    _lib.launch("conv_fft", f"fft_tiles_inverse_t{g.ts}_{suffix(dst.dtype)}", (cdiv(tiles, per_block),), (THREADS,),
                (addr(src), addr(dst), addr(bias) if bias is not None else null(), i64(n_count), i64(planes_c),
                 i64(H), i64(W), i64(g.tiles_y), i64(g.tiles_x), i64(g.step_h), i64(g.step_w), i64(0), i64(0),
                 i64(take[0]), i64(take[1]), i64(ld_f), i64(ld_c), i64(act), _lib.scalar(act_param, dst.dtype)))


def _weight_grid(g: TileGrid, R, S) -> TileGrid:
    """One R x S tile per (k, c) plane, on the same TS x TS spectrum as the data tiles."""
    return TileGrid(g.ts, R, S, 1, 1)


def _image_spectrum(src, g: TileGrid, planes, hw, offset, take):
    """[F][planes][N*tiles] spectra of the tiles of src[N][planes][hw], each read from `offset`
    (top/left padding) and cut to `take` rows and columns."""
    nnt = src.shape[0] * g.count
    hat = _spectrum(g.freqs, planes, nnt, src)
    _tiles_forward(src, hat, g, src.shape[0], planes, hw[0], hw[1], offset, take, planes * nnt, nnt)
    return hat


def _kernel_spectrum(w, g: TileGrid, s: Shape, flip=False):
    """[F][K*Cg][1] spectra of the kernel planes, each an R x S tile on the data tiles' TS x TS grid."""
    planes = s.K * s.Cg
    hat = _spectrum(g.freqs, planes, 1, w)
    _tiles_forward(w, hat, _weight_grid(g, s.R, s.S), 1, planes, s.R, s.S, (0, 0), (s.R, s.S), planes, 1, flip=flip)
    return hat


def _image_from_spectrum(hat, dst, g: TileGrid, bias=None, act=0, act_param=0.0):
    """dst[N][planes][H][W] from the spectra of its tiles (overlap-save: each tile keeps step x step)."""
    n, planes, h, w = dst.shape
    nnt = n * g.count
    _tiles_inverse(hat, dst, g, n, planes, h, w, (g.step_h, g.step_w), planes * nnt, nnt, bias, act, act_param)


def _cgemm(a: Operand, b: Operand, c: Operand, M, N, K, nb1, nb2, splits=1, kchunk=None, split_stride=0):
    """Per (frequency b1, group b2): C = conj(A) B on complex workspaces (strides in complex elements)."""
    if M == 0 or N == 0:
        return
    kchunk = kchunk if kchunk is not None else max(K, 1)
    a_along_k = a.sj == 1 or a.si != 1
    b_along_k = not (b.sj == 1 or b.si != 1)
    name = f"fft_cgemm_{'n' if a_along_k else 't'}{'t' if b_along_k else 'n'}_{suffix(c.tensor.dtype)}"

    def args(offsets):
        # complex element offsets -> real element offsets for addr()
        return (addr(a.tensor, 2 * offsets[0]), addr(b.tensor, 2 * offsets[1]), addr(c.tensor, 2 * offsets[2]),
                i64(M), i64(N), i64(K), i64(a.si), i64(a.sj), i64(b.si), i64(b.sj), i64(c.si), i64(c.sj),
                i64(nb2), i64(splits), i64(kchunk), i64(a.s1), i64(a.s2), i64(b.s1), i64(b.s2),
                i64(c.s1), i64(c.s2), i64(split_stride))

    launch_batched("conv_fft", name, CBLOCK_M, CBLOCK_N, M, N, nb1, nb2, splits, [a, b, c], args)


@cuda_kernel("conv2d_forward.fft")
def _fft_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    _check_fft(shape.stride, shape.dilation)
    kind = fused_code(activation)
    s, y = _forward_setup(x, shape)
    if y.numel() == 0:
        return y
    g = tile_grid(s.R, s.S, s.P, s.Q)
    F, nnt = g.freqs, s.N * g.count
    x_hat = _image_spectrum(x, g, s.C, (s.H, s.W), (s.ph, s.pw), (g.ts, g.ts))
    w_hat = _kernel_spectrum(w, g, s)
    y_hat = _spectrum(F, s.K, nnt, x)
    # per (f, group): Y[k][t] = sum_c conj(W[k][c]) X[c][t]
    _cgemm(Operand(w_hat, s.Cg, 1, s.K * s.Cg, s.Kg * s.Cg),
           Operand(x_hat, nnt, 1, s.C * nnt, s.Cg * nnt),
           Operand(y_hat, nnt, 1, s.K * nnt, s.Kg * nnt),
           s.Kg, nnt, s.Cg, F, s.G)
    _image_from_spectrum(y_hat, y, g, bias, kind, act_param)
    return y


@cuda_kernel("conv2d_backward_input.fft")
def _fft_backward_input(gy, w, shape: ConvShape):
    # gx = correlation of gy (padded by R-1-ph, S-1-pw) with the flipped, transposed kernel.
    _check_fft(shape.stride, shape.dilation)
    s, gx = _backward_input_setup(gy, shape)
    if gx.numel() == 0:
        return gx
    g = tile_grid(s.R, s.S, s.H, s.W)
    F, nnt = g.freqs, s.N * g.count
    gy_hat = _image_spectrum(gy, g, s.K, (s.P, s.Q), (s.R - 1 - s.ph, s.S - 1 - s.pw), (g.ts, g.ts))
    w_hat = _kernel_spectrum(w, g, s, flip=True)
    gx_hat = _spectrum(F, s.C, nnt, gy)
    # per (f, group): GX[c][t] = sum_k conj(W'[k][c]) GY[k][t]
    _cgemm(Operand(w_hat, 1, s.Cg, s.K * s.Cg, s.Kg * s.Cg),
           Operand(gy_hat, nnt, 1, s.K * nnt, s.Kg * nnt),
           Operand(gx_hat, nnt, 1, s.C * nnt, s.Cg * nnt),
           s.Cg, nnt, s.Kg, F, s.G)
    _image_from_spectrum(gx_hat, gx, g)
    return gx


@cuda_kernel("conv2d_backward_weight.fft")
def _fft_backward_weight(x, gy, shape: ConvShape):
    # gw[k][c] = sum over images and tiles of conj(GY_t[k]) X_t[c], cropped to R x S.
    _check_fft(shape.stride, shape.dilation)
    s, gw = _backward_weight_setup(x, shape)
    if gw.numel() == 0:
        return gw
    g = tile_grid(s.R, s.S, s.P, s.Q)
    F, nnt = g.freqs, s.N * g.count
    x_hat = _image_spectrum(x, g, s.C, (s.H, s.W), (s.ph, s.pw), (g.ts, g.ts))
    gy_hat = _image_spectrum(gy, g, s.K, (s.P, s.Q), (0, 0), (g.step_h, g.step_w))
    blocks = cdiv(s.Kg, CBLOCK_M) * cdiv(s.Cg, CBLOCK_N) * F * s.G
    splits, kchunk = split_k_plan(blocks, nnt, max(1, 65535 // s.G))
    gw_len = F * s.K * s.Cg
    gw_hat = _spectrum(F, s.K * s.Cg, 1, x)
    parts = gw_hat if splits == 1 else torch.empty((splits, F, s.K * s.Cg, 1, 2), dtype=x.dtype, device=x.device)
    # per (f, group): GW[k][c] = sum_t conj(GY[k][t]) X[c][t]
    _cgemm(Operand(gy_hat, nnt, 1, s.K * nnt, s.Kg * nnt),
           Operand(x_hat, 1, nnt, s.C * nnt, s.Cg * nnt),
           Operand(parts, s.Cg, 1, s.K * s.Cg, s.Kg * s.Cg),
           s.Kg, s.Cg, nnt, F, s.G, splits=splits, kchunk=kchunk, split_stride=gw_len)
    if splits > 1:
        sum_slices(parts, gw_hat, 2 * gw_len, splits)  # (re, im) pairs summed alike
    _tiles_inverse(gw_hat, gw, _weight_grid(g, s.R, s.S), 1, s.K * s.Cg, s.R, s.S, (s.R, s.S), s.K * s.Cg, 1)
    return gw
