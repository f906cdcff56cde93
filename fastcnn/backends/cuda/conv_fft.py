"""cuda tiled FFT convolution (overlap-save, conv_fft.cu; stride 1 and dilation 1 only): forward,
backward input and backward weight.

Signatures: the convolution kernel interface (fastcnn/contracts/conv.py).
Tensors arrive contiguous, same dtype and device (the op layer checks).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ...contracts.activation import fused_code
from ...contracts import kernels
from ...contracts.conv import ConvShape, check_applicable
from . import _lib
from ._conv_common import _backward_input_setup, _backward_weight_setup, _forward_setup
from ._lib import cuda_kernel, i64, suffix
from .gemm import (CBLOCK_M, CBLOCK_N, THREADS, Operand, addr, cdiv, launch_batched, null, split_k_plan,
                   sum_slices)


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


def _kernel_spectrum(w, g: TileGrid, s: ConvShape, flip=False):
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


def _correlate(src, w, dst, c: ConvShape, transposed: bool, bias=None, act=0, act_param=0.0):
    """dst [N, c.K, P, Q] = act(bias + the stride-1 correlation c of src [N, c.C, H, W] with w), by tiles:
    the forward (w [K, C/G, R, S] as given) and the input gradient (c = shape.input_gradient_correlation(),
    transposed: w of the differentiated convolution, flipped and read channel-transposed)."""
    g = tile_grid(c.R, c.S, c.P, c.Q)
    F, nnt = g.freqs, c.N * g.count
    src_hat = _image_spectrum(src, g, c.C, c.in_hw, c.padding, (g.ts, g.ts))
    w_hat = _kernel_spectrum(w, g, c, flip=transposed)
    dst_hat = _spectrum(F, c.K, nnt, src)
    planes = c.K * c.Cg
    w_op = (Operand(w_hat, 1, c.Kg, planes, c.Kg * c.Cg) if transposed  # w'[o][i] = w[i][o] flipped
            else Operand(w_hat, c.Cg, 1, planes, c.Kg * c.Cg))
    # per (f, group): DST[o][t] = sum_i conj(W[o][i]) SRC[i][t]
    _cgemm(w_op,
           Operand(src_hat, nnt, 1, c.C * nnt, c.Cg * nnt),
           Operand(dst_hat, nnt, 1, c.K * nnt, c.Kg * nnt),
           c.Kg, nnt, c.Cg, F, c.G)
    _image_from_spectrum(dst_hat, dst, g, bias, act, act_param)
    return dst


@cuda_kernel(kernels.conv2d_forward.fft)
def _fft_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    check_applicable("fft", shape, "conv2d_forward.fft")
    kind = fused_code(activation)
    s, y = _forward_setup(x, shape)
    if y.numel() == 0:
        return y
    return _correlate(x, w, y, s, False, bias, kind, act_param)


@cuda_kernel(kernels.conv2d_backward_input.fft)
def _fft_backward_input(gy, w, shape: ConvShape):
    check_applicable("fft", shape, "conv2d_backward_input.fft")
    s, gx = _backward_input_setup(gy, shape)
    if gx.numel() == 0:
        return gx
    return _correlate(gy, w, gx, s.input_gradient_correlation(), True)


@cuda_kernel(kernels.conv2d_backward_weight.fft)
def _fft_backward_weight(x, gy, shape: ConvShape):
    # gw[k][c] = sum over images and tiles of conj(GY_t[k]) X_t[c], cropped to R x S.
    check_applicable("fft", shape, "conv2d_backward_weight.fft")
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
