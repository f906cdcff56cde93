"""fastcnn's kernels as torch.library custom ops, for torch.compile and torch.export.

A compiled or exported graph cannot call a kernel that reads data pointers: Dynamo refuses pybind
functions ("Attempted to call function marked as skipped"), and the fake tensors it traces with have
no data. So while a graph is traced (torch.compiler.is_compiling(), which torch.export sets too),
a kernel slot (`kernels.<slot>[backend]`, fastcnn/_registry.py KernelSlot) hands out the kernel's
custom op `torch.ops.fastcnn.<kernel>` instead of the kernel: an opaque graph node with a fake
implementation (output shapes, dtypes and layouts), whose real implementation is the same registered
kernel. Everything around the kernels (argument checks, backend choice, the autograd.Functions with
their fastcnn backward) is plain Python that Dynamo traces, so a compiled model runs exactly the
kernels eager mode runs, forward and backward.

Eager calls never come here: a slot returns the plain kernel (a custom op call costs ~10 us of
dispatch, more than the whole op on a small tensor).

Each op takes the backend as its last argument, so one op serves cpu, triton and cuda. Kernel
arguments that are None-able outputs (an argmax nobody asked for, a gradient not needed) come back
as empty tensors from the op and are turned into None again by the shim, which has the kernel's
exact calling signature. `calls` counts the real executions per kernel (tests read it to prove a
compiled graph ran fastcnn's kernels).
"""
from __future__ import annotations

import collections
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .. import _registry
from ..contracts import kernels
from ..contracts.conv import ConvShape
from ..contracts.pool import is_channels_last

NAMESPACE = "fastcnn"
calls: collections.Counter = collections.Counter()  # kernel name -> real executions through its custom op

_SHIMS: Dict[str, Callable] = {}  # kernel name -> function(backend) -> shim with the kernel's signature


def _kernel(backend: str, slot: _registry.KernelSlot) -> Callable:
    """The eager kernel of `slot` (the custom op's real implementation runs outside any trace)."""
    calls[slot.name] += 1
    return _registry._lookup(slot, backend)


def _tuples(args):
    """custom ops hand int sequences over as lists; the kernels were written for tuples."""
    return [tuple(a) if isinstance(a, list) else a for a in args]


def _op(name: str, mutates_args=()):
    """Decorator: `fn` (annotated, backend last) becomes custom op fastcnn::<name> running kernel `name`."""
    def deco(fn):
        return torch.library.custom_op(f"{NAMESPACE}::{name}", fn, mutates_args=mutates_args)
    return deco


def _empty_like_layout(ref: Tensor, shape, dtype=None) -> Tensor:
    """A new tensor of `shape` in ref's layout (channels_last when ref is), as the kernels allocate."""
    fmt = torch.channels_last if len(shape) == 4 and is_channels_last(ref) else torch.contiguous_format
    return torch.empty(tuple(shape), dtype=dtype or ref.dtype, device=ref.device, memory_format=fmt)


def _dense_like(t: Tensor) -> Tensor:
    """torch.empty_like for a dense (contiguous or channels_last) tensor, as the cpu kernels' empty_like."""
    return torch.empty_like(t) if t.is_contiguous() or is_channels_last(t) else torch.empty_like(
        t, memory_format=torch.contiguous_format)


def _none(t: Tensor) -> Optional[Tensor]:
    return None if t.numel() == 0 and t.dim() == 1 and t.dtype == torch.uint8 else t


def _nothing(like: Tensor) -> Tensor:
    """The stand-in for a None output: a 1-D empty uint8 tensor (no kernel output looks like it)."""
    return torch.empty(0, dtype=torch.uint8, device=like.device)


def _somethings(outs, like: Tensor) -> tuple:
    """A kernel's outputs for the op: None (a gradient not asked for) becomes _nothing."""
    return tuple(t if t is not None else _nothing(like) for t in outs)


def _if_needed(need: bool, make: Callable[[], Tensor], like: Tensor) -> Tensor:
    """A fake output the kernel allocates only when asked for."""
    return make() if need else _nothing(like)


def _float64_scalar(like: Tensor) -> Tensor:
    """The fake of a kernel's float64 0-D sum (accumulated in double, as the kernels do)."""
    return torch.empty((), dtype=torch.float64, device=like.device)


# ---------------------------------------------------------------------------------------- activations
@_op("activation_forward")
def activation_forward(x: Tensor, kind: str, p0: float, p1: float, backend: str) -> Tensor:
    return _kernel(backend, kernels.activation_forward)(x, kind, p0, p1)


activation_forward.register_fake(lambda x, kind, p0, p1, backend: _dense_like(x))


@_op("activation_forward_", mutates_args=("x",))
def activation_forward_(x: Tensor, kind: str, p0: float, p1: float, backend: str) -> None:
    _kernel(backend, kernels.activation_forward)(x, kind, p0, p1, out=x)


activation_forward_.register_fake(lambda x, kind, p0, p1, backend: None)


@_op("activation_backward")
def activation_backward(gy: Tensor, saved: Tensor, kind: str, p0: float, p1: float, from_output: bool,
                        backend: str) -> Tensor:
    return _kernel(backend, kernels.activation_backward)(gy, saved, kind, p0, p1, from_output)


activation_backward.register_fake(lambda gy, saved, kind, p0, p1, from_output, backend: _dense_like(saved))


def _activation_forward_shim(backend):
    def shim(x, kind, p0=0.0, p1=0.0, out=None):
        if out is None:
            return activation_forward(x, kind, float(p0), float(p1), backend)
        if out is not x:
            raise NotImplementedError("fastcnn: under torch.compile activation_forward writes in place only (out=x)")
        activation_forward_(x, kind, float(p0), float(p1), backend)
        return x
    return shim


_SHIMS["activation_forward"] = _activation_forward_shim
_SHIMS["activation_backward"] = lambda backend: lambda gy, saved, kind, p0=0.0, p1=0.0, from_output=True: \
    activation_backward(gy, saved, kind, float(p0), float(p1), bool(from_output), backend)


# --------------------------------------------------------------------------------------- convolution
@_op("conv2d_pass")
def conv2d_pass(direction: str, a: Tensor, b: Tensor, weight: Tensor, bias: Optional[Tensor], shape: Sequence[int],
                activation: Optional[str], act_param: float, backend: str, algo: str) -> Tensor:
    """One pass of a convolution (fastcnn/ops/conv.py _pass: the algorithm choice, the kernel, the
    non-finite recheck of tile transforms), as one op; `shape` is the ConvShape record as 16 ints."""
    from . import conv

    shape = ConvShape(*(int(v) for v in shape))
    cfg = conv.ConvConfig(shape, activation, act_param, backend, algo)
    calls[direction] += 1
    if direction == "conv2d_forward":
        args = (a, b, bias, shape, activation, act_param)
    else:
        args = (a, b, shape)
    return conv._pass(cfg, direction, shape.N, weight, *args)


@conv2d_pass.register_fake
def _(direction, a, b, weight, bias, shape, activation, act_param, backend, algo):
    shape = ConvShape(*shape)
    out = {"conv2d_forward": shape.y_shape, "conv2d_backward_input": shape.x_shape}.get(direction, shape.w_shape)
    return a.new_empty(out)


def conv_pass(cfg, direction: str, N: int, w: Tensor, *args) -> Tensor:
    """fastcnn/ops/conv.py's _pass(cfg, direction, N, w, *args) as the custom op (while tracing)."""
    bias, activation, act_param = None, None, 0.0
    if direction == "conv2d_forward":
        bias, activation, act_param = args[2], args[4], args[5]
    return conv2d_pass(direction, args[0], args[1], w, bias, list(cfg.shape), activation, float(act_param),
                       cfg.backend, cfg.algo)


@_op("channel_sum")
def channel_sum(t: Tensor, backend: str) -> Tensor:
    return _kernel(backend, kernels.channel_sum)(t)


channel_sum.register_fake(lambda t, backend: t.new_empty(t.shape[1]))
_SHIMS["channel_sum"] = lambda backend: lambda t: channel_sum(t, backend)


@_op("channel_bias_act", mutates_args=("y",))
def channel_bias_act(y: Tensor, bias: Optional[Tensor], activation: Optional[str], act_param: float,
                     backend: str) -> None:
    _kernel(backend, kernels.channel_bias_act)(y, bias, activation, act_param)


channel_bias_act.register_fake(lambda y, bias, activation, act_param, backend: None)


def _channel_bias_act_shim(backend):
    def shim(y, bias, activation=None, act_param=0.0):
        channel_bias_act(y, bias, activation, float(act_param), backend)
        return y
    return shim


_SHIMS["channel_bias_act"] = _channel_bias_act_shim


# ---------------------------------------------------------------------------------------------- GEMM
def _gemm_shape(a, b, trans_a, trans_b):
    return (a.shape[1] if trans_a else a.shape[0], b.shape[0] if trans_b else b.shape[1])


@_op("gemm")
def gemm(a: Tensor, b: Tensor, trans_a: bool, trans_b: bool, alpha: float, backend: str) -> Tensor:
    return _kernel(backend, kernels.gemm)(a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha)


gemm.register_fake(lambda a, b, trans_a, trans_b, alpha, backend: a.new_empty(_gemm_shape(a, b, trans_a, trans_b)))


@_op("gemm_", mutates_args=("out",))
def gemm_(a: Tensor, b: Tensor, out: Tensor, trans_a: bool, trans_b: bool, alpha: float, beta: float,
          backend: str) -> None:
    _kernel(backend, kernels.gemm)(a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, out=out)


gemm_.register_fake(lambda a, b, out, trans_a, trans_b, alpha, beta, backend: None)


def _gemm_shim(backend):
    def shim(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
        if out is None:
            return gemm(a, b, bool(trans_a), bool(trans_b), float(alpha), backend)
        gemm_(a, b, out, bool(trans_a), bool(trans_b), float(alpha), float(beta), backend)
        return out
    return shim


_SHIMS["gemm"] = _gemm_shim


# ------------------------------------------------------------------------------------------- pooling
def _pool_out(x, out_hw):
    return (x.shape[0], x.shape[1], *out_hw)


@_op("max_pool2d_forward")
def max_pool2d_forward(x: Tensor, k: Sequence[int], s: Sequence[int], p: Sequence[int], d: Sequence[int],
                       out_hw: Sequence[int], with_indices: bool, backend: str) -> Tuple[Tensor, Tensor]:
    y, idx = _kernel(backend, kernels.max_pool2d_forward)(x, *_tuples([k, s, p, d, out_hw]), with_indices)
    return y, idx if idx is not None else _nothing(x)


@max_pool2d_forward.register_fake
def _(x, k, s, p, d, out_hw, with_indices, backend):
    y = _empty_like_layout(x, _pool_out(x, out_hw))
    return y, _empty_like_layout(x, _pool_out(x, out_hw), torch.int64) if with_indices else _nothing(x)


def _max_pool_shim(backend):
    def shim(x, k, s, p, d, out_hw, with_indices):
        y, idx = max_pool2d_forward(x, k, s, p, d, out_hw, bool(with_indices), backend)
        return y, idx if with_indices else None
    return shim


_SHIMS["max_pool2d_forward"] = _max_pool_shim


@_op("avg_pool2d_forward")
def avg_pool2d_forward(x: Tensor, k: Sequence[int], s: Sequence[int], p: Sequence[int], out_hw: Sequence[int],
                       count_include_pad: bool, divisor_override: Optional[int], backend: str) -> Tensor:
    return _kernel(backend, kernels.avg_pool2d_forward)(x, *_tuples([k, s, p, out_hw]), count_include_pad, divisor_override)


avg_pool2d_forward.register_fake(lambda x, k, s, p, out_hw, cip, div, backend: _empty_like_layout(x, _pool_out(x, out_hw)))
_SHIMS["avg_pool2d_forward"] = lambda backend: lambda x, k, s, p, out_hw, cip, div: \
    avg_pool2d_forward(x, k, s, p, out_hw, bool(cip), div, backend)


@_op("avg_pool2d_backward")
def avg_pool2d_backward(gy: Tensor, in_hw: Sequence[int], k: Sequence[int], s: Sequence[int], p: Sequence[int],
                        count_include_pad: bool, divisor_override: Optional[int], backend: str) -> Tensor:
    return _kernel(backend, kernels.avg_pool2d_backward)(gy, *_tuples([in_hw, k, s, p]), count_include_pad,
                                                         divisor_override)


avg_pool2d_backward.register_fake(lambda gy, in_hw, k, s, p, cip, div, backend:
                                  _empty_like_layout(gy, _pool_out(gy, in_hw)))
_SHIMS["avg_pool2d_backward"] = lambda backend: lambda gy, in_hw, k, s, p, cip, div: \
    avg_pool2d_backward(gy, in_hw, k, s, p, bool(cip), div, backend)


@_op("adaptive_avg_pool2d_forward")
def adaptive_avg_pool2d_forward(x: Tensor, out_hw: Sequence[int], backend: str) -> Tensor:
    return _kernel(backend, kernels.adaptive_avg_pool2d_forward)(x, tuple(out_hw))


adaptive_avg_pool2d_forward.register_fake(lambda x, out_hw, backend: _empty_like_layout(x, _pool_out(x, out_hw)))
_SHIMS["adaptive_avg_pool2d_forward"] = lambda backend: lambda x, out_hw: \
    adaptive_avg_pool2d_forward(x, out_hw, backend)


@_op("adaptive_avg_pool2d_backward")
def adaptive_avg_pool2d_backward(gy: Tensor, in_hw: Sequence[int], backend: str) -> Tensor:
    return _kernel(backend, kernels.adaptive_avg_pool2d_backward)(gy, tuple(in_hw))


adaptive_avg_pool2d_backward.register_fake(lambda gy, in_hw, backend: _empty_like_layout(gy, _pool_out(gy, in_hw)))
_SHIMS["adaptive_avg_pool2d_backward"] = lambda backend: lambda gy, in_hw: \
    adaptive_avg_pool2d_backward(gy, in_hw, backend)


@_op("adaptive_max_pool2d_forward")
def adaptive_max_pool2d_forward(x: Tensor, out_hw: Sequence[int], backend: str) -> Tuple[Tensor, Tensor]:
    return tuple(_kernel(backend, kernels.adaptive_max_pool2d_forward)(x, tuple(out_hw)))


@adaptive_max_pool2d_forward.register_fake
def _(x, out_hw, backend):
    return (_empty_like_layout(x, _pool_out(x, out_hw)), _empty_like_layout(x, _pool_out(x, out_hw), torch.int64))


_SHIMS["adaptive_max_pool2d_forward"] = lambda backend: lambda x, out_hw: \
    adaptive_max_pool2d_forward(x, out_hw, backend)


@_op("pool_index_scatter")
def pool_index_scatter(src: Tensor, indices: Tensor, out_hw: Sequence[int], accumulate: bool, backend: str) -> Tensor:
    return _kernel(backend, kernels.pool_index_scatter)(src, indices, tuple(out_hw), accumulate)


pool_index_scatter.register_fake(lambda src, indices, out_hw, accumulate, backend:
                                 _empty_like_layout(src, _pool_out(src, out_hw)))
_SHIMS["pool_index_scatter"] = lambda backend: lambda src, indices, out_hw, accumulate: \
    pool_index_scatter(src, indices, out_hw, bool(accumulate), backend)


@_op("pool_index_gather")
def pool_index_gather(src: Tensor, indices: Tensor, backend: str) -> Tensor:
    return _kernel(backend, kernels.pool_index_gather)(src, indices)


pool_index_gather.register_fake(lambda src, indices, backend: _empty_like_layout(src, tuple(indices.shape)))
_SHIMS["pool_index_gather"] = lambda backend: lambda src, indices: pool_index_gather(src, indices, backend)


# ----------------------------------------------------------------------------------- normalisation
@_op("batch_norm_forward", mutates_args=("running_mean", "running_var"))
def batch_norm_forward(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], running_mean: Optional[Tensor],
                       running_var: Optional[Tensor], training: bool, momentum: float, eps: float,
                       backend: str) -> Tuple[Tensor, Tensor, Tensor]:
    return tuple(_kernel(backend, kernels.batch_norm_forward)(x, weight, bias, running_mean, running_var, training,
                                                              momentum, eps))


@batch_norm_forward.register_fake
def _(x, weight, bias, running_mean, running_var, training, momentum, eps, backend):
    return torch.empty_like(x, memory_format=torch.contiguous_format), x.new_empty(x.shape[1]), x.new_empty(x.shape[1])


_SHIMS["batch_norm_forward"] = lambda backend: lambda x, w, b, rm, rv, training, momentum, eps: \
    batch_norm_forward(x, w, b, rm, rv, bool(training), float(momentum), float(eps), backend)


@_op("batch_norm_backward")
def batch_norm_backward(gy: Tensor, x: Tensor, weight: Optional[Tensor], mean: Tensor, invstd: Tensor, training: bool,
                        need_input: bool, need_weight: bool, need_bias: bool,
                        backend: str) -> Tuple[Tensor, Tensor, Tensor]:
    return _somethings(_kernel(backend, kernels.batch_norm_backward)(gy, x, weight, mean, invstd, training, need_input,
                                                                     need_weight, need_bias), x)


@batch_norm_backward.register_fake
def _(gy, x, weight, mean, invstd, training, need_input, need_weight, need_bias, backend):
    C = x.shape[1]
    return (_if_needed(need_input, lambda: torch.empty_like(x, memory_format=torch.contiguous_format), x),
            _if_needed(need_weight, lambda: x.new_empty(C), x), _if_needed(need_bias, lambda: x.new_empty(C), x))


_SHIMS["batch_norm_backward"] = lambda backend: lambda gy, x, w, mean, invstd, training, ni, nw, nb: tuple(
    _none(t) for t in batch_norm_backward(gy, x, w, mean, invstd, bool(training), bool(ni), bool(nw), bool(nb),
                                          backend))


@_op("local_response_norm_forward")
def local_response_norm_forward(x: Tensor, size: int, alpha: float, beta: float, k: float,
                                backend: str) -> Tuple[Tensor, Tensor]:
    return tuple(_kernel(backend, kernels.local_response_norm_forward)(x, size, alpha, beta, k))


local_response_norm_forward.register_fake(lambda x, size, alpha, beta, k, backend: (torch.empty_like(x),
                                                                                   torch.empty_like(x)))
_SHIMS["local_response_norm_forward"] = lambda backend: lambda x, size, alpha, beta, k: \
    local_response_norm_forward(x, size, float(alpha), float(beta), float(k), backend)


@_op("local_response_norm_backward")
def local_response_norm_backward(gy: Tensor, x: Tensor, scale: Tensor, size: int, alpha: float, beta: float,
                                 backend: str) -> Tensor:
    return _kernel(backend, kernels.local_response_norm_backward)(gy, x, scale, size, alpha, beta)


local_response_norm_backward.register_fake(lambda gy, x, scale, size, alpha, beta, backend: torch.empty_like(x))
_SHIMS["local_response_norm_backward"] = lambda backend: lambda gy, x, scale, size, alpha, beta: \
    local_response_norm_backward(gy, x, scale, size, float(alpha), float(beta), backend)


# ---------------------------------------------------------------------------------------- resampling
@_op("interpolate_forward")
def interpolate_forward(x: Tensor, out_hw: Sequence[int], nearest: bool, align_corners: bool,
                        scales: Sequence[float], backend: str) -> Tensor:
    return _kernel(backend, kernels.interpolate_forward)(x, tuple(out_hw), nearest, align_corners, tuple(scales))


interpolate_forward.register_fake(lambda x, out_hw, nearest, align_corners, scales, backend:
                                  x.new_empty(_pool_out(x, out_hw)))
_SHIMS["interpolate_forward"] = lambda backend: lambda x, out_hw, nearest, align_corners, scales: \
    interpolate_forward(x, out_hw, bool(nearest), bool(align_corners), [float(v) for v in scales], backend)


@_op("interpolate_backward")
def interpolate_backward(gy: Tensor, in_hw: Sequence[int], nearest: bool, align_corners: bool,
                         scales: Sequence[float], backend: str) -> Tensor:
    return _kernel(backend, kernels.interpolate_backward)(gy, tuple(in_hw), nearest, align_corners, tuple(scales))


interpolate_backward.register_fake(lambda gy, in_hw, nearest, align_corners, scales, backend:
                                   gy.new_empty(_pool_out(gy, in_hw)))
_SHIMS["interpolate_backward"] = lambda backend: lambda gy, in_hw, nearest, align_corners, scales: \
    interpolate_backward(gy, in_hw, bool(nearest), bool(align_corners), [float(v) for v in scales], backend)


# ---------------------------------------------------------------------------------- dropout, softmax
@_op("dropout_masked_scale")
def dropout_masked_scale(x: Tensor, keep: Tensor, group: int, scale: float, backend: str) -> Tensor:
    return _kernel(backend, kernels.dropout_masked_scale)(x, keep, group, scale)


dropout_masked_scale.register_fake(lambda x, keep, group, scale, backend: torch.empty_like(x))


@_op("dropout_masked_scale_", mutates_args=("x",))
def dropout_masked_scale_(x: Tensor, keep: Tensor, group: int, scale: float, backend: str) -> None:
    _kernel(backend, kernels.dropout_masked_scale)(x, keep, group, scale, out=x)


dropout_masked_scale_.register_fake(lambda x, keep, group, scale, backend: None)


def _dropout_shim(backend):
    def shim(x, keep, group, scale, out=None):
        if out is None:
            return dropout_masked_scale(x, keep, int(group), float(scale), backend)
        if out is not x:
            raise NotImplementedError("fastcnn: under torch.compile dropout_masked_scale writes in place only (out=x)")
        dropout_masked_scale_(x, keep, int(group), float(scale), backend)
        return x
    return shim


_SHIMS["dropout_masked_scale"] = _dropout_shim


@_op("softmax_forward")
def softmax_forward(x: Tensor, log: bool, backend: str) -> Tensor:
    return _kernel(backend, kernels.softmax_forward)(x, log)


softmax_forward.register_fake(lambda x, log, backend: torch.empty_like(x))
_SHIMS["softmax_forward"] = lambda backend: lambda x, log: softmax_forward(x, bool(log), backend)


@_op("softmax_backward")
def softmax_backward(gy: Tensor, y: Tensor, log: bool, backend: str) -> Tensor:
    return _kernel(backend, kernels.softmax_backward)(gy, y, log)


softmax_backward.register_fake(lambda gy, y, log, backend: torch.empty_like(y))
_SHIMS["softmax_backward"] = lambda backend: lambda gy, y, log: softmax_backward(gy, y, bool(log), backend)


# -------------------------------------------------------------------------------------------- losses
def _check_targets(x: Tensor, target: Tensor, ignore_index: int) -> None:
    """The class-index range check that the public op cannot do on fake tensors, done on the real ones."""
    from .loss import check_target_values

    check_target_values(target, x.shape[1], ignore_index)


@_op("cross_entropy_forward")
def cross_entropy_forward(x: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: int,
                          label_smoothing: float, backend: str) -> Tuple[Tensor, Tensor, Tensor]:
    _check_targets(x, target, ignore_index)
    return tuple(_kernel(backend, kernels.cross_entropy_forward)(x, target, weight, ignore_index, label_smoothing))


@cross_entropy_forward.register_fake
def _(x, target, weight, ignore_index, label_smoothing, backend):
    N, _, S = x.shape
    return x.new_empty((N, S)), x.new_empty((N, S)), x.new_empty((N, S))


_SHIMS["cross_entropy_forward"] = lambda backend: lambda x, t, w, ii, ls: \
    cross_entropy_forward(x, t, w, int(ii), float(ls), backend)


@_op("cross_entropy_backward")
def cross_entropy_backward(x: Tensor, target: Tensor, weight: Optional[Tensor], lse: Tensor, ignore_index: int,
                           label_smoothing: float, g: Tensor, backend: str) -> Tensor:
    return _kernel(backend, kernels.cross_entropy_backward)(x, target, weight, lse, ignore_index, label_smoothing, g)


cross_entropy_backward.register_fake(lambda x, t, w, lse, ii, ls, g, backend: torch.empty_like(x))
_SHIMS["cross_entropy_backward"] = lambda backend: lambda x, t, w, lse, ii, ls, g: \
    cross_entropy_backward(x, t, w, lse, int(ii), float(ls), g, backend)


@_op("nll_loss_forward")
def nll_loss_forward(x: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: int,
                     backend: str) -> Tuple[Tensor, Tensor]:
    _check_targets(x, target, ignore_index)
    return tuple(_kernel(backend, kernels.nll_loss_forward)(x, target, weight, ignore_index))


@nll_loss_forward.register_fake
def _(x, target, weight, ignore_index, backend):
    N, _, S = x.shape
    return x.new_empty((N, S)), x.new_empty((N, S))


_SHIMS["nll_loss_forward"] = lambda backend: lambda x, t, w, ii: nll_loss_forward(x, t, w, int(ii), backend)


@_op("nll_loss_backward")
def nll_loss_backward(target: Tensor, weight: Optional[Tensor], ignore_index: int, g: Tensor, shape: Sequence[int],
                      backend: str) -> Tensor:
    return _kernel(backend, kernels.nll_loss_backward)(target, weight, ignore_index, g, tuple(shape))


nll_loss_backward.register_fake(lambda t, w, ii, g, shape, backend: g.new_empty(tuple(shape)))
_SHIMS["nll_loss_backward"] = lambda backend: lambda t, w, ii, g, shape: \
    nll_loss_backward(t, w, int(ii), g, shape, backend)


@_op("loss_sum")
def loss_sum(v: Tensor, backend: str) -> Tensor:
    return _kernel(backend, kernels.loss_sum)(v).to(v.device)


loss_sum.register_fake(lambda v, backend: _float64_scalar(v))
_SHIMS["loss_sum"] = lambda backend: lambda v: loss_sum(v, backend)


# ------------------------------------------------------------------------------- prelu and maxout
@_op("prelu_forward")
def prelu_forward(x: Tensor, weight: Tensor, backend: str) -> Tensor:
    return _kernel(backend, kernels.prelu_forward)(x, weight)


prelu_forward.register_fake(lambda x, weight, backend: _dense_like(x))
_SHIMS["prelu_forward"] = lambda backend: lambda x, weight: prelu_forward(x, weight, backend)


@_op("prelu_backward")
def prelu_backward(gy: Tensor, x: Tensor, weight: Tensor, backend: str) -> Tuple[Tensor, Tensor]:
    return tuple(_kernel(backend, kernels.prelu_backward)(gy, x, weight))


prelu_backward.register_fake(lambda gy, x, weight, backend: (_dense_like(x), _dense_like(weight)))
_SHIMS["prelu_backward"] = lambda backend: lambda gy, x, weight: prelu_backward(gy, x, weight, backend)


@_op("maxout_forward")
def maxout_forward(x: Tensor, pool_size: int, backend: str) -> Tensor:
    return _kernel(backend, kernels.maxout_forward)(x, pool_size)


maxout_forward.register_fake(lambda x, pool_size, backend:
                             x.new_empty((x.shape[0], x.shape[1] // pool_size, x.shape[2])))
_SHIMS["maxout_forward"] = lambda backend: lambda x, pool_size: maxout_forward(x, int(pool_size), backend)


@_op("maxout_backward")
def maxout_backward(gy: Tensor, x: Tensor, pool_size: int, backend: str) -> Tensor:
    return _kernel(backend, kernels.maxout_backward)(gy, x, pool_size)


maxout_backward.register_fake(lambda gy, x, pool_size, backend: _dense_like(x))
_SHIMS["maxout_backward"] = lambda backend: lambda gy, x, pool_size: maxout_backward(gy, x, int(pool_size), backend)


# ------------------------------------------------------------------------- row and p-norm normalisation
@_op("group_rows_forward", mutates_args=("running_mean", "running_var"))
def group_rows_forward(x: Tensor, groups: int, span: int, weight: Optional[Tensor], bias: Optional[Tensor],
                       eps: float, running_mean: Optional[Tensor], running_var: Optional[Tensor], momentum: float,
                       backend: str) -> Tuple[Tensor, Tensor, Tensor]:
    return tuple(_kernel(backend, kernels.group_rows_forward)(x, groups, span, weight, bias, eps, running_mean, running_var,
                                                              momentum))


group_rows_forward.register_fake(lambda x, groups, span, w, b, eps, rm, rv, momentum, backend:
                                 (_dense_like(x), x.new_empty(x.shape[0]), x.new_empty(x.shape[0])))
_SHIMS["group_rows_forward"] = lambda backend: lambda x, groups, span, w, b, eps, rm, rv, momentum: \
    group_rows_forward(x, int(groups), int(span), w, b, float(eps), rm, rv, float(momentum), backend)


@_op("group_rows_backward")
def group_rows_backward(gy: Tensor, x: Tensor, groups: int, span: int, weight: Optional[Tensor], mean: Tensor,
                        rstd: Tensor, need_input: bool, need_weight: bool, need_bias: bool,
                        backend: str) -> Tuple[Tensor, Tensor, Tensor]:
    return _somethings(_kernel(backend, kernels.group_rows_backward)(gy, x, groups, span, weight, mean, rstd, need_input,
                                                                     need_weight, need_bias), x)


@group_rows_backward.register_fake
def _(gy, x, groups, span, weight, mean, rstd, need_input, need_weight, need_bias, backend):
    n_params = groups * (x.shape[1] // span)
    return (_if_needed(need_input, lambda: _dense_like(x), x),
            _if_needed(need_weight, lambda: x.new_empty(n_params), x),
            _if_needed(need_bias, lambda: x.new_empty(n_params), x))


_SHIMS["group_rows_backward"] = lambda backend: lambda gy, x, groups, span, w, mean, rstd, ni, nw, nb: tuple(
    _none(t) for t in group_rows_backward(gy, x, int(groups), int(span), w, mean, rstd, bool(ni), bool(nw), bool(nb),
                                          backend))


@_op("normalize_forward")
def normalize_forward(x: Tensor, p: float, eps: float, backend: str) -> Tuple[Tensor, Tensor]:
    return tuple(_kernel(backend, kernels.normalize_forward)(x, p, eps))


normalize_forward.register_fake(lambda x, p, eps, backend: (_dense_like(x), x.new_empty((x.shape[0], x.shape[2]))))
_SHIMS["normalize_forward"] = lambda backend: lambda x, p, eps: normalize_forward(x, float(p), float(eps), backend)


@_op("normalize_backward")
def normalize_backward(gy: Tensor, x: Tensor, norm: Tensor, p: float, eps: float, backend: str) -> Tensor:
    return _kernel(backend, kernels.normalize_backward)(gy, x, norm, p, eps)


normalize_backward.register_fake(lambda gy, x, norm, p, eps, backend: _dense_like(x))
_SHIMS["normalize_backward"] = lambda backend: lambda gy, x, norm, p, eps: \
    normalize_backward(gy, x, norm, float(p), float(eps), backend)


@_op("spectral_norm_forward", mutates_args=("u", "v"))
def spectral_norm_forward(w: Tensor, dim: int, u: Tensor, v: Tensor, n_power_iterations: int, eps: float,
                          backend: str) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    return tuple(_kernel(backend, kernels.spectral_norm_forward)(w, dim, u, v, n_power_iterations, eps))


spectral_norm_forward.register_fake(lambda w, dim, u, v, n, eps, backend: (
    _dense_like(w), torch.empty_like(u), torch.empty_like(v), _float64_scalar(w)))
_SHIMS["spectral_norm_forward"] = lambda backend: lambda w, dim, u, v, n, eps: \
    spectral_norm_forward(w, int(dim), u, v, int(n), float(eps), backend)


@_op("spectral_norm_backward")
def spectral_norm_backward(gy: Tensor, y: Tensor, dim: int, u: Tensor, v: Tensor, sigma: Tensor,
                           backend: str) -> Tensor:
    return _kernel(backend, kernels.spectral_norm_backward)(gy, y, dim, u, v, sigma)


spectral_norm_backward.register_fake(lambda gy, y, dim, u, v, sigma, backend: _dense_like(y))
_SHIMS["spectral_norm_backward"] = lambda backend: lambda gy, y, dim, u, v, sigma: \
    spectral_norm_backward(gy, y, int(dim), u, v, sigma, backend)


# ------------------------------------------------------------------------------------------- padding
def _padded_planes(t: Tensor, H: int, W: int) -> Tensor:
    """A [P, H, W, K] output laid out (P, H, W, K) in memory, as the pad kernels allocate it."""
    return t.new_empty((t.shape[0], H, W, t.shape[3]))


@_op("pad2d_forward")
def pad2d_forward(x: Tensor, top: int, bottom: int, left: int, right: int, mode: int, value: float,
                  backend: str) -> Tensor:
    return _kernel(backend, kernels.pad2d_forward)(x, top, bottom, left, right, mode, value)


pad2d_forward.register_fake(lambda x, top, bottom, left, right, mode, value, backend:
                            _padded_planes(x, x.shape[1] + top + bottom, x.shape[2] + left + right))
_SHIMS["pad2d_forward"] = lambda backend: lambda x, top, bottom, left, right, mode, value: \
    pad2d_forward(x, int(top), int(bottom), int(left), int(right), int(mode), float(value), backend)


@_op("pad2d_backward")
def pad2d_backward(gy: Tensor, H: int, W: int, top: int, bottom: int, left: int, right: int, mode: int,
                   backend: str) -> Tensor:
    return _kernel(backend, kernels.pad2d_backward)(gy, H, W, top, bottom, left, right, mode)


pad2d_backward.register_fake(lambda gy, H, W, top, bottom, left, right, mode, backend: _padded_planes(gy, H, W))
_SHIMS["pad2d_backward"] = lambda backend: lambda gy, H, W, top, bottom, left, right, mode: \
    pad2d_backward(gy, int(H), int(W), int(top), int(bottom), int(left), int(right), int(mode), backend)


# ----------------------------------------------------------- pixel shuffle, grid sample, im2col / col2im
@_op("pixel_shuffle")
def pixel_shuffle(x: Tensor, factor: int, to_space: bool, backend: str) -> Tensor:
    return _kernel(backend, kernels.pixel_shuffle)(x, factor, to_space)


@pixel_shuffle.register_fake
def _(x, factor, to_space, backend):
    from ..contracts.resample import shuffle_geometry

    return shuffle_geometry(x, factor, to_space)[3]


_SHIMS["pixel_shuffle"] = lambda backend: lambda x, factor, to_space: \
    pixel_shuffle(x, int(factor), bool(to_space), backend)


@_op("grid_sample_forward")
def grid_sample_forward(x: Tensor, grid: Tensor, padding: int, align_corners: bool, nearest: bool,
                        backend: str) -> Tensor:
    return _kernel(backend, kernels.grid_sample_forward)(x, grid, padding, align_corners, nearest)


grid_sample_forward.register_fake(lambda x, grid, padding, align_corners, nearest, backend:
                                  x.new_empty((x.shape[0], x.shape[1], grid.shape[1], grid.shape[2])))
_SHIMS["grid_sample_forward"] = lambda backend: lambda x, grid, padding, align_corners, nearest: \
    grid_sample_forward(x, grid, int(padding), bool(align_corners), bool(nearest), backend)


@_op("grid_sample_backward")
def grid_sample_backward(gy: Tensor, x: Tensor, grid: Tensor, padding: int, align_corners: bool, nearest: bool,
                         need_input: bool, need_grid: bool, backend: str) -> Tuple[Tensor, Tensor]:
    return _somethings(_kernel(backend, kernels.grid_sample_backward)(gy, x, grid, padding, align_corners, nearest,
                                                                      need_input, need_grid), x)


grid_sample_backward.register_fake(lambda gy, x, grid, padding, align_corners, nearest, need_input, need_grid, backend: (
    _if_needed(need_input, lambda: _dense_like(x), x), _if_needed(need_grid, lambda: _dense_like(grid), x)))
_SHIMS["grid_sample_backward"] = lambda backend: lambda gy, x, grid, padding, align_corners, nearest, ni, ng: tuple(
    _none(t) for t in grid_sample_backward(gy, x, grid, int(padding), bool(align_corners), bool(nearest), bool(ni),
                                           bool(ng), backend))


@_op("im2col")
def im2col(x: Tensor, kernel_hw: Sequence[int], stride: Sequence[int], padding: Sequence[int],
           dilation: Sequence[int], out_hw: Sequence[int], backend: str) -> Tensor:
    return _kernel(backend, kernels.im2col)(x, *_tuples([kernel_hw, stride, padding, dilation, out_hw]))


im2col.register_fake(lambda x, k, s, p, d, out_hw, backend:
                     x.new_empty((x.shape[0], x.shape[1] * k[0] * k[1], out_hw[0] * out_hw[1])))
_SHIMS["im2col"] = lambda backend: lambda x, k, s, p, d, out_hw: im2col(x, k, s, p, d, out_hw, backend)


@_op("col2im")
def col2im(cols: Tensor, in_hw: Sequence[int], kernel_hw: Sequence[int], stride: Sequence[int],
           padding: Sequence[int], dilation: Sequence[int], out_hw: Sequence[int], backend: str) -> Tensor:
    return _kernel(backend, kernels.col2im)(cols, *_tuples([in_hw, kernel_hw, stride, padding, dilation, out_hw]))


col2im.register_fake(lambda cols, in_hw, k, s, p, d, out_hw, backend:
                     cols.new_empty((cols.shape[0], cols.shape[1] // (k[0] * k[1]), *in_hw)))
_SHIMS["col2im"] = lambda backend: lambda cols, in_hw, k, s, p, d, out_hw: \
    col2im(cols, in_hw, k, s, p, d, out_hw, backend)


# ------------------------------------------------------------ pointwise and soft-target losses
@_op("pointwise_loss_forward")
def pointwise_loss_forward(kind: int, x: Tensor, y: Tensor, weight: Optional[Tensor], pos_weight: Optional[Tensor],
                           backend: str) -> Tensor:
    return _kernel(backend, kernels.pointwise_loss_forward)(kind, x, y, weight, pos_weight)


pointwise_loss_forward.register_fake(lambda kind, x, y, w, pw, backend: _dense_like(x))
_SHIMS["pointwise_loss_forward"] = lambda backend: lambda kind, x, y, w, pw: \
    pointwise_loss_forward(int(kind), x, y, w, pw, backend)


@_op("pointwise_loss_sum")
def pointwise_loss_sum(kind: int, x: Tensor, y: Tensor, weight: Optional[Tensor], pos_weight: Optional[Tensor],
                       backend: str) -> Tensor:
    return _kernel(backend, kernels.pointwise_loss_sum)(kind, x, y, weight, pos_weight).to(x.device)


pointwise_loss_sum.register_fake(lambda kind, x, y, w, pw, backend: _float64_scalar(x))
_SHIMS["pointwise_loss_sum"] = lambda backend: lambda kind, x, y, w, pw: \
    pointwise_loss_sum(int(kind), x, y, w, pw, backend)


@_op("pointwise_loss_backward")
def pointwise_loss_backward(kind: int, x: Tensor, y: Tensor, weight: Optional[Tensor], pos_weight: Optional[Tensor],
                            g: Tensor, backend: str) -> Tensor:
    return _kernel(backend, kernels.pointwise_loss_backward)(kind, x, y, weight, pos_weight, g)


pointwise_loss_backward.register_fake(lambda kind, x, y, w, pw, g, backend: _dense_like(x))
_SHIMS["pointwise_loss_backward"] = lambda backend: lambda kind, x, y, w, pw, g: \
    pointwise_loss_backward(int(kind), x, y, w, pw, g, backend)


@_op("soft_cross_entropy_forward")
def soft_cross_entropy_forward(x: Tensor, target: Tensor, weight: Optional[Tensor], label_smoothing: float,
                               backend: str) -> Tuple[Tensor, Tensor]:
    return tuple(_kernel(backend, kernels.soft_cross_entropy_forward)(x, target, weight, label_smoothing))


soft_cross_entropy_forward.register_fake(lambda x, t, w, ls, backend: (x.new_empty((x.shape[0], x.shape[2])),
                                                                      x.new_empty((x.shape[0], x.shape[2]))))
_SHIMS["soft_cross_entropy_forward"] = lambda backend: lambda x, t, w, ls: \
    soft_cross_entropy_forward(x, t, w, float(ls), backend)


@_op("soft_cross_entropy_backward")
def soft_cross_entropy_backward(x: Tensor, target: Tensor, weight: Optional[Tensor], lse: Tensor,
                                label_smoothing: float, g: Tensor, need_input: bool, need_target: bool,
                                backend: str) -> Tuple[Tensor, Tensor]:
    return _somethings(_kernel(backend, kernels.soft_cross_entropy_backward)(x, target, weight, lse, label_smoothing, g,
                                                                             need_input, need_target), x)


soft_cross_entropy_backward.register_fake(lambda x, t, w, lse, ls, g, ni, nt, backend: (
    _if_needed(ni, lambda: _dense_like(x), x), _if_needed(nt, lambda: _dense_like(x), x)))
_SHIMS["soft_cross_entropy_backward"] = lambda backend: lambda x, t, w, lse, ls, g, ni, nt: tuple(
    _none(v) for v in soft_cross_entropy_backward(x, t, w, lse, float(ls), g, bool(ni), bool(nt), backend))


# ------------------------------------------------------------------------------------------ dispatch
def traced_kernel(backend: str, name: str) -> Callable:
    """A slot's kernel (by the slot's name) while a graph is traced: its custom op behind the kernel's
    signature."""
    make = _SHIMS.get(name)
    if make is None:
        raise NotImplementedError(
            f"fastcnn: kernel '{name}' has no torch.library custom op yet, so torch.compile / torch.export cannot "
            f"trace the op that calls it; run that op outside the compiled region (torch.compiler.disable) or "
            f"register it in fastcnn/ops/_library.py")
    return make(backend)


def registered() -> List[str]:
    """Kernel names that have a custom op (the ops whose calls compile)."""
    return sorted(_SHIMS) + ["conv2d_forward.*", "conv2d_backward_input.*", "conv2d_backward_weight.*"]


def _load_backends(*_trigger) -> None:
    """Probe and load the backends a compiled graph may call before Dynamo traces it: importing the
    kernel modules (and the C++ extension's probe) cannot be traced. torch.export runs the Python
    for real and needs no help."""
    wanted = ["cpu"] + (["cuda", "triton"] if torch.cuda.is_available() else [])
    named = _registry.env_backend()
    if named in _registry.KERNEL_BACKENDS and named not in wanted:
        wanted.append(named)
    for name in wanted:
        backend = _registry._BACKENDS[name]
        if backend.ready()[0]:
            _registry._load(backend)


_registry._traced_kernel = traced_kernel
# Disabled for Dynamo: a compiled function whose backward runs inside it (a training step calling
# autograd.grad or loss.backward) compiles that backward lazily and runs the start callbacks from within
# the compiled frame; Dynamo then traced this callback and deadlocked on its own callback lock.
torch._dynamo.callback.callback_handler.register_start_callback(torch._dynamo.disable(_load_backends))
