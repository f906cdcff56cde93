"""Where a CUDA kernel file's machine code comes from, so that no process pays a compile at first use
once a binary exists:

1. a fatbin shipped beside the source (`fastcnn/kernels/cuda/<family>.fatbin`, sm_80 + sm_90
   cubins and compute_90 PTX), built by setup.py when nvcc is present at build time (`build_fatbins`)
   and used when its sidecar `<family>.fatbin.key` matches the current source (`source_key`: a
   stale fatbin from an edited checkout is ignored) and the GPU is 8.x or 9.0;
2. else NVRTC (through cupy) once per (source, GPU arch, NVRTC version), its output cached on disk
   at `<fastcnn cache dir>/cuda/<family>-<cache_key>.bin` with an atomic write (fastcnn/_cache.py),
   so the next process loads it.

No torch or cupy import at module level: setup.py loads this file to build the fatbins.
"""
from __future__ import annotations

import hashlib
import importlib.util
import subprocess
from pathlib import Path
from typing import Optional, Sequence

CUDA_DIR = Path(__file__).resolve().parents[2] / "kernels" / "cuda"
OPTIONS = ("-std=c++17",)  # plus include_options(); the same for NVRTC and nvcc


def shared_dir(cuda_dir: Path = CUDA_DIR) -> Path:
    """The headers the CUDA kernels share with the C++ extension (kernels/shared, beside kernels/cuda)."""
    return cuda_dir.parent / "shared"


def include_options(cuda_dir: Path = CUDA_DIR) -> tuple:
    """-I for the CUDA-only headers and the shared host/device ones, for NVRTC and nvcc alike."""
    return (f"-I{cuda_dir}", f"-I{shared_dir(cuda_dir)}")
FATBIN_ARCHS = (("compute_80", "sm_80"), ("compute_90", "sm_90"), ("compute_90", "compute_90"))


def _cache_module():
    spec = importlib.util.spec_from_file_location("fastcnn_cache_file", CUDA_DIR.parents[1] / "_cache.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_key(family: str, cuda_dir: Path = CUDA_DIR) -> str:
    """sha256 of the family's .cu, every header it may include (all *.cuh of the folder and of the
    shared folder) and the compile options: what the machine code depends on besides the compiler
    and the GPU."""
    h = hashlib.sha256()
    h.update(repr(OPTIONS).encode())
    headers = sorted(cuda_dir.glob("*.cuh")) + sorted(shared_dir(cuda_dir).glob("*.cuh"))
    for path in [cuda_dir / f"{family}.cu"] + headers:
        h.update(path.parent.name.encode() + b"/" + path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def cache_key(source: str, arch: str, compiler: str) -> str:
    """The NVRTC cache entry's key: source key, GPU arch (e.g. 'sm_90') and compiler version."""
    return hashlib.sha256(f"{source}|{arch}|{compiler}".encode()).hexdigest()[:32]


def cache_path(family: str, key: str, cache_dir: Optional[Path] = None) -> Path:
    base = Path(cache_dir) if cache_dir is not None else _cache_module().cache_dir()
    return base / "cuda" / f"{family}-{key}.bin"


def shipped_fatbin(family: str, capability: Sequence[int], cuda_dir: Path = CUDA_DIR) -> Optional[Path]:
    """The packaged fatbin, if it was built from this very source and holds code for this GPU (a
    sm_80 cubin runs on 8.x, sm_90 on 9.0; other GPUs go through NVRTC, which targets them exactly)."""
    fatbin = cuda_dir / f"{family}.fatbin"
    key_file = cuda_dir / f"{family}.fatbin.key"
    if tuple(capability)[0] not in (8, 9) or tuple(capability) > (9, 0):
        return None
    try:
        if key_file.read_text().strip() != source_key(family, cuda_dir):
            return None
    except OSError:
        return None
    return fatbin if fatbin.exists() else None


def nvrtc_binary(family: str, arch: str, compiler: str, compile_fn, cache_dir: Optional[Path] = None) -> Path:
    """Path of the family's NVRTC output for `arch`: from the cache, else compile_fn(source, options)
    (bytes) written there atomically. If the cache folder cannot be written, the binary goes to a
    private temporary file (this process still runs; the next one compiles again)."""
    import tempfile

    path = cache_path(family, cache_key(source_key(family), arch, compiler), cache_dir)
    if path.exists():
        return path
    source = (CUDA_DIR / f"{family}.cu").read_text()
    binary = compile_fn(source, OPTIONS + include_options())
    written = _cache_module().atomic_write(path, binary)
    if written is None:
        fd, tmp = tempfile.mkstemp(suffix=".bin")
        with open(fd, "wb") as f:
            f.write(binary)
        written = Path(tmp)
    return written


# ---------------------------------------------------------------------------------------- cupy side

def _nvrtc_compile(source: str, options) -> bytes:
    """NVRTC through cupy for the current device: a cubin where cupy targets the GPU directly, else
    PTX (the driver JITs it). cupy's function returns (binary, mapping) since 12, the binary before."""
    from cupy.cuda import compiler

    out = compiler.compile_using_nvrtc(source, tuple(options))
    binary = out[0] if isinstance(out, tuple) else out
    return binary.encode() if isinstance(binary, str) else bytes(binary)


def _nvrtc_version() -> str:
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError:  # older cupy
        from cupy.cuda import nvrtc
    import cupy

    return f"nvrtc{'.'.join(map(str, nvrtc.getVersion()))}-cupy{cupy.__version__}"


def load_module(family: str):
    """cupy.RawModule of the family for the current GPU, without compiling when a binary exists."""
    import cupy
    import torch

    capability = torch.cuda.get_device_capability()
    path = shipped_fatbin(family, capability)
    if path is None:
        arch = f"sm_{capability[0]}{capability[1]}"
        path = nvrtc_binary(family, arch, _nvrtc_version(), _nvrtc_compile)
    return cupy.RawModule(path=str(path))


# ---------------------------------------------------------------------------------- build time (nvcc)

def build_fatbins(nvcc: str, cuda_dir: Path = CUDA_DIR, families: Optional[Sequence[str]] = None,
                  jobs: int = 2) -> list:
    """nvcc --fatbin every family (sm_80, sm_90 cubins + compute_90 PTX) beside its source, with the
    sidecar key; families whose fatbin is current are skipped. Returns the families built."""
    from concurrent.futures import ThreadPoolExecutor

    families = families or sorted(p.stem for p in cuda_dir.glob("*.cu"))
    todo = []
    for family in families:
        key_file = cuda_dir / f"{family}.fatbin.key"
        current = key_file.exists() and (cuda_dir / f"{family}.fatbin").exists() \
            and key_file.read_text().strip() == source_key(family, cuda_dir)
        if not current:
            todo.append(family)

    def build(family):
        gencode = [f"-gencode=arch={a},code={c}" for a, c in FATBIN_ARCHS]
        out = cuda_dir / f"{family}.fatbin"
        subprocess.run([nvcc, "--fatbin", *gencode, *OPTIONS, *include_options(cuda_dir), "-o", str(out),
                        str(cuda_dir / f"{family}.cu")], check=True, capture_output=True, text=True)
        (cuda_dir / f"{family}.fatbin.key").write_text(source_key(family, cuda_dir) + "\n")
        return family

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(build, todo))
