"""Glue between torch tensors and fastcnn._C: addresses, dtype codes, threads.

The C++ side takes raw addresses and sizes (csrc/common/module.h); everything here makes sure what
it gets is valid: CPU, contiguous in the layout the kernel expects, float32/float64.
"""
from __future__ import annotations

import functools

import torch

from fastcnn import _C

from ..._registry import register

DTYPE_CODE = {torch.float32: 0, torch.float64: 1}


def addr(t: torch.Tensor) -> int:
    """Address of a tensor's first element (0 for an empty tensor, which kernels never touch)."""
    return t.data_ptr() if t.numel() else 0


def dtype_code(t: torch.Tensor) -> int:
    try:
        return DTYPE_CODE[t.dtype]
    except KeyError:
        raise TypeError(f"fastcnn cpu kernels take float32 or float64, got {t.dtype}") from None


def cpu_kernel(name=None):
    """Register a cpu kernel; sets the C++ thread count from torch.get_num_threads() per call."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            _C.set_num_threads(torch.get_num_threads())
            return fn(*args, **kwargs)
        return register("cpu", name or fn.__name__)(wrapped)
    return deco
