"""Dropout modules with torch.nn's names and arguments, on fastcnn.ops (base: _base.py)."""
from __future__ import annotations

import torch

from .. import ops
from ._base import Module

__all__ = ["Dropout", "Dropout2d"]


class Dropout(Module, torch.nn.Dropout):
    """torch.nn.Dropout(p=0.5, inplace=False) on fastcnn kernels."""

    def forward(self, input):
        return ops.dropout(input, self.p, self.training, self.inplace, backend=self.backend)


class Dropout2d(Module, torch.nn.Dropout2d):
    """torch.nn.Dropout2d(p=0.5, inplace=False) on fastcnn kernels."""

    def forward(self, input):
        return ops.dropout2d(input, self.p, self.training, self.inplace, backend=self.backend)
