"""cuda kernels of the dropout family (fastcnn/kernels/cuda/dropout.cu). Signatures: fastcnn/ops/dropout.py."""
from __future__ import annotations

import torch

from ...contracts import kernels
from ._lib import cuda_kernel, i64, launch, ptr, scalar, suffix
from .norm import grid_for


@cuda_kernel(kernels.dropout_masked_scale)
def dropout_masked_scale(x, keep, group, scale, out=None):
    y = torch.empty_like(x) if out is None else out
    if x.numel():
        launch("dropout", f"masked_scale_{suffix(x.dtype)}", grid_for(x.numel()), (256,),
               (ptr(x), ptr(keep), i64(x.numel()), i64(group), scalar(scale, x.dtype), ptr(y)))
    return y
