"""Losses: cross_entropy, nll_loss (class-index targets, incl. segmentation (N, C, d1, ...)).

Kernels called here (same signature on cpu, triton, cuda; x viewed as [N, C, S], target as [N, S]
int64 with values in [0, C) or == ignore_index, weight[C] or None; all contiguous):
  cross_entropy_forward(x, target, weight, ignore_index, label_smoothing) -> (loss[N,S], wt[N,S], lse[N,S])
      loss = (1-e) w[t] (lse - x_t) + e/C sum_c w[c] (lse - x_c), wt = w[t]; both 0 where ignored
  cross_entropy_backward(x, target, weight, lse, ignore_index, label_smoothing, g[N,S] or g[1]) -> gx[N,C,S]
      the fused softmax - onehot gradient of sum_i g_i loss_i (g[1]: the same g for every i)
  nll_loss_forward(x, target, weight, ignore_index) -> (loss[N,S] = -w[t] x_t, wt[N,S])
  nll_loss_backward(target, weight, ignore_index, g[N,S] or g[1], shape (N,C,S)) -> gx[N,C,S]
  loss_sum(v) -> 0-d float64 tensor on v's device: sum of all values (the 'sum'/'mean' reductions)
  pointwise_loss_forward(kind, x, y, weight|None, pos_weight|None) -> loss (x's shape)
  pointwise_loss_sum(kind, ...same) -> 0-d float64 tensor: the sum of those values, never stored
      (optional: backends without it take pointwise_loss_forward + loss_sum)
  pointwise_loss_backward(kind, x, y, weight|None, pos_weight|None, g[numel] or g[1]) -> gx
      kind: MSE, BCE, BCE_LOGITS below (backward also TARGET_GRAD_KIND: d loss / d target);
      weight/pos_weight broadcast to x's shape, contiguous
'mean' is sum(loss) / sum(wt), as torch (nan when every target is ignored).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.nn import _reduction

from .. import _checks
from ..contracts import kernels
from ._eager import EagerOp, runnable
from ._op import ConfigMemo, apply, public_op

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"]

MSE, BCE, BCE_LOGITS = 0, 1, 2  # pointwise loss kinds, numbered as in csrc/kernels/loss.cpp
# backward-only kinds: d loss / d target (pointwise_loss_backward with these returns g * that)
TARGET_GRAD_KIND = {BCE: 3, BCE_LOGITS: 4}

REDUCTIONS = ("none", "mean", "sum")


def _reduction_arg(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        return _reduction.legacy_get_string(size_average, reduce, emit_warning=False)
    return reduction


def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")


def _check_class_target(input, target, weight, ignore_index, values=True):
    """input (C,), (N, C) or (N, C, d1, ...); target (), (N,) or (N, d1, ...) of int64 class indices
    (and, with `values`, every index in range)."""
    _checks.float_tensor(input, "input")
    if input.dim() == 0:
        raise ValueError("input: expected a (C,), (N, C) or (N, C, d1, ...) tensor, got a 0-D tensor")
    _checks.tensor(target, "target")
    if target.is_floating_point():
        raise TypeError("target: expected int64 class indices (class-probability targets are not supported), "
                        f"got {target.dtype}")
    if target.dtype != torch.int64:
        raise TypeError(f"target: expected dtype int64 (class indices), got {target.dtype}")
    if target.device != input.device:
        raise ValueError(f"target: expected device {input.device} like input, got {target.device}")
    expected = () if input.dim() == 1 else (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"target: expected shape {expected} for input of shape {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index: expected an int, got {type(ignore_index).__name__}")
    C = input.shape[0] if input.dim() == 1 else input.shape[1]
    if weight is not None:
        _checks.float_tensor(weight, "weight", 1)
        _checks.same_dtype_device(input, "input", weight, "weight")
        if weight.shape[0] != C:
            raise ValueError(f"weight: expected {C} elements (one per class), got {weight.shape[0]}")
    if values and not torch.compiler.is_compiling():  # a traced graph has no values yet: its custom op checks them
        check_target_values(target, C, ignore_index)


def check_target_values(target, C, ignore_index):
    """ValueError unless every class index lies in [0, C) or equals ignore_index."""
    if target.numel():
        lo, hi = target.aminmax()  # one pass; the exact test only when something lies outside [0, C)
        if int(lo) < 0 or int(hi) >= C:
            bad = ((target < 0) | (target >= C)) & (target != ignore_index)
            if bool(bad.any()):
                raise ValueError(f"target: class indices must be in [0, {C}) or equal ignore_index={ignore_index}; "
                                 f"got {int(target[bad].flatten()[0])}")


def _check_probability_target(input, target, weight, ignore_index):
    """Class-probability target: a float tensor of input's shape, dtype and device (no ignore_index)."""
    _checks.float_tensor(input, "input")
    if input.dim() == 0:
        raise ValueError("input: expected a (C,), (N, C) or (N, C, d1, ...) tensor, got a 0-D tensor")
    _checks.same_dtype_device(input, "input", target, "target")
    if target.shape != input.shape:
        raise ValueError(f"target: class probabilities must have input's shape {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}")
    if ignore_index != -100:
        raise ValueError(f"ignore_index: not supported with class-probability targets (as torch), got {ignore_index}")
    if weight is not None:
        C = input.shape[0] if input.dim() == 1 else input.shape[1]
        _checks.float_tensor(weight, "weight", 1)
        _checks.same_dtype_device(input, "input", weight, "weight")
        if weight.shape[0] != C:
            raise ValueError(f"weight: expected {C} elements (one per class), got {weight.shape[0]}")


_CROSS_ENTROPY_CHECKED = ConfigMemo()


def _check_cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                         reduction="mean", label_smoothing=0.0):
    """The checks of shapes, dtypes and arguments, run on a configuration's first call (ConfigMemo);
    the class indices' values are checked on every call (_check_cross_entropy_values)."""
    key = _CROSS_ENTROPY_CHECKED.key(input, target, weight, size_average, ignore_index, reduce, reduction,
                                     label_smoothing)
    if _CROSS_ENTROPY_CHECKED.get(key) is None:
        _checks.tensor(target, "target")
        if target.is_floating_point():
            _check_probability_target(input, target, weight, ignore_index)
        else:
            _check_class_target(input, target, weight, ignore_index, values=False)
        _check_reduction(_reduction_arg(size_average, reduce, reduction))
        if not 0.0 <= _checks.number(label_smoothing, "label_smoothing") <= 1.0:
            raise ValueError(f"label_smoothing: expected a value in [0, 1], got {label_smoothing}")
        _CROSS_ENTROPY_CHECKED.put(key, True)


def _check_cross_entropy_values(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                                reduction="mean", label_smoothing=0.0):
    """The class indices' values, checked on every call, repeats included (by the op's body; the eager
    C++ op checks them itself, with the same message)."""
    if not target.is_floating_point() and not torch.compiler.is_compiling():
        check_target_values(target, input.shape[0] if input.dim() == 1 else input.shape[1], ignore_index)


def _check_nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    _check_class_target(input, target, weight, ignore_index)
    _check_reduction(_reduction_arg(size_average, reduce, reduction))


def _as_ncs(input, target):
    """input as [N, C, S] and target as [N, S] (unbatched (C,) input: N = 1)."""
    if input.dim() == 1:
        input, target = input.unsqueeze(0), target.reshape(1)
    N, C = input.shape[:2]
    S = math.prod(input.shape[2:])
    return input.contiguous().view(N, C, S), target.contiguous().view(N, S)


def _logits_ncs(t):
    """A logits-shaped tensor ((C,), (N, C) or (N, C, d1, ...)) as [N, C, S]."""
    t = t.unsqueeze(0) if t.dim() == 1 else t
    return t.contiguous().view(t.shape[0], t.shape[1], math.prod(t.shape[2:]))


def reduce_loss(backend, loss, wt, reduction, out_shape):
    """(result, denominator): loss as is, its sum, or sum(loss) / sum(wt) (denominator kept for backward)."""
    if reduction == "none":
        return loss.view(out_shape), None
    denom = kernels.loss_sum[backend](wt) if wt is not None and reduction == "mean" else None
    return finish_reduction(kernels.loss_sum[backend](loss), reduction, loss.numel(), loss, denom)


def finish_reduction(total, reduction, count, like, denom=None):
    """(result, denominator) from a float64 total: itself ('sum') or total / denom, denom defaulting
    to the element count ('mean'); result in like's dtype and device."""
    if reduction == "sum":
        return total.to(like.device, like.dtype), None
    if denom is None:
        denom = torch.tensor(float(count), dtype=torch.float64, device=total.device)
    return (total / denom).to(like.device, like.dtype), denom


def upstream_scale(gy, reduction, denom, like):
    """Per-element (or one shared) factor d(result)/d(loss_i) * gy, in like's dtype/device."""
    if reduction == "none":
        return gy.contiguous().view(-1).to(like.dtype)
    g = gy.reshape(1).to(torch.float64)
    if reduction == "mean":
        g = g / denom.to(g.device)
    return g.to(like.dtype).to(like.device)


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, reduction, label_smoothing, backend):
        x, t = _as_ncs(input, target)
        w = weight.contiguous() if weight is not None else None
        loss, wt, lse = kernels.cross_entropy_forward[backend](x, t, w, ignore_index, label_smoothing)
        out, denom = reduce_loss(backend, loss, wt, reduction, target.shape)
        ctx.save_for_backward(x, t, w, lse)
        ctx.args = (ignore_index, reduction, label_smoothing, backend, denom, input.shape)
        return out

    @staticmethod
    def backward(ctx, gy):
        x, t, w, lse = ctx.saved_tensors
        ignore_index, reduction, label_smoothing, backend, denom, shape = ctx.args
        g = upstream_scale(gy, reduction, denom, x)
        gx = kernels.cross_entropy_backward[backend](x, t, w, lse, ignore_index, label_smoothing, g)
        return gx.view(shape), None, None, None, None, None, None


class _NllLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, reduction, backend):
        x, t = _as_ncs(input, target)
        w = weight.contiguous() if weight is not None else None
        loss, wt = kernels.nll_loss_forward[backend](x, t, w, ignore_index)
        out, denom = reduce_loss(backend, loss, wt, reduction, target.shape)
        ctx.save_for_backward(t, w)
        ctx.args = (ignore_index, reduction, backend, denom, input.shape, x.shape, x.dtype)
        return out

    @staticmethod
    def backward(ctx, gy):
        t, w = ctx.saved_tensors
        ignore_index, reduction, backend, denom, shape, shape3, dtype = ctx.args
        g = upstream_scale(gy, reduction, denom, gy.new_empty(0, dtype=dtype))
        gx = kernels.nll_loss_backward[backend](t, w, ignore_index, g, shape3)
        return gx.view(shape), None, None, None, None, None


class _SoftCrossEntropy(torch.autograd.Function):
    """Class-probability targets t (input's shape): sum_c w[c] t'[c] (lse - x[c]), t' = (1 - e) t + e / C;
    'mean' divides by the number of rows (N * d1 * ...), as torch. Differentiates the target too."""

    @staticmethod
    def forward(ctx, input, target, weight, reduction, label_smoothing, backend):
        x, t = _logits_ncs(input), _logits_ncs(target)
        w = weight.contiguous() if weight is not None else None
        loss, lse = kernels.soft_cross_entropy_forward[backend](x, t, w, label_smoothing)
        row_shape = input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
        out, denom = reduce_loss(backend, loss, None, reduction, row_shape)
        ctx.save_for_backward(x, t, w, lse)
        ctx.args = (reduction, label_smoothing, backend, denom, input.shape)
        return out

    @staticmethod
    def backward(ctx, gy):
        x, t, w, lse = ctx.saved_tensors
        reduction, label_smoothing, backend, denom, shape = ctx.args
        g = upstream_scale(gy, reduction, denom, x)
        gx, gt = kernels.soft_cross_entropy_backward[backend](x, t, w, lse, label_smoothing, g,
                                                              ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return (gx.view(shape) if gx is not None else None, gt.view(shape) if gt is not None else None,
                None, None, None, None)


_CROSS_ENTROPY = EagerOp("cross_entropy")
_REDUCTION_CODES = {"none": 0, "mean": 1, "sum": 2}   # csrc/torchops/loss.cpp


def _cross_entropy_plan(args, kwargs, checked):
    """public_op's lean plan for class-index targets: the eager op with the reduction's code and the
    scalars converted once (the op checks the indices on every call)."""
    input, target, reduction, ignore_index, label_smoothing = _cross_entropy_args(*args, **kwargs)
    if target.is_floating_point():
        return None
    ce = runnable(_CROSS_ENTROPY)
    if ce is None:
        return None
    ignore_index, reduction, label_smoothing = int(ignore_index), _REDUCTION_CODES[reduction], float(label_smoothing)

    def run(input, target, weight=None, *_, **__):
        return ce(input, target, weight, ignore_index, reduction, label_smoothing)
    return run


def _cross_entropy_args(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                        reduction="mean", label_smoothing=0.0):
    return input, target, _reduction_arg(size_average, reduce, reduction), ignore_index, label_smoothing


@public_op(reference=F.cross_entropy, check=_check_cross_entropy, repeat=True, lean=_cross_entropy_plan)
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0, *, backend):
    """torch.nn.functional.cross_entropy: log_softmax over dim 1 + nll, fused; class-index targets
    (int64, with ignore_index) or class probabilities (a float tensor of input's shape)."""
    reduction = _reduction_arg(size_average, reduce, reduction)
    if target.is_floating_point():
        return apply(_SoftCrossEntropy, input, target, weight, reduction, float(label_smoothing), backend)
    if backend == "cpu":  # the same kernels and reductions in one C++ op (fastcnn/ops/_eager.py)
        ce = runnable(_CROSS_ENTROPY)
        if ce is not None:
            return ce(input, target, weight, int(ignore_index), _REDUCTION_CODES[reduction], float(label_smoothing))
    _check_cross_entropy_values(input, target, ignore_index=ignore_index)  # (the C++ op checks them itself)
    return apply(_CrossEntropy, input, target, weight, int(ignore_index), reduction, float(label_smoothing), backend)


@public_op(reference=F.nll_loss, check=_check_nll_loss)
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
             *, backend):
    """torch.nn.functional.nll_loss on log-probabilities with class-index targets."""
    return apply(_NllLoss, input, target, weight, int(ignore_index), _reduction_arg(size_average, reduce, reduction),
                          backend)


def _check_pointwise(input, target, weight, reduction, pos_weight=None):
    """Every pointwise loss differentiates its target too (as torch's do)."""
    _checks.float_tensor(input, "input")
    _checks.tensor(target, "target")
    if not target.is_floating_point():
        raise TypeError(f"target: expected a floating-point tensor, got {target.dtype}")
    _checks.same_dtype_device(input, "input", target, "target")
    if target.shape != input.shape:
        raise ValueError(f"target: expected the shape of input {tuple(input.shape)}, got {tuple(target.shape)}")
    for t, name in ((weight, "weight"), (pos_weight, "pos_weight")):
        if t is None:
            continue
        _checks.float_tensor(t, name)
        _checks.same_dtype_device(input, "input", t, name)
        try:
            torch.broadcast_shapes(t.shape, input.shape)
        except RuntimeError:
            raise ValueError(f"{name}: shape {tuple(t.shape)} does not broadcast to input's {tuple(input.shape)}") from None
    _check_reduction(reduction)


def _check_mse(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    _check_pointwise(input, target, weight, _reduction_arg(size_average, reduce, reduction))
    if weight is not None and weight.shape != input.shape:
        raise ValueError(f"weight: expected the shape of input {tuple(input.shape)}, got {tuple(weight.shape)}")


def _check_bce(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    _check_pointwise(input, target, weight, _reduction_arg(size_average, reduce, reduction))


def _check_bce_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
    _check_pointwise(input, target, weight, _reduction_arg(size_average, reduce, reduction), pos_weight)


class _PointwiseLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind, input, target, weight, pos_weight, reduction, backend):
        x, y = input.contiguous(), target.contiguous()
        w, pw = (t.expand(x.shape).contiguous() if t is not None else None for t in (weight, pos_weight))
        # torch's weighted mse 'mean' divides by sum(weight); every other mean by the element count
        mean_weights = w.view(-1) if kind == MSE and w is not None else None
        if reduction != "none" and mean_weights is None and kernels.pointwise_loss_sum.offered_by(backend):
            total = kernels.pointwise_loss_sum[backend](kind, x, y, w, pw)  # no loss tensor written
            out, denom = finish_reduction(total, reduction, x.numel(), x)
        else:
            loss = kernels.pointwise_loss_forward[backend](kind, x, y, w, pw)
            out, denom = reduce_loss(backend, loss.view(-1), mean_weights, reduction, input.shape)
        ctx.save_for_backward(x, y, w, pw)
        ctx.args = (kind, reduction, backend, denom)
        return out

    @staticmethod
    def backward(ctx, gy):
        x, y, w, pw = ctx.saved_tensors
        kind, reduction, backend, denom = ctx.args
        g = upstream_scale(gy, reduction, denom, x)
        need_x, need_y = ctx.needs_input_grad[1:3]
        backward = kernels.pointwise_loss_backward[backend]
        gx = backward(kind, x, y, w, pw, g) if need_x or (need_y and kind == MSE) else None
        gt = None
        if need_y:  # mse is a function of x - y: its target gradient is the input gradient negated
            gt = gx.neg() if kind == MSE else backward(TARGET_GRAD_KIND[kind], x, y, w, pw, g)
        return None, gx if need_x else None, gt, None, None, None, None


@public_op(reference=F.mse_loss, check=_check_mse)
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None, *, backend):
    """torch.nn.functional.mse_loss: (input - target)^2 (times weight), reduced."""
    return apply(_PointwiseLoss, MSE, input, target, weight, None, _reduction_arg(size_average, reduce, reduction),
                                backend)


@public_op(reference=F.binary_cross_entropy, check=_check_bce)
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean", *, backend):
    """torch.nn.functional.binary_cross_entropy on probabilities (logs clamped at -100 as torch)."""
    return apply(_PointwiseLoss, BCE, input, target, weight, None, _reduction_arg(size_average, reduce, reduction),
                                backend)


@public_op(reference=F.binary_cross_entropy_with_logits, check=_check_bce_logits)
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None, *, backend):
    """torch.nn.functional.binary_cross_entropy_with_logits, in the stable form
    (1 - y) x + (1 + (pos_weight - 1) y) (log1p(exp(-|x|)) + max(-x, 0))."""
    return apply(_PointwiseLoss, BCE_LOGITS, input, target, weight, pos_weight,
                                _reduction_arg(size_average, reduce, reduction), backend)
