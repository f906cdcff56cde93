"""Triton convolution, algorithm 'implicit_gemm': tensor-core implicit GEMM over NCHW tensors.

Each pass is one GEMM per group whose operand tiles are gathered straight from the tensors (no
column matrix). Unlike 'direct' (reduction index c*R*S + r*S + s, a scattered gather per element),
the reduction loops over the taps (r, s) outside and over BLOCK_K contiguous channels inside, so the
bounds test of a tap is one mask per row and a weight tile is a contiguous block of a weight packed
as [group, tap, channel, channel] (a small copy per call):

    forward          rows n*P*Q + p*Q + q   cols k    reduction (tap, c)     w packed [G, RS, Cg, Kg]
    backward input   rows per stride phase  cols c    reduction (tap, k)     w packed [G, RS, Kg, Cg]
    backward weight  rows k                 cols c    reduction n*P*Q + p*Q + q   one program per tap,
                                                      split over the reduction when the grid is small

Backward input is split into the sh x sw phases of the input (h % sh, w % sw), as cuDNN does: within
a phase a tap either lands on an output pixel for every row or for none, so each program loops over
its phase's landing taps only (a table built on the host) instead of masking (sh*sw - 1)/(sh*sw) of
the work away. Backward weight with few output tiles splits the N*P*Q reduction into SPLIT chunks
written to a float32/float64 workspace and summed in a fixed order by a second kernel
(deterministic, no atomics).

Precision: float32 uses TF32 tensor cores when torch allows it for convolutions
(`torch.backends.cudnn.allow_tf32`, torch's default True), IEEE float32 when it is off; float16 and
bfloat16 take tensor cores with float32 accumulation; float64 stays exact (FMA, no tensor cores).
Accumulation is float32 (float64 for float64). Tiles: `triton.autotune` over CONFIGS keyed on the
problem shape and precision (results cached on disk by triton), pruned to the dtype and the channel
widths; grouped launch order (GROUP_M row tiles share a weight panel while it is in L2) and
`num_stages` software pipelining. Under the Triton interpreter one small config is used (no
benchmarking on CPU tensors). bfloat16 runs on CUDA tensors only: the interpreter's tl.dot cannot
multiply bfloat16.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton import knobs

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels
from fastcnn.contracts.activation import fused_code
from fastcnn.contracts.conv import ConvShape

from ._conv_common import apply_activation, conv_sizes, scalar_as

# (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages), one set per arithmetic: tensor cores (float32
# with TF32, float16, bfloat16) and FMA units (IEEE float32, float64: both operand tiles live in
# registers, so smaller tiles). Only tiles that compile without register spills for sm_80 and sm_90
# in every pass (tests/backends/triton/test_triton_aot.py checks it): a sweep with the elu epilogue found 128 x 128,
# 64 x 128 / 4 warps and 128 x 64 / 8 warps (backward input, float16, sm_90) spilling, and IEEE
# float32 with BLOCK_K 32 spilling on sm_80 (docs/backend-triton.md).
TENSOR_CORE_CONFIGS = ((64, 64, 32, 4, 3), (64, 64, 32, 4, 4), (64, 32, 32, 4, 3), (32, 64, 32, 4, 3))
FMA_CONFIGS = ((64, 32, 16, 4, 2),)  # IEEE float32 and float64 (32 x 32 x 16 spilled 8-16 bytes on sm_90)
INTERPRETER_CONFIG = (32, 16, 16, 4, 2)  # CPU tensors: one config, small tiles (tiny test shapes)
GROUP_M = 8
_INTERPRETING = knobs.runtime.interpret  # fixed per module copy (kernels.py imports this module twice)
_CPU_DTYPES = (torch.float32, torch.float64, torch.float16)
_GPU_DTYPES = _CPU_DTYPES + (torch.bfloat16,)


def _shape(config) -> tuple:
    k = config.kwargs
    return k["BLOCK_M"], k["BLOCK_N"], k["BLOCK_K"], config.num_warps, config.num_stages


def _configs():
    shapes = (INTERPRETER_CONFIG,) if _INTERPRETING else tuple(dict.fromkeys(
        TENSOR_CORE_CONFIGS + FMA_CONFIGS))
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_warps=w, num_stages=s)
            for m, n, k, w, s in shapes]


def config_set(dtype, precision: str) -> tuple:
    """The tile set of an arithmetic: FMA units (float64, IEEE float32) or tensor cores."""
    if dtype == torch.float64 or (dtype == torch.float32 and precision == "ieee"):
        return FMA_CONFIGS
    return TENSOR_CORE_CONFIGS


def configs_for(configs, dtype, precision: str, rows: int, cols: int):
    """The configs worth timing for `dtype` at `precision` and a rows x cols GEMM: the arithmetic's
    set, without tiles more than twice as wide as the matrix (mostly masked lanes); never empty."""
    wanted = config_set(dtype, precision)
    family = [c for c in configs if _shape(c) in wanted] or list(configs)
    fits = [c for c in family if c.kwargs["BLOCK_M"] <= max(32, 2 * rows) and c.kwargs["BLOCK_N"] <= max(32, 2 * cols)]
    return fits or family[-1:]


def _pruner(rows, cols, tensor):
    """early_config_prune for a kernel whose GEMM is rows(args) x cols(args), dtype of arg `tensor`."""
    def prune(configs, named_args, **kwargs):
        precision = kwargs.get("PRECISION", named_args.get("PRECISION"))
        return configs_for(configs, named_args[tensor].dtype, precision, rows(named_args), cols(named_args))
    return prune


_KEY = ["N", "C", "H", "W", "K", "P", "Q", "R", "S", "sh", "sw", "dh", "dw", "Cg", "Kg", "PRECISION"]


def _autotune(rows, cols, tensor, key=_KEY):
    return triton.autotune(_configs(), key=key, prune_configs_by={"early_config_prune": _pruner(rows, cols, tensor)},
                           cache_results=not _INTERPRETING)


@triton.jit
def _grouped_tile(pid, tiles_m, tiles_n, GROUP_M: tl.constexpr):
    """(row tile, col tile) of program `pid` in grouped order: GROUP_M row tiles walk one column
    panel (the weights) together while it is in L2 (Triton tutorial 03)."""
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = tl.minimum(tiles_m - first_m, GROUP_M)
    return first_m + (pid % per_group) % group_rows, (pid % per_group) // group_rows


@_autotune(lambda a: a["N"] * a["P"] * a["Q"], lambda a: a["Kg"], "x_ptr")
@triton.jit
def igemm_forward_kernel(x_ptr, w_ptr, bias_ptr, y_ptr,  # x[N,C,H,W], w packed [G,R*S,Cg,Kg], bias[K], y[N,K,P,Q]
                         N, C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dh, dw, Cg, Kg,
                         act_param: tl.float64,
                         PRECISION: tl.constexpr, ACC: tl.constexpr, IDX: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    M = N * P * Q
    tiles_m = (M + BLOCK_M - 1) // BLOCK_M
    tiles_n = (Kg + BLOCK_N - 1) // BLOCK_N
    pid = tl.program_id(0)
    g = (pid // (tiles_m * tiles_n)).to(IDX)
    pid_m, pid_n = _grouped_tile(pid % (tiles_m * tiles_n), tiles_m, tiles_n, GROUP_M)
    m = pid_m.to(IDX) * BLOCK_M + tl.arange(0, BLOCK_M)
    k = pid_n.to(IDX) * BLOCK_N + tl.arange(0, BLOCK_N)
    n = m // (P * Q)
    pq = m % (P * Q)
    ih0 = (pq // Q) * sh - ph
    iw0 = (pq % Q) * sw - pw
    m_ok = m < M
    k_ok = k < Kg
    x_rows = x_ptr + (n * C + g * Cg) * H * W  # [BLOCK_M] channel 0 of the group
    w_group = w_ptr + g * R * S * Cg * Kg
    cs = tl.arange(0, BLOCK_K).to(IDX)

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, ACC)
    c_blocks = (Cg + BLOCK_K - 1) // BLOCK_K
    for it in range(0, R * S * c_blocks):  # one flat loop: num_stages pipelines all of it
        rs = it // c_blocks
        c = (it % c_blocks) * BLOCK_K + cs
        ih = ih0 + (rs // S) * dh
        iw = iw0 + (rs % S) * dw
        row_ok = m_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        c_ok = c < Cg
        a = tl.load(x_rows[:, None] + (c * H * W)[None, :] + (ih * W + iw)[:, None],
                    mask=row_ok[:, None] & c_ok[None, :], other=0.0)
        b = tl.load(w_group + (rs * Cg + c)[:, None] * Kg + k[None, :], mask=c_ok[:, None] & k_ok[None, :], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=ACC)

    if HAS_BIAS:
        acc += tl.load(bias_ptr + g * Kg + k, mask=k_ok, other=0.0).to(ACC)[None, :]
    acc = apply_activation(acc, ACT, scalar_as(act_param, acc))
    y_ptrs = y_ptr + (n * K * P * Q + pq)[:, None] + ((g * Kg + k) * P * Q)[None, :]
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=m_ok[:, None] & k_ok[None, :])


@_autotune(lambda a: a["N"] * a["HP"] * a["WP"], lambda a: a["Cg"], "gy_ptr")
@triton.jit
def igemm_backward_input_kernel(gy_ptr, w_ptr, gx_ptr, taps_ptr,  # gy[N,K,P,Q], w packed [G,R*S,Kg,Cg], gx[N,C,H,W]
                                N, C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dh, dw, Cg, Kg, HP, WP,
                                PRECISION: tl.constexpr, ACC: tl.constexpr, IDX: tl.constexpr,
                                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                                GROUP_M: tl.constexpr):
    # taps[phase] = (count, then count x (tap, dp, dq)), R*S*3 + 1 ints per phase: the taps that land
    # for input pixels h = a + i*sh, w = b + j*sw read gy[.., i + dp, j + dq]
    M = N * HP * WP
    tiles_m = (M + BLOCK_M - 1) // BLOCK_M
    tiles_n = (Cg + BLOCK_N - 1) // BLOCK_N
    groups = C // Cg
    pid = tl.program_id(0)
    phase = pid // (groups * tiles_m * tiles_n)
    rest = pid % (groups * tiles_m * tiles_n)
    g = (rest // (tiles_m * tiles_n)).to(IDX)
    pid_m, pid_n = _grouped_tile(rest % (tiles_m * tiles_n), tiles_m, tiles_n, GROUP_M)
    m = pid_m.to(IDX) * BLOCK_M + tl.arange(0, BLOCK_M)
    c = pid_n.to(IDX) * BLOCK_N + tl.arange(0, BLOCK_N)
    n = m // (HP * WP)
    i = (m % (HP * WP)) // WP
    j = m % WP
    h = (phase // sw) + i * sh
    w = (phase % sw) + j * sw
    m_ok = (m < M) & (h < H) & (w < W)
    c_ok = c < Cg
    gy_rows = gy_ptr + (n * K + g * Kg) * P * Q
    w_group = w_ptr + g * R * S * Kg * Cg
    table = taps_ptr + phase.to(IDX) * (R * S * 3 + 1)
    ks = tl.arange(0, BLOCK_K).to(IDX)

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, ACC)
    k_blocks = (Kg + BLOCK_K - 1) // BLOCK_K
    for it in range(0, tl.load(table) * k_blocks):
        t = it // k_blocks
        kk = (it % k_blocks) * BLOCK_K + ks
        rs = tl.load(table + 1 + t * 3).to(IDX)
        p = i + tl.load(table + 2 + t * 3)
        q = j + tl.load(table + 3 + t * 3)
        row_ok = m_ok & (p >= 0) & (p < P) & (q >= 0) & (q < Q)
        k_ok = kk < Kg
        a = tl.load(gy_rows[:, None] + (kk * P * Q)[None, :] + (p * Q + q)[:, None],
                    mask=row_ok[:, None] & k_ok[None, :], other=0.0)
        b = tl.load(w_group + (rs * Kg + kk)[:, None] * Cg + c[None, :], mask=k_ok[:, None] & c_ok[None, :], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=ACC)

    gx_ptrs = gx_ptr + (n * C * H * W + h * W + w)[:, None] + ((g * Cg + c) * H * W)[None, :]
    tl.store(gx_ptrs, acc.to(gx_ptr.dtype.element_ty), mask=m_ok[:, None] & c_ok[None, :])


@_autotune(lambda a: a["Kg"], lambda a: a["Cg"], "x_ptr", key=_KEY + ["chunk"])
@triton.jit
def igemm_backward_weight_kernel(x_ptr, gy_ptr, out_ptr,  # x[N,C,H,W], gy[N,K,P,Q]; out: gw[K,Cg,R,S] or
                                 N, C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dh, dw, Cg, Kg,  # workspace [SPLIT,K,Cg,R,S]
                                 chunk, split_stride,
                                 PRECISION: tl.constexpr, ACC: tl.constexpr, IDX: tl.constexpr,
                                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                                 GROUP_M: tl.constexpr):
    # program: (split, group, tap, tile); rows = output channels, cols = input channels of one tap
    RED = N * P * Q
    tiles_m = (Kg + BLOCK_M - 1) // BLOCK_M
    tiles_n = (Cg + BLOCK_N - 1) // BLOCK_N
    groups = C // Cg
    per_split = groups * R * S * tiles_m * tiles_n
    pid = tl.program_id(0)
    split = pid // per_split
    rest = pid % per_split
    g = (rest // (R * S * tiles_m * tiles_n)).to(IDX)
    rest = rest % (R * S * tiles_m * tiles_n)
    rs = rest // (tiles_m * tiles_n)
    pid_m, pid_n = _grouped_tile(rest % (tiles_m * tiles_n), tiles_m, tiles_n, GROUP_M)
    k = pid_m.to(IDX) * BLOCK_M + tl.arange(0, BLOCK_M)
    c = pid_n.to(IDX) * BLOCK_N + tl.arange(0, BLOCK_N)
    k_ok = k < Kg
    c_ok = c < Cg
    dr = (rs // S) * dh - ph
    ds = (rs % S) * dw - pw
    gy_cols = gy_ptr + (g * Kg + k) * P * Q  # [BLOCK_M]
    x_cols = x_ptr + (g * Cg + c) * H * W  # [BLOCK_N]
    ks = tl.arange(0, BLOCK_K).to(IDX)
    start = split.to(IDX) * chunk
    end = tl.minimum(start + chunk, RED)

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, ACC)
    for r0 in range(start, end, BLOCK_K):
        red = r0 + ks
        red_ok = red < end
        n = red // (P * Q)
        pq = red % (P * Q)
        ih = (pq // Q) * sh + dr
        iw = (pq % Q) * sw + ds
        x_ok = red_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        a = tl.load(gy_cols[:, None] + (n * K * P * Q + pq)[None, :], mask=k_ok[:, None] & red_ok[None, :], other=0.0)
        b = tl.load(x_cols[None, :] + (n * C * H * W + ih * W + iw)[:, None], mask=x_ok[:, None] & c_ok[None, :],
                    other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=ACC)

    out = out_ptr + split.to(IDX) * split_stride + ((g * Kg + k) * Cg * R * S + rs)[:, None] + (c * R * S)[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=k_ok[:, None] & c_ok[None, :])


@triton.jit
def sum_splits_kernel(ws_ptr, out_ptr, SPLIT, numel, BLOCK: tl.constexpr):
    """out[i] = sum over s of ws[s, i], s in order (deterministic)."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = i < numel
    acc = tl.load(ws_ptr + i, mask=ok, other=0.0)
    for s in range(1, SPLIT):
        acc += tl.load(ws_ptr + tl.full([], s, tl.int64) * numel + i, mask=ok, other=0.0)
    tl.store(out_ptr + i, acc.to(out_ptr.dtype.element_ty), mask=ok)


# ------------------------------------------------------------------------------------ launchers

def conv_precision(dtype: torch.dtype) -> str:
    """tl.dot input precision: TF32 for float32 when torch.backends.cudnn.allow_tf32 (torch's rule for
    its own convolutions), else IEEE; float64 exact; float16/bfloat16 run on tensor cores whatever it
    says (they need no rounding)."""
    if dtype == torch.float64:
        return "ieee"
    if dtype == torch.float32:
        return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"
    return "tf32"


def _index_type(*tensors):
    """Index arithmetic in int32 while every tensor has fewer than 2^31 elements (a 128x128 tile of
    int64 offsets alone fills the register file), int64 beyond."""
    return tl.int64 if any(t.numel() >= 2 ** 31 for t in tensors) else tl.int32


def _accumulator(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _check_dtype(t: torch.Tensor, name: str) -> None:
    allowed = _GPU_DTYPES if t.device.type == "cuda" else _CPU_DTYPES
    if t.dtype not in allowed:
        where = "" if t.device.type == "cuda" else " on CPU tensors (the Triton interpreter cannot multiply bfloat16)"
        raise TypeError(f"{name}: implicit_gemm takes {', '.join(str(d) for d in allowed)}{where}; got {t.dtype}")


def _packed(w: torch.Tensor, groups: int, channels_last_of_group: str) -> torch.Tensor:
    """w[K, Cg, R, S] as [G, R*S, Cg, Kg] ('k': output channels fastest, forward) or [G, R*S, Kg, Cg]
    ('c', backward input): each weight tile of the reduction loop is one contiguous block."""
    K, Cg, R, S = w.shape
    v = w.reshape(groups, K // groups, Cg, R * S)
    return (v.permute(0, 3, 2, 1) if channels_last_of_group == "k" else v.permute(0, 3, 1, 2)).contiguous()


@triton_kernel(kernels.conv2d_forward.implicit_gemm)
def conv2d_forward(x, w, bias, shape: ConvShape, activation=None, act_param=0.0):
    _check_dtype(x, "x")
    y = torch.empty(shape.y_shape, dtype=x.dtype, device=x.device)
    if y.numel() == 0:
        return y
    wp = _packed(w, shape.G, "k")

    def grid(meta):
        return (shape.G * triton.cdiv(shape.N * shape.P * shape.Q, meta["BLOCK_M"])
                * triton.cdiv(shape.Kg, meta["BLOCK_N"]),)

    igemm_forward_kernel[grid](x.contiguous(), wp, bias if bias is not None else y, y, *conv_sizes(shape),
                               float(act_param), PRECISION=conv_precision(x.dtype), ACC=_accumulator(x.dtype),
                               IDX=_index_type(x, wp, y),
                               HAS_BIAS=bias is not None, ACT=fused_code(activation), GROUP_M=GROUP_M)
    return y


_TAP_TABLES: dict = {}


def _tap_table(kernel_hw, stride, padding, dilation, device) -> torch.Tensor:
    """int32 [sh*sw, R*S*3 + 1]: per input phase (a, b) = (h % sh, w % sw), the number of taps that
    land, then (tap, dp, dq) for each: tap r reads output row p = i + dp for h = a + i*sh where
    (a + ph - r*dh) is divisible by sh (dp = that quotient; same for columns)."""
    key = (tuple(kernel_hw), tuple(stride), tuple(padding), tuple(dilation), str(device))
    table = _TAP_TABLES.get(key)
    if table is None:
        (R, S), (sh, sw), (ph, pw), (dh, dw) = kernel_hw, stride, padding, dilation
        rows = []
        for a in range(sh):
            for b in range(sw):
                taps = [(r * S + s, (a + ph - r * dh) // sh, (b + pw - s * dw) // sw)
                        for r in range(R) for s in range(S)
                        if (a + ph - r * dh) % sh == 0 and (b + pw - s * dw) % sw == 0]
                flat = [len(taps)] + [v for tap in taps for v in tap]
                rows.append(flat + [0] * (R * S * 3 + 1 - len(flat)))
        table = _TAP_TABLES[key] = torch.tensor(rows, dtype=torch.int32, device=device)
    return table


@triton_kernel(kernels.conv2d_backward_input.implicit_gemm)
def conv2d_backward_input(gy, w, shape: ConvShape):
    _check_dtype(gy, "gy")
    gx = torch.empty(shape.x_shape, dtype=gy.dtype, device=gy.device)
    if gx.numel() == 0:
        return gx
    if shape.Kg == 0 or shape.P * shape.Q == 0:
        return gx.zero_()
    HP, WP = triton.cdiv(shape.H, shape.sh), triton.cdiv(shape.W, shape.sw)
    wp = _packed(w, shape.G, "c")
    taps = _tap_table(shape.kernel_hw, shape.stride, shape.padding, shape.dilation, gy.device)

    def grid(meta):
        return (shape.sh * shape.sw * shape.G * triton.cdiv(shape.N * HP * WP, meta["BLOCK_M"])
                * triton.cdiv(shape.Cg, meta["BLOCK_N"]),)

    igemm_backward_input_kernel[grid](gy.contiguous(), wp, gx, taps, *conv_sizes(shape), HP, WP,
                                      PRECISION=conv_precision(gy.dtype), ACC=_accumulator(gy.dtype),
                                      IDX=_index_type(gy, wp, gx), GROUP_M=GROUP_M)
    return gx


TARGET_PROGRAMS = 264  # two waves of an H100/H200's 132 SMs: what split-K aims to fill
MIN_CHUNK = 128  # reduction elements per split at least (the sum of the partials costs a pass)


def split_count(programs: int, reduction: int) -> int:
    """How many chunks backward weight splits its N*P*Q reduction into: enough programs to fill the
    GPU, each chunk at least MIN_CHUNK long, at most 32."""
    want = max(1, TARGET_PROGRAMS // max(1, programs))
    return max(1, min(want, 32, reduction // MIN_CHUNK))


@triton_kernel(kernels.conv2d_backward_weight.implicit_gemm)
def conv2d_backward_weight(x, gy, shape: ConvShape):
    _check_dtype(x, "x")
    groups, R, S, Cg, Kg = shape.G, shape.R, shape.S, shape.Cg, shape.Kg
    gw = torch.empty(shape.w_shape, dtype=x.dtype, device=x.device)
    if gw.numel() == 0:
        return gw
    red = shape.N * shape.P * shape.Q
    if red == 0:
        return gw.zero_()
    split = split_count(groups * R * S * triton.cdiv(Kg, 64) * triton.cdiv(Cg, 64), red)
    chunk = triton.cdiv(red, split)
    split = triton.cdiv(red, chunk)
    out = gw if split == 1 else torch.empty((split,) + gw.shape, dtype=_torch_accumulator(x.dtype), device=x.device)

    def grid(meta):
        return (split * groups * R * S * triton.cdiv(Kg, meta["BLOCK_M"]) * triton.cdiv(Cg, meta["BLOCK_N"]),)

    igemm_backward_weight_kernel[grid](x.contiguous(), gy.contiguous(), out, *conv_sizes(shape), chunk, gw.numel(),
                                       PRECISION=conv_precision(x.dtype), ACC=_accumulator(x.dtype), IDX=_index_type(x, gy, out), GROUP_M=GROUP_M)
    if split > 1:
        block = 1024
        sum_splits_kernel[(triton.cdiv(gw.numel(), block),)](out, gw, split, gw.numel(), BLOCK=block, num_warps=4)
    return gw


def _torch_accumulator(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32
