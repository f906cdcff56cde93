"""Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d, max_unpool2d.

Same names, arguments and defaults as torch.nn.functional, plus `backend=`. Inputs are 3-D (C,H,W)
or 4-D (N,C,H,W), float32/float64, contiguous or channels_last (kept: the output comes back in the
input's memory format, as in torch); an empty batch gives an empty result.

Kernels this module calls (same name and signature on 'cpu', 'triton' and 'cuda'). All tensors are
4-D and either all contiguous NCHW or all channels_last, as the first one (fastcnn/contracts/pool.py);
outputs come back in that layout. Pairs are (h, w) tuples of ints; indices are int64 h * W + w
within a plane, as torch's.
  max_pool2d_forward(x[N,C,H,W], kernel_size, stride, padding, dilation, out_hw:(P,Q), with_indices:bool)
      -> (y[N,C,P,Q], indices[N,C,P,Q] or None)
      ties keep the first index in row-major window order; a NaN propagates (index of the last NaN).
  avg_pool2d_forward(x[N,C,H,W], kernel_size, stride, padding, out_hw, count_include_pad:bool,
                     divisor_override:int|None) -> y[N,C,P,Q]
  avg_pool2d_backward(gy[N,C,P,Q], in_hw:(H,W), kernel_size, stride, padding, count_include_pad,
                      divisor_override) -> gx[N,C,H,W]
  adaptive_max_pool2d_forward(x[N,C,H,W], out_hw) -> (y[N,C,P,Q], indices[N,C,P,Q])
  adaptive_avg_pool2d_forward(x[N,C,H,W], out_hw) -> y[N,C,P,Q]
  adaptive_avg_pool2d_backward(gy[N,C,P,Q], in_hw) -> gx[N,C,H,W]
  pool_index_scatter(src[N,C,P,Q], indices[N,C,P,Q], out_hw:(H,W), accumulate:bool) -> out[N,C,H,W]
      out = 0, then out[n,c].flat[indices[n,c,p,q]] (+)= src[n,c,p,q]: max-pooling backward
      (accumulate=True) and max_unpool2d forward (False). Indices outside [0, H*W) are never written.
  pool_index_gather(src[N,C,H,W], indices[N,C,P,Q]) -> out[N,C,P,Q]
      out[n,c,p,q] = src[n,c].flat[indices[n,c,p,q]]: max_unpool2d backward.
Window geometry (output sizes, avg divisors, adaptive bounds) is shared with the CUDA kernels in
fastcnn/kernels/shared/pool_geometry.cuh, which the cpu kernels include too.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ._eager import EagerOp, runnable
from ._op import ConfigMemo, apply, public_op
from ..contracts.pool import PoolWindow, is_channels_last, like_input, same_layout

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "max_unpool2d"]

Pair = Tuple[int, int]


# ------------------------------------------------------------------------------------------ checks

def _input(x, name="input") -> torch.Tensor:
    _checks.float_tensor(x, name, ndims=(3, 4))
    if any(s == 0 for s in x.shape[-3:]):
        raise ValueError(f"{name}: expected non-zero channels, height and width (only the batch may be empty), "
                         f"got shape {tuple(x.shape)}")
    return x


def _stride(stride, kernel: Pair) -> Pair:
    if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0):
        return kernel
    return _checks.pair(stride, "stride", minimum=1)


def _window_args(kernel_size, stride, padding, dilation) -> Tuple[Pair, Pair, Pair, Pair]:
    k = _checks.pair(kernel_size, "kernel_size", minimum=1)
    s = _stride(stride, k)
    p = _checks.pair(padding, "padding", minimum=0)
    d = _checks.pair(dilation, "dilation", minimum=1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"padding: expected at most half of kernel_size {k}, got {p}")
    return k, s, p, d


def _out_hw(x, k: Pair, s: Pair, p: Pair, d: Pair, ceil_mode) -> Pair:
    """Output size as torch's pooling_output_shape (and pool_geometry.cuh's out_size)."""
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"ceil_mode: expected a bool, got {type(ceil_mode).__name__}")
    out = []
    for size, kk, ss, pp, dd in zip(x.shape[-2:], k, s, p, d):
        n = (size + 2 * pp - dd * (kk - 1) - 1 + (ss - 1 if ceil_mode else 0)) // ss + 1
        if ceil_mode and (n - 1) * ss >= size + pp:
            n -= 1
        out.append(n)
    if min(out) < 1:
        raise ValueError(f"kernel_size: the (dilated) kernel {k} (dilation {d}) is larger than the padded input "
                         f"{tuple(x.shape[-2:])} + 2*{p}; the output would be {tuple(out)}")
    return tuple(out)


def _adaptive_out_hw(x, output_size) -> Pair:
    if isinstance(output_size, bool):
        raise TypeError(f"output_size: expected an int or a pair of ints/None, got {output_size!r}")
    if isinstance(output_size, int):
        sizes = (output_size, output_size)
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        sizes = tuple(output_size)
    else:
        raise TypeError(f"output_size: expected an int or a pair of ints/None, got {output_size!r}")
    out = []
    for v, size in zip(sizes, x.shape[-2:]):
        if v is None:
            v = size
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"output_size: expected ints or None, got {output_size!r}")
        if v < 0:
            raise ValueError(f"output_size: expected values >= 0, got {output_size!r}")
        out.append(v)
    return tuple(out)


_WINDOWS = ConfigMemo()


def _checked_window(input, kernel_size, stride, padding, dilation, ceil_mode) -> PoolWindow:
    """The window after the input, window and output-size checks, remembered per configuration
    (the check and the op both ask)."""
    key = _WINDOWS.key(input, kernel_size, stride, padding, dilation, ceil_mode)
    found = _WINDOWS.get(key)
    if found is None:
        _input(input)
        k, s, p, d = _window_args(kernel_size, stride, padding, dilation)
        found = PoolWindow(k, s, p, d, _out_hw(input, k, s, p, d, ceil_mode))
        _WINDOWS.put(key, found)
    return found


def _check_max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The window (kernel, stride, padding, dilation, out_hw), for the op's body (public_op's checked=)."""
    window = _checked_window(input, kernel_size, stride, padding, dilation, ceil_mode)
    if not isinstance(return_indices, bool):
        raise TypeError(f"return_indices: expected a bool, got {type(return_indices).__name__}")
    return window


def _check_avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                      divisor_override=None):
    window = _checked_window(input, kernel_size, stride, padding, 1, ceil_mode)
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"count_include_pad: expected a bool, got {type(count_include_pad).__name__}")
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, int):
            raise TypeError(f"divisor_override: expected an int or None, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError("divisor_override: expected a non-zero int, got 0")
    return window


def _check_adaptive(input, output_size, return_indices=False):
    _input(input)
    _adaptive_out_hw(input, output_size)
    if not isinstance(return_indices, bool):
        raise TypeError(f"return_indices: expected a bool, got {type(return_indices).__name__}")


def _unpool_out_hw(x, k: Pair, s: Pair, p: Pair, output_size) -> Pair:
    default = tuple((size - 1) * ss - 2 * pp + kk for size, kk, ss, pp in zip(x.shape[-2:], k, s, p))
    if output_size is None:
        out = default
    else:
        if isinstance(output_size, torch.Size):
            output_size = tuple(output_size)
        if not isinstance(output_size, (tuple, list)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in output_size):
            raise TypeError(f"output_size: expected a sequence of ints, got {output_size!r}")
        if len(output_size) not in (2, x.dim()):
            raise ValueError(f"output_size: expected 2 or {x.dim()} entries, got {len(output_size)}")
        out = tuple(output_size[-2:])
        for dim, (o, dflt, ss) in enumerate(zip(out, default, s)):
            if not (dflt - ss < o < dflt + ss):
                raise ValueError(f"output_size: dim {dim} must lie strictly between {dflt - ss} and {dflt + ss}, "
                                 f"got {tuple(output_size)}")
    if min(out) < 1:
        raise ValueError(f"output_size: the unpooled size {out} is empty (kernel_size {k}, stride {s}, padding {p})")
    return out


def _check_max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    _input(input)
    _checks.tensor(indices, "indices")
    if indices.dtype != torch.int64:
        raise TypeError(f"indices: expected dtype torch.int64 (as returned by max_pool2d), got {indices.dtype}")
    if indices.shape != input.shape:
        raise ValueError(f"indices: expected the shape of input {tuple(input.shape)}, got {tuple(indices.shape)}")
    if indices.device != input.device:
        raise ValueError(f"indices: expected device {input.device} like input, got {indices.device}")
    k = _checks.pair(kernel_size, "kernel_size", minimum=1)
    s = _stride(stride, k)
    p = _checks.pair(padding, "padding", minimum=0)
    out = _unpool_out_hw(input, k, s, p, output_size)
    if indices.numel():
        lo, hi = (int(v) for v in torch.aminmax(indices))  # one pass over the indices, not two
        if lo < 0 or hi >= out[0] * out[1]:
            raise ValueError(f"indices: expected values in [0, {out[0] * out[1]}) for an output of {out}, "
                             f"got values in [{lo}, {hi}]")


# ---------------------------------------------------------------------------------------- autograd

def _as_4d(x: torch.Tensor):
    """(x as 4-D, function that restores the caller's rank)."""
    if x.dim() == 3:
        return x.unsqueeze(0), lambda t: t.squeeze(0)
    return x, lambda t: t


def _argmax_grad(ctx, gy):
    """Gradient of a max pool that saved its argmax indices: gy accumulated at those input positions."""
    (idx,) = ctx.saved_tensors
    idx, gy = same_layout(idx, gy)
    return like_input(kernels.pool_index_scatter[ctx.backend](gy, idx, ctx.in_hw, True), ctx.channels_last)


class _MaxPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, s, p, d, out_hw, return_indices, backend):
        (x,) = same_layout(x)
        with_indices = return_indices or ctx.needs_input_grad[0]
        y, idx = kernels.max_pool2d_forward[backend](x, k, s, p, d, out_hw, with_indices)
        ctx.backend, ctx.in_hw, ctx.channels_last = backend, tuple(x.shape[-2:]), is_channels_last(x)
        if idx is not None:
            ctx.save_for_backward(idx)
            ctx.mark_non_differentiable(idx)
        return y, idx

    @staticmethod
    def backward(ctx, gy, _gidx):
        return _argmax_grad(ctx, gy), None, None, None, None, None, None, None


class _AvgPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, s, p, out_hw, count_include_pad, divisor_override, backend):
        (x,) = same_layout(x)
        ctx.args = (tuple(x.shape[-2:]), k, s, p, count_include_pad, divisor_override)
        ctx.backend, ctx.channels_last = backend, is_channels_last(x)
        return kernels.avg_pool2d_forward[backend](x, k, s, p, out_hw, count_include_pad, divisor_override)

    @staticmethod
    def backward(ctx, gy):
        (gy,) = same_layout(gy)
        gx = like_input(kernels.avg_pool2d_backward[ctx.backend](gy, *ctx.args), ctx.channels_last)
        return gx, None, None, None, None, None, None, None


class _AdaptiveAvgPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, out_hw, backend):
        (x,) = same_layout(x)
        ctx.backend, ctx.in_hw = backend, tuple(x.shape[-2:])
        # torch computes a 1x1 adaptive average as a mean, whose gradient is NCHW whatever the input
        ctx.channels_last = is_channels_last(x) and tuple(out_hw) != (1, 1)
        return kernels.adaptive_avg_pool2d_forward[backend](x, out_hw)

    @staticmethod
    def backward(ctx, gy):
        (gy,) = same_layout(gy)
        gx = kernels.adaptive_avg_pool2d_backward[ctx.backend](gy, ctx.in_hw)
        return like_input(gx, ctx.channels_last), None, None


class _AdaptiveMaxPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, out_hw, backend):
        (x,) = same_layout(x)
        y, idx = kernels.adaptive_max_pool2d_forward[backend](x, out_hw)
        ctx.backend, ctx.in_hw, ctx.channels_last = backend, tuple(x.shape[-2:]), is_channels_last(x)
        ctx.save_for_backward(idx)
        ctx.mark_non_differentiable(idx)
        return y, idx

    @staticmethod
    def backward(ctx, gy, _gidx):
        return _argmax_grad(ctx, gy), None, None


class _MaxUnpool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, idx, out_hw, backend):
        x, idx = same_layout(x, idx)
        ctx.backend = backend
        ctx.save_for_backward(idx)
        return kernels.pool_index_scatter[backend](x, idx, out_hw, False)

    @staticmethod
    def backward(ctx, gy):
        (idx,) = ctx.saved_tensors
        gy, idx = same_layout(gy, idx)
        return kernels.pool_index_gather[ctx.backend](gy, idx), None, None, None


# -------------------------------------------------------------------------------------- public ops

_MAX_POOL = EagerOp("max_pool2d")


def _max_pool_plan(args, kwargs, checked):
    """public_op's lean plan for a 4-D input without indices: the eager op on the checked window."""
    input, return_indices = _pool_input(*args, **kwargs)
    if input.dim() != 4 or return_indices:
        return None
    k, s, p, d, out_hw = checked
    pool = runnable(_MAX_POOL)
    if pool is None:
        return None

    def run(input, *_, **__):
        return pool(input, k, s, p, d, out_hw)
    return run


def _pool_input(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return input, return_indices


@public_op(reference=F.max_pool2d, check=_check_max_pool2d, repeat=True, lean=_max_pool_plan)
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, *,
               backend, checked):
    k, s, p, d, out_hw = checked
    x = input.unsqueeze(0) if input.dim() == 3 else input
    pool = None
    if backend == "cpu" and not return_indices:  # the same kernels in one C++ op (fastcnn/ops/_eager.py)
        pool = runnable(_MAX_POOL)
    if pool is not None:
        y, idx = pool(x, k, s, p, d, out_hw), None
    else:
        y, idx = apply(_MaxPool2d, x, k, s, p, d, out_hw, return_indices, backend)
    if input.dim() == 3:
        y, idx = y.squeeze(0), idx.squeeze(0) if return_indices else None
    return (y, idx) if return_indices else y


@public_op(reference=F.avg_pool2d, check=_check_avg_pool2d, repeat=True)
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, backend, checked):
    k, s, p, d, out_hw = checked
    if input.dim() == 3:
        return apply(_AvgPool2d, input.unsqueeze(0), k, s, p, out_hw, count_include_pad, divisor_override,
                     backend).squeeze(0)
    return apply(_AvgPool2d, input, k, s, p, out_hw, count_include_pad, divisor_override, backend)


@public_op(reference=F.adaptive_avg_pool2d, check=_check_adaptive)
def adaptive_avg_pool2d(input, output_size, *, backend):
    x, restore = _as_4d(input)
    return restore(apply(_AdaptiveAvgPool2d, x, _adaptive_out_hw(x, output_size), backend))


@public_op(reference=F.adaptive_max_pool2d, check=_check_adaptive)
def adaptive_max_pool2d(input, output_size, return_indices=False, *, backend):
    x, restore = _as_4d(input)
    y, idx = apply(_AdaptiveMaxPool2d, x, _adaptive_out_hw(x, output_size), backend)
    return (restore(y), restore(idx)) if return_indices else restore(y)


@public_op(reference=F.max_unpool2d, check=_check_max_unpool2d)
def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None, *, backend):
    k = _checks.pair(kernel_size, "kernel_size", minimum=1)
    s = _stride(stride, k)
    p = _checks.pair(padding, "padding", minimum=0)
    out_hw = _unpool_out_hw(input, k, s, p, output_size)
    x, restore = _as_4d(input)
    idx, _ = _as_4d(indices)
    return restore(apply(_MaxUnpool2d, x, idx, out_hw, backend))
