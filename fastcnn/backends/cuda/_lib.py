"""Loads fastcnn/kernels/cuda/<family>.cu's machine code (shipped fatbin or cached NVRTC output,
_binaries.py) and launches its kernels on
torch's current CUDA stream. Kernels are `extern "C" __global__`; pointers travel as uint64 and
sizes as int64 (`long long` in the .cu files), scalars as float/double matching the dtype."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from . import BACKEND

CUDA_DIR = Path(__file__).resolve().parents[2] / "kernels" / "cuda"
CTYPE = {torch.float32: "float", torch.float64: "double"}


@functools.lru_cache(maxsize=None)
def module(family: str):
    """The family's kernels for the current GPU: the shipped fatbin, or NVRTC output cached on disk
    (compiled once per source, arch and compiler version; _binaries.py)."""
    from . import _binaries

    return _binaries.load_module(family)


def launch(family: str, kernel: str, grid, block, args, shared_mem: int = 0):
    import cupy

    fn = module(family).get_function(kernel)
    stream = cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
    with stream:
        fn(tuple(grid), tuple(block), tuple(args), shared_mem=shared_mem)


def ptr(t: torch.Tensor):
    return np.uint64(t.data_ptr())


def i64(v: int):
    return np.int64(v)


def i32(v: int):
    """An `int` kernel parameter (a plain Python int would travel as 64 bits)."""
    return np.int32(v)


def scalar(v: float, dtype: torch.dtype):
    return np.float32(v) if dtype == torch.float32 else np.float64(v)


def suffix(dtype: torch.dtype) -> str:
    """Kernels are instantiated per dtype as <name>_f32 / <name>_f64."""
    return {torch.float32: "f32", torch.float64: "f64"}[dtype]


cuda_kernel = BACKEND.kernel  # the registration decorator: @cuda_kernel(kernels.<slot>) (contracts/kernels.py)
