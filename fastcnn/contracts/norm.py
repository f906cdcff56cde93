"""The normalisation contract: the [outer, D, inner] view of a tensor around one dim (ops and the cpu
backend's spectral norm kernels), and the local response normalisation window, shared by the LRN
kernels of every backend (cpu computes the same two numbers in csrc/kernels/norm_lp.cpp; cuda and
triton take them from here)."""
from __future__ import annotations

import math
from typing import Sequence, Tuple


def around_sizes(shape: Sequence[int], dim: int) -> Tuple[int, int, int]:
    """(outer, shape[dim], inner): the sizes of the [outer, D, inner] view the normalisation kernels
    take, the dims before `dim` and after it merged (dim in [0, len(shape)))."""
    return math.prod(shape[:dim]), shape[dim], math.prod(shape[dim + 1:])


def lrn_window(size: int) -> Tuple[int, int]:
    """(before, after): channel c's window is [c - before, c + after], cut at 0 and C (torch's zero
    padding of the channel axis: size // 2 channels before, (size - 1) // 2 after)."""
    return size // 2, (size - 1) // 2
