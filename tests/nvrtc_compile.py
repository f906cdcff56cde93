"""Compiles a fastcnn/kernels/cuda/*.cu file with NVRTC, the way cupy does at run time, without a
GPU (NVRTC is a library that only needs its own .so): catches what nvcc accepts but NVRTC does
not (standard headers, host-only code). Finds libnvrtc through FASTCNN_NVRTC_LIB, an installed
nvidia-cuda-nvrtc wheel (the `nvidia` package), CUDA_HOME, or the loader path."""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from pathlib import Path
from typing import List, Optional

CUDA_DIR = Path(__file__).resolve().parents[1] / "fastcnn" / "kernels" / "cuda"


def find_library() -> Optional[str]:
    candidates = [os.environ.get("FASTCNN_NVRTC_LIB")]
    try:
        import nvidia  # the nvidia-cuda-nvrtc wheels install into this namespace package
        for base in nvidia.__path__:
            candidates += sorted(glob.glob(os.path.join(base, "*", "lib", "libnvrtc.so*")))
    except ImportError:
        pass
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home:
            candidates += sorted(glob.glob(os.path.join(home, "lib64", "libnvrtc.so*")))
    candidates.append(ctypes.util.find_library("nvrtc"))
    for c in candidates:
        if c and "builtins" not in c and ".alt." not in c:
            try:
                ctypes.CDLL(c)
                return c
            except OSError:
                continue
    return None


def compile_source(lib_path: str, source: Path, options: List[str]) -> tuple[int, str]:
    """(nvrtcResult, log) of compiling `source` with `options` (0 = success)."""
    # NVRTC dlopens its builtins library by name: load the one beside it first.
    for builtins in sorted(glob.glob(os.path.join(os.path.dirname(lib_path), "libnvrtc-builtins.so*"))):
        if ".alt." not in builtins:
            ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(lib_path)
    prog = ctypes.c_void_p()
    code = source.read_bytes()
    res = lib.nvrtcCreateProgram(ctypes.byref(prog), code, source.name.encode(), 0, None, None)
    if res != 0:
        return res, "nvrtcCreateProgram failed"
    opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    res = lib.nvrtcCompileProgram(prog, len(options), opts)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return res, log.value.decode(errors="replace")
