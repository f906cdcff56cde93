"""Activations: relu, leaky_relu, elu, sigmoid, tanh, softplus, prelu, maxout, step.

Kernels called here (same name and signature on every backend):
    activation_forward(x, kind, p0, p1, out=None) -> y      element-wise on x's (dense) storage;
                                                             out=x writes in place
    activation_backward(gy, saved, kind, p0, p1, from_output) -> gx   gy laid out like saved
    prelu_forward(x[outer,C,inner], weight[1 or C]) -> y
    prelu_backward(gy, x, weight) -> (gx, gweight)
    maxout_forward(x[outer,C,inner], pool_size) -> y[outer, C/pool_size, inner]
    maxout_backward(gy, x, pool_size) -> gx
`kind` is a name from ACT_KIND; p0/p1 are its parameters (slope, alpha, beta/threshold, value at 0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ..contracts.activation import ACT_KIND  # noqa: F401 - the kinds `kind` names (documented above)
from ._eager import EagerOp, runnable
from ._op import apply, once_differentiable, public_op
from ._shapes import around, owned_outputs, follows_channels_last

__all__ = ["relu", "relu_", "leaky_relu", "leaky_relu_", "elu", "elu_", "sigmoid", "tanh", "softplus", "prelu",
           "maxout", "step", "activation", "silu", "gelu", "hardswish", "hardsigmoid"]

# Kinds whose derivative can be computed from the output alone (so in-place forward works).
FROM_OUTPUT = {"relu", "leaky_relu", "elu", "sigmoid", "tanh"}
# ...of which elu's is ill-conditioned from the output (y + alpha cancels for x << 0: 1e-4 relative
# error in float32 at x = -8.5), so like torch it uses the output only when the input is overwritten.
FROM_OUTPUT_ONLY_INPLACE = {"elu"}


def dense(t: torch.Tensor) -> torch.Tensor:
    """t itself if its storage is dense (contiguous or channels_last), else a contiguous copy."""
    if t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last):
        return t
    return t.contiguous()


def like(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """t with exactly ref's strides (element-wise kernels walk both storages in the same order)."""
    if t.stride() == ref.stride():
        return t
    return torch.empty_like(ref).copy_(t)


class _Elementwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kind, p0, p1, backend, inplace):
        x_dense = dense(x)
        out = x_dense if inplace else None
        from_output = kind in FROM_OUTPUT and (inplace or kind not in FROM_OUTPUT_ONLY_INPLACE)
        # An in-place op whose derivative needs the input keeps a copy of it (as torch does).
        saved_input = x_dense.clone() if inplace and not from_output and ctx.needs_input_grad[0] else x_dense
        y = kernels.activation_forward[backend](x_dense, kind, p0, p1, out=out)
        if inplace:
            if y is not x:  # x was not dense: write the result back into the caller's tensor
                x.copy_(y)
                y = x
            ctx.mark_dirty(x)
        ctx.from_output = from_output
        ctx.save_for_backward(y if from_output else saved_input)
        ctx.args = (kind, p0, p1, backend)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        (saved,) = ctx.saved_tensors
        kind, p0, p1, backend = ctx.args
        saved = dense(saved)
        gx = kernels.activation_backward[backend](like(gy, saved), saved, kind, p0, p1, ctx.from_output)
        return gx, None, None, None, None, None


_ACT = EagerOp("activation")
# kind -> (kernel code, derivative from the output) for an out-of-place call, as _Elementwise decides.
_EAGER_KIND = {k: (code, k in FROM_OUTPUT and k not in FROM_OUTPUT_ONLY_INPLACE) for k, code in ACT_KIND.items()}


def _elementwise(x, kind, p0, p1, backend, inplace=False):
    if backend == "cpu" and not inplace:  # the same kernels in one C++ op (fastcnn/ops/_eager.py)
        act = runnable(_ACT)
        if act is not None:
            code, from_output = _EAGER_KIND[kind]
            return act(x, code, float(p0), float(p1), from_output)
    return apply(_Elementwise, x, kind, float(p0), float(p1), backend, inplace)


def _plan(config):
    """A public_op `lean` factory for an out-of-place activation: config(*args, **kwargs) -> (kind, p0,
    p1), as its body passes them to _elementwise; the plan calls the eager op with them, worked out on
    the configuration's first call (the other arguments are part of its memo key)."""
    def lean(args, kwargs, checked):
        act = runnable(_ACT)
        if act is None:
            return None
        kind, p0, p1 = config(*args, **kwargs)
        code, from_output = _EAGER_KIND[kind]
        p0, p1 = float(p0), float(p1)

        def run(input, *_, **__):
            return act(input, code, p0, p1, from_output)
        return run
    return lean


# `repeat` predicates (public_op): where a configuration's checks read nothing but its memo key.
def _out_of_place(input, inplace=False):
    return not inplace


def _leaky_out_of_place(input, negative_slope=0.01, inplace=False):
    return not inplace


def _elu_out_of_place(input, alpha=1.0, inplace=False):
    return not inplace and alpha >= 0  # a negative alpha's check reads requires_grad


def _check_input(input, *args, **kwargs):
    _checks.float_tensor(input, "input")


def _check_inplace(input, *args, inplace=False, **kwargs):
    _checks.float_tensor(input, "input")
    if inplace and input.requires_grad and input.is_leaf:
        raise ValueError("inplace: a leaf tensor that requires grad cannot be modified in place")


@public_op(reference=F.relu, check=_check_inplace, repeat=_out_of_place,
           lean=_plan(lambda input, inplace=False: ("relu", 0.0, 0.0)))
def relu(input, inplace=False, *, backend):
    return _elementwise(input, "relu", 0.0, 0.0, backend, inplace)


@public_op(reference=torch.relu_, check=_check_inplace)
def relu_(input, *, backend):
    return _elementwise(input, "relu", 0.0, 0.0, backend, True)


def _check_leaky(input, negative_slope=0.01, inplace=False):
    _check_inplace(input, inplace=inplace)
    _checks.number(negative_slope, "negative_slope")
    if inplace and input.requires_grad and negative_slope <= 0:
        raise ValueError(f"negative_slope: in-place leaky_relu needs a positive slope to be differentiable "
                         f"(its gradient is computed from the output), got {negative_slope}")


@public_op(reference=F.leaky_relu, check=_check_leaky, repeat=_leaky_out_of_place,
           lean=_plan(lambda input, negative_slope=0.01, inplace=False: ("leaky_relu", negative_slope, 0.0)))
def leaky_relu(input, negative_slope=0.01, inplace=False, *, backend):
    return _elementwise(input, "leaky_relu", negative_slope, 0.0, backend, inplace)


@public_op(reference=F.leaky_relu_, check=_check_leaky)
def leaky_relu_(input, negative_slope=0.01, *, backend):
    return _elementwise(input, "leaky_relu", negative_slope, 0.0, backend, True)


def _check_elu(input, alpha=1.0, inplace=False):
    _check_inplace(input, inplace=inplace)
    _checks.number(alpha, "alpha")
    if input.requires_grad and alpha < 0:
        raise ValueError(f"alpha: elu's gradient is computed from its output, which needs alpha >= 0, got {alpha}")


@public_op(reference=F.elu, check=_check_elu, repeat=_elu_out_of_place,
           lean=_plan(lambda input, alpha=1.0, inplace=False: ("elu", alpha, 0.0)))
def elu(input, alpha=1.0, inplace=False, *, backend):
    return _elementwise(input, "elu", alpha, 0.0, backend, inplace)


@public_op(reference=F.elu_, check=_check_elu)
def elu_(input, alpha=1.0, *, backend):
    return _elementwise(input, "elu", alpha, 0.0, backend, True)


@public_op(reference=torch.sigmoid, check=_check_input, repeat=True,
           lean=_plan(lambda input: ("sigmoid", 0.0, 0.0)))
def sigmoid(input, *, backend):
    return _elementwise(input, "sigmoid", 0.0, 0.0, backend)


@public_op(reference=torch.tanh, check=_check_input, repeat=True, lean=_plan(lambda input: ("tanh", 0.0, 0.0)))
def tanh(input, *, backend):
    return _elementwise(input, "tanh", 0.0, 0.0, backend)


def _check_softplus(input, beta=1.0, threshold=20.0):
    _checks.float_tensor(input, "input")
    if _checks.number(beta, "beta") == 0:
        raise ValueError("beta: expected a non-zero number, got 0")
    _checks.number(threshold, "threshold")


@public_op(reference=F.softplus, check=_check_softplus, repeat=True,
           lean=_plan(lambda input, beta=1.0, threshold=20.0: ("softplus", beta, threshold)))
def softplus(input, beta=1.0, threshold=20.0, *, backend):
    return _elementwise(input, "softplus", beta, threshold, backend)


def _step_reference(input, value_at_zero=0.0):
    # torch.heaviside has no derivative; an exact zero tied to the input's graph through sign() (whose
    # derivative is zero) gives the same zero gradient as fastcnn's kernel (NaN mapped first: NaN * 0).
    y = torch.heaviside(input.detach(), torch.tensor(value_at_zero, dtype=input.dtype, device=input.device))
    if not input.requires_grad:
        return y
    return y + torch.where(input.isnan(), 0.0, input).sign() * 0


def _check_step(input, value_at_zero=0.0):
    _checks.float_tensor(input, "input")
    _checks.number(value_at_zero, "value_at_zero")


@public_op(reference=_step_reference, check=_check_step, repeat=True,
           lean=_plan(lambda input, value_at_zero=0.0: ("step", value_at_zero, 0.0)))
def step(input, value_at_zero=0.0, *, backend):
    """Heaviside step: 1 where input > 0, value_at_zero where input == 0, else 0 (the perceptron's
    threshold unit). Differentiable with the derivative zero everywhere (as torch.sign): a loss over
    the output backpropagates zeros into the graph instead of failing."""
    return _elementwise(input, "step", value_at_zero, 0.0, backend)


@public_op(reference=F.silu, check=_check_inplace, repeat=_out_of_place,
           lean=_plan(lambda input, inplace=False: ("silu", 0.0, 0.0)))
def silu(input, inplace=False, *, backend):
    """torch.nn.functional.silu (swish): x * sigmoid(x); the backward from the saved input."""
    return _elementwise(input, "silu", 0.0, 0.0, backend, inplace)


def _check_gelu(input, approximate="none"):
    _checks.float_tensor(input, "input")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")


@public_op(reference=F.gelu, check=_check_gelu, repeat=True, lean=_plan(lambda input, approximate="none": (
    "gelu" if approximate == "none" else "gelu_tanh", 0.0, 0.0)))
def gelu(input, approximate="none", *, backend):
    """torch.nn.functional.gelu: x Phi(x) (approximate='none', via erfc so the negative tail keeps its
    relative accuracy) or x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (approximate='tanh')."""
    return _elementwise(input, "gelu" if approximate == "none" else "gelu_tanh", 0.0, 0.0, backend)


@public_op(reference=F.hardswish, check=_check_inplace, repeat=_out_of_place,
           lean=_plan(lambda input, inplace=False: ("hardswish", 0.0, 0.0)))
def hardswish(input, inplace=False, *, backend):
    """torch.nn.functional.hardswish: x * relu6(x + 3) / 6 (torch's gradient at the kinks)."""
    return _elementwise(input, "hardswish", 0.0, 0.0, backend, inplace)


@public_op(reference=F.hardsigmoid, check=_check_inplace, repeat=_out_of_place,
           lean=_plan(lambda input, inplace=False: ("hardsigmoid", 0.0, 0.0)))
def hardsigmoid(input, inplace=False, *, backend):
    """torch.nn.functional.hardsigmoid: relu6(x + 3) / 6."""
    return _elementwise(input, "hardsigmoid", 0.0, 0.0, backend, inplace)


# ---- PReLU: y = x if x > 0 else weight[c] * x --------------------------------------------------
def _as_channels(t: torch.Tensor):
    """(outer, C, inner) contiguous view for channel-wise ops along dim 1."""
    if t.dim() < 2:
        return t.reshape(1, 1, -1).contiguous()
    return around(t, 1)


@owned_outputs
class _PReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, backend):
        x3, w = _as_channels(x), weight.contiguous().reshape(weight.numel())  # a 0-D weight is one slope
        ctx.save_for_backward(x3, w)
        ctx.backend, ctx.shape, ctx.weight_shape = backend, x.shape, weight.shape
        return kernels.prelu_forward[backend](x3, w).reshape(x.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x3, w = ctx.saved_tensors
        gx, gw = kernels.prelu_backward[ctx.backend](gy.contiguous().reshape(x3.shape), x3, w)
        return gx.reshape(ctx.shape), gw.reshape(ctx.weight_shape), None


def _check_prelu(input, weight):
    _checks.float_tensor(input, "input")
    _checks.float_tensor(weight, "weight", ndims=(0, 1))
    _checks.same_dtype_device(input, "input", weight, "weight")
    channels = input.shape[1] if input.dim() >= 2 else 1
    if weight.numel() not in (1, channels):
        raise ValueError(f"weight: expected 1 or {channels} (input channels) parameters, got {weight.numel()}")


@public_op(reference=F.prelu, check=_check_prelu)
@follows_channels_last
def prelu(input, weight, *, backend):
    return apply(_PReLU, input, weight, backend)


# ---- Maxout: max over groups of pool_size consecutive channels ----------------------------------
def _maxout_reference(input, pool_size, dim=1):
    d = dim % input.dim()
    return input.unflatten(d, (input.shape[d] // pool_size, pool_size)).max(dim=d + 1).values


def _check_maxout(input, pool_size, dim=1):
    _checks.float_tensor(input, "input")
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
        raise ValueError(f"pool_size: expected a positive int, got {pool_size!r}")
    if not -input.dim() <= dim < input.dim():
        raise ValueError(f"dim: expected a dimension of the {input.dim()}-D input, got {dim}")
    if input.shape[dim] % pool_size:
        raise ValueError(f"pool_size: input size {input.shape[dim]} along dim {dim} is not divisible by {pool_size}")


@owned_outputs
class _Maxout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, pool_size, dim, backend):
        d = dim % x.dim()
        x3 = around(x, d)
        ctx.save_for_backward(x3)
        ctx.args, ctx.shape = (pool_size, backend), x.shape
        y = kernels.maxout_forward[backend](x3, pool_size)
        return y.reshape(x.shape[:d] + (x.shape[d] // pool_size,) + x.shape[d + 1:])

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        (x3,) = ctx.saved_tensors
        pool_size, backend = ctx.args
        gy3 = gy.contiguous().reshape(x3.shape[0], x3.shape[1] // pool_size, x3.shape[2])
        return kernels.maxout_backward[backend](gy3, x3, pool_size).reshape(ctx.shape), None, None, None


@public_op(reference=_maxout_reference, check=_check_maxout)
def maxout(input, pool_size, dim=1, *, backend):
    """Maxout (Goodfellow et al. 2013): the input's `dim` holds out*pool_size linear pieces, grouped
    as consecutive runs of pool_size; the result keeps the maximum of each group. After a Linear
    layer of out*pool_size units this is the lecture's max of k linear pieces."""
    return apply(_Maxout, input, pool_size, dim, backend)


# ---- By name (used by fused epilogues and modules) ----------------------------------------------
def activation(input, kind: str, param: float = 0.0, *, backend=None):
    """Apply the activation named `kind` ('relu', 'leaky_relu' (param = slope), 'elu' (param =
    alpha), 'sigmoid', 'tanh'); the names fused convolution epilogues accept."""
    table = {"relu": lambda: relu(input, backend=backend),
             "leaky_relu": lambda: leaky_relu(input, param, backend=backend),
             "elu": lambda: elu(input, param, backend=backend),
             "sigmoid": lambda: sigmoid(input, backend=backend),
             "tanh": lambda: tanh(input, backend=backend)}
    if kind not in table:
        raise ValueError(f"kind: expected one of {sorted(table)}, got {kind!r}")
    return table[kind]()
