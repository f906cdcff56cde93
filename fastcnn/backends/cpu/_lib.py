"""Glue between torch tensors and fastcnn._C: addresses, dtype codes, threads.

The C++ side takes raw addresses and sizes (csrc/common/module.h); everything here makes sure what
it gets is valid: CPU, contiguous in the layout the kernel expects, float32/float64.
"""
from __future__ import annotations

import functools
import os

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


# Below this size a buffer spans no whole 2 MiB huge page, or its faults cost too little to matter.
HUGE_PAGE_MIN_BYTES = 4 << 20
_HUGE_PAGES = os.environ.get("FASTCNN_HUGE_PAGES", "1") != "0"


def fresh(t: torch.Tensor) -> torch.Tensor:
    """Prepare a just-allocated output for its first write and return it.

    Large fresh buffers are advised as transparent huge pages (csrc/host/memory.cpp): one page
    fault per 2 MiB instead of per 4 KiB, which is most of an out-of-place memory-bound op's time.
    FASTCNN_HUGE_PAGES=0 turns it off.
    """
    nbytes = t.numel() * t.element_size()
    if _HUGE_PAGES and nbytes >= HUGE_PAGE_MIN_BYTES:
        _C.memory.advise_huge_pages(t.data_ptr(), nbytes)
    return t


def empty_like(t: torch.Tensor) -> torch.Tensor:
    """torch.empty_like for a kernel's output (contiguous in t's layout), made ready by fresh()."""
    return fresh(torch.empty_like(t))


def new_empty(like: torch.Tensor, *shape, dtype=None) -> torch.Tensor:
    """like.new_empty(shape) for a kernel's output, made ready by fresh()."""
    return fresh(like.new_empty(*shape, dtype=dtype))


def cpu_kernel(name=None):
    """Register a cpu kernel; sets the C++ thread count from torch.get_num_threads() per call."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            _C.set_num_threads(torch.get_num_threads())
            return fn(*args, **kwargs)
        return register("cpu", name or fn.__name__)(wrapped)
    return deco
