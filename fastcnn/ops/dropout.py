"""dropout and dropout2d. The keep-mask is drawn with torch's generator (bernoulli_ on the default
generator or the `generator=` keyword), so runs repeat under torch.manual_seed; applying mask * scale
forward and backward is our kernel.

Kernel called here (same signature on cpu, triton, cuda):
  dropout_masked_scale(x[n...] contiguous, keep uint8[n / group], group: int, scale: float, out=None) -> y
      y[i] = keep[i // group] ? x[i] * scale : 0   (group 1: dropout; H*W: dropout2d); out may be x (in place)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ._op import apply, public_op
from ._shapes import follows_channels_last

__all__ = ["dropout", "dropout2d"]


def _check_dropout(input, p=0.5, training=True, inplace=False, generator=None):
    _checks.float_tensor(input, "input")
    if not 0.0 <= _checks.number(p, "p") <= 1.0:
        raise ValueError(f"p: dropout probability has to be between 0 and 1, got {p}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")


def _check_dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    _check_dropout(input, p, training, inplace, generator)
    if input.dim() not in (3, 4):
        raise ValueError(f"input: expected a 3-D (C, H, W) or 4-D (N, C, H, W) tensor, got {input.dim()}-D")


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, keep, group, scale, inplace, backend):
        run = kernels.dropout_masked_scale[backend]
        if inplace and x.is_contiguous():
            ctx.mark_dirty(x)
            y = run(x, keep, group, scale, out=x)
        else:
            y = run(x.contiguous(), keep, group, scale)
            if inplace:
                x.copy_(y)
                ctx.mark_dirty(x)
                y = x
        ctx.save_for_backward(keep)
        ctx.args = (group, scale, backend)
        return y

    @staticmethod
    def backward(ctx, gy):
        (keep,) = ctx.saved_tensors
        group, scale, backend = ctx.args
        gx = kernels.dropout_masked_scale[backend](gy.contiguous(), keep, group, scale)
        return gx, None, None, None, None, None


def _keep_mask(shape, keep_prob, generator, device):
    """uint8 keep-mask on `device`, drawn by `generator` (torch's default one when None). A generator
    only draws on its own device type (a CPU generator cannot fill a CUDA tensor): then the mask is
    drawn where the generator lives and copied, so a seeded generator gives the same mask whatever
    the input's device."""
    where = device if generator is None or generator.device.type == device.type else generator.device
    keep = torch.empty(shape, dtype=torch.uint8, device=where).bernoulli_(keep_prob, generator=generator)
    return keep.to(device)


def _run(input, p, training, inplace, generator, mask_shape, group, backend):
    if not training or p == 0.0:
        return input
    keep = _keep_mask(mask_shape, 1.0 - p, generator, input.device)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return apply(_Dropout, input, keep, group, scale, inplace, backend)


def _reference_dropout(input, p=0.5, training=True, inplace=False, generator=None):
    return F.dropout(input, p, training, inplace)


def _reference_dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    return F.dropout2d(input, p, training, inplace)


@public_op(reference=_reference_dropout, check=_check_dropout)
@follows_channels_last
def dropout(input, p=0.5, training=True, inplace=False, *, generator=None, backend):
    """torch.nn.functional.dropout: zero each element with probability p, scale the rest by 1/(1-p)."""
    return _run(input, float(p), training, inplace, generator, input.shape, 1, backend)


@public_op(reference=_reference_dropout2d, check=_check_dropout2d)
@follows_channels_last
def dropout2d(input, p=0.5, training=True, inplace=False, *, generator=None, backend):
    """torch.nn.functional.dropout2d: zero whole channels (one draw per (n, c) plane) with probability p."""
    planes = input.shape[:-2]
    return _run(input, float(p), training, inplace, generator, planes, math.prod(input.shape[-2:]), backend)
