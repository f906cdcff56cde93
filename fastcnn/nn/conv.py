"""torch.nn-compatible Conv2d, ConvTranspose2d and Linear on fastcnn kernels.

Each subclasses its torch.nn class, so constructor arguments, parameter names, initialisation and
state_dict keys are torch's; forward calls fastcnn.ops. Extra keywords: `algo=` (convolutions),
`activation=` / `activation_param=` (Conv2d and Linear: applied in the same op, in the kernel's
epilogue; checked when set at construction) and `backend=`.
`from_torch(module)` wraps an existing torch module's parameters (shared, not copied); see _base.py.
"""
from __future__ import annotations

from torch import nn

from .. import ops
from ._base import Epilogue, Module

__all__ = ["Conv2d", "ConvTranspose2d", "Linear"]


def _check_padding_mode(padding_mode, allowed=("zeros",)):
    if padding_mode not in allowed:
        raise ValueError(f"padding_mode: expected one of {list(allowed)}, got {padding_mode!r}")


# Conv2d pads with fastcnn.ops.pad, then convolves without padding (torch.nn.Conv2d._conv_forward).
CONV2D_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class Conv2d(Epilogue, nn.Conv2d, settings=dict(algo="auto")):
    @classmethod
    def check_settings(cls, module):
        _check_padding_mode(module.padding_mode, CONV2D_PADDING_MODES)

    def forward(self, input):
        padding = self.padding
        if self.padding_mode != "zeros":
            input = ops.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode, backend=self.backend)
            padding = 0
        return ops.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups,
                          algo=self.algo, activation=self.activation, activation_param=self.activation_param,
                          backend=self.backend)


class ConvTranspose2d(Module, nn.ConvTranspose2d, settings=dict(algo="auto")):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None, *, algo="auto", backend=None):
        _check_padding_mode(padding_mode)  # before torch's own check, whose message does not name the argument
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype, algo=algo, backend=backend)

    @classmethod
    def check_settings(cls, module):
        _check_padding_mode(module.padding_mode)

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size,
                                              2, self.dilation)
        return ops.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, tuple(output_padding),
                                    self.groups, self.dilation, algo=self.algo, backend=self.backend)


class Linear(Epilogue, nn.Linear):
    def forward(self, input):
        if self.activation is None:  # (no keywords: the op's lean plan is then the C++ op itself)
            return ops.linear(input, self.weight, self.bias, backend=self.backend)
        return ops.linear(input, self.weight, self.bias, activation=self.activation,
                          activation_param=self.activation_param, backend=self.backend)
