"""torch.nn-compatible activation modules on fastcnn kernels: each subclasses its torch.nn class
(constructor arguments, parameter names, repr) and replaces forward; `backend=` (keyword only) and
`from_torch(module)` come from the base, fastcnn/nn/_base.py. Maxout and Step have no torch twin."""
from __future__ import annotations

from torch import nn

from .. import ops
from ._base import Module

__all__ = ["ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softplus", "PReLU", "Maxout", "Step", "SiLU", "GELU",
           "Hardswish", "Hardsigmoid"]


class ReLU(Module, nn.ReLU):
    def forward(self, input):
        return ops.relu(input, self.inplace, backend=self.backend)


class LeakyReLU(Module, nn.LeakyReLU):
    def forward(self, input):
        return ops.leaky_relu(input, self.negative_slope, self.inplace, backend=self.backend)


class ELU(Module, nn.ELU):
    def forward(self, input):
        return ops.elu(input, self.alpha, self.inplace, backend=self.backend)


class Sigmoid(Module, nn.Sigmoid):
    def forward(self, input):
        return ops.sigmoid(input, backend=self.backend)


class Tanh(Module, nn.Tanh):
    def forward(self, input):
        return ops.tanh(input, backend=self.backend)


class Softplus(Module, nn.Softplus):
    def forward(self, input):
        return ops.softplus(input, self.beta, self.threshold, backend=self.backend)


class PReLU(Module, nn.PReLU):
    def forward(self, input):
        return ops.prelu(input, self.weight, backend=self.backend)


class Maxout(Module):
    """Max over groups of `pool_size` consecutive features along `dim` (see fastcnn.ops.maxout)."""

    def __init__(self, pool_size: int, dim: int = 1, *, backend=None):
        super().__init__(backend=backend)
        self.pool_size, self.dim = pool_size, dim

    def forward(self, input):
        return ops.maxout(input, self.pool_size, self.dim, backend=self.backend)

    def extra_repr(self):
        return ", ".join(filter(None, [f"pool_size={self.pool_size}, dim={self.dim}", super().extra_repr()]))


class Step(Module):
    """Heaviside step (the perceptron's threshold unit); its derivative is zero."""

    def __init__(self, value_at_zero: float = 0.0, *, backend=None):
        super().__init__(backend=backend)
        self.value_at_zero = value_at_zero

    def forward(self, input):
        return ops.step(input, self.value_at_zero, backend=self.backend)


class SiLU(Module, nn.SiLU):
    def forward(self, input):
        return ops.silu(input, self.inplace, backend=self.backend)


class Hardswish(Module, nn.Hardswish):
    def forward(self, input):
        return ops.hardswish(input, self.inplace, backend=self.backend)


class Hardsigmoid(Module, nn.Hardsigmoid):
    def forward(self, input):
        return ops.hardsigmoid(input, self.inplace, backend=self.backend)


class GELU(Module, nn.GELU):
    def forward(self, input):
        return ops.gelu(input, self.approximate, backend=self.backend)
