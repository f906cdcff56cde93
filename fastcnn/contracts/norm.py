"""The normalisation contract: the local response normalisation window, shared by the LRN kernels of
every backend (cpu computes the same two numbers in csrc/kernels/norm_lp.cpp; cuda and triton take
them from here)."""
from __future__ import annotations

from typing import Tuple


def lrn_window(size: int) -> Tuple[int, int]:
    """(before, after): channel c's window is [c - before, c + after], cut at 0 and C (torch's zero
    padding of the channel axis: size // 2 channels before, (size - 1) // 2 after)."""
    return size // 2, (size - 1) // 2
