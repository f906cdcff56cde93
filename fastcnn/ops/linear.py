"""linear and matmul on the `gemm` kernel; linear with a fused `activation=` epilogue.

Kernels called here (same name and signature on every backend):
    gemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None) -> out
        out = alpha * op(a) @ op(b) + beta * out on 2-D matrices; out=None allocates (beta ignored).
    activation_forward(x, kind, p0, p1, out=x)          (the fused activation, in place over y)
    activation_backward(gy, y, kind, p0, p1, from_output=True) -> g   (through it, from the output)

On the cpu backend linear reaches the eager op fastcnn_eager::linear (csrc/torchops/linear.cpp): the
same kernel calls with one C++ backward node for the whole layer, activation included.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ..contracts.activation import fused_code
from ._eager import EagerOp, runnable
from ._fused import fused_activation, reference_activation
from ._op import apply, memoised, once_differentiable, public_op
from ._shapes import leading_merged, owned_outputs

__all__ = ["linear", "matmul"]


def _gemm(backend, a, b, **kw):
    return kernels.gemm[backend](a, b, **kw)


_ONES: dict = {}


def _ones_column(like: torch.Tensor, rows: int) -> torch.Tensor:
    """A [rows, 1] column of ones like `like` (the bias gradient is gy^T @ ones), made once per
    (rows, dtype, device): a layer's batch size rarely changes, and a fresh one cost an allocation
    and a fill on every backward. Only ever read (a GEMM operand). Not while a graph is traced (its
    tensors are fake, and must not be kept)."""
    if torch.compiler.is_compiling():
        return like.new_ones((rows, 1))
    key = (rows, like.dtype, like.device)
    ones = _ONES.get(key)
    if ones is None:
        if len(_ONES) >= 64:
            _ONES.clear()
        ones = _ONES[key] = like.new_ones((rows, 1))
    return ones


@owned_outputs
class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x2d, w, b, activation, act_param, backend):
        if b is None:
            y = _gemm(backend, x2d, w, trans_b=True)
        else:  # the bias rows are GEMM's C operand: y = x @ w^T + 1 * bias
            y = b.expand(x2d.shape[0], w.shape[0]).clone(memory_format=torch.contiguous_format)
            _gemm(backend, x2d, w, trans_b=True, beta=1.0, out=y)
        if activation is not None:  # in place, while y is still in cache
            kernels.activation_forward[backend](y, activation, act_param, 0.0, out=y)
        ctx.backend, ctx.has_bias = backend, b is not None
        ctx.activation, ctx.act_param = activation, act_param
        ctx.save_for_backward(x2d, w, y if activation is not None else None)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x2d, w, y = ctx.saved_tensors
        gy = gy.contiguous()
        if ctx.activation is not None:  # through the fused activation, from the output
            gy = kernels.activation_backward[ctx.backend](gy, y, ctx.activation, ctx.act_param, 0.0, True)
        gx = _gemm(ctx.backend, gy, w) if ctx.needs_input_grad[0] else None
        gw = _gemm(ctx.backend, gy, x2d, trans_a=True) if ctx.needs_input_grad[1] else None
        gb = None
        if ctx.has_bias and ctx.needs_input_grad[2]:  # column sums of gy = gy^T @ ones
            gb = _gemm(ctx.backend, gy, _ones_column(gy, gy.shape[0]), trans_a=True).view(-1)
        return gx, gw, gb, None, None, None


@owned_outputs
class _Matmul(torch.autograd.Function):
    """a[B, M, K] @ b[B, K, N] (B may be 1 for either side's broadcast is handled by the caller)."""

    @staticmethod
    def forward(ctx, a, b, backend):
        out = a.new_empty((a.shape[0], a.shape[1], b.shape[2]))
        for i in range(a.shape[0]):
            _gemm(backend, a[i], b[i], out=out[i])
        ctx.backend = backend
        ctx.save_for_backward(a, b)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        gy = gy.contiguous()
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = a.new_empty(a.shape)
            for i in range(a.shape[0]):
                _gemm(ctx.backend, gy[i], b[i], trans_b=True, out=ga[i])
        if ctx.needs_input_grad[1]:
            gb = b.new_empty(b.shape)
            for i in range(b.shape[0]):
                _gemm(ctx.backend, a[i], gy[i], trans_a=True, out=gb[i])
        return ga, gb, None


def _check_linear(input, weight, bias=None, *, activation=None, activation_param=None):
    _checks.float_tensor(input, "input")
    if input.dim() < 1:
        raise ValueError("input: expected at least 1 dimension, got a 0-D tensor")
    _checks.float_tensor(weight, "weight", 2)
    _checks.same_dtype_device(input, "input", weight, "weight")
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(f"weight: expected {input.shape[-1]} input features in dim 1 (input's last dim), "
                         f"got shape {tuple(weight.shape)}")
    if bias is not None:
        _checks.float_tensor(bias, "bias", 1)
        _checks.same_dtype_device(input, "input", bias, "bias")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias: expected {weight.shape[0]} values, got {bias.shape[0]}")
    fused_activation(activation, activation_param)


_LINEAR = EagerOp("linear")


def _linear_plan(args, kwargs, checked):
    """public_op's lean plan for a 2-D input: the eager op itself, whose schema takes F.linear's
    arguments (input, weight, bias=None) as they come; with `activation=` / `activation_param=`
    keywords, a call of it with the activation's code and parameter worked out once."""
    x, w, activation, activation_param = _plan_arguments(*args, **kwargs)
    lin = runnable(_LINEAR) if x.dim() == 2 else None
    if lin is None or ("activation" not in kwargs and "activation_param" not in kwargs):
        return lin
    activation, param = fused_activation(activation, activation_param)
    code = fused_code(activation)

    def fused(input, weight, bias=None, **_):
        return lin(input, weight, bias, code, param)
    return fused


def _plan_arguments(input, weight, bias=None, *, activation=None, activation_param=None):
    return input, weight, activation, activation_param


def _linear_reference(input, weight, bias=None, *, activation=None, activation_param=None):
    activation, param = fused_activation(activation, activation_param)
    return reference_activation(F.linear(input, weight, bias), activation, param)


@public_op(reference=_linear_reference, check=memoised(_check_linear), repeat=True, lean=_linear_plan)
def linear(input, weight, bias=None, *, activation=None, activation_param=None, backend):
    """torch.nn.functional.linear, input[..., in] @ weight[out, in]^T + bias[out], plus a fused
    `activation=` (None, 'relu', 'leaky_relu', 'elu', 'sigmoid', 'tanh'; `activation_param` = slope /
    alpha, torch's default when None) applied to the result in the same op, forward and backward."""
    activation, param = fused_activation(activation, activation_param)
    x2d = input if input.dim() == 2 else leading_merged(input, 1)  # 2-D, the usual case: no reshapes
    lin = runnable(_LINEAR) if backend == "cpu" else None
    if lin is not None:  # the same kernels in one C++ op (fastcnn/ops/_eager.py)
        y = lin(x2d, weight, bias, fused_code(activation), param)
    else:
        y = apply(_Linear, x2d.contiguous(), weight.contiguous(), None if bias is None else bias.contiguous(),
                  activation, param, backend)
    return y if input.dim() == 2 else y.view(*input.shape[:-1], weight.shape[0])


def _matmul_shapes(a, b):
    """(a as [B, M, K], b as [B, K, N], result shape) for torch.matmul's 1-D / 2-D / batched cases
    where the batch dimensions are equal or one side has none."""
    a_vec, b_vec = a.dim() == 1, b.dim() == 1
    A = a.unsqueeze(0) if a_vec else a
    Bm = b.unsqueeze(-1) if b_vec else b
    if A.shape[-1] != Bm.shape[-2]:
        raise ValueError(f"b: expected {A.shape[-1]} rows to match a's last dim, got shape {tuple(b.shape)}")
    batch_a, batch_b = A.shape[:-2], Bm.shape[:-2]
    if batch_a and batch_b and batch_a != batch_b:
        raise ValueError(f"a, b: batch dimensions must be equal or absent on one side, got {tuple(batch_a)} "
                         f"and {tuple(batch_b)}")
    batch = batch_a or batch_b
    shape = tuple(batch) + ((A.shape[-2],) if not a_vec else ()) + ((Bm.shape[-1],) if not b_vec else ())
    return A, Bm, batch, shape


def _matmul_eager(a, b):
    """a @ b for 1-D / 2-D operands as the eager linear op: linear(a, b^T) (the op makes b^T
    contiguous), the same GEMM values and order as _Matmul's forward and backward, without its
    Function and per-matrix loop (spectral norm's matrix-vector products: a Python matmul cost ten
    times torch's). None where the op may not run (fastcnn/ops/_eager.py), or where b^T is not
    contiguous (b a plain matrix: making b^T contiguous cost more than the product, 10 us for 64 x 288;
    the Function reads b as it is)."""
    x = a.unsqueeze(0) if a.dim() == 1 else a          # [M, K]
    w = b.unsqueeze(0) if b.dim() == 1 else b.t()      # [N, K]
    lin = runnable(_LINEAR) if w.is_contiguous() else None
    if lin is None:
        return None
    y = lin(x, w)
    if a.dim() == 2 and b.dim() == 2:
        return y
    return y.view(((x.shape[0],) if a.dim() == 2 else ()) + ((w.shape[0],) if b.dim() == 2 else ()))


def _check_matmul(a, b):
    _checks.float_tensor(a, "a")
    _checks.float_tensor(b, "b")
    if a.dim() < 1 or b.dim() < 1:
        raise ValueError(f"a, b: expected at least 1-D tensors, got {a.dim()}-D and {b.dim()}-D")
    _checks.same_dtype_device(a, "a", b, "b")
    _matmul_shapes(a, b)


@public_op(reference=torch.matmul, check=_check_matmul, repeat=True)
def matmul(a, b, *, backend):
    """torch.matmul for 1-D, 2-D and batched operands whose batch dimensions are equal (or absent on
    one side: a batched a with a 2-D b is one GEMM over the stacked rows)."""
    if backend == "cpu" and a.dim() <= 2 and b.dim() <= 2:
        y = _matmul_eager(a, b)
        if y is not None:
            return y
    A, Bm, batch, shape = _matmul_shapes(a, b)
    if not Bm.shape[:-2]:  # b is one matrix: fold a's batch into its rows
        a2 = leading_merged(A, 1)
        y = apply(_Matmul, a2.unsqueeze(0), Bm.unsqueeze(0), backend)
        return y.reshape(shape)
    if not A.shape[:-2]:
        A = A.expand(*batch, *A.shape)
    y = apply(_Matmul, leading_merged(A, 2), leading_merged(Bm, 2), backend)
    return y.reshape(shape)
