"""fastcnn's on-disk cache folder and the one way files are written into it.

Folder: env FASTCNN_CACHE_DIR, else $XDG_CACHE_HOME/fastcnn, else ~/.cache/fastcnn. Writes are
atomic (a temporary file in the same folder, then os.replace), so a reader in another process sees
the old file or the new one, never half of one; a folder that cannot be written only costs the
cache (None is returned), never a run. No torch import: setup.py loads this file directly.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional


def cache_dir() -> Path:
    base = os.environ.get("FASTCNN_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "fastcnn"


def atomic_write(path: Path, data: bytes) -> Optional[Path]:
    """Write `data` to `path` atomically; the path, or None when the folder is not writable."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path
    except OSError:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return None
