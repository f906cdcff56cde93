"""Reshapes with every size spelled out: `t.view(n, c, -1)` is ambiguous (a RuntimeError) when the
tensor is empty, and every op must accept empty tensors as torch does."""
from __future__ import annotations

import math

import torch


def around(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Contiguous t viewed as (outer, t.shape[dim], inner): the dims before `dim` and after it merged."""
    dim = dim % t.dim()
    return t.contiguous().view(math.prod(t.shape[:dim]), t.shape[dim], math.prod(t.shape[dim + 1:]))


def leading_merged(t: torch.Tensor, keep: int) -> torch.Tensor:
    """t reshaped to (prod of the leading dims, *last `keep` dims)."""
    return t.reshape(math.prod(t.shape[:t.dim() - keep]), *t.shape[t.dim() - keep:])
