"""cuda kernels of the softmax family (fastcnn/kernels/cuda/softmax.cu). Signatures: fastcnn/ops/softmax.py."""
from __future__ import annotations

import numpy as np
import torch

from ...contracts import kernels
from ._lib import cuda_kernel, i64, launch, ptr, suffix


def threads_for(D: int) -> int:
    """One block per line: enough threads for D, a multiple of 32, at most 1024."""
    return int(min(1024, max(32, 1 << (max(D, 1) - 1).bit_length())))


@cuda_kernel(kernels.softmax_forward)
def softmax_forward(x, log):
    outer, D, inner = x.shape
    y = torch.empty_like(x)
    if x.numel():
        launch("softmax", f"softmax_forward_{suffix(x.dtype)}", (outer * inner,), (threads_for(D),),
               (ptr(x), ptr(y), i64(D), i64(inner), np.int32(bool(log))))
    return y


@cuda_kernel(kernels.softmax_backward)
def softmax_backward(gy, y, log):
    outer, D, inner = y.shape
    gx = torch.empty_like(y)
    if y.numel():
        launch("softmax", f"softmax_backward_{suffix(y.dtype)}", (outer * inner,), (threads_for(D),),
               (ptr(gy), ptr(y), ptr(gx), i64(D), i64(inner), np.int32(bool(log))))
    return gx
