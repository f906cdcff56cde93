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


def reshaped_in_place(t: torch.Tensor, shape) -> torch.Tensor:
    """A contiguous tensor made inside an autograd.Function's forward, given `shape` without becoming a
    view: autograd forbids modifying in place a view returned by a custom Function (BatchNorm
    followed by ReLU(inplace=True)), and a copy would cost a pass over memory."""
    return t.as_strided_(tuple(shape), _contiguous_strides(shape))


def _contiguous_strides(shape):
    strides, step = [], 1
    for size in reversed(tuple(shape)):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


class _Relayout(torch.autograd.Function):
    """t copied into memory format `fmt`; its gradient goes back in `back` (the caller's format)."""

    @staticmethod
    def forward(ctx, t, fmt, back):
        ctx.back = back
        return t.contiguous(memory_format=fmt)

    @staticmethod
    def backward(ctx, g):
        return g.contiguous(memory_format=ctx.back), None, None


def is_channels_last_only(t: torch.Tensor) -> bool:
    """4-D, channels_last and not also contiguous NCHW (then the two orders differ)."""
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def nchw_from_channels_last(t: torch.Tensor) -> torch.Tensor:
    """For kernels that take NCHW: a channels_last input copied, its gradient returned channels_last
    (as torch's is for a channels_last input)."""
    return _Relayout.apply(t, torch.contiguous_format, torch.channels_last)


def channels_last_from_nchw(t: torch.Tensor) -> torch.Tensor:
    """A result made channels_last because the input was, as torch's is."""
    return _Relayout.apply(t, torch.channels_last, torch.contiguous_format)
