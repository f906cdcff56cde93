"""A small cache of large cpu output buffers, reused once nothing refers to them any more.

torch's CPU allocator hands a large buffer back to the OS when its tensor dies, so the next
out-of-place op of that size page-faults its whole output in again; on a VM whose host reclaims
free guest memory such a fault can cost tens of milliseconds. fastcnn's cpu kernels take their
large outputs (>= 4 MiB) from this cache instead: it keeps every storage it handed out and gives
one again when its only remaining reference is the cache's own, the same rule as a GPU caching
allocator. A storage still referenced by a tensor, a view, an autograd graph or a numpy array is
never handed out.

Free storages are kept up to FASTCNN_OUTPUT_CACHE_MB (default 1024; 0 turns the cache off),
oldest dropped first; `release()` drops every free one (fastcnn.empty_cache()).
"""
from __future__ import annotations

import os
import threading
from typing import List, Optional

import torch

_use_count = torch._C._storage_Use_Count


class OutputCache:
    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self._blocks: List[torch.UntypedStorage] = []  # least recently handed out first
        self._lock = threading.Lock()

    @staticmethod
    def _is_free(block: torch.UntypedStorage) -> bool:
        return _use_count(block._cdata) == 1  # only self._blocks refers to it

    def take(self, nbytes: int) -> Optional[torch.UntypedStorage]:
        """A free cached storage of exactly nbytes (now marked most recent), or None."""
        with self._lock:
            for i, block in enumerate(self._blocks):
                if block.nbytes() == nbytes and self._is_free(block):
                    self._blocks.append(self._blocks.pop(i))
                    self._trim(self.limit_bytes)
                    return block
            self._trim(self.limit_bytes)
        return None

    def add(self, block: torch.UntypedStorage) -> None:
        """Track a newly allocated storage, then trim the free ones to the limit."""
        with self._lock:
            self._blocks.append(block)
            self._trim(self.limit_bytes)

    def release(self) -> None:
        with self._lock:
            self._trim(0)

    def free_bytes(self) -> int:
        with self._lock:
            return sum(b.nbytes() for b in self._blocks if self._is_free(b))

    def _trim(self, limit: int) -> None:
        # Forget storages that are free beyond the limit (oldest first); the OS gets them back.
        free = [b for b in self._blocks if self._is_free(b)]
        total = sum(b.nbytes() for b in free)
        drop = set()
        for block in free:
            if total <= limit:
                break
            drop.add(id(block))
            total -= block.nbytes()
        if drop:
            self._blocks = [b for b in self._blocks if id(b) not in drop]


CACHE = OutputCache(int(float(os.environ.get("FASTCNN_OUTPUT_CACHE_MB", "1024")) * (1 << 20)))
