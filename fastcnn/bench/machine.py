"""What machine a benchmark ran on, and its limits measured by probes the harness runs itself:
fp32 FMA peak (a vector FMA loop on every thread) and copy bandwidth (a vector copy of 256 MB)."""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "fma", "sse4", "f16c", "amx")))
    except OSError:
        pass
    return []


def git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _best_of(fn, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def probe_fma_gflops(seconds: float = 0.3) -> float:
    from fastcnn import _C

    _C.set_num_threads(torch.get_num_threads())
    iterations = 1_000_000
    while True:
        t, flops = _best_of(lambda: _C.probe.fma_loop(iterations), repeats=1)
        if t > seconds / 5:
            break
        iterations *= 4
    t, flops = _best_of(lambda: _C.probe.fma_loop(iterations), repeats=3)
    return flops / t / 1e9


def probe_copy_gbs(megabytes: int = 256) -> float:
    """(bytes read + bytes written) / time for a copy far larger than the caches."""
    from fastcnn import _C

    _C.set_num_threads(torch.get_num_threads())
    n = megabytes * (1 << 20) // 8  # two buffers of megabytes/2 each
    src, dst = torch.ones(n), torch.empty(n)
    _C.probe.copy(src.data_ptr(), dst.data_ptr(), n)  # fault the pages in
    t, _ = _best_of(lambda: _C.probe.copy(src.data_ptr(), dst.data_ptr(), n))
    return 2 * n * 4 / t / 1e9


def describe(probe: bool = True) -> dict:
    import numpy
    import fastcnn
    from fastcnn import _C

    info = {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "fastcnn": fastcnn.__version__,
        "commit": git_commit(),
        "isa": _C.isa(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if torch.cuda.is_available():
        from .gpu_peaks import peaks

        info["gpu_peaks"] = peaks(info["device"])  # datasheet TF32 / BF16 / HBM; None: GPU not in the table
    if probe:
        info["peak_gflops"] = round(probe_fma_gflops(), 1)
        info["copy_gbs"] = round(probe_copy_gbs(), 1)
    return info
