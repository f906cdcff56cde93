"""Dropout modules with torch.nn's names and arguments, on fastcnn.ops."""
from __future__ import annotations

import torch

from .. import ops

__all__ = ["Dropout", "Dropout2d"]


class Dropout(torch.nn.Dropout):
    """torch.nn.Dropout(p=0.5, inplace=False) on fastcnn kernels."""

    backend = None

    def forward(self, input):
        return ops.dropout(input, self.p, self.training, self.inplace, backend=self.backend)


class Dropout2d(torch.nn.Dropout2d):
    """torch.nn.Dropout2d(p=0.5, inplace=False) on fastcnn kernels."""

    backend = None

    def forward(self, input):
        return ops.dropout2d(input, self.p, self.training, self.inplace, backend=self.backend)
