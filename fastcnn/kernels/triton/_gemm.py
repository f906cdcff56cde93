"""The one tiled GEMM every Triton matrix product goes through (the public `gemm` kernel, the im2col
convolution, the FFT convolution's per-frequency complex products).

    C[b] = act(alpha * sum_r A[b, r] @ B[b, r] + beta * C[b] + bias[b])

Matrices are addressed by strides, so transposes and views cost nothing. `b` is a two-level batch
(b1, b2) with its own strides per operand (e.g. image x group); `r` is an optional extra reduction
axis (e.g. the batch of images in a weight gradient) so a sum of products is one launch, summed in
a fixed order (deterministic). bias is indexed by the row (output channel) and the inner batch b2.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton import knobs

from ._conv_common import apply_activation, dot_precision, pow2_clamp, scalar_as

# Tensor-core tiles as (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages). float16 / bfloat16: the CUDA
# configs of Triton's matmul tutorial (03-matrix-multiplication.py, get_cuda_autotune_config).
# float32 with TF32 (TF32_CONFIGS): this kernel's generic strides keep a 64-bit pointer per loaded
# element, and with float32 operands most tutorial configs spill (sm_90: 64x128, 64x256, 128x128
# by 16-120 bytes; sm_80: 64x32 / 2 warps / 5 stages up to 632 bytes, 128x32 72), so the set is the
# tutorial's 128x64, 64x128 and 32x64 tiles with the warps / stages that compile spill-free on sm_80
# and sm_90 for every TF32 GEMM launch of the workload, plus the former fixed 64x64 tile
# (tests/backends/triton/test_triton_gemm_tuned.py). The autotuner times
# those that fit (shared memory, matrix size) once per (M, N, K, precision, dtypes) and triton caches
# the choice on disk. FMA arithmetic (IEEE float32, float64) keeps one tile per size: 64 x 64
# (smaller for small matrices), K step 32 (float64: 16).
TUTORIAL_CONFIGS = ((128, 256, 64, 8, 3), (64, 256, 32, 4, 4), (128, 128, 32, 4, 4), (128, 64, 32, 4, 4),
                    (64, 128, 32, 4, 4), (128, 32, 32, 4, 4), (64, 32, 32, 2, 5), (32, 64, 32, 2, 5))
TF32_CONFIGS = ((128, 64, 32, 8, 4), (64, 64, 32, 4, 3), (64, 128, 32, 8, 3), (32, 64, 32, 4, 3))
FMA_TILES = (16, 32, 64)
GROUP_M = 8
_INTERPRETING = knobs.runtime.interpret


def _fma_shapes():
    return tuple((m, n, bk, 4, 3) for m in FMA_TILES for n in FMA_TILES for bk in (32, 16))


def _configs():
    shapes = _fma_shapes() if _INTERPRETING else tuple(dict.fromkeys(TUTORIAL_CONFIGS + TF32_CONFIGS + _fma_shapes()))
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_warps=w, num_stages=s)
            for m, n, k, w, s in shapes]


def _shape(config) -> tuple:
    k = config.kwargs
    return k["BLOCK_M"], k["BLOCK_N"], k["BLOCK_K"], config.num_warps, config.num_stages


def _fits_shared(shape, itemsize: int) -> bool:
    """The pipelined A and B tiles fit sm_80's 163 KiB of shared memory per block (the smaller of the
    two shipped architectures): 128 x 256 x 64 over 3 stages fits in 16 bits, not in float32."""
    m, n, k, _, stages = shape
    return (m * k + k * n) * itemsize * stages <= 163 * 1024


def tensor_cores(dtype, precision: str) -> bool:
    return dtype in (torch.float16, torch.bfloat16) or (dtype == torch.float32 and precision == "tf32")


def gemm_configs_for(configs, dtype, precision: str, M: int, N: int):
    """The configs worth timing: FMA arithmetic (or the interpreter) -> the one tile the size rule
    gives (64 x 64, shrunk to small matrices, K step 32 / 16 for float64); tensor cores -> the
    tutorial's tiles (float32: TF32_CONFIGS) that fit shared memory and are at most twice the matrix in each dimension
    (never empty: the smallest otherwise)."""
    if _INTERPRETING or not tensor_cores(dtype, precision):
        want = (pow2_clamp(M, 16, 64), pow2_clamp(N, 16, 64), 16 if dtype == torch.float64 else 32, 4, 3)
        return [c for c in configs if _shape(c) == want]
    wanted = TF32_CONFIGS if dtype == torch.float32 else TUTORIAL_CONFIGS
    family = [c for c in configs if _shape(c) in wanted and _fits_shared(_shape(c), dtype.itemsize)]
    fits = [c for c in family if c.kwargs["BLOCK_M"] <= max(32, 2 * M) and c.kwargs["BLOCK_N"] <= max(32, 2 * N)]
    return fits or sorted(family, key=lambda c: c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"])[:1]


def _prune(configs, named_args, **kwargs):
    precision = kwargs.get("PRECISION", named_args.get("PRECISION"))
    return gemm_configs_for(configs, named_args["c_ptr"].dtype, precision, named_args["M"], named_args["N"])


@triton.autotune(_configs(), key=["M", "N", "K", "PRECISION"], prune_configs_by={"early_config_prune": _prune},
                 restore_value=["c_ptr"], cache_results=not _INTERPRETING)
@triton.jit
def gemm_kernel(a_ptr, b_ptr, c_ptr, bias_ptr,  # A[M, K], B[K, N], C[M, N], bias[M] (per b2)
                M, N, K, B2, RB,
                s_am, s_ak, s_bk, s_bn, s_cm, s_cn,
                s_a1, s_a2, s_b1, s_b2, s_c1, s_c2, s_bias2, s_ar, s_br,
                alpha: tl.float64, beta: tl.float64, act_param: tl.float64,
                PRECISION: tl.constexpr, ACCUMULATE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    # Grouped ordering: GROUP_M row-blocks share each column panel of B while it sits in L2.
    # One flat grid axis (batch-major): axis 1 would cap the batch at 65535 on CUDA.
    grid_m = (M + BLOCK_M - 1) // BLOCK_M
    grid_n = (N + BLOCK_N - 1) // BLOCK_N
    pid_b = tl.program_id(0) // (grid_m * grid_n)
    pid = tl.program_id(0) % (grid_m * grid_n)
    per_group = GROUP_M * grid_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = tl.minimum(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_rows
    pid_n = (pid % per_group) // group_rows

    b1 = (pid_b // B2).to(tl.int64)
    b2 = (pid_b % B2).to(tl.int64)
    a_ptr += b1 * s_a1 + b2 * s_a2
    b_ptr += b1 * s_b1 + b2 * s_b2
    c_ptr += b1 * s_c1 + b2 * s_c2

    rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K).to(tl.int64)
    row_ok = rows < M
    col_ok = cols < N

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, c_ptr.dtype.element_ty)
    for r in range(0, RB):
        r64 = tl.full([], r, tl.int64)
        a_r = a_ptr + r64 * s_ar
        b_r = b_ptr + r64 * s_br
        for k0 in range(0, K, BLOCK_K):
            kk = k0 + ks
            k_ok = kk < K
            a = tl.load(a_r + rows[:, None] * s_am + kk[None, :] * s_ak, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            b = tl.load(b_r + kk[:, None] * s_bk + cols[None, :] * s_bn, mask=k_ok[:, None] & col_ok[None, :], other=0.0)
            acc = tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=acc.dtype)

    acc = acc * scalar_as(alpha, acc)
    c_ptrs = c_ptr + rows[:, None] * s_cm + cols[None, :] * s_cn
    c_mask = row_ok[:, None] & col_ok[None, :]
    if ACCUMULATE:
        acc += scalar_as(beta, acc) * tl.load(c_ptrs, mask=c_mask, other=0.0)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + b2 * s_bias2 + rows, mask=row_ok, other=0.0)[:, None]
    acc = apply_activation(acc, ACT, scalar_as(act_param, acc))
    tl.store(c_ptrs, acc, mask=c_mask)


def batched_gemm(a, b, c, *, M, N, K, a_strides, b_strides, c_strides,
                 batch=(1, 1), a_batch=(0, 0), b_batch=(0, 0), c_batch=(0, 0),
                 reduce=1, a_reduce=0, b_reduce=0,
                 alpha=1.0, beta=0.0, bias=None, bias_batch=0, act=0, act_param=0.0):
    """C = act(alpha * sum_r A @ B + beta * C + bias) over the batch; see the module docstring.
    a, b, c (and bias) are tensors whose data_ptr is element (0, 0) of batch 0; *_strides are the
    (row, col) strides in elements, *_batch the (b1, b2) strides, *_reduce the r strides."""
    if M == 0 or N == 0 or batch[0] * batch[1] == 0:
        return c

    def grid(meta):
        return (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]) * batch[0] * batch[1],)

    gemm_kernel[grid](a, b, c, bias if bias is not None else c,
                      M, N, K, batch[1], reduce,
                      *a_strides, *b_strides, *c_strides,
                      *a_batch, *b_batch, *c_batch, bias_batch, a_reduce, b_reduce,
                      float(alpha), float(beta), float(act_param),
                      PRECISION=dot_precision(c.dtype, matmul=True), ACCUMULATE=beta != 0, HAS_BIAS=bias is not None,
                      ACT=act, GROUP_M=GROUP_M)
    return c
