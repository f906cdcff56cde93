"""Dropout modules with torch.nn's names and arguments, on fastcnn.ops (base: _base.py)."""
from __future__ import annotations

import torch

from .. import ops
from ._base import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d"]


class Dropout(Module, torch.nn.Dropout):
    """torch.nn.Dropout(p=0.5, inplace=False) on fastcnn kernels."""

    def forward(self, input):
        return ops.dropout(input, self.p, self.training, self.inplace, backend=self.backend)


class Dropout1d(Module, torch.nn.Dropout1d):
    """torch.nn.Dropout1d(p=0.5, inplace=False): whole channels of a (N, C, L) or (C, L) input, on the
    channel-dropout kernel of dropout2d (each channel seen as an L x 1 plane)."""

    def forward(self, input):
        if input.dim() not in (2, 3):
            raise ValueError(f"input: Dropout1d expects a 2-D (C, L) or 3-D (N, C, L) tensor, got {input.dim()}-D")
        planes = input.unsqueeze(-1)
        return ops.dropout2d(planes, self.p, self.training, self.inplace, backend=self.backend).squeeze(-1)


class Dropout2d(Module, torch.nn.Dropout2d):
    """torch.nn.Dropout2d(p=0.5, inplace=False) on fastcnn kernels."""

    def forward(self, input):
        return ops.dropout2d(input, self.p, self.training, self.inplace, backend=self.backend)
