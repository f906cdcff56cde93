"""Which convolution algorithm runs: explicit choice checks, the `auto` heuristic, the autotuner.

Algorithms are discovered through the registry (fastcnn._registry.has_kernel), never imported: a
backend offers algorithm `a` for a direction when it registers the kernel `<direction>.<a>`
(directions: conv2d_forward, conv2d_backward_input, conv2d_backward_weight).

The autotuner (off by default; `fastcnn.ops.autotune(True)` or env FASTCNN_AUTOTUNE=1) times every
applicable candidate once per (backend, device, direction, shapes, stride, padding, dilation, groups,
dtype) and keeps the winner in a JSON file, `<cache dir>/fastcnn/conv_autotune.json` (cache dir:
env FASTCNN_CACHE_DIR, else XDG_CACHE_HOME, else ~/.cache). The file is written atomically (temp file
+ os.replace); a corrupt or unreadable file is ignored and rebuilt, never breaks a run.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import torch

from .._registry import has_kernel

ALGOS = ("direct", "im2col", "fft")
CHOICES = ("auto",) + ALGOS
DIRECTIONS = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight")


def kernel_name(direction: str, algo: str) -> str:
    return f"{direction}.{algo}"


def why_not_applicable(algo: str, stride, dilation) -> Optional[str]:
    """Why `algo` cannot run this convolution (None if it can)."""
    if algo == "fft" and (tuple(stride) != (1, 1) or tuple(dilation) != (1, 1)):
        return (f"algo='fft' needs stride 1 and dilation 1 (got stride={tuple(stride)}, dilation={tuple(dilation)}); "
                "use algo='direct', 'im2col' or 'auto'")
    return None


def check_explicit(algo: str, backend: str, direction: str, stride, dilation) -> None:
    """Raise a clear error if an explicitly requested algorithm cannot run here."""
    if algo not in CHOICES:
        raise ValueError(f"algo: expected one of {CHOICES}, got {algo!r}")
    if algo == "auto":
        return
    reason = why_not_applicable(algo, stride, dilation)
    if reason:
        raise ValueError(reason)
    if not has_kernel(backend, kernel_name(direction, algo)):
        offered = [a for a in ALGOS if has_kernel(backend, kernel_name(direction, a))]
        raise NotImplementedError(f"fastcnn: algo={algo!r} has no '{direction}' kernel on backend '{backend}'; "
                                  f"this backend offers {offered or 'none'} (or use algo='auto')")


def candidates(backend: str, direction: str, stride, dilation) -> list:
    return [a for a in ALGOS if has_kernel(backend, kernel_name(direction, a))
            and why_not_applicable(a, stride, dilation) is None]


def heuristic(options: Sequence[str], N: int, C: int, K: int, kernel_hw, in_hw=None) -> str:
    """1x1 -> im2col (a plain GEMM); fft for C, K >= 64 with kernels >= 5x5 and batch >= 16, or with
    3x3 kernels on images of at least 32x32 when `in_hw` is given (measured on the lecture layers,
    2 threads: fft wins all three passes of PIDNet-S 64x64 and SRResNet 96x96, direct those of
    HardNet 16x16); direct otherwise; im2col as the fallback. Only picks from `options`."""
    R, S = kernel_hw
    if R == 1 and S == 1 and "im2col" in options:
        return "im2col"
    if "fft" in options and C >= 64 and K >= 64:
        if min(R, S) >= 5 and N >= 16:
            return "fft"
        if (R, S) == (3, 3) and in_hw is not None and min(in_hw) >= 32:
            return "fft"
    for algo in ("direct", "im2col", "fft"):
        if algo in options:
            return algo
    raise NotImplementedError("fastcnn: no convolution algorithm is registered for this backend")


# ----------------------------------------------------------------------------------------------------
# Autotuner
_state = {"enabled": None}
_lock = threading.Lock()
_memory: Dict[str, str] = {}


def autotune(enabled: bool = True) -> None:
    """Switch the convolution autotuner on or off for this process (overrides FASTCNN_AUTOTUNE)."""
    _state["enabled"] = bool(enabled)


def autotune_enabled() -> bool:
    if _state["enabled"] is not None:
        return _state["enabled"]
    return os.environ.get("FASTCNN_AUTOTUNE", "0") not in ("", "0", "false", "False")


def cache_path() -> Path:
    base = os.environ.get("FASTCNN_CACHE_DIR")
    if base:
        return Path(base) / "conv_autotune.json"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "fastcnn" / "conv_autotune.json"


def _read_cache(path: Path) -> Dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, unreadable, corrupt or half-written by someone else
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and v in ALGOS}


def _write_cache(path: Path, entries: Dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".conv_autotune.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f, indent=0, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache dir only costs re-tuning next run


def cache_key(backend: str, device: torch.device, direction: str, shapes, params, dtype) -> str:
    dev = str(device)
    if device.type == "cuda":
        dev += ":" + torch.cuda.get_device_name(device)
    return "|".join([backend, dev, direction, repr([tuple(s) for s in shapes]), repr(params), str(dtype)])


def tuned(key: str, options: Sequence[str], run: Callable[[str], object], reps: int = 3) -> str:
    """The fastest of `options` for `key`: from memory, else the cache file, else timed now."""
    with _lock:
        if key in _memory and _memory[key] in options:
            return _memory[key]
        path = cache_path()
        entries = _read_cache(path)
        if entries.get(key) in options:
            _memory[key] = entries[key]
            return entries[key]
    timings = {}
    for algo in options:
        run(algo)  # warm-up (first-call compilation, buffers)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            run(algo)
            best = min(best, time.perf_counter() - t0)
        timings[algo] = best
    winner = min(timings, key=timings.get)
    with _lock:
        _memory[key] = winner
        entries = _read_cache(path)  # re-read: another process may have added entries meanwhile
        entries[key] = winner
        _write_cache(path, entries)
    return winner
