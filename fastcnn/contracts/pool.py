"""The pooling contract: the window record and the memory-format rule shared by the pooling ops and
every backend's pooling kernels.

A pooling kernel call takes 4-D tensors that are all contiguous NCHW or all channels_last; which one
is read off the call's first tensor with `is_channels_last`, and outputs are allocated the same way.
A tensor that is both (C == 1 or H == W == 1) has the same memory order either way and counts as NCHW.
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import torch


class PoolWindow(NamedTuple):
    """A checked pooling window and its output size, built once per call by the op's check
    (fastcnn/ops/pool.py _checked_window); pairs are (h, w)."""
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    out_hw: Tuple[int, int]


def is_channels_last(t: torch.Tensor) -> bool:
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def empty(shape, like: torch.Tensor, channels_last: bool, dtype=None) -> torch.Tensor:
    # device always named: under a default-device context (torch.set_default_device, `with
    # torch.device(...)`) an output without one would land on that device, not the input's
    if not channels_last:
        return torch.empty(shape, dtype=dtype or like.dtype, device=like.device)
    return torch.empty(shape, dtype=dtype or like.dtype, device=like.device, memory_format=memory_format(channels_last))


def same_layout(first: torch.Tensor, *others: torch.Tensor):
    """`first` made contiguous NCHW unless it already is NCHW or channels_last, and `others` put in
    the layout `first` ends up with."""
    if not (first.is_contiguous() or first.is_contiguous(memory_format=torch.channels_last)):
        first = first.contiguous()
    fmt = memory_format(is_channels_last(first))
    return (first,) + tuple(t.contiguous(memory_format=fmt) for t in others)


def like_input(grad: torch.Tensor, input_channels_last: bool) -> torch.Tensor:
    """An input gradient in the input's memory format, as torch returns it. The backward kernels
    read the layout off the output gradient, which says nothing when it is both (a 1x1 output of a
    global pool): then a channels_last input still gets a channels_last gradient."""
    if input_channels_last and not grad.is_contiguous(memory_format=torch.channels_last):
        return grad.contiguous(memory_format=torch.channels_last)
    return grad
