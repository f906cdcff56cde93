"""torch.nn-compatible activation modules on fastcnn kernels. Same constructor arguments as torch.nn
(plus `backend=`), same parameter names, and `from_torch(module)` for fastcnn.nn.convert."""
from __future__ import annotations

import torch
from torch import nn

from .. import ops

__all__ = ["ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softplus", "PReLU", "Maxout", "Step", "SiLU", "GELU",
           "Hardswish", "Hardsigmoid"]


class ReLU(nn.Module):
    def __init__(self, inplace: bool = False, *, backend=None):
        super().__init__()
        self.inplace, self.backend = inplace, backend

    def forward(self, input):
        return ops.relu(input, self.inplace, backend=self.backend)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""

    @classmethod
    def from_torch(cls, m: nn.ReLU):
        return cls(m.inplace)


class LeakyReLU(nn.Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *, backend=None):
        super().__init__()
        self.negative_slope, self.inplace, self.backend = negative_slope, inplace, backend

    def forward(self, input):
        return ops.leaky_relu(input, self.negative_slope, self.inplace, backend=self.backend)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")

    @classmethod
    def from_torch(cls, m: nn.LeakyReLU):
        return cls(m.negative_slope, m.inplace)


class ELU(nn.Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False, *, backend=None):
        super().__init__()
        self.alpha, self.inplace, self.backend = alpha, inplace, backend

    def forward(self, input):
        return ops.elu(input, self.alpha, self.inplace, backend=self.backend)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")

    @classmethod
    def from_torch(cls, m: nn.ELU):
        return cls(m.alpha, m.inplace)


class Sigmoid(nn.Module):
    def __init__(self, *, backend=None):
        super().__init__()
        self.backend = backend

    def forward(self, input):
        return ops.sigmoid(input, backend=self.backend)

    @classmethod
    def from_torch(cls, m: nn.Sigmoid):
        return cls()


class Tanh(nn.Module):
    def __init__(self, *, backend=None):
        super().__init__()
        self.backend = backend

    def forward(self, input):
        return ops.tanh(input, backend=self.backend)

    @classmethod
    def from_torch(cls, m: nn.Tanh):
        return cls()


class Softplus(nn.Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0, *, backend=None):
        super().__init__()
        self.beta, self.threshold, self.backend = beta, threshold, backend

    def forward(self, input):
        return ops.softplus(input, self.beta, self.threshold, backend=self.backend)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"

    @classmethod
    def from_torch(cls, m: nn.Softplus):
        return cls(m.beta, m.threshold)


class PReLU(nn.Module):
    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None, *, backend=None):
        super().__init__()
        self.num_parameters, self.init, self.backend = num_parameters, init, backend
        self.weight = nn.Parameter(torch.full((num_parameters,), float(init), device=device, dtype=dtype))

    def forward(self, input):
        return ops.prelu(input, self.weight, backend=self.backend)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"

    @classmethod
    def from_torch(cls, m: nn.PReLU):
        new = cls(m.num_parameters, device=m.weight.device, dtype=m.weight.dtype)
        new.load_state_dict(m.state_dict())
        return new


class Maxout(nn.Module):
    """Max over groups of `pool_size` consecutive features along `dim` (see fastcnn.ops.maxout)."""

    def __init__(self, pool_size: int, dim: int = 1, *, backend=None):
        super().__init__()
        self.pool_size, self.dim, self.backend = pool_size, dim, backend

    def forward(self, input):
        return ops.maxout(input, self.pool_size, self.dim, backend=self.backend)

    def extra_repr(self):
        return f"pool_size={self.pool_size}, dim={self.dim}"


class Step(nn.Module):
    """Heaviside step (the perceptron's threshold unit); forward only."""

    def __init__(self, value_at_zero: float = 0.0, *, backend=None):
        super().__init__()
        self.value_at_zero, self.backend = value_at_zero, backend

    def forward(self, input):
        return ops.step(input, self.value_at_zero, backend=self.backend)


class _InplaceActivation(nn.Module):
    """An element-wise activation whose only option is `inplace` (SiLU, Hardswish, Hardsigmoid)."""

    op = None  # the fastcnn.ops function

    def __init__(self, inplace: bool = False, *, backend=None):
        super().__init__()
        self.inplace, self.backend = inplace, backend

    def forward(self, input):
        return type(self).op(input, self.inplace, backend=self.backend)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""

    @classmethod
    def from_torch(cls, m, *, backend=None):
        return cls(m.inplace, backend=backend)


class SiLU(_InplaceActivation):
    op = staticmethod(ops.silu)


class Hardswish(_InplaceActivation):
    op = staticmethod(ops.hardswish)


class Hardsigmoid(_InplaceActivation):
    op = staticmethod(ops.hardsigmoid)


class GELU(nn.Module):
    def __init__(self, approximate: str = "none", *, backend=None):
        super().__init__()
        self.approximate, self.backend = approximate, backend

    def forward(self, input):
        return ops.gelu(input, self.approximate, backend=self.backend)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"

    @classmethod
    def from_torch(cls, m: nn.GELU, *, backend=None):
        return cls(m.approximate, backend=backend)
