"""Convolution: conv2d and conv_transpose2d with algo = 'auto' | 'direct' | 'im2col' | 'fft' |
'winograd' | 'implicit_gemm' (triton).

Kernels called here (same name and signature on every backend; all tensors contiguous NCHW, one
dtype). `shape` is the ConvShape record (fastcnn/contracts/conv.py) the check built for this call:
    conv2d_forward.<algo>(x, w, bias | None, shape, activation, act_param) -> y   (bias + activation fused)
    conv2d_backward_input.<algo>(gy, w, shape) -> gx
    conv2d_backward_weight.<algo>(x, gy, shape) -> gw
    channel_sum(t[N,K,P,Q]) -> [K]                                         (bias gradient)
    channel_bias_act(y[N,K,...], bias[K], activation, act_param) -> y      (in place; conv_transpose bias)
    activation_backward(gy, y, kind, p0, p1, from_output=True) -> g        (through a fused activation)

conv_transpose2d is the adjoint of conv2d: its forward is conv2d_backward_input, its input gradient
conv2d_forward and its weight gradient conv2d_backward_weight with input and output swapped.
Which algorithm runs is decided in fastcnn/ops/_conv_algo.py (heuristic or autotuner).

On the cpu backend both ops reach the eager op fastcnn_eager::conv2d (csrc/torchops/conv.cpp, through
_eager_conv) where they can: the same kernels and per-pass choice, the passes called from C++ with a
C++ backward node. The Functions _Conv2d / _ConvTranspose2d serve the rest (other backends, the
autotuner or the choice log on, degenerate shapes, large tensors, replaced kernels).
"""
from __future__ import annotations

import logging
import os
import sys
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from .. import _checks, _registry
from ..contracts import kernels
from ..contracts.activation import fused_code
from ..contracts.conv import ConvShape
from . import _conv_algo as algos
from . import _library
from ._conv_algo import autotune
from ._eager import EagerOp, runnable
from ._fused import fused_activation, reference_activation
from ._op import ConfigMemo, apply, once_differentiable, public_op
from ._shapes import channels_last_from_nchw, is_channels_last_only, nchw_from_channels_last

__all__ = ["conv2d", "conv_transpose2d", "autotune"]


class ConvConfig(NamedTuple):
    """One call of a convolution: its geometry (built once by the check) and how to run it."""
    shape: ConvShape
    activation: Optional[str]
    act_param: float
    backend: str
    algo: str  # as asked: 'auto' (each pass chooses its own) or one algorithm for every pass

    # the geometry's pairs, read by the algorithm choice
    stride = property(lambda self: self.shape.stride)
    padding = property(lambda self: self.shape.padding)
    dilation = property(lambda self: self.shape.dilation)
    groups = property(lambda self: self.shape.G)
    in_hw = property(lambda self: self.shape.in_hw)
    kernel_hw = property(lambda self: self.shape.kernel_hw)
    out_hw = property(lambda self: self.shape.out_hw)


# ----------------------------------------------------------------------------------------------------
# Argument checks (shared by every backend, the reference included)

def _groups(groups) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"groups: expected an int, got {type(groups).__name__}")
    if groups < 1:
        raise ValueError(f"groups: expected a positive int, got {groups}")
    return groups


def _operands(input, weight, bias, groups, transposed: bool):
    """Checks input / weight / bias against each other; returns (x 4-D, unbatched)."""
    _checks.float_tensor(input, "input", (3, 4))
    _checks.float_tensor(weight, "weight", 4)
    _checks.same_dtype_device(input, "input", weight, "weight")
    unbatched = input.dim() == 3
    x = input.unsqueeze(0) if unbatched else input
    C = x.shape[1]
    if C % groups:
        raise ValueError(f"groups: input channels ({C}) must be divisible by groups ({groups})")
    if transposed:
        if weight.shape[0] != C:
            raise ValueError(f"weight: expected {C} input channels in dim 0 (weight [in, out/groups, R, S]), "
                             f"got shape {tuple(weight.shape)}")
        out_channels = weight.shape[1] * groups
    else:
        if weight.shape[0] % groups:
            raise ValueError(f"groups: output channels ({weight.shape[0]}) must be divisible by groups ({groups})")
        if weight.shape[1] * groups != C:
            raise ValueError(f"weight: expected {C // groups} input channels per group in dim 1 for input with {C} "
                             f"channels and groups={groups}, got shape {tuple(weight.shape)}")
        out_channels = weight.shape[0]
    if bias is not None:
        _checks.float_tensor(bias, "bias", 1)
        _checks.same_dtype_device(input, "input", bias, "bias")
        if bias.shape[0] != out_channels:
            raise ValueError(f"bias: expected {out_channels} values (one per output channel), got {bias.shape[0]}")
    return x, unbatched


def _conv_geometry(x, weight, stride, padding, dilation):
    """(stride, top/left padding, dilation, out_hw) of conv2d, padding int | pair | 'same' | 'valid'."""
    stride = _checks.pair(stride, "stride", minimum=1)
    dilation = _checks.pair(dilation, "dilation", minimum=1)
    H, W = x.shape[-2:]
    R, S = weight.shape[-2:]
    span = (dilation[0] * (R - 1) + 1, dilation[1] * (S - 1) + 1)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding: 'same' needs stride 1 (as in torch), got stride={stride}")
            # Extra padding of an even kernel goes to the bottom/right, as torch does.
            return stride, ((span[0] - 1) // 2, (span[1] - 1) // 2), dilation, (H, W)
        else:
            raise ValueError(f"padding: expected an int, a pair, 'same' or 'valid', got {padding!r}")
    padding = _checks.pair(padding, "padding", minimum=0)
    padded = (H + 2 * padding[0], W + 2 * padding[1])
    if padded[0] < span[0] or padded[1] < span[1]:
        raise ValueError(f"weight: kernel {R}x{S} with dilation {dilation} spans {span[0]}x{span[1]}, larger than "
                         f"the padded input {padded[0]}x{padded[1]}")
    out_hw = ((padded[0] - span[0]) // stride[0] + 1, (padded[1] - span[1]) // stride[1] + 1)
    return stride, padding, dilation, out_hw


_CHECKED = ConfigMemo()


class _Checked(NamedTuple):
    """What conv2d's checks computed for one configuration."""
    unbatched: bool
    shape: ConvShape  # the geometry, built once and handed down to the kernels
    activation: Optional[str]
    act_param: float
    configs: dict  # backend -> its ConvConfig (built once: a NamedTuple of tuples costs ~1 us)
    plans: dict  # the eager op's plan (or False: the Function serves it), see _eager_conv


def _check_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto",
                  activation=None, activation_param=None) -> _Checked:
    """Every check of conv2d's arguments (operands, geometry, activation, algo), run on a
    configuration's first call and remembered (ConfigMemo); the result goes to the op's body."""
    key = _CHECKED.key(input, weight, bias, stride, padding, dilation, groups, algo, activation, activation_param)
    found = _CHECKED.get(key)
    if found is None:
        x, unbatched = _operands(input, weight, bias, _groups(groups), transposed=False)
        stride, pad, dilation, out_hw = _conv_geometry(x, weight, stride, padding, dilation)
        shape = ConvShape.of(x.shape, weight.shape, stride, pad, dilation, groups, out_hw)
        found = _Checked(unbatched, shape, *fused_activation(activation, activation_param), {}, {})
        if algo not in algos.CHOICES:
            raise ValueError(f"algo: expected one of {algos.CHOICES}, got {algo!r}")
        _CHECKED.put(key, found)
    return found


def _transpose_geometry(x, weight, stride, padding, output_padding, dilation):
    stride = _checks.pair(stride, "stride", minimum=1)
    dilation = _checks.pair(dilation, "dilation", minimum=1)
    if isinstance(padding, str):
        raise ValueError(f"padding: conv_transpose2d takes an int or a pair, got {padding!r}")
    padding = _checks.pair(padding, "padding", minimum=0)
    output_padding = _checks.pair(output_padding, "output_padding", minimum=0)
    for i in range(2):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(f"output_padding: must be smaller than stride or dilation, got "
                             f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    H, W = x.shape[-2:]
    R, S = weight.shape[-2:]
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1
                   for n, s, p, d, k, op in zip((H, W), stride, padding, dilation, (R, S), output_padding))
    if min(out_hw) < 1:
        raise ValueError(f"padding: output size {out_hw} of conv_transpose2d is not positive")
    return stride, padding, dilation, out_hw


_TRANSPOSE_GEOMETRY = ConfigMemo()


def _checked_transpose_geometry(input, weight, bias, stride, padding, output_padding, groups, dilation):
    """(unbatched, ConvShape of the forward convolution conv_transpose2d is the adjoint of: an
    out_hw-sized input to an x-sized output), remembered per configuration like _check_conv2d."""
    key = _TRANSPOSE_GEOMETRY.key(input, weight, bias, stride, padding, output_padding, groups, dilation)
    found = _TRANSPOSE_GEOMETRY.get(key)
    if found is None:
        x, unbatched = _operands(input, weight, bias, _groups(groups), transposed=True)
        stride, pad, dilation, out_hw = _transpose_geometry(x, weight, stride, padding, output_padding, dilation)
        N, K, P, Q = x.shape
        found = (unbatched, ConvShape.of((N, weight.shape[1] * groups) + out_hw, weight.shape, stride, pad, dilation,
                                         groups, (P, Q)))
        _TRANSPOSE_GEOMETRY.put(key, found)
    return found


_CHECKED_TRANSPOSE = ConfigMemo()


def _check_conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                            *, algo="auto") -> _Checked:
    """Every check of conv_transpose2d's arguments, remembered per configuration like _check_conv2d."""
    key = _CHECKED_TRANSPOSE.key(input, weight, bias, stride, padding, output_padding, groups, dilation, algo)
    found = _CHECKED_TRANSPOSE.get(key)
    if found is None:
        unbatched, shape = _checked_transpose_geometry(input, weight, bias, stride, padding, output_padding, groups,
                                                       dilation)
        if algo not in algos.CHOICES:
            raise ValueError(f"algo: expected one of {algos.CHOICES}, got {algo!r}")
        found = _Checked(unbatched, shape, None, 0.0, {}, {})
        _CHECKED_TRANSPOSE.put(key, found)
    return found


# ----------------------------------------------------------------------------------------------------
# Algorithm choice: each pass (forward, backward-input, backward-weight) gets its own algorithm.

def _pass_algo(cfg: ConvConfig, direction, N, w, run):
    """The algorithm of one pass of the convolution `cfg` (batch N, weight w [K, C/g, R, S]).
    An explicit cfg.algo serves every pass whose kernel this backend has (a pass without one falls
    back to 'auto'); 'auto' asks the autotuner (when on; `run(algo)` times one candidate) or the
    per-direction heuristic."""
    algo = cfg.algo
    if algo != "auto" and algos.kernel_slot(direction, algo).offered_by(cfg.backend):
        return algo
    options = algos.candidates(cfg.backend, direction, cfg.stride, cfg.dilation, cfg.kernel_hw)
    if not options:
        raise NotImplementedError(f"fastcnn: backend '{cfg.backend}' registers no '{direction}' kernel; "
                                  "use backend='reference'")
    K, C = w.shape[0], w.shape[1] * cfg.groups
    if len(options) > 1 and algos.autotune_enabled():
        key = algos.cache_key(cfg.backend, w.device, direction, ((N, C) + cfg.in_hw, w.shape),
                              (cfg.stride, cfg.padding, cfg.dilation, cfg.groups, cfg.out_hw), w.dtype)
        return algos.tuned(key, options, run)
    # the image-size rules were measured on the cpu backend only
    cpu = cfg.backend == "cpu"
    layer = algos.Layer(N, C, K, cfg.kernel_hw, cfg.in_hw if cpu else None, cfg.stride, cfg.dilation, cfg.groups,
                        algos.cpu_isa() if cpu else None, w.device.type == "cuda", cfg.out_hw if cpu else None)
    return algos.heuristic(options, layer, direction)


# The heuristic's answer for a pass depends only on the configuration and the registered kernels, so it
# is remembered: choosing costs ~10 us of Python per pass, more than a small layer's kernel. (The
# autotuner keeps its own memory; it is asked afresh each time it is on.)
_CHOSEN: dict = {}
_CHOSEN_MAX = 4096


def _chosen_algo(cfg: ConvConfig, direction, N, w, run):
    if algos.autotune_enabled():
        return _pass_algo(cfg, direction, N, w, run)
    # a replaced heuristic or a kernel added or removed (tests do both) gives new answers
    key = (cfg, direction, N, w.shape, w.dtype, w.device, algos.heuristic, len(_registry._REGISTERED))
    algo = _CHOSEN.get(key)
    if algo is None:
        algo = _pass_algo(cfg, direction, N, w, run)
        if len(_CHOSEN) >= _CHOSEN_MAX:
            _CHOSEN.clear()
        _CHOSEN[key] = algo
    return algo


_SLOTS: dict = {}  # (direction, algo) -> its kernel slot, found once


def _run(cfg: ConvConfig, direction: str, algo: str, *args):
    slot = _SLOTS.get((direction, algo))
    if slot is None:
        slot = _SLOTS[(direction, algo)] = algos.kernel_slot(direction, algo)
    fn = slot.impls.get(cfg.backend)  # slot[backend], inlined: _pass has handled tracing already
    return (fn if fn is not None else slot[cfg.backend])(*args)


# Which algorithm each pass ran: DEBUG records on logger "fastcnn.conv" (attributes conv_direction,
# conv_algo, conv_shapes); env FASTCNN_CONV_LOG=1 prints each distinct choice once to stderr.
_log = logging.getLogger("fastcnn.conv")


class _FirstOccurrence(logging.Filter):
    def __init__(self):
        super().__init__()
        self.seen = set()

    def filter(self, record):
        key = record.getMessage()
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


if os.environ.get("FASTCNN_CONV_LOG", "0") not in ("", "0", "false", "False"):
    _handler = logging.StreamHandler()
    _handler.addFilter(_FirstOccurrence())
    _handler.setFormatter(logging.Formatter("fastcnn.conv: %(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.DEBUG)


def _log_choice(cfg: ConvConfig, direction: str, algo: str, args) -> None:
    shapes = tuple(tuple(a.shape) for a in args[:2])
    _log.debug("%s.%s backend=%s shapes=%s stride=%s padding=%s dilation=%s groups=%d (asked %s)", direction, algo,
               cfg.backend, shapes, cfg.stride, cfg.padding, cfg.dilation, cfg.groups, cfg.algo,
               extra={"conv_direction": direction, "conv_algo": algo, "conv_shapes": shapes})


def _pass(cfg: ConvConfig, direction: str, N: int, w, *args):
    """Runs one pass, `direction`'s kernel on `args`, with the algorithm chosen for it."""
    if torch.compiler.is_compiling():  # a traced graph: the whole pass is one custom op (ops/_library.py)
        return _library.conv_pass(cfg, direction, N, w, *args)
    def run(algo):
        return _run(cfg, direction, algo, *args)
    algo = _chosen_algo(cfg, direction, N, w, run)
    out = run(algo)
    fallback = _nonfinite_fallback(cfg, direction, algo)
    if fallback is not None and _holds_nonfinite(out):
        algo = fallback
        out = run(algo)
    if _log.isEnabledFor(logging.DEBUG):
        _log_choice(cfg, direction, algo, args)
    return out


# One NaN/inf in an FFT or Winograd tile spreads over the whole output tile (and, in the FFT weight
# gradient, over every R x S tap of a (k, c) pair), where torch's convolution reaches only the outputs
# that touch it. Passes listed in _NONFINITE_IN_KERNEL recompute such tiles inside the kernel
# (csrc/kernels/conv_fft.cpp); the others check their result and, only when it holds a non-finite
# value, run again with a direct/im2col algorithm (one read of the output: cheap beside the transforms).
_TILE_TRANSFORMS = ("fft", "winograd")
_NONFINITE_IN_KERNEL = {("cpu", "conv2d_forward", "fft"), ("cpu", "conv2d_backward_input", "fft")}


def _holds_nonfinite(out: torch.Tensor) -> bool:
    """Whether `out` holds a NaN or inf: its sum does (inf - inf is NaN), by one vectorised reduction;
    torch.isfinite(out).all() makes three full-size temporaries (15.8 ms against 0.7 for FCN's
    16x4x262x262 output, 1 thread). A finite sum that overflows only reruns the pass by its fallback."""
    acc = torch.float32 if out.dtype in (torch.float16, torch.bfloat16) else None
    return not bool(torch.isfinite(out.sum(dtype=acc)))


def _nonfinite_fallback(cfg: ConvConfig, direction: str, algo: str) -> Optional[str]:
    """The algorithm that recomputes a result of `algo` holding a non-finite value (None: the result
    stands). The eager op applies the same rule in C++ (csrc/torchops/conv.cpp)."""
    if algo not in _TILE_TRANSFORMS or (cfg.backend, direction, algo) in _NONFINITE_IN_KERNEL:
        return None
    for other in algos.candidates(cfg.backend, direction, cfg.stride, cfg.dilation, cfg.kernel_hw):
        if other not in _TILE_TRANSFORMS:
            return other
    return None


def _conv_forward(cfg, x, w, b, activation, act_param):
    return _pass(cfg, "conv2d_forward", x.shape[0], w, x, w, b, cfg.shape, activation, act_param)


def _conv_backward_input(cfg, gy, w):
    return _pass(cfg, "conv2d_backward_input", gy.shape[0], w, gy, w, cfg.shape)


def _conv_backward_weight(cfg, x, gy, w):
    """The weight gradient of the convolution of x (w: the weight, for its shape)."""
    return _pass(cfg, "conv2d_backward_weight", x.shape[0], w, x, gy, cfg.shape)


# ----------------------------------------------------------------------------------------------------
# Autograd

class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, cfg: ConvConfig):
        ctx.cfg, ctx.has_bias = cfg, b is not None
        if x.shape[1] == 0:  # torch 2.13 returns no output channels here, [N, 0, P, Q] (not the bias)
            ctx.save_for_backward(x, w, None)
            return x.new_empty((x.shape[0], 0) + tuple(cfg.out_hw))
        y = _conv_forward(cfg, x, w, b, cfg.activation, cfg.act_param)
        ctx.save_for_backward(x, w, y if cfg.activation else None)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, w, y = ctx.saved_tensors
        cfg = ctx.cfg
        if x.shape[1] == 0:  # nothing was summed: every gradient is zero (empty for x and w), as torch's
            gb = w.new_zeros(w.shape[0]) if ctx.has_bias and ctx.needs_input_grad[2] else None
            return x.new_zeros(x.shape), w.new_zeros(w.shape), gb, None
        gy = gy.contiguous()
        if cfg.activation:
            gy = kernels.activation_backward[cfg.backend](gy, y, cfg.activation, cfg.act_param, 0.0, True)
        gx = _conv_backward_input(cfg, gy, w) if ctx.needs_input_grad[0] else None
        gw = _conv_backward_weight(cfg, x, gy, w) if ctx.needs_input_grad[1] else None
        gb = kernels.channel_sum[cfg.backend](gy) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


class _ConvTranspose2d(torch.autograd.Function):
    """y = conv2d_backward_input(x, w): cfg describes the *forward convolution* that maps y-shaped
    tensors to x-shaped ones (cfg.in_hw = y's size, cfg.out_hw = x's size)."""

    @staticmethod
    def forward(ctx, x, w, b, cfg: ConvConfig):
        y = _conv_backward_input(cfg, x, w)
        if b is not None:
            _add_bias(cfg.backend, y, b)
        ctx.cfg, ctx.has_bias = cfg, b is not None
        ctx.save_for_backward(x, w)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        cfg = ctx.cfg
        gy = gy.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _conv_forward(cfg, gy, w, None, None, 0.0)
        if ctx.needs_input_grad[1]:  # the forward convolution's weight gradient with input := gy, grad := x
            gw = _conv_backward_weight(cfg, gy, x, w)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = kernels.channel_sum[cfg.backend](gy)
        return gx, gw, gb, None


def _add_bias(backend, y, b):
    if kernels.channel_bias_act.offered_by(backend):
        kernels.channel_bias_act[backend](y, b, None, 0.0)
    else:  # backends without the epilogue kernel: a broadcast add (the gradient still uses channel_sum)
        y += b.view(1, -1, 1, 1)


# ----------------------------------------------------------------------------------------------------
# The eager op (csrc/torchops/conv.cpp; fastcnn/ops/_eager.py): on the cpu backend, a configuration's
# three passes with the algorithms chosen here, in one C++ op with its own backward node, without the
# Function's Python frames (most of a small layer's time).

_CONV = EagerOp("conv2d")
_EAGER_CODE = {"direct": 0, "im2col": 1, "fft": 2, "winograd": 3}  # csrc/host/conv_calls.h enum Algo
_is_compiling = torch.compiler.is_compiling


class _EagerPlan(NamedTuple):
    """What the eager op needs of a configuration, worked out on its first call."""
    # int64 [24] (an int list argument costs ~0.1 us per element to convert, a tensor nothing): the
    # ConvShape's 16 sizes, the code of each pass's algorithm (forward, backward-input,
    # backward-weight), each pass's non-finite fallback (_nonfinite_fallback; -1: none), the fused
    # activation's code, transposed (csrc/torchops/conv.cpp reads it)
    codes: torch.Tensor
    act_param: float
    kernels: tuple  # (slot impls, its cpu kernel when planned) of each algorithm the plan runs


def _builtin(fn) -> bool:
    """fn is a kernel as fastcnn/backends/cpu/ registers it (not a replacement: a test's wrapper, a
    user's kernel; only the Function path calls those)."""
    module = getattr(fn, "__module__", None) or ""
    return module.startswith("fastcnn.backends.cpu.") and getattr(sys.modules.get(module), fn.__name__, None) is fn


def _eager_plan(cfg: ConvConfig, w, transposed: bool) -> Optional[_EagerPlan]:
    """The eager op's plan for cfg, None where the Function serves it: a size of 0 anywhere (the
    kernel wrappers' special cases), or a pass whose algorithm (or fallback) the op lacks or whose cpu
    kernel is not the built-in one. Each pass's algorithm is _chosen_algo's (the autotuner is off)."""
    shape = cfg.shape
    if min(shape.N, shape.C, shape.H, shape.W, shape.K, shape.P, shape.Q) < 1:
        return None
    codes, fallbacks, kernels = [], [], []
    for direction in algos.DIRECTIONS:
        algo = _chosen_algo(cfg, direction, shape.N, w, None)
        fallback = _nonfinite_fallback(cfg, direction, algo)
        for a in (algo,) if fallback is None else (algo, fallback):
            impls = algos.kernel_slot(direction, a).impls
            if a not in _EAGER_CODE or not _builtin(impls.get("cpu")):
                return None
            kernels.append((impls, impls["cpu"]))
        codes.append(_EAGER_CODE[algo])
        fallbacks.append(-1 if fallback is None else _EAGER_CODE[fallback])
    codes = torch.tensor(list(shape) + codes + fallbacks + [fused_code(cfg.activation), int(transposed)],
                         dtype=torch.int64, device="cpu")
    return _EagerPlan(codes, float(cfg.act_param), tuple(kernels))


def _eager_conv(checked: _Checked, cfg: ConvConfig, x, w, b, transposed: bool):
    """The eager op's result for this cpu call (x, w, b contiguous), or None where the Function serves
    it: with the autotuner on (it times each pass on the call's data) or the choice log on (its records
    come from _pass, pass by pass), where _eager_plan says so, and where runnable() refuses
    (functorch, tracing)."""
    if _is_compiling() or algos.autotune_enabled() or _log.isEnabledFor(logging.DEBUG):
        return None
    key = (algos.heuristic, len(_registry._REGISTERED))  # what the per-pass choice hangs on (_chosen_algo)
    plan = checked.plans.get(key)
    if plan is None:
        plan = checked.plans[key] = _eager_plan(cfg, w, transposed) or False
    if plan is False:
        return None
    op = runnable(_CONV)
    if op is None:
        return None
    for impls, fn in plan.kernels:
        if impls.get("cpu") is not fn:  # replaced since it was planned
            return None
    return op(x, w, b, plan.codes, plan.act_param)


# ----------------------------------------------------------------------------------------------------
# Public ops

def _conv2d_reference(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto",
                      activation=None, activation_param=None):
    activation, param = fused_activation(activation, activation_param)
    y = F.conv2d(input, weight, bias, stride, padding, dilation, groups)
    return reference_activation(y, activation, param)


@public_op(reference=_conv2d_reference, check=_check_conv2d, repeat=True)
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto", activation=None,
           activation_param=None, backend, checked: _Checked):
    """torch.nn.functional.conv2d on fastcnn kernels, plus `algo=` and a fused `activation=`
    (None, 'relu', 'leaky_relu', 'elu', 'sigmoid', 'tanh'; `activation_param` = slope / alpha)."""
    channels_last = is_channels_last_only(input)  # the kernels take NCHW; the result follows the input
    if channels_last:
        input = nchw_from_channels_last(input)
    unbatched, shape = checked.unbatched, checked.shape
    x = input.unsqueeze(0) if unbatched else input
    x, w = x.contiguous(), weight.contiguous()
    b = None if bias is None else bias.contiguous()
    if algo != "auto":  # asks the registry each call: tests add and remove kernels
        algos.check_explicit(algo, backend, "conv2d_forward", shape.stride, shape.dilation, shape.kernel_hw)
    cfg = checked.configs.get(backend)
    if cfg is None:
        cfg = ConvConfig(shape, checked.activation, checked.act_param, backend, algo)
        checked.configs[backend] = cfg
    y = _eager_conv(checked, cfg, x, w, b, False) if backend == "cpu" else None
    if y is None:
        y = apply(_Conv2d, x, w, b, cfg)
    if channels_last:
        y = channels_last_from_nchw(y)
    return y.squeeze(0) if unbatched else y


def _conv_transpose2d_reference(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                                dilation=1, *, algo="auto"):
    return F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)


@public_op(reference=_conv_transpose2d_reference, check=_check_conv_transpose2d, repeat=True)
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     algo="auto", backend, checked: _Checked):
    """torch.nn.functional.conv_transpose2d on fastcnn kernels (weight [in, out/groups, R, S]), plus `algo=`."""
    channels_last = is_channels_last_only(input)  # the kernels take NCHW; the result follows the input
    if channels_last:
        input = nchw_from_channels_last(input)
    unbatched, shape = checked.unbatched, checked.shape
    x = input.unsqueeze(0) if unbatched else input
    x, w = x.contiguous(), weight.contiguous()
    b = None if bias is None else bias.contiguous()
    if algo != "auto":  # asks the registry each call: tests add and remove kernels
        algos.check_explicit(algo, backend, "conv2d_backward_input", shape.stride, shape.dilation, shape.kernel_hw)
    cfg = checked.configs.get(backend)
    if cfg is None:
        cfg = checked.configs[backend] = ConvConfig(shape, None, 0.0, backend, algo)
    y = _eager_conv(checked, cfg, x, w, b, True) if backend == "cpu" else None
    if y is None:
        y = apply(_ConvTranspose2d, x, w, b, cfg)
    if channels_last:
        y = channels_last_from_nchw(y)
    return y.squeeze(0) if unbatched else y
