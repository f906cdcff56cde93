"""spectral_normalize: the weight torch.nn.utils.spectral_norm hands its module, W / sigma(W).

sigma = u . (Mat v), Mat = W as a [W.shape[dim], rest] matrix; with n_power_iterations > 0 the power
iteration (v = normalize(Mat^T u), u = normalize(Mat v), without gradient) first refines u and v,
which are updated in place, as torch's forward pre-hook does. The gradient holds u and v constant, as
torch's: dL/dW = (gy - <gy, W / sigma> u v^T) / sigma.

Kernels called here (fastcnn/contracts/kernels.py; cpu only, csrc/host/spectral_norm.cpp):
  spectral_norm_forward(w, dim, u, v, n_power_iterations, eps) -> (y, u_used, v_used, sigma)
  spectral_norm_backward(gy, y, dim, u_used, v_used, sigma) -> gw
      the iteration (u and v updated in place), sigma and the division in one call, the gradient in
      another; u_used, v_used: copies for the backward (a later call may update u and v first).
      A backend without them (triton, cuda) runs the same steps as fastcnn.ops.matmul and
      fastcnn.ops.normalize calls.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ._op import apply, once_differentiable, public_op

__all__ = ["spectral_normalize"]


def matrix(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """weight as the power iteration's matrix, [weight.shape[dim], rest] (torch's reshape_weight_to_matrix)."""
    if dim != 0:
        weight = weight.movedim(dim, 0)
    return weight.reshape(weight.shape[0], -1)


def _check_spectral_normalize(weight, u, v, dim=0, n_power_iterations=1, eps=1e-12):
    _checks.float_tensor(weight, "weight")
    if weight.dim() < 1 or weight.numel() == 0:
        raise ValueError(f"weight: expected a non-empty tensor of 1 or more dims, got shape {tuple(weight.shape)}")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim: expected an int, got {type(dim).__name__}")
    if not -weight.dim() <= dim < weight.dim():
        raise ValueError(f"dim: expected a value in [{-weight.dim()}, {weight.dim() - 1}] for a {weight.dim()}-D "
                         f"weight, got {dim}")
    rows = weight.shape[dim]
    for t, size, name in ((u, rows, "u"), (v, weight.numel() // rows, "v")):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a tensor, got {type(t).__name__}")
        if t.shape != (size,):
            raise ValueError(f"{name}: expected shape ({size},) for a weight of shape {tuple(weight.shape)} "
                             f"normalised along dim {dim}, got {tuple(t.shape)}")
        if t.dtype != weight.dtype or t.device != weight.device:
            raise TypeError(f"{name}: expected {weight.dtype} on {weight.device} (the weight's), got {t.dtype} on "
                            f"{t.device}")
    if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, int) or n_power_iterations < 0:
        raise ValueError(f"n_power_iterations: expected an int >= 0, got {n_power_iterations!r}")
    if _checks.number(eps, "eps") < 0:
        raise ValueError(f"eps: expected a value >= 0, got {eps}")


def _power_steps(weight, u, v, dim, n_power_iterations, transposed_product, product, normalise, dot):
    """torch.nn.utils.spectral_norm's compute_weight, step for step, on the given products."""
    mat = matrix(weight, dim)
    if n_power_iterations > 0:
        with torch.no_grad():
            for _ in range(n_power_iterations):
                v.copy_(normalise(transposed_product(mat, u)))
                u.copy_(normalise(product(mat, v)))
        u, v = u.clone(), v.clone()  # autograd must not see the in-place updates of the next call
    return weight / dot(u, product(mat, v))


def _reference(weight, u, v, dim=0, n_power_iterations=1, eps=1e-12):
    return _power_steps(weight, u, v, dim % weight.dim(), n_power_iterations, lambda m, x: torch.mv(m.t(), x),
                        torch.mv, lambda x: F.normalize(x, dim=0, eps=eps), torch.dot)


class _SpectralNormalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, u, v, dim, n_power_iterations, eps, backend):
        y, u_used, v_used, sigma = kernels.spectral_norm_forward[backend](
            weight.contiguous(), dim, u, v, n_power_iterations, eps)
        ctx.save_for_backward(y, u_used, v_used, sigma)
        ctx.args = (dim, backend)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        y, u, v, sigma = ctx.saved_tensors
        dim, backend = ctx.args
        return kernels.spectral_norm_backward[backend](gy.contiguous(), y, dim, u, v, sigma), \
            None, None, None, None, None, None


def _composed(weight, u, v, dim, n_power_iterations, eps, backend):
    """The same steps as fastcnn ops, for a backend without the fused kernels."""
    from .linear import matmul
    from .norm import normalize

    def mm(a, b):
        return matmul(a, b, backend=backend)
    return _power_steps(weight, u, v, dim, n_power_iterations, lambda m, x: mm(x, m), mm,
                        lambda x: normalize(x, dim=0, eps=eps, backend=backend), mm)


@public_op(reference=_reference, check=_check_spectral_normalize, repeat=True)
def spectral_normalize(weight, u, v, dim=0, n_power_iterations=1, eps=1e-12, *, backend):
    """weight / sigma(weight), sigma its largest singular value as estimated by power iteration on
    [weight.shape[dim], rest] (torch.nn.utils.spectral_norm's weight; fastcnn.nn.spectral_norm calls
    this before every forward). u, v: the iteration's vectors, updated in place when
    n_power_iterations > 0; the gradient holds them constant."""
    dim %= weight.dim()
    if not kernels.spectral_norm_forward.offered_by(backend):
        return _composed(weight, u, v, dim, n_power_iterations, float(eps), backend)
    return apply(_SpectralNormalize, weight, u, v, dim, n_power_iterations, float(eps), backend)
