"""Reshapes with every size spelled out: `t.view(n, c, -1)` is ambiguous (a RuntimeError) when the
tensor is empty, and every op must accept empty tensors as torch does."""
from __future__ import annotations

import functools
import inspect
import math

import torch

from ..contracts.norm import around_sizes


def around(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Contiguous t viewed as (outer, t.shape[dim], inner): the dims before `dim` and after it merged."""
    return t.contiguous().view(around_sizes(t.shape, dim % t.dim()))


def leading_merged(t: torch.Tensor, keep: int) -> torch.Tensor:
    """t reshaped to (prod of the leading dims, *last `keep` dims)."""
    return t.reshape(math.prod(t.shape[:t.dim() - keep]), *t.shape[t.dim() - keep:])


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


def reshaped_in_place(t: torch.Tensor, shape) -> torch.Tensor:
    """A contiguous tensor made inside an autograd.Function's forward, given `shape` without becoming a
    view: autograd forbids modifying in place a view returned by a custom Function (BatchNorm
    followed by ReLU(inplace=True)), and a copy would cost a pass over memory. Unlike @owned_outputs,
    this also holds while torch.compile traces the Function."""
    return t.as_strided_(tuple(shape), _contiguous_strides(shape))


def _contiguous_strides(shape):
    strides, step = [], 1
    for size in reversed(tuple(shape)):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def owned_outputs(function_cls):
    """Class decorator for a torch.autograd.Function whose forward reshapes a kernel's result
    (`y3.view(x.shape)`): autograd refuses in-place ops on a Function output that is a view of a
    tensor made inside forward ("Output 0 of _BatchNorm is a view and is being modified inplace"),
    so `BatchNorm2d` then `ReLU(inplace=True)` would fail where torch's works. Such outputs are
    returned detached from their base (same storage, no view relation); an output sharing storage
    with an input is left as it is."""
    forward = function_cls.forward

    def own(t, inputs):
        if not isinstance(t, torch.Tensor) or not t._is_view():
            return t
        storage = t.untyped_storage().data_ptr()
        if any(a.untyped_storage().data_ptr() == storage for a in inputs):
            return t
        return t.detach()

    def owning_forward(ctx, *args):
        out = forward(ctx, *args)
        if torch.compiler.is_compiling():   # traced graphs have no view-of-output rule (and no storages)
            return out
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        if isinstance(out, tuple):
            return tuple(own(o, inputs) for o in out)
        return own(out, inputs)

    function_cls.forward = staticmethod(owning_forward)
    return function_cls


def follows_channels_last(body):
    """For an op body whose kernels take NCHW (dense) tensors: a channels_last input is computed as
    NCHW and the 4-D result (and the input's gradient) returned channels_last, as torch's are. An
    in-place call is left alone (it must write the caller's tensor)."""
    sig = inspect.signature(body)

    @functools.wraps(body)
    def wrapper(input, *args, **kwargs):
        if not is_channels_last_only(input) or sig.bind_partial(input, *args, **kwargs).arguments.get("inplace"):
            return body(input, *args, **kwargs)
        y = body(nchw_from_channels_last(input), *args, **kwargs)
        return channels_last_from_nchw(y) if isinstance(y, torch.Tensor) and y.dim() == 4 else y
    return wrapper
