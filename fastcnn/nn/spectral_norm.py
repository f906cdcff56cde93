"""spectral_norm(module): torch.nn.utils.spectral_norm computed with fastcnn kernels.

Same behaviour and state_dict keys as torch's (weight_orig parameter, weight_u / weight_v buffers):
before every forward the module's weight becomes weight_orig / sigma, sigma = u . (W v) for W =
weight_orig as a [dim size, rest] matrix; in training mode one power iteration (v = normalize(W^T u),
u = normalize(W v), without gradient) refines u and v first. All of it is one op,
fastcnn.ops.spectral_normalize (on cpu one kernel call forward and one backward); backend='reference'
runs torch's own steps (the torch twin of a zoo network).
"""
from __future__ import annotations

import torch
from torch import nn

from .. import ops
from ..ops.spectral_norm import matrix

__all__ = ["spectral_norm"]


class _SpectralNorm:
    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float, backend):
        self.name, self.n_power_iterations, self.dim = name, n_power_iterations, dim
        self.eps, self.backend = eps, backend

    def compute_weight(self, module: nn.Module, power_iteration: bool) -> torch.Tensor:
        return ops.spectral_normalize(
            getattr(module, self.name + "_orig"), getattr(module, self.name + "_u"), getattr(module, self.name + "_v"),
            self.dim, self.n_power_iterations if power_iteration else 0, self.eps, backend=self.backend)

    def __call__(self, module: nn.Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, power_iteration=module.training))


def spectral_norm(module: nn.Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int = None, *, backend=None) -> nn.Module:
    """Applies spectral normalisation to module.<name> (torch.nn.utils.spectral_norm's arguments; dim
    defaults to 1 for transposed convolutions, else 0) and returns the module."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    weight = module._parameters.get(name)
    if not isinstance(weight, torch.Tensor):
        raise ValueError(f"name: {type(module).__name__} has no parameter {name!r}")
    if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, int) or n_power_iterations < 0:
        raise ValueError(f"n_power_iterations: expected an int >= 0, got {n_power_iterations!r}")
    if dim is None:
        dim = 1 if isinstance(module, nn.modules.conv._ConvTransposeNd) else 0
    fn = _SpectralNorm(name, n_power_iterations, dim, float(eps), backend)
    with torch.no_grad():  # u, v: random unit vectors, as torch (initialisation, not a forward computation)
        mat = matrix(weight, dim)
        u = nn.functional.normalize(weight.new_empty(mat.shape[0]).normal_(0, 1), dim=0, eps=fn.eps)
        v = nn.functional.normalize(weight.new_empty(mat.shape[1]).normal_(0, 1), dim=0, eps=fn.eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, weight.data)
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module
