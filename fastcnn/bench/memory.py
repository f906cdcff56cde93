"""Peak memory of one call: how far the process's resident set rose above where it started.

Linux keeps the resident set's high-water mark (VmHWM in /proc/self/status) and lets a process
reset it to the current size (writing 5 to /proc/self/clear_refs). Before the call, freed memory
that malloc still holds is handed back (malloc_trim) and fastcnn's output pool drops its free
blocks, so what the call allocates shows up as new resident pages; blocks the pool keeps after
the call stay counted, since they stay resident. The figure covers every allocation of the call
(torch's, fastcnn's, the autograd graph's), which is what an OOM would see.
"""
from __future__ import annotations

import ctypes
import gc
from typing import Callable, Optional

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_bytes() -> dict:
    out = {}
    with open(_STATUS) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024  # the file says kB
    return out


def _trim_malloc() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: freed memory may stay resident and hide some of the peak
        pass


def available() -> bool:
    """Whether this system can reset and read the high-water mark (Linux)."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return "VmHWM" in _status_bytes()
    except OSError:
        return False


def peak_bytes(call: Callable[[], object]) -> Optional[int]:
    """Bytes by which the resident set's high-water mark rose above its size at the start of call()
    (None where the system cannot say). The result of call() is dropped before the reading is
    taken, so it counts like any other temporary."""
    import fastcnn

    gc.collect()
    fastcnn.empty_cache()
    _trim_malloc()
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        start = _status_bytes()["VmRSS"]
    except (OSError, KeyError):
        return None
    call()
    return max(0, _status_bytes()["VmHWM"] - start)
