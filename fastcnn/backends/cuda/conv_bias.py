"""cuda kernel of a convolution's bias: channel_sum(gy[N,K,P,Q]) -> [K] (the bias gradient; its
launch lives in fastcnn/kernels/cuda/gemm.cu). Same file name on every backend (cpu, triton)."""
from __future__ import annotations

import torch

from . import _lib
from ...contracts import kernels
from ._lib import cuda_kernel, i64, suffix
from .gemm import THREADS, addr


@cuda_kernel(kernels.channel_sum)
def channel_sum(gy: torch.Tensor) -> torch.Tensor:
    """Sum of gy[N,K,P,Q] over N, P, Q (the bias gradient): one block per channel, fixed order."""
    N, K = gy.shape[0], gy.shape[1]
    L = gy.shape[2] * gy.shape[3]
    out = torch.empty(K, dtype=gy.dtype, device=gy.device)
    if K:
        _lib.launch("gemm", f"channel_sum_{suffix(gy.dtype)}", (K,), (THREADS,),
                    (addr(gy), addr(out), i64(N), i64(K), i64(L)))
    return out
