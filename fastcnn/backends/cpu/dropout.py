"""cpu kernels of the dropout family (fastcnn._C.dropout). Signatures: fastcnn/ops/dropout.py."""
from __future__ import annotations

from fastcnn import _C

from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, empty_like


@cpu_kernel(kernels.dropout_masked_scale)
def dropout_masked_scale(x, keep, group, scale, out=None):
    y = empty_like(x) if out is None else out
    _C.dropout.masked_scale(dtype_code(x), addr(x), addr(keep), x.numel(), int(group), float(scale), addr(y))
    return y
