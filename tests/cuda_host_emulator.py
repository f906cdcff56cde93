"""Runs the cuda backend's kernel source on the CPU so its launchers can be tested without a GPU.

Each fastcnn/kernels/cuda/<family>.cu is compiled as C++ after tests/cuda_host_shim.h (blocks run
one after another, each as blockDim.x host threads with a std::barrier for __syncthreads) into a
shared library with one `emu_<kernel>(grid, block, args)` entry per extern "C" kernel, generated
from the kernel signatures. `launch` has the signature of fastcnn.backends.cuda._lib.launch, so a
test swaps it in (monkeypatch) and calls the real launchers on CPU tensors.

What this checks: the launch plans (grids, strides, workspaces, split-K), the kernels' index
math, bounds checks, shared-memory tiling and barriers, on the real source. What it cannot: NVRTC,
warp behaviour, speed, and anything that only goes wrong on the hardware.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CUDA_DIR = ROOT / "fastcnn" / "kernels" / "cuda"
SHARED_DIR = ROOT / "fastcnn" / "kernels" / "shared"  # host/device headers shared with the C++ extension
SHIM = Path(__file__).resolve().parent / "cuda_host_shim.h"
CACHE = Path(tempfile.gettempdir()) / f"fastcnn-cuda-emu-{os.getuid()}"
CXX = os.environ.get("CXX", "g++")
FLAGS = ["-std=c++20", "-O1", "-pthread", "-fPIC", "-shared", "-w", f"-I{CUDA_DIR}", f"-I{SHARED_DIR}", "-include", str(SHIM)]

_SIGNATURE = re.compile(r'extern\s+"C"\s+void\s+(\w+)\s*\(([^)]*)\)\s*\{')
_LIBS = {}


def _source_hash(family: str) -> str:
    h = hashlib.sha256()
    for p in sorted(CUDA_DIR.glob("*.cu*")) + sorted(SHARED_DIR.glob("*.cuh")) + [SHIM, Path(__file__)]:
        h.update(p.read_bytes())
    h.update(family.encode())
    return h.hexdigest()[:16]


def _kernels(family: str):
    """(name, [parameter types]) of every extern "C" kernel, from the preprocessed source."""
    pre = subprocess.run([CXX, "-E", "-P", *FLAGS[:1], f"-I{CUDA_DIR}", f"-I{SHARED_DIR}", "-include", str(SHIM),
                          "-x", "c++", str(CUDA_DIR / f"{family}.cu")], check=True, capture_output=True, text=True)
    out = []
    for name, params in _SIGNATURE.findall(pre.stdout):
        types = [re.sub(r"\s*\b\w+\s*$", "", p.strip()) for p in params.split(",") if p.strip()]
        out.append((name, types))
    if not out:
        raise RuntimeError(f"no extern \"C\" kernels found in {family}.cu")
    return out


def _build(family: str) -> ctypes.CDLL:
    CACHE.mkdir(parents=True, exist_ok=True)
    lib_path = CACHE / f"{family}-{_source_hash(family)}.so"
    if not lib_path.exists():
        lines = [f'#include "{family}.cu"']
        for name, types in _kernels(family):
            call = ", ".join(f"*reinterpret_cast<{t}*>(a[{i}])" for i, t in enumerate(types))
            lines.append(f'extern "C" void emu_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, void** a) '
                         f'{{ fastcnn_emu_run(gx, gy, gz, bx, [a] {{ {name}({call}); }}); }}')
        src = CACHE / f"{family}-{os.getpid()}.cpp"
        src.write_text("\n".join(lines) + "\n")
        tmp = CACHE / f"{family}-{os.getpid()}.so"
        subprocess.run([CXX, *FLAGS, "-x", "c++", str(src), "-o", str(tmp)], check=True)
        os.replace(tmp, lib_path)  # atomic: concurrent test processes never see half a library
        src.unlink()
    return ctypes.CDLL(str(lib_path))


def _lib(family: str) -> ctypes.CDLL:
    if family not in _LIBS:
        _LIBS[family] = _build(family)
    return _LIBS[family]


def _c_value(v):
    if isinstance(v, np.uint64):
        return ctypes.c_void_p(int(v))
    if isinstance(v, np.int64):
        return ctypes.c_longlong(int(v))
    if isinstance(v, np.int32):
        return ctypes.c_int(int(v))
    if isinstance(v, np.float32):
        return ctypes.c_float(float(v))
    if isinstance(v, np.float64):
        return ctypes.c_double(float(v))
    raise TypeError(f"kernel argument of unexpected type {type(v).__name__} (launchers pass numpy scalars)")


def launch(family: str, kernel: str, grid, block, args, shared_mem: int = 0):
    """Drop-in for fastcnn.backends.cuda._lib.launch on CPU tensors."""
    grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
    if any(g <= 0 for g in grid) or grid[1] > 65535 or grid[2] > 65535 or grid[0] > 2**31 - 1:
        raise ValueError(f"{kernel}: invalid CUDA grid {grid}")
    values = [_c_value(v) for v in args]
    ptrs = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
    fn = getattr(_lib(family), f"emu_{kernel}")
    fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
    fn(*grid, int(block[0]), ptrs)


def available() -> tuple[bool, str]:
    try:
        subprocess.run([CXX, "--version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        return False, f"no host C++ compiler for the CUDA emulation ({e})"
    return True, ""


def emulate(monkeypatch, *launchers, public_ops: bool = False) -> None:
    """For one test: skip it unless the emulation can build; send the launches of the cuda backend
    (fastcnn/backends/cuda/_lib.py, and `launchers`: modules that imported `launch` by name) here.
    public_ops: backend="cuda" is taken as given for CPU tensors (there is no GPU to resolve it), so
    the public ops reach the cuda launchers."""
    import pytest

    ok, why = available()
    if not ok:
        pytest.skip(why)
    from fastcnn.backends.cuda import _lib
    from fastcnn.ops import _op

    for module in (_lib, *launchers):
        monkeypatch.setattr(module, "launch", launch)
    if public_ops:
        monkeypatch.setattr(_op, "resolve_backend", lambda backend, tensors: backend)
