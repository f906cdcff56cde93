"""torch.nn-compatible pooling modules on fastcnn.ops.

Each class subclasses its torch.nn counterpart, so constructor arguments, attributes, repr and
isinstance checks are torch's; only forward runs fastcnn kernels. `from_torch` lets
fastcnn.nn.convert swap them into a model. `backend=` (keyword only) picks
a backend as in fastcnn.ops (default: by device / env FASTCNN_BACKEND).
"""
from __future__ import annotations

import copy
from typing import Optional

import torch.nn as tnn

from .. import ops

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxUnpool2d"]


class _WithBackend:
    """Takes the keyword `backend=` and passes every other argument to the torch.nn class."""

    def __init__(self, *args, backend: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.backend = backend

    @classmethod
    def from_torch(cls, module, backend: Optional[str] = None):
        """The fastcnn twin of a torch.nn pooling module (same settings; pooling has no state);
        used by fastcnn.nn.convert."""
        ours = copy.copy(module)
        ours.__class__ = cls
        ours.backend = backend
        return ours


class MaxPool2d(_WithBackend, tnn.MaxPool2d):
    def forward(self, input):
        return ops.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                              ceil_mode=self.ceil_mode, return_indices=self.return_indices, backend=self.backend)


class AvgPool2d(_WithBackend, tnn.AvgPool2d):
    def forward(self, input):
        return ops.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad, self.divisor_override, backend=self.backend)


class AdaptiveAvgPool2d(_WithBackend, tnn.AdaptiveAvgPool2d):
    def forward(self, input):
        return ops.adaptive_avg_pool2d(input, self.output_size, backend=self.backend)


class AdaptiveMaxPool2d(_WithBackend, tnn.AdaptiveMaxPool2d):
    def forward(self, input):
        return ops.adaptive_max_pool2d(input, self.output_size, self.return_indices, backend=self.backend)


class MaxUnpool2d(_WithBackend, tnn.MaxUnpool2d):
    def forward(self, input, indices, output_size=None):
        return ops.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size,
                                backend=self.backend)
