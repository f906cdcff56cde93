"""cpu kernels of 2-D padding (fastcnn._C.pad, csrc/host/pad.cpp). Signatures: fastcnn/ops/pad.py.
Tensors are [P, H, W, K] views whose storage is dense in (P, H, W, K) order."""
from __future__ import annotations

import torch

from fastcnn import _C

from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, empty


def _out(like, P, H, W, K):
    """A fresh [P, H, W, K] tensor laid out (P, H, W, K) in memory, as the view it replaces."""
    if K > 1:  # channels_last storage of (P, K, H, W)
        return empty((P, K, H, W), like.dtype, torch.channels_last).permute(0, 2, 3, 1)
    return empty((P, H, W, 1), like.dtype)


@cpu_kernel(kernels.pad2d_forward)
def pad2d_forward(x, top, bottom, left, right, mode, value):
    P, H, W, K = x.shape
    y = _out(x, P, H + top + bottom, W + left + right, K)
    _C.pad.forward(dtype_code(x), addr(x), addr(y), P, H, W, K, top, bottom, left, right, int(mode), float(value))
    return y


@cpu_kernel(kernels.pad2d_backward)
def pad2d_backward(gy, H, W, top, bottom, left, right, mode):
    P, _, _, K = gy.shape
    gx = _out(gy, P, H, W, K)
    _C.pad.backward(dtype_code(gy), addr(gy), addr(gx), P, H, W, K, top, bottom, left, right, int(mode))
    return gx
