"""torch.nn-compatible Conv2d, ConvTranspose2d and Linear on fastcnn kernels.

Each subclasses its torch.nn class, so constructor arguments, parameter names, initialisation and
state_dict keys are torch's; forward calls fastcnn.ops. Extra keywords: `algo=` (convolutions),
`activation=` / `activation_param=` (Conv2d: fused into the kernel's epilogue) and `backend=`.
`from_torch(module)` wraps an existing torch module's parameters (shared, not copied).
"""
from __future__ import annotations

from torch import nn

from .. import ops

__all__ = ["Conv2d", "ConvTranspose2d", "Linear"]


def _check_padding_mode(padding_mode, allowed=("zeros",)):
    if padding_mode not in allowed:
        raise ValueError(f"padding_mode: expected one of {list(allowed)}, got {padding_mode!r}")


# Conv2d pads with fastcnn.ops.pad, then convolves without padding (torch.nn.Conv2d._conv_forward).
CONV2D_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _adopt(cls, module: nn.Module, **extra):
    """An instance of cls that shares module's parameters, buffers and settings."""
    new = cls.__new__(cls)
    new.__dict__.update(module.__dict__)
    new._parameters = dict(module._parameters)
    new._buffers = dict(module._buffers)
    new._modules = dict(module._modules)
    new.__dict__.update(extra)
    return new


class Conv2d(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None, *, algo="auto", activation=None,
                 activation_param=None, backend=None):
        _check_padding_mode(padding_mode, CONV2D_PADDING_MODES)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype)
        self.algo, self.activation, self.activation_param, self.backend = algo, activation, activation_param, backend

    def forward(self, input):
        padding = self.padding
        if self.padding_mode != "zeros":
            input = ops.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode, backend=self.backend)
            padding = 0
        return ops.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups,
                          algo=self.algo, activation=self.activation, activation_param=self.activation_param,
                          backend=self.backend)

    @classmethod
    def from_torch(cls, m: nn.Conv2d, **kwargs):
        _check_padding_mode(m.padding_mode, CONV2D_PADDING_MODES)
        settings = dict(algo="auto", activation=None, activation_param=None, backend=None)
        settings.update(kwargs)
        return _adopt(cls, m, **settings)


class ConvTranspose2d(nn.ConvTranspose2d):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None, *, algo="auto", backend=None):
        _check_padding_mode(padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype)
        self.algo, self.backend = algo, backend

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size,
                                              2, self.dilation)
        return ops.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, tuple(output_padding),
                                    self.groups, self.dilation, algo=self.algo, backend=self.backend)

    @classmethod
    def from_torch(cls, m: nn.ConvTranspose2d, **kwargs):
        _check_padding_mode(m.padding_mode)
        settings = dict(algo="auto", backend=None)
        settings.update(kwargs)
        return _adopt(cls, m, **settings)


class Linear(nn.Linear):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *, backend=None):
        super().__init__(in_features, out_features, bias, device, dtype)
        self.backend = backend

    def forward(self, input):
        return ops.linear(input, self.weight, self.bias, backend=self.backend)

    @classmethod
    def from_torch(cls, m: nn.Linear, **kwargs):
        settings = dict(backend=None)
        settings.update(kwargs)
        return _adopt(cls, m, **settings)
