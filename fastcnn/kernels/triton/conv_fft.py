"""Triton convolution, algorithm 'fft': tiled (overlap-save) FFT convolution, stride 1 and dilation 1.

The output is cut into tiles of (T-R+1) x (T-S+1); each needs a T x T input tile, whose circular
correlation with the zero-padded kernel is exact on those positions (no wrap-around).

    1. spectra of the input tiles and of the kernels (one kernel, spectrum_kernel): the 2-D DFT as
       matrix products F u F, F = cos - i sin (T x T, gathered from a cos/sin table of length T),
       real and imaginary parts kept as separate real tensors; tl.dot does the work.
    2. the channel reduction: a complex GEMM per frequency (cgemm_kernel, 4 real tl.dots per
       step), a block of frequencies per program (3-D tl.dot) so small GEMMs fill a program.
    3. the inverse DFT of each output tile (matrix products again), crop, bias, activation, store
       (untile_kernel).

Spectra are [2 (re, im), rows, channels, T*T frequencies]; rows are (image, tile) pairs, or output
channels for kernels and weight gradients. Frequencies last, so a transform program reads and
writes its T*T values contiguously and the complex GEMM loads runs of BLOCK_F frequencies. Tile t
of plane p of a tensor [*, CH, H, W] is row p // CH * tiles + t, column p % CH.

    forward          y  = corr(x padded by (ph, pw), w):           Y = X conj(W)      per group
    backward input   gx = corr(gy padded by (R-1-ph, S-1-pw), w rotated 180 degrees, K and C
                     swapped):                                     GX = GY conj(Wrot)
    backward weight  gw = sum over images and tiles of corr(x tile, gy tile, cut to (T-R+1) x (T-S+1)):
                                                                   GW = conj(GY)^T X  (reduces over tiles)
T is 16 for kernels up to 8, 32 up to 16, 64 up to 32 (larger kernels: ValueError).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.contracts.activation import fused_code
from fastcnn.contracts.conv import ConvShape

from ._conv_common import apply_activation, dot_precision, launch, pow2_clamp, scalar_as


@triton.jit
def _dft_matrices(tab_ptr, T: tl.constexpr):
    """cos and sin of 2*pi*u*i/T for u, i < T, from the table [cos(2 pi m/T), sin(2 pi m/T)]."""
    i = tl.arange(0, T)
    m = (i[:, None] * i[None, :]) % T
    return tl.load(tab_ptr + m), tl.load(tab_ptr + T + m)


@triton.jit
def _dft2(u, cm, sm):
    """(Re, Im) of F u F, F = cm - i sm (symmetric): the 2-D DFT of a real tile."""
    a = tl.dot(u, cm, input_precision="ieee")
    b = tl.dot(u, sm, input_precision="ieee")
    re = tl.dot(cm, a, input_precision="ieee") - tl.dot(sm, b, input_precision="ieee")
    im = -(tl.dot(sm, a, input_precision="ieee") + tl.dot(cm, b, input_precision="ieee"))
    return re, im


@triton.jit
def _idft2_real(yr, yi, cm, sm, T: tl.constexpr):
    """Real part of conj(F) Y conj(F) / T^2: the inverse 2-D DFT of a spectrum with a real result."""
    pr = tl.dot(cm, yr, input_precision="ieee") - tl.dot(sm, yi, input_precision="ieee")
    pi = tl.dot(cm, yi, input_precision="ieee") + tl.dot(sm, yr, input_precision="ieee")
    out = tl.dot(pr, cm, input_precision="ieee") - tl.dot(pi, sm, input_precision="ieee")
    return out * (1.0 / (T * T))


@triton.jit
def spectrum_kernel(src_ptr, tab_ptr, out_ptr,  # src[N, CH, H, W] -> out[2, N*tiles, CH, T*T]
                    CH, H, W, n_tiles, tiles_w, step_h, step_w, base_h, base_w, ext_h, ext_w,
                    s_im, s_row, s_ch,
                    FLIP: tl.constexpr, T: tl.constexpr):
    """Spectrum of tile t of plane (n, c): the T x T window at (tile origin + base) of which only the
    first ext_h x ext_w entries are read, the rest being zero padding; FLIP reads the window
    rotated by 180 degrees (the kernels of the backward input)."""
    pid = tl.program_id(0)
    plane = (pid // n_tiles).to(tl.int64)
    t = pid % n_tiles
    i = tl.arange(0, T)
    if FLIP:
        j = ext_h - 1 - i
        k = ext_w - 1 - i
    else:
        j = i
        k = i
    h = (t // tiles_w) * step_h + base_h + j
    w = (t % tiles_w) * step_w + base_w + k
    ok = ((i < ext_h) & (h >= 0) & (h < H))[:, None] & ((i < ext_w) & (w >= 0) & (w < W))[None, :]
    u = tl.load(src_ptr + plane * H * W + h[:, None] * W + w[None, :], mask=ok, other=0.0)
    cm, sm = _dft_matrices(tab_ptr, T)
    re, im = _dft2(u, cm, sm)
    f = (i[:, None] * T + i[None, :]).to(tl.int64)
    dst = out_ptr + ((plane // CH) * n_tiles + t) * s_row + (plane % CH) * s_ch + f  # T*T contiguous
    tl.store(dst, re)
    tl.store(dst + s_im, im)


@triton.jit
def cgemm_kernel(a_ptr, b_ptr, c_ptr,  # per (frequency f, group g): C = op(A) @ op(B), complex
                 M, N, K, G,
                 s_am, s_ak, s_af, s_ag, a_im, s_bk, s_bn, s_bf, s_bg, b_im, s_cm, s_cn, s_cf, s_cg, c_im,
                 PRECISION: tl.constexpr, CONJ_A: tl.constexpr, CONJ_B: tl.constexpr,
                 BLOCK_F: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Element (f, m, k) of A is at a + f*s_af + g*s_ag + m*s_am + k*s_ak, its imaginary part at
    + a_im (likewise B, C); op conjugates where CONJ_*. One program: BLOCK_F frequencies x
    BLOCK_M x BLOCK_N of one group."""
    tiles_m = (M + BLOCK_M - 1) // BLOCK_M
    tiles_n = (N + BLOCK_N - 1) // BLOCK_N
    pid = tl.program_id(0)
    fb = pid // (G * tiles_m * tiles_n)
    rest = pid % (G * tiles_m * tiles_n)
    g = (rest // (tiles_m * tiles_n)).to(tl.int64)
    rest = rest % (tiles_m * tiles_n)
    f = (fb.to(tl.int64) * BLOCK_F + tl.arange(0, BLOCK_F))[:, None, None]
    rows = ((rest // tiles_n).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M))[None, :, None]
    cols = ((rest % tiles_n).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N))[None, None, :]
    ks = tl.arange(0, BLOCK_K).to(tl.int64)
    a_base = a_ptr + f * s_af + g * s_ag + rows * s_am
    b_base = b_ptr + f * s_bf + g * s_bg + cols * s_bn
    acc_re = tl.full((BLOCK_F, BLOCK_M, BLOCK_N), 0.0, c_ptr.dtype.element_ty)
    acc_im = tl.full((BLOCK_F, BLOCK_M, BLOCK_N), 0.0, c_ptr.dtype.element_ty)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + ks
        a_ptrs = a_base + kk[None, None, :] * s_ak
        a_ok = (rows < M) & (kk < K)[None, None, :]
        ar = tl.load(a_ptrs, mask=a_ok, other=0.0)
        ai = tl.load(a_ptrs + a_im, mask=a_ok, other=0.0)
        b_ptrs = b_base + kk[None, :, None] * s_bk
        b_ok = (kk < K)[None, :, None] & (cols < N)
        br = tl.load(b_ptrs, mask=b_ok, other=0.0)
        bi = tl.load(b_ptrs + b_im, mask=b_ok, other=0.0)
        if CONJ_A:
            ai = -ai
        if CONJ_B:
            bi = -bi
        acc_re = tl.dot(ar, br, acc_re, input_precision=PRECISION, out_dtype=acc_re.dtype)
        acc_re = tl.dot(-ai, bi, acc_re, input_precision=PRECISION, out_dtype=acc_re.dtype)
        acc_im = tl.dot(ai, br, acc_im, input_precision=PRECISION, out_dtype=acc_im.dtype)
        acc_im = tl.dot(ar, bi, acc_im, input_precision=PRECISION, out_dtype=acc_im.dtype)
    c_ptrs = c_ptr + f * s_cf + g * s_cg + rows * s_cm + cols * s_cn
    c_ok = (rows < M) & (cols < N) & (f >= 0)
    tl.store(c_ptrs, acc_re, mask=c_ok)
    tl.store(c_ptrs + c_im, acc_im, mask=c_ok)


@triton.jit
def untile_kernel(spec_ptr, tab_ptr, bias_ptr, dst_ptr,  # spec[2, N*tiles, CO, T*T] -> dst[N, CO, OH, OW]
                  CO, OH, OW, n_tiles, tiles_w, step_h, step_w, ext_h, ext_w, s_im, s_row, s_ch,
                  act_param: tl.float64, HAS_BIAS: tl.constexpr, ACT: tl.constexpr, T: tl.constexpr):
    """Inverse transform of tile t of output plane (n, co); its first ext_h x ext_w entries, plus
    bias[co] and activated, go to the tile's place in dst (the inverse of spectrum_kernel)."""
    pid = tl.program_id(0)
    plane = (pid // n_tiles).to(tl.int64)
    t = pid % n_tiles
    i = tl.arange(0, T)
    f = (i[:, None] * T + i[None, :]).to(tl.int64)
    spec = spec_ptr + ((plane // CO) * n_tiles + t) * s_row + (plane % CO) * s_ch + f
    cm, sm = _dft_matrices(tab_ptr, T)
    out = _idft2_real(tl.load(spec), tl.load(spec + s_im), cm, sm, T)
    if HAS_BIAS:
        out += tl.load(bias_ptr + plane % CO)
    out = apply_activation(out, ACT, scalar_as(act_param, out))
    oh = (t // tiles_w) * step_h + i
    ow = (t % tiles_w) * step_w + i
    ok = ((i < ext_h) & (oh < OH))[:, None] & ((i < ext_w) & (ow < OW))[None, :]
    tl.store(dst_ptr + plane * OH * OW + oh[:, None] * OW + ow[None, :], out, mask=ok)


_TABLES: dict = {}


def _dft_table(T: int, dtype, device) -> torch.Tensor:
    """[cos(2 pi m / T), sin(2 pi m / T)] for m < T, computed in float64, cached."""
    key = (T, dtype, str(device))
    if key not in _TABLES:
        m = torch.arange(T, dtype=torch.float64, device="cpu") * (2 * math.pi / T)  # on the host, then moved
        _TABLES[key] = torch.stack([torch.cos(m), torch.sin(m)]).to(dtype=dtype, device=device).contiguous()
    return _TABLES[key]


def _transform_size(stride, dilation, kernel_hw) -> int:
    """T for this kernel; ValueError for what the fft algorithm cannot do."""
    if tuple(stride) != (1, 1):
        raise ValueError(f"stride: the fft algorithm needs stride 1, got {tuple(stride)}; use algo='direct' or 'im2col'")
    if tuple(dilation) != (1, 1):
        raise ValueError(f"dilation: the fft algorithm needs dilation 1, got {tuple(dilation)}; use algo='direct' or 'im2col'")
    for T in (16, 32, 64):
        if max(kernel_hw) <= T // 2:
            return T
    raise ValueError(f"kernel_hw: the fft algorithm takes kernels up to 32x32, got {tuple(kernel_hw)}; use algo='direct'")


def _warps(T: int) -> int:
    return 8 if T >= 64 else 4


class _Tiles:
    """A grid of tiles with origins (i*step_h, j*step_w) covering an hw plane."""

    def __init__(self, T, step, hw):
        self.T, self.step = T, tuple(step)
        self.rows, self.cols = triton.cdiv(hw[0], step[0]), triton.cdiv(hw[1], step[1])
        self.count = self.rows * self.cols

    @classmethod
    def single(cls, T):
        return cls(T, (T, T), (1, 1))


def _spectra(src, tiles, base, extent, flip=False):
    """[2, N*tiles, CH, T*T]: spectra of the tiles of src[N, CH, H, W] (see spectrum_kernel)."""
    N, CH, H, W = src.shape
    T = tiles.T
    out = torch.empty((2, N * tiles.count, CH, T * T), dtype=src.dtype, device=src.device)
    launch(spectrum_kernel, (N * CH * tiles.count,), src, _dft_table(T, src.dtype, src.device), out,
           CH, H, W, tiles.count, tiles.cols, *tiles.step, *base, *extent, out.stride(0), out.stride(1), out.stride(2),
           FLIP=flip, T=T, num_warps=_warps(T), num_stages=1)
    return out


def _untile(spec, tiles, out_shape, extent, bias=None, act=0, act_param=0.0):
    """dst[out_shape] from its tile spectra [2, N*tiles, CO, T*T] (see untile_kernel)."""
    N, CO, OH, OW = out_shape
    dst = torch.empty(out_shape, dtype=spec.dtype, device=spec.device)
    T = tiles.T
    launch(untile_kernel, (N * CO * tiles.count,), spec, _dft_table(T, spec.dtype, spec.device),
           bias if bias is not None else dst, dst,
           CO, OH, OW, tiles.count, tiles.cols, *tiles.step, *extent, spec.stride(0), spec.stride(1), spec.stride(2),
           float(act_param), HAS_BIAS=bias is not None, ACT=act, T=T, num_warps=_warps(T), num_stages=1)
    return dst


class _Operand:
    """A spectrum [2, rows, channels, F] seen as a batch of complex matrices, one per (frequency,
    group): which dimension (1 or 2) indexes the matrix rows and which the columns, the dimension
    the groups split and the group's size along it, and whether it is conjugated."""

    def __init__(self, t, row_dim, col_dim, group_dim, group_size, conj=False):
        self.t, self.row_dim, self.col_dim, self.conj = t, row_dim, col_dim, conj
        self.group_stride = group_size * t.stride(group_dim)

    def strides(self):
        """(row, col, frequency, group, imaginary part) strides, cgemm_kernel's order."""
        t = self.t
        return t.stride(self.row_dim), t.stride(self.col_dim), t.stride(3), self.group_stride, t.stride(0)


def _cgemm(a, b, c, M, N, K, groups):
    """c[f, g] = op(a[f, g]) @ op(b[f, g]) for every frequency f and group g."""
    F = c.t.shape[3]
    bm, bn = pow2_clamp(M, 16, 32), pow2_clamp(N, 16, 32)
    bk = 16
    budget = 4096 if c.t.dtype == torch.float32 else 2048  # accumulator elements per program
    bf = max(1, min(16, budget // (bm * bn)))
    grid = (F // bf * groups * triton.cdiv(M, bm) * triton.cdiv(N, bn),)
    launch(cgemm_kernel, grid, a.t, b.t, c.t, M, N, K, groups,
           *a.strides(), *b.strides(), *c.strides(),
           PRECISION=dot_precision(c.t.dtype), CONJ_A=a.conj, CONJ_B=b.conj, BLOCK_F=bf, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
           num_warps=4, num_stages=2)


def _correlate(src, w, groups, base, out_hw, T, rotate, bias=None, act=0, act_param=0.0):
    """Every output channel's correlation with src[N, CI, H, W] over its group's input channels,
    + bias, activated: y[N, CO, *out_hw]. Forward: w[CO, CI/g, R, S]; rotate (backward input):
    w[CI, CO/g, R, S], each kernel rotated by 180 degrees."""
    N, CI = src.shape[:2]
    R, S = w.shape[2:]
    CO = w.shape[1] * groups if rotate else w.shape[0]
    CIg, COg = CI // groups, CO // groups
    tiles = _Tiles(T, (T - R + 1, T - S + 1), out_hw)
    X = _spectra(src, tiles, base, (T, T))
    Wf = _spectra(w, _Tiles.single(T), (0, 0), (R, S), flip=rotate)  # [2, K, Cg, F]
    if rotate:  # B[k, c] = W[g*Kg + k, c]
        wop = _Operand(Wf, 1, 2, 1, CIg, conj=True)
    else:  # B[c, k] = W[g*Kg + k, c]
        wop = _Operand(Wf, 2, 1, 1, COg, conj=True)
    Y = torch.empty((2, N * tiles.count, CO, T * T), dtype=src.dtype, device=src.device)
    _cgemm(_Operand(X, 1, 2, 2, CIg), wop, _Operand(Y, 1, 2, 2, COg), N * tiles.count, COg, CIg, groups)
    return _untile(Y, tiles, (N, CO, *out_hw), tiles.step, bias, act, act_param)


def _empty(shape, like):
    return torch.empty(shape, dtype=like.dtype, device=like.device)


@triton_kernel(kernels.conv2d_forward.fft)
def conv2d_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    stride, padding, dilation, groups = shape.stride, shape.padding, shape.dilation, shape.G
    out_hw = shape.out_hw
    act = fused_code(activation)
    T = _transform_size(stride, dilation, w.shape[2:])
    if x.shape[0] * w.shape[0] * out_hw[0] * out_hw[1] == 0:
        return _empty((x.shape[0], w.shape[0], *out_hw), x)
    return _correlate(x, w, groups, (-padding[0], -padding[1]), out_hw, T, False, bias, act, act_param)


@triton_kernel(kernels.conv2d_backward_input.fft)
def conv2d_backward_input(gy, w, shape: ConvShape):
    stride, padding, dilation, groups = shape.stride, shape.padding, shape.dilation, shape.G
    in_hw = shape.in_hw
    T = _transform_size(stride, dilation, w.shape[2:])
    R, S = w.shape[2:]
    if gy.shape[0] * w.shape[1] * in_hw[0] * in_hw[1] == 0:
        return _empty((gy.shape[0], w.shape[1] * groups, *in_hw), gy)
    return _correlate(gy, w, groups, (padding[0] - R + 1, padding[1] - S + 1), in_hw, T, True)


@triton_kernel(kernels.conv2d_backward_weight.fft)
def conv2d_backward_weight(x, gy, shape: ConvShape):
    stride, padding, dilation, groups = shape.stride, shape.padding, shape.dilation, shape.G
    kernel_hw = shape.kernel_hw
    T = _transform_size(stride, dilation, kernel_hw)
    N, C = x.shape[:2]
    K, P, Q = gy.shape[1:]
    R, S = kernel_hw
    Cg, Kg = C // groups, K // groups
    if K * Cg * R * S == 0:
        return _empty((K, Cg, R, S), x)
    if N * P * Q == 0:  # nothing to sum
        return torch.zeros((K, Cg, R, S), dtype=x.dtype, device=x.device)
    tiles = _Tiles(T, (T - R + 1, T - S + 1), (P, Q))
    X = _spectra(x, tiles, (-padding[0], -padding[1]), (T, T))
    GY = _spectra(gy, tiles, (0, 0), tiles.step)
    GW = torch.empty((2, K, Cg, T * T), dtype=x.dtype, device=x.device)
    _cgemm(_Operand(GY, 2, 1, 2, Kg, conj=True), _Operand(X, 1, 2, 2, Cg), _Operand(GW, 1, 2, 1, Kg),
           Kg, Cg, N * tiles.count, groups)
    return _untile(GW, _Tiles.single(T), (K, Cg, R, S), (R, S))
