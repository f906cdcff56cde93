"""torch.nn-compatible pooling modules on fastcnn.ops.

Each class subclasses its torch.nn counterpart, so constructor arguments, attributes, repr and
isinstance checks are torch's; only forward runs fastcnn kernels. `backend=` (keyword only) picks
a backend as in fastcnn.ops (default: by device / env FASTCNN_BACKEND).
"""
from __future__ import annotations

from typing import Optional

import torch.nn as tnn

from .. import ops

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxUnpool2d"]


class _BackendMixin:
    def _set_backend(self, backend: Optional[str]) -> None:
        self.backend = backend


class MaxPool2d(tnn.MaxPool2d, _BackendMixin):
    def __init__(self, *args, backend: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_backend(backend)

    def forward(self, input):
        return ops.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                              ceil_mode=self.ceil_mode, return_indices=self.return_indices, backend=self.backend)


class AvgPool2d(tnn.AvgPool2d, _BackendMixin):
    def __init__(self, *args, backend: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_backend(backend)

    def forward(self, input):
        return ops.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad, self.divisor_override, backend=self.backend)


class AdaptiveAvgPool2d(tnn.AdaptiveAvgPool2d, _BackendMixin):
    def __init__(self, *args, backend: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_backend(backend)

    def forward(self, input):
        return ops.adaptive_avg_pool2d(input, self.output_size, backend=self.backend)


class AdaptiveMaxPool2d(tnn.AdaptiveMaxPool2d, _BackendMixin):
    def __init__(self, *args, backend: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_backend(backend)

    def forward(self, input):
        return ops.adaptive_max_pool2d(input, self.output_size, self.return_indices, backend=self.backend)


class MaxUnpool2d(tnn.MaxUnpool2d, _BackendMixin):
    def __init__(self, *args, backend: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_backend(backend)

    def forward(self, input, indices, output_size=None):
        return ops.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size,
                                backend=self.backend)
