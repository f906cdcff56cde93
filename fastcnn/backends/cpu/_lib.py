"""Glue between torch tensors and fastcnn._C: addresses, dtype codes, threads.

The C++ side takes raw addresses and sizes (csrc/common/module.h); everything here makes sure what
it gets is valid: CPU, contiguous in the layout the kernel expects, float32/float64.
"""
from __future__ import annotations

import functools
import math
import os

import torch

from fastcnn import _C

from . import BACKEND

_CPU = torch.device("cpu")  # named in every allocation: a default-device context must not move outputs

DTYPE_CODE = {torch.float32: 0, torch.float64: 1}


def addr(t: torch.Tensor) -> int:
    """Address of a tensor's first element (0 for an empty tensor, which kernels never touch)."""
    return t.data_ptr() if t.numel() else 0


def dtype_code(t: torch.Tensor) -> int:
    try:
        return DTYPE_CODE[t.dtype]
    except KeyError:
        raise TypeError(f"fastcnn cpu kernels take float32 or float64, got {t.dtype}") from None


# From this size on, outputs come from the output pool (csrc/torchops/output_pool.h: blocks reused
# across steps, huge-page advised from 4 MiB); below it glibc's heap serves them, already resident.
POOL_MIN_BYTES = 2 << 20
# Below this size a buffer spans no whole 2 MiB huge page, or its faults cost too little to matter.
HUGE_PAGE_MIN_BYTES = 4 << 20
_HUGE_PAGES = os.environ.get("FASTCNN_HUGE_PAGES", "1") != "0"


def fresh(t: torch.Tensor) -> torch.Tensor:
    """Prepare a just-allocated output that is not the pool's (the pool advises its own blocks) for
    its first write and return it.

    Large fresh buffers are advised as transparent huge pages (csrc/host/memory.cpp): one page
    fault per 2 MiB instead of per 4 KiB, which is most of an out-of-place memory-bound op's time.
    FASTCNN_HUGE_PAGES=0 turns it off.
    """
    nbytes = t.numel() * t.element_size()
    if _HUGE_PAGES and nbytes >= HUGE_PAGE_MIN_BYTES:
        _C.memory.advise_huge_pages(t.data_ptr(), nbytes)
    return t


@functools.lru_cache(maxsize=None)
def _pool_empty():
    """fastcnn_eager::output_pool_empty, or None in an extension built without torch's C++ API."""
    from fastcnn.ops._eager import builtin_op
    return builtin_op("output_pool_empty")


def empty(shape, dtype, memory_format=torch.contiguous_format) -> torch.Tensor:
    """torch.empty for a kernel's output: from 2 MiB up from the output pool the eager ops share,
    the rest from torch."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < POOL_MIN_BYTES:  # small: glibc's heap, already resident
        if memory_format is torch.contiguous_format:
            return torch.empty(shape, dtype=dtype, device=_CPU)
        return torch.empty(shape, dtype=dtype, device=_CPU, memory_format=memory_format)
    pool = _pool_empty()
    if pool is None:
        return fresh(torch.empty(shape, dtype=dtype, device=_CPU, memory_format=memory_format))
    return pool([int(d) for d in shape], dtype, memory_format is torch.channels_last)


def empty_like(t: torch.Tensor) -> torch.Tensor:
    """torch.empty_like for a kernel's output, in t's layout (contiguous or channels_last)."""
    if t.numel() * t.element_size() < POOL_MIN_BYTES and (
            t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last)):
        return torch.empty_like(t)  # small and dense: torch keeps the layout, nothing to pool or advise
    if t.is_contiguous():
        return empty(t.shape, t.dtype)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return empty(t.shape, t.dtype, torch.channels_last)
    return fresh(torch.empty_like(t))


def new_empty(like: torch.Tensor, *shape, dtype=None) -> torch.Tensor:
    """like.new_empty(shape) for a kernel's output (contiguous)."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    return empty(shape, dtype or like.dtype)


_threads = [0]  # the thread count last handed to the C++ side


def _following_threads(fn):
    """fn, telling the C++ side torch.get_num_threads() before each call where it changed (the
    pybind call costs as much as a small kernel)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        n = torch.get_num_threads()
        if n != _threads[0]:
            _C.set_num_threads(n)
            _threads[0] = n
        return fn(*args, **kwargs)
    return wrapped


def cpu_kernel(slot):
    """The backend's registration decorator, BACKEND.kernel(slot) (a slot of
    fastcnn/contracts/kernels.py), with the thread-count wrapper."""
    return BACKEND.kernel(slot, wrap=_following_threads)
