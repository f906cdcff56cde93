"""softmax and log_softmax over one dimension.

Kernels called here (same signature on cpu, triton, cuda; x viewed as [outer, D, inner], contiguous):
  softmax_forward(x[outer,D,inner], log: bool) -> y            softmax (log=False) or log_softmax over D
  softmax_backward(gy[outer,D,inner], y[outer,D,inner], log: bool) -> gx
      softmax: gx = y * (gy - sum_D gy*y); log_softmax: gx = gy - exp(y) * sum_D gy (y = forward output)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ._op import apply, public_op
from ._shapes import owned_outputs

__all__ = ["softmax", "log_softmax"]


def _resolve_dim(input, dim):
    """torch's rule for dim=None (legacy): 0 for 0-, 1- and 3-D input, else 1."""
    ndim = input.dim()
    if dim is None:
        return 0 if ndim in (0, 1, 3) else 1
    return dim + max(ndim, 1) if dim < 0 else dim


def _check_softmax(input, dim=None, _stacklevel=3, dtype=None):
    _checks.tensor(input, "input")
    if dtype is not None and dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    if dtype is None:
        _checks.float_tensor(input, "input")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
        raise TypeError(f"dim: expected an int or None, got {type(dim).__name__}")
    ndim = max(input.dim(), 1)
    if dim is not None and not -ndim <= dim < ndim:
        raise ValueError(f"dim: expected a value in [{-ndim}, {ndim - 1}] for a {input.dim()}-D input, got {dim}")


@owned_outputs
class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, log, backend):
        shape = x.shape
        if x.dim() == 0:
            x = x.reshape(1)
        D = x.shape[dim]
        outer, inner = math.prod(x.shape[:dim]), math.prod(x.shape[dim + 1:])
        y = kernels.softmax_forward[backend](x.contiguous().view(outer, D, inner), log)
        ctx.save_for_backward(y)
        ctx.log, ctx.backend, ctx.shape = log, backend, shape
        return y.view(shape)

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        gx = kernels.softmax_backward[ctx.backend](gy.contiguous().view(y.shape), y, ctx.log)
        return gx.view(ctx.shape), None, None, None


def _run(input, dim, dtype, log, backend):
    if dtype is not None:
        input = input.to(dtype)
    return apply(_Softmax, input, _resolve_dim(input, dim), log, backend)


@public_op(reference=F.softmax, check=_check_softmax)
def softmax(input, dim=None, _stacklevel=3, dtype=None, *, backend):
    """torch.nn.functional.softmax: exp(x) / sum exp(x) along `dim`."""
    return _run(input, dim, dtype, False, backend)


@public_op(reference=F.log_softmax, check=_check_softmax)
def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, backend):
    """torch.nn.functional.log_softmax: x - log sum exp(x) along `dim`."""
    return _run(input, dim, dtype, True, backend)
