"""Normalisation ops: batch_norm (and, below, local_response_norm, normalize).

Kernels called here (same signature on cpu, triton, cuda; tensors contiguous, one float dtype):
  batch_norm_forward(x[N,C,S], weight[C]|None, bias[C]|None, running_mean[C]|None, running_var[C]|None,
                     training: bool, momentum: float, eps: float) -> (y[N,C,S], mean[C], invstd[C])
      training: batch statistics; running_mean/running_var (when given) updated in place with
      factor `momentum`, running_var with the unbiased variance, as torch. Eval: the running ones.
  batch_norm_backward(gy[N,C,S], x[N,C,S], weight[C]|None, mean[C], invstd[C], training: bool,
                      need_input: bool, need_weight: bool, need_bias: bool)
      -> (grad_input[N,C,S]|None, grad_weight[C]|None, grad_bias[C]|None)
  activation_forward(y, kind, p0, p1, out=y) / activation_backward(gy, y, kind, p0, p1, from_output=True)
      batch_norm's fused `activation=` (in place over y; its backward from the saved output)
  normalize_forward(x[outer,D,inner], p: float, eps: float) -> (y, norm[outer,inner])   y = x / max(||x||_p, eps)
  normalize_backward(gy, x, norm, p, eps) -> gx
  local_response_norm_forward(x[N,C,S], size, alpha, beta, k) -> (y, scale[N,C,S])
      scale = k + alpha/size * (sum of x^2 over the channel window [c - size//2, c + (size-1)//2]), y = x scale^-beta
  local_response_norm_backward(gy, x, scale, size, alpha, beta) -> gx
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ..contracts.activation import fused_code
from ._eager import EagerOp, runnable
from ._fused import fused_activation, reference_activation
from ._op import apply, memoised, public_op
from ._shapes import around, follows_channels_last, owned_outputs, reshaped_in_place

__all__ = ["batch_norm", "normalize", "local_response_norm"]


def _memory_format(x: torch.Tensor):
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _check_channel_vector(v, name, x, C):
    if v is None:
        return
    _checks.float_tensor(v, name, 1)
    _checks.same_dtype_device(x, "input", v, name)
    if v.shape[0] != C:
        raise ValueError(f"{name}: expected {C} elements (the channel count of input), got {v.shape[0]}")


def _check_batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                      eps=1e-5, *, activation=None, activation_param=None):
    _checks.float_tensor(input, "input", (2, 3, 4))
    C = input.shape[1]
    for v, name in ((running_mean, "running_mean"), (running_var, "running_var"), (weight, "weight"), (bias, "bias")):
        _check_channel_vector(v, name, input, C)
    if not training and (running_mean is None or running_var is None):
        raise ValueError("running_mean: in eval mode (training=False) running_mean and running_var are required")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_var: running_mean and running_var must both be given or both be None")
    if not isinstance(training, bool):
        raise TypeError(f"training: expected a bool, got {type(training).__name__}")
    if momentum is not None:
        _checks.number(momentum, "momentum")
    if _checks.number(eps, "eps") < 0:
        raise ValueError(f"eps: expected a value >= 0, got {eps}")
    if training and input.numel() // max(C, 1) <= 1:
        raise ValueError(f"input: expected more than 1 value per channel when training, got shape {tuple(input.shape)}")
    fused_activation(activation, activation_param)


class _BatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps, activation, act_param,
                backend):
        fmt = _memory_format(x)
        x3 = around(x, 1)
        buffers = [running_mean, running_var]
        work = [b.contiguous() if b is not None else None for b in buffers]  # kernels write these in place
        y3, mean, invstd = kernels.batch_norm_forward[backend](
            x3, _contig(weight), _contig(bias), work[0], work[1], training, momentum, eps)
        for buf, w in zip(buffers, work):
            if buf is not None and w is not buf:  # contiguous() made a copy: write the statistics back
                buf.copy_(w)
        if activation is not None:  # in place, while y is still in cache
            kernels.activation_forward[backend](y3, activation, act_param, 0.0, out=y3)
        ctx.save_for_backward(x3, weight, mean, invstd, y3 if activation is not None else None)
        ctx.activation, ctx.act_param = activation, act_param
        ctx.training, ctx.backend, ctx.shape = training, backend, x.shape
        ctx.has_bias = bias is not None
        if fmt is torch.contiguous_format:
            return reshaped_in_place(y3, x.shape)
        return y3.view(x.shape).contiguous(memory_format=fmt)

    @staticmethod
    def backward(ctx, gy):
        x3, weight, mean, invstd, y = ctx.saved_tensors
        need = ctx.needs_input_grad
        gy3 = gy.contiguous().view(x3.shape)
        if ctx.activation is not None:  # through the fused activation, from the output
            gy3 = kernels.activation_backward[ctx.backend](gy3, y.view(x3.shape), ctx.activation, ctx.act_param, 0.0,
                                                          True)
        gx, gw, gb = kernels.batch_norm_backward[ctx.backend](
            gy3, x3, _contig(weight), mean, invstd, ctx.training, need[0], need[1] and weight is not None,
            need[2] and ctx.has_bias)
        gx = gx.view(ctx.shape) if gx is not None else None
        return gx, gw, gb, None, None, None, None, None, None, None, None


def _contig(t):
    return t.contiguous() if t is not None else None


_BATCH_NORM = EagerOp("batch_norm")


def _dense_or_absent(*tensors) -> bool:
    return all(t is None or t.is_contiguous() for t in tensors)


def _batch_norm_reference(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                          eps=1e-5, *, activation=None, activation_param=None):
    activation, param = fused_activation(activation, activation_param)
    y = F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    return reference_activation(y, activation, param)


@public_op(reference=_batch_norm_reference, check=memoised(_check_batch_norm), repeat=True)
@follows_channels_last
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5,
               *, activation=None, activation_param=None, backend):
    """torch.nn.functional.batch_norm on (N, C), (N, C, L) or (N, C, H, W) input, plus a fused
    `activation=` / `activation_param=` as conv2d's and linear's, applied to the result in the same op."""
    momentum = 0.0 if momentum is None else float(momentum)
    activation, param = fused_activation(activation, activation_param)
    # the same arithmetic and kernels in one C++ op (fastcnn/ops/_eager.py), for dense tensors: the
    # op writes the running buffers in place, where the Function copies non-contiguous ones back
    if backend == "cpu" and input.numel() and _dense_or_absent(input, weight, bias, running_mean, running_var):
        bn = runnable(_BATCH_NORM)
        if bn is not None:
            return bn(input, weight, bias, running_mean, running_var, bool(training), momentum, float(eps),
                      fused_code(activation), param)
    return apply(_BatchNorm, input, weight, bias, running_mean, running_var, training, momentum, float(eps),
                 activation, param, backend)


def _check_normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    _checks.float_tensor(input, "input")
    if _checks.number(p, "p") <= 0:
        raise ValueError(f"p: expected a positive norm order, got {p}")
    if _checks.number(eps, "eps") < 0:
        raise ValueError(f"eps: expected a value >= 0, got {eps}")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim: expected an int, got {type(dim).__name__}")
    ndim = max(input.dim(), 1)
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim: expected a value in [{-ndim}, {ndim - 1}] for a {input.dim()}-D input, got {dim}")
    if out is not None:
        raise ValueError("out: fastcnn.ops.normalize returns a new tensor; out= is not supported")


@owned_outputs
class _Normalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p, dim, eps, backend):
        shape = x.shape
        xs = x.reshape(1) if x.dim() == 0 else x
        x3 = around(xs, dim)
        y, norm = kernels.normalize_forward[backend](x3, p, eps)
        ctx.save_for_backward(x3, norm)
        ctx.args = (p, eps, backend, shape)
        return y.view(shape)

    @staticmethod
    def backward(ctx, gy):
        x3, norm = ctx.saved_tensors
        p, eps, backend, shape = ctx.args
        gx = kernels.normalize_backward[backend](gy.contiguous().view(x3.shape), x3, norm, p, eps)
        return gx.view(shape), None, None, None, None


@public_op(reference=F.normalize, check=_check_normalize, repeat=True)
@follows_channels_last
def normalize(input, p=2.0, dim=1, eps=1e-12, out=None, *, backend):
    """torch.nn.functional.normalize: input / max(||input||_p, eps) along dim (p = 2 fully vectorised)."""
    return apply(_Normalize, input, float(p), dim, float(eps), backend)


def _check_local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    _checks.float_tensor(input, "input")
    if input.dim() < 3:
        raise ValueError(f"input: expected a 3-D or higher tensor (N, C, ...), got {input.dim()}-D with shape "
                         f"{tuple(input.shape)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size: expected a positive int, got {size!r}")
    for value, name in ((alpha, "alpha"), (beta, "beta"), (k, "k")):
        _checks.number(value, name)


@owned_outputs
class _LocalResponseNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, size, alpha, beta, k, backend):
        x3 = around(x, 1)
        y, scale = kernels.local_response_norm_forward[backend](x3, size, alpha, beta, k)
        ctx.save_for_backward(x3, scale)
        ctx.args = (size, alpha, beta, backend, x.shape)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, gy):
        x3, scale = ctx.saved_tensors
        size, alpha, beta, backend, shape = ctx.args
        gx = kernels.local_response_norm_backward[backend](gy.contiguous().view(x3.shape), x3, scale, size, alpha, beta)
        return gx.view(shape), None, None, None, None, None


@public_op(reference=F.local_response_norm, check=_check_local_response_norm)
@follows_channels_last
def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0, *, backend):
    """torch.nn.functional.local_response_norm: x / (k + alpha/size * sum of x^2 over `size` neighbouring
    channels)^beta (alpha averaged over size, as torch; the window is zero-padded at the ends)."""
    return apply(_LocalResponseNorm, input, size, float(alpha), float(beta), float(k), backend)
