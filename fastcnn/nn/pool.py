"""torch.nn-compatible pooling modules on fastcnn.ops.

Each class subclasses its torch.nn counterpart, so constructor arguments, attributes, repr and
isinstance checks are torch's; only forward runs fastcnn kernels. The base (_base.py) adds
`backend=` (keyword only: None picks by device / env FASTCNN_BACKEND) and `from_torch`, with which
fastcnn.nn.convert swaps them into a model.
"""
from __future__ import annotations

import torch.nn as tnn

from .. import ops
from ._base import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxUnpool2d"]


class MaxPool2d(Module, tnn.MaxPool2d):
    def forward(self, input):
        return ops.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                              ceil_mode=self.ceil_mode, return_indices=self.return_indices, backend=self.backend)


class AvgPool2d(Module, tnn.AvgPool2d):
    def forward(self, input):
        return ops.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad, self.divisor_override, backend=self.backend)


class AdaptiveAvgPool2d(Module, tnn.AdaptiveAvgPool2d):
    def forward(self, input):
        return ops.adaptive_avg_pool2d(input, self.output_size, backend=self.backend)


class AdaptiveMaxPool2d(Module, tnn.AdaptiveMaxPool2d):
    def forward(self, input):
        return ops.adaptive_max_pool2d(input, self.output_size, self.return_indices, backend=self.backend)


class MaxUnpool2d(Module, tnn.MaxUnpool2d):
    def forward(self, input, indices, output_size=None):
        return ops.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size,
                                backend=self.backend)
