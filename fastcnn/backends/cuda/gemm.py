"""cuda GEMM kernels (fastcnn/kernels/cuda/gemm.cu) and the launch plans the convolutions share.

Registered kernel (channel_sum, the bias gradient, is in conv_bias.py):
  gemm(a[M,K], b[K,N]) -> a @ b                      (also batched: a[B,M,K], b[B,K,N] -> [B,M,N])

Helpers for the other cuda modules: `strided_gemm` (one launch of the batched strided gemm with
its fused bias + activation epilogue, or split-K into slices), `sum_slices`, `split_k_plan`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from . import _lib
from ...contracts import kernels
from ._lib import cuda_kernel, i64, suffix

THREADS = 256
BLOCK_M = BLOCK_N = 128     # real tile of gemm_tile.cuh RealConfig
CBLOCK_M = CBLOCK_N = 64    # complex tile (ComplexConfig)
BLOCK_K = 8
MAX_GRID_Z = 65535
SM_COUNT_HINT = 132         # H100 SXM; only used to size split-K


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def addr(t: torch.Tensor, offset: int = 0) -> np.uint64:
    """Device address of element `offset` of t (in elements of t's dtype)."""
    return np.uint64(t.data_ptr() + offset * t.element_size())


def null() -> np.uint64:
    return np.uint64(0)


@dataclass
class Operand:
    """A strided matrix operand: element (i, j) at base + b1*s1 + b2*s2 + i*si + j*sj (elements)."""
    tensor: torch.Tensor
    si: int
    sj: int
    s1: int = 0
    s2: int = 0
    offset: int = 0


def split_k_plan(blocks: int, k: int, max_splits: int, min_chunk: int = 256) -> Tuple[int, int]:
    """(splits, kchunk) for a reduction of length k over `blocks` output tiles: enough splits for
    about two blocks per SM when the tiles alone are too few, each chunk at least min_chunk long
    and a multiple of BLOCK_K, at most max_splits (the grid's z limit)."""
    want = cdiv(2 * SM_COUNT_HINT, max(blocks, 1))
    splits = max(1, min(want, k // min_chunk, max_splits))
    kchunk = max(BLOCK_K, cdiv(cdiv(k, splits), BLOCK_K) * BLOCK_K)
    return (cdiv(k, kchunk) if k > 0 else 1), kchunk


def _vec_ok(op: Operand, contiguous_stride: int, dtype_size: int) -> bool:
    """16-byte loads along the reduction need stride 1 there and 16-byte aligned rows and batches."""
    if contiguous_stride != 1:
        return False
    base = op.tensor.data_ptr() + op.offset * dtype_size
    return all(v * dtype_size % 16 == 0 for v in (op.si, op.s1, op.s2)) and base % 16 == 0


def launch_batched(family: str, kernel: str, block_m: int, block_n: int, M: int, N: int, nb1: int, nb2: int,
                   splits: int, ops, make_args):
    """Launches `kernel` over (N tiles, M tiles, nb1*nb2*splits) blocks, cutting the batch b1 into
    pieces when the grid's z limit (65535) would be passed; `ops` are Operands whose offsets advance
    with b1, `make_args(offsets)` builds the argument tuple for one piece."""
    per_b1 = nb2 * splits
    if per_b1 > MAX_GRID_Z:
        raise ValueError(f"groups x splits = {per_b1} exceeds the CUDA grid limit {MAX_GRID_Z}")
    step = max(1, MAX_GRID_Z // per_b1)
    for b1 in range(0, nb1, step):
        count = min(step, nb1 - b1)
        offsets = [op.offset + b1 * op.s1 for op in ops]
        grid = (cdiv(N, block_n), cdiv(M, block_m), count * per_b1)
        _lib.launch(family, kernel, grid, (THREADS,), make_args(offsets))


def strided_gemm(a: Operand, b: Operand, c: Operand, M: int, N: int, K: int, *, nb1: int = 1, nb2: int = 1,
                 bias: Optional[torch.Tensor] = None, bias_strides: Tuple[int, int] = (0, 0),
                 accumulate: bool = False, act: int = 0, act_param: float = 0.0, splits: int = 1,
                 kchunk: Optional[int] = None, split_stride: int = 0) -> None:
    """C_z = act(A_z B_z + bias_z) (or += with accumulate) for z over nb1 x nb2, with
    a = A (M x K: si = m stride, sj = k stride), b = B (K x N: si = k stride, sj = n stride),
    c = C (M x N). With splits > 1, split s writes its partial product to C + s*split_stride
    and there is no epilogue (see sum_slices)."""
    if M == 0 or N == 0 or nb1 == 0 or nb2 == 0:
        return
    dtype = c.tensor.dtype
    size = c.tensor.element_size()
    kchunk = kchunk if kchunk is not None else max(K, 1)
    a_along_k = a.sj == 1 or a.si != 1
    b_along_k = not (b.sj == 1 or b.si != 1)
    name = f"gemm_{'n' if a_along_k else 't'}{'t' if b_along_k else 'n'}_{suffix(dtype)}"
    vec_a = _vec_ok(a, a.sj, size) if a_along_k else False
    vec_b = _vec_ok(Operand(b.tensor, b.sj, b.si, b.s1, b.s2, b.offset), b.si, size) if b_along_k else False

    ops = [a, b, c]
    if bias is not None:  # the bias advances with the batch like the operands
        ops.append(Operand(bias, 0, 0, bias_strides[0], bias_strides[1]))

    def args(offsets):
        bias_ptr = addr(bias, offsets[3]) if bias is not None else null()
        return (addr(a.tensor, offsets[0]), addr(b.tensor, offsets[1]), addr(c.tensor, offsets[2]), bias_ptr,
                i64(M), i64(N), i64(K), i64(a.si), i64(a.sj), i64(b.si), i64(b.sj), i64(c.si), i64(c.sj),
                i64(nb2), i64(splits), i64(kchunk), i64(a.s1), i64(a.s2), i64(b.s1), i64(b.s2),
                i64(c.s1), i64(c.s2), i64(split_stride), i64(bias_strides[0]), i64(bias_strides[1]),
                i64(int(accumulate)), i64(act), _lib.scalar(act_param, dtype), i64(int(vec_a)), i64(int(vec_b)))

    launch_batched("gemm", name, BLOCK_M, BLOCK_N, M, N, nb1, nb2, splits, ops, args)


def sum_slices(src: torch.Tensor, out: torch.Tensor, length: int, splits: int, accumulate: bool = False) -> None:
    """out[:length] (+)= sum over s of src[s*length : (s+1)*length], in order (deterministic)."""
    if length == 0:
        return
    blocks = min(cdiv(length, THREADS), 65535 * 16)
    _lib.launch("gemm", f"sum_slices_{suffix(out.dtype)}", (blocks,), (THREADS,),
                (addr(src), addr(out), i64(length), i64(splits), i64(int(accumulate))))


@cuda_kernel(kernels.gemm)
def gemm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a[M,K] @ b[K,N] (or batched a[B,M,K] @ b[B,K,N]) with the tiled SGEMM/DGEMM."""
    batched = a.dim() == 3
    a3 = a if batched else a.unsqueeze(0)
    b3 = b if batched else b.unsqueeze(0)
    a3, b3 = a3.contiguous(), b3.contiguous()
    nb, M, K = a3.shape
    N = b3.shape[2]
    c = torch.empty((nb, M, N), dtype=a.dtype, device=a.device)
    strided_gemm(Operand(a3, K, 1, M * K), Operand(b3, N, 1, K * N), Operand(c, N, 1, M * N), M, N, K, nb1=nb)  # K == 0 writes zeros
    return c if batched else c[0]
