"""Triton convolution, algorithm 'winograd': F(4x4, 3x3) (Lavin & Gray 2016) for 3x3 kernels, stride 1,
dilation 1, any padding and groups; forward and backward-input (the cpu version and the accuracy
bound: docs/algo-winograd.md).

    1. filter_kernel:  U[p, k, c] = (G g_kc G^T)[p], p < 36, in float64, rounded once to the dtype;
       FLIP reads the flipped, channel-transposed kernel of the backward input.
    2. input_kernel:   V[p, c, t] = (B^T d_tc B)[p] for BLOCK_T tiles t of one channel c (d: the 6x6
       patch at the tile's output origin - pad, zeros outside the image).
    3. the channel reduction, one GEMM per (point, group) on the shared tiled GEMM (_gemm.py, tl.dot):
       M[p, k, t] = U[p] (K/g x C/g) @ V[p] (C/g x tiles).
    4. output_kernel:  y_tile = A^T M_t A + bias, activation, cropped into y.
Tiles are numbered (n, ty, tx) row-major over the output, 4x4 each from the top left.

Each 6x6 transform m d m^T is two tl.dots of a block of tiles (one tile per row, as an 8x8 padded
to 64 columns) with 64x64 operators (m^T (x) I, then I (x) m^T): one 1-D transform per dot, whose
rows have at most 5 nonzero coefficients (exact except B^T's 5; padding adds exact zeros), so each
transformed value has at most the roundings counted in docs/algo-winograd.md and the cpu bound holds
unchanged. Tiles are the rows, so the loads and stores of V and M are contiguous runs of BLOCK_T tiles.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.contracts.activation import fused_code
from fastcnn.contracts.conv import ConvShape, check_winograd

from ._conv_common import add, apply_activation, launch, scalar_as
from ._gemm import batched_gemm

TILE, PATCH, POINTS = 4, 6, 36
BLOCK_T = 16  # tiles per program of the input/output transforms

# Rows of the transforms, padded with zeros to 8 x 8 (tl.arange needs powers of two).
_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
_G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


@triton.jit
def _transform(d, ops_ptr):
    """m d m^T of every tile: d [rows, 64] holds one 8x8 tile per row (entry (i, j) in column 8i+j),
    ops_ptr two 64x64 matrices, m (x) I then I (x) m^T (see _operators), as two tl.dots: one 1-D
    transform per dot, so each result has the roundings of two 1-D transforms (zeros add exactly)."""
    i = tl.arange(0, 64)
    left = tl.load(ops_ptr + i[:, None] * 64 + i[None, :]).to(d.dtype)
    right = tl.load(ops_ptr + 4096 + i[:, None] * 64 + i[None, :]).to(d.dtype)
    t = tl.dot(d, left, input_precision="ieee", out_dtype=d.dtype)
    return tl.dot(t, right, input_precision="ieee", out_dtype=d.dtype)


@triton.jit
def filter_kernel(w_ptr, ops_ptr, u_ptr,  # w [K, Cg, 3, 3] (FLIP: [C', Kg', 3, 3]) -> U [36, K, Cg]
                  K, Cg, Kg,
                  FLIP: tl.constexpr, BLOCK: tl.constexpr):
    """U[p, k, c] for BLOCK (k, c) pairs, computed in float64 and rounded once. With FLIP the
    effective kernel of (k, c) is w[(k // Kg) * Cg + c, k % Kg] rotated by 180 degrees."""
    kc = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    ok = (kc < K * Cg)[:, None]
    k = kc // Cg
    c = kc % Cg
    col = tl.arange(0, 64)[None, :]
    r = col // 8
    s = col % 8
    if FLIP:
        src = (((k // Kg) * Cg + c) * Kg + k % Kg) * 9
        taps = (2 - r) * 3 + (2 - s)
    else:
        src = kc * 9
        taps = r * 3 + s
    g = tl.load(w_ptr + src[:, None] + taps, mask=ok & (r < 3) & (s < 3), other=0.0)
    u = _transform(g.to(tl.float64), ops_ptr)
    tl.store(u_ptr + (r * 6 + s) * (K * Cg) + kc[:, None], u.to(u_ptr.dtype.element_ty), mask=ok & (r < 6) & (s < 6))


@triton.jit
def input_kernel(x_ptr, ops_ptr, v_ptr,  # x [N, C, H, W] -> V [36, C, T]
                 C, H, W, T, TX, TPI, pad_h, pad_w,
                 BLOCK_T: tl.constexpr):
    """V[:, c, t] = B^T d B for BLOCK_T tiles t of channel c = program_id(1)."""
    c = tl.program_id(1).to(tl.int64)
    t = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)
    n = (t // TPI)[:, None]
    col = tl.arange(0, 64)[None, :]
    i = col // 8
    j = col % 8
    h = ((t % TPI) // TX * 4 - pad_h)[:, None] + i
    w = ((t % TPI) % TX * 4 - pad_w)[:, None] + j
    inside = (t < T)[:, None] & (i < 6) & (j < 6)
    ok = inside & (h >= 0) & (h < H) & (w >= 0) & (w < W)
    d = tl.load(x_ptr + ((n * C + c) * H + h) * W + w, mask=ok, other=0.0)
    v = _transform(d, ops_ptr)
    tl.store(v_ptr + (i * 6 + j).to(tl.int64) * (C * T) + c * T + t[:, None], v, mask=inside)


@triton.jit
def output_kernel(m_ptr, ops_ptr, bias_ptr, y_ptr,  # M [36, K, T] -> y [N, K, P, Q]
                  K, P, Q, T, TX, TPI, act_param: tl.float64,
                  HAS_BIAS: tl.constexpr, ACT: tl.constexpr, BLOCK_T: tl.constexpr):
    """y's 4x4 tiles t (BLOCK_T of them) of channel k = program_id(1): A^T M A + bias, activated."""
    k = tl.program_id(1).to(tl.int64)
    t = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)
    col = tl.arange(0, 64)[None, :]
    i = col // 8
    j = col % 8
    live = (t < T)[:, None]
    m = tl.load(m_ptr + (i * 6 + j).to(tl.int64) * (K * T) + k * T + t[:, None],
                mask=live & (i < 6) & (j < 6), other=0.0)
    out = _transform(m, ops_ptr)  # entries with i or j >= 4 are zero
    if HAS_BIAS:
        out += tl.load(bias_ptr + k)
    out = apply_activation(out, ACT, scalar_as(act_param, out))
    n = (t // TPI)[:, None]
    py = ((t % TPI) // TX * 4)[:, None] + i
    qx = ((t % TPI) % TX * 4)[:, None] + j
    ok = live & (i < 4) & (j < 4) & (py < P) & (qx < Q)
    tl.store(y_ptr + ((n * K + k) * P + py) * Q + qx, out, mask=ok)


_TABLES: dict = {}


def _operators(m, device) -> torch.Tensor:
    """[2, 64, 64] float64: the 1-D transform m (rows x cols <= 8) applied to the rows of an 8x8 tile
    stored as a 64-vector (entry (i, j) at 8i+j), then to its columns: x -> x @ (m^T (x) I) is m x,
    y -> y @ (I (x) m^T) is y m^T. Built on `device` directly (under a default-device context, e.g.
    the AOT test's meta device, a table built elsewhere could not be moved there)."""
    m8 = torch.zeros(8, 8, dtype=torch.float64, device=device)
    m8[:len(m), :len(m[0])] = torch.tensor(m, dtype=torch.float64, device=device)
    eye = torch.eye(8, dtype=torch.float64, device=device)
    mt = m8.T.contiguous()
    return torch.stack([torch.kron(mt, eye), torch.kron(eye, mt)])


def _matrices(device):
    """The operators of B^T (input), G (filter) and A^T (output), cached per device."""
    key = str(device)
    if key not in _TABLES:
        _TABLES[key] = torch.stack([_operators(m, device) for m in (_BT, _G, _AT)])
    return _TABLES[key]


def _correlate(src, w, bias, groups, pad, out_hw, flip, act=0, act_param=0.0):
    """y[N, CO, *out_hw] = act(bias + correlation of src[N, CI, H, W] with the 3x3 kernels (w as
    given, or flipped and channel-transposed), top/left padding `pad` (may be negative)."""
    N, CI, H, W = src.shape
    CO = w.shape[1] * groups if flip else w.shape[0]
    CIg, COg = CI // groups, CO // groups
    P, Q = out_hw
    TY, TX = triton.cdiv(P, TILE), triton.cdiv(Q, TILE)
    T = N * TY * TX
    src, w = src.contiguous(), w.contiguous()
    mats = _matrices(src.device)
    y = torch.empty((N, CO, P, Q), dtype=src.dtype, device=src.device)
    U = torch.empty((POINTS, CO, CIg), dtype=src.dtype, device=src.device)
    block = 32
    launch(filter_kernel, (triton.cdiv(CO * CIg, block),), w, mats[1], U, CO, CIg, COg,
           FLIP=flip, BLOCK=block, num_warps=4, num_stages=1)
    V = torch.empty((POINTS, CI, T), dtype=src.dtype, device=src.device)
    launch(input_kernel, (triton.cdiv(T, BLOCK_T), CI), src, mats[0], V, CI, H, W, T, TX, TY * TX, *pad,
           BLOCK_T=BLOCK_T, num_warps=4, num_stages=1)
    M = torch.empty((POINTS, CO, T), dtype=src.dtype, device=src.device)
    batched_gemm(U, V, M, M=COg, N=T, K=CIg, a_strides=(CIg, 1), b_strides=(T, 1), c_strides=(T, 1),
                 batch=(POINTS, groups), a_batch=(CO * CIg, COg * CIg), b_batch=(CI * T, CIg * T),
                 c_batch=(CO * T, COg * T))
    launch(output_kernel, (triton.cdiv(T, BLOCK_T), CO), M, mats[2], bias if bias is not None else y, y,
           CO, P, Q, T, TX, TY * TX, float(act_param), HAS_BIAS=bias is not None, ACT=act, BLOCK_T=BLOCK_T,
           num_warps=4, num_stages=1)
    return y


@triton_kernel(kernels.conv2d_forward.winograd)
def conv2d_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    act = fused_code(activation)
    check_winograd(shape.kernel_hw, shape.stride, shape.dilation, "conv2d_forward.winograd")
    if shape.N * shape.K * shape.P * shape.Q == 0:
        return torch.empty(shape.y_shape, dtype=x.dtype, device=x.device)
    # C == 0 needs nothing special: the GEMMs sum nothing and the output transform adds the bias
    return _correlate(x, w, bias, shape.G, (shape.ph, shape.pw), (shape.P, shape.Q), False, act, act_param)


@triton_kernel(kernels.conv2d_backward_input.winograd)
def conv2d_backward_input(gy, w, shape: ConvShape):
    check_winograd(shape.kernel_hw, shape.stride, shape.dilation, "conv2d_backward_input.winograd")
    if shape.N * shape.C * shape.H * shape.W == 0 or shape.K * shape.P * shape.Q == 0:
        return torch.zeros(shape.x_shape, dtype=gy.dtype, device=gy.device)
    # gx[n,c,h,w] = sum_{k,r,s} gy[n,k,h+ph-r,w+pw-s] w[k,c,r,s]: gy correlated with the flipped kernel
    return _correlate(gy, w, None, shape.G, (2 - shape.ph, 2 - shape.pw), (shape.H, shape.W), True)
