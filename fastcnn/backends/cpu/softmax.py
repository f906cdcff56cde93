"""cpu kernels of the softmax family (fastcnn._C.softmax). Signatures: fastcnn/ops/softmax.py."""
from __future__ import annotations

from fastcnn import _C

from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, empty_like


@cpu_kernel(kernels.softmax_forward)
def softmax_forward(x, log):
    y = empty_like(x)
    _C.softmax.softmax_forward(dtype_code(x), addr(x), addr(y), *x.shape, bool(log))
    return y


@cpu_kernel(kernels.softmax_backward)
def softmax_backward(gy, y, log):
    gx = empty_like(y)
    _C.softmax.softmax_backward(dtype_code(y), addr(gy), addr(y), addr(gx), *y.shape, bool(log))
    return gx
