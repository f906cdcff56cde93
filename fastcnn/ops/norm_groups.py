"""Normalisation over groups of elements, one shared kernel: group_norm, layer_norm, instance_norm.

Each op views its input as rows x[R, L] (contiguous), normalises every row by its own mean and
biased variance, then applies per-element affine parameters w[k], b[k] with
k = ((r % groups) * L + l) // span (see csrc/kernels/norm_groups.h for the three views).

Kernels called here (same signature on cpu and triton):
  group_rows_forward(x[R,L], groups, span, weight[P]|None, bias[P]|None, eps, running_mean[groups]|None,
                     running_var[groups]|None, momentum) -> (y[R,L], mean[R], rstd[R])     P = groups*L/span
      running buffers (instance_norm) updated in place with the outer-average of the rows' mean and
      unbiased variance, as torch.
  group_rows_backward(gy, x, groups, span, weight|None, mean, rstd, need_input, need_weight, need_bias)
      -> (grad_input|None, grad_weight[P]|None, grad_bias[P]|None)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ._op import apply, public_op
from .norm import _memory_format, batch_norm
from ._shapes import owned_outputs, follows_channels_last

__all__ = ["group_norm", "layer_norm", "instance_norm"]


@owned_outputs
class _GroupRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, rows, row_len, groups, span, eps, momentum, backend,
                keep_format=False):
        fmt = _memory_format(x) if keep_format else torch.contiguous_format  # as torch: only group_norm keeps it
        x2 = x.contiguous().view(rows, row_len)
        if x.numel():
            y2, mean, rstd = kernels.group_rows_forward[backend](
                x2, groups, span, _contig(weight), _contig(bias), eps, running_mean, running_var, momentum)
        else:  # nothing to normalise: an empty result, no statistics
            y2, mean, rstd = torch.empty_like(x2), x2.new_empty(rows), x2.new_empty(rows)
        ctx.save_for_backward(x2, weight, mean, rstd)
        ctx.args = (groups, span, backend, x.shape, bias is not None)
        return y2.view(x.shape).contiguous(memory_format=fmt)

    @staticmethod
    def backward(ctx, gy):
        x2, weight, mean, rstd = ctx.saved_tensors
        groups, span, backend, shape, has_bias = ctx.args
        need = ctx.needs_input_grad
        need_w, need_b = need[1] and weight is not None, need[2] and has_bias
        if x2.numel():
            gx, gw, gb = kernels.group_rows_backward[backend](
                gy.contiguous().view(x2.shape), x2, groups, span, _contig(weight), mean, rstd, need[0], need_w,
                need_b)
        else:  # empty input: empty input gradient, parameters got no contribution
            gx = torch.empty_like(x2)
            gw = torch.zeros_like(weight) if need_w else None
            gb = torch.zeros_like(weight) if need_b else None
        gx = gx.view(shape) if gx is not None and need[0] else None
        gw = gw.view(weight.shape) if gw is not None else None
        gb = gb.view(weight.shape) if gb is not None else None
        return gx, gw, gb, None, None, None, None, None, None, None, None, None, None


def _contig(t):
    return t.contiguous() if t is not None else None


def _check_affine(v, name, input, shape):
    if v is None:
        return
    _checks.float_tensor(v, name)
    _checks.same_dtype_device(input, "input", v, name)
    if tuple(v.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(v.shape)}")


def _check_eps(eps):
    if _checks.number(eps, "eps") < 0:
        raise ValueError(f"eps: expected a value >= 0, got {eps}")


# ---- group_norm ---------------------------------------------------------------------------------
def _check_group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    _checks.float_tensor(input, "input")
    if input.dim() < 2:
        raise ValueError(f"input: expected a 2-D or higher tensor (N, C, ...), got {input.dim()}-D with shape "
                         f"{tuple(input.shape)}")
    if isinstance(num_groups, bool) or not isinstance(num_groups, int):
        raise TypeError(f"num_groups: expected an int, got {type(num_groups).__name__}")
    C = input.shape[1]
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"num_groups: expected a positive divisor of the {C} input channels, got {num_groups}")
    _check_affine(weight, "weight", input, (C,))
    _check_affine(bias, "bias", input, (C,))
    _check_eps(eps)


@public_op(reference=F.group_norm, check=_check_group_norm)
@follows_channels_last
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, *, backend):
    """torch.nn.functional.group_norm: each of num_groups groups of C/num_groups channels normalised
    over its channels and spatial positions, then a per-channel affine transform."""
    N, C = input.shape[:2]
    S = math.prod(input.shape[2:])
    return apply(_GroupRows, input, weight, bias, None, None, N * num_groups, C // num_groups * S, num_groups,
                 max(S, 1), float(eps), 0.0, backend, True)


# ---- layer_norm ---------------------------------------------------------------------------------
def _normalized_shape(normalized_shape):
    if isinstance(normalized_shape, int) and not isinstance(normalized_shape, bool):
        return (normalized_shape,)
    if isinstance(normalized_shape, torch.Size) or (
            isinstance(normalized_shape, (tuple, list))
            and all(isinstance(d, int) and not isinstance(d, bool) for d in normalized_shape)):
        return tuple(int(d) for d in normalized_shape)
    raise TypeError(f"normalized_shape: expected an int or a sequence of ints, got {normalized_shape!r}")


def _check_layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    _checks.float_tensor(input, "input")
    shape = _normalized_shape(normalized_shape)
    if len(shape) == 0 or len(shape) > input.dim() or tuple(input.shape[input.dim() - len(shape):]) != shape:
        raise ValueError(f"normalized_shape: expected the trailing dimensions of input {tuple(input.shape)}, "
                         f"got {shape}")
    _check_affine(weight, "weight", input, shape)
    _check_affine(bias, "bias", input, shape)
    _check_eps(eps)


@public_op(reference=F.layer_norm, check=_check_layer_norm)
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *, backend):
    """torch.nn.functional.layer_norm: normalised over the trailing normalized_shape dimensions, then an
    element-wise affine transform of that shape."""
    shape = _normalized_shape(normalized_shape)
    rows = math.prod(input.shape[:input.dim() - len(shape)])
    return apply(_GroupRows, input, weight, bias, None, None, rows, math.prod(shape), 1, 1, float(eps), 0.0, backend)


# ---- instance_norm ------------------------------------------------------------------------------
def _check_instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                         momentum=0.1, eps=1e-5):
    _checks.float_tensor(input, "input")
    if input.dim() < 3:
        raise ValueError(f"input: expected a 3-D or higher tensor (N, C, ...), got {input.dim()}-D with shape "
                         f"{tuple(input.shape)}")
    C = input.shape[1]
    for v, name in ((running_mean, "running_mean"), (running_var, "running_var"), (weight, "weight"), (bias, "bias")):
        _check_affine(v, name, input, (C,))
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_var: running_mean and running_var must both be given or both be None")
    if not isinstance(use_input_stats, bool):
        raise TypeError(f"use_input_stats: expected a bool, got {type(use_input_stats).__name__}")
    if not use_input_stats and running_mean is None:
        raise ValueError("running_mean: use_input_stats=False normalises with running_mean and running_var, "
                         "which are required then")
    if use_input_stats and math.prod(input.shape[2:]) == 1:
        raise ValueError(f"input: expected more than 1 spatial element when using input statistics, got shape "
                         f"{tuple(input.shape)}")
    if momentum is not None:
        _checks.number(momentum, "momentum")
    _check_eps(eps)


@public_op(reference=F.instance_norm, check=_check_instance_norm)
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5, *, backend):
    """torch.nn.functional.instance_norm: every (sample, channel) normalised over its spatial positions;
    running statistics (when given) updated with the batch average, as torch. use_input_stats=False
    normalises with the running ones (batch_norm's eval mode)."""
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, 0.0, eps, backend=backend)
    N, C = input.shape[:2]
    S = math.prod(input.shape[2:])
    work = [b.contiguous() if b is not None else None for b in (running_mean, running_var)]  # written in place
    out = apply(_GroupRows, input, weight, bias, work[0], work[1], N * C, S, C, max(S, 1), float(eps),
                0.0 if momentum is None else float(momentum), backend)
    for buf, w in zip((running_mean, running_var), work):
        if buf is not None and w is not buf:  # contiguous() returned a copy (identity, not data_ptr: traceable)
            buf.copy_(w)
    return out
