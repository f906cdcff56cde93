"""Softmax and LogSoftmax modules (torch.nn names and arguments) on fastcnn.ops (base: _base.py)."""
from __future__ import annotations

import torch

from .. import ops
from ._base import Module

__all__ = ["Softmax", "Softmax2d", "LogSoftmax"]


class Softmax(Module, torch.nn.Softmax):
    """torch.nn.Softmax(dim=None) on fastcnn kernels."""

    def forward(self, input):
        return ops.softmax(input, self.dim, backend=self.backend)


class Softmax2d(Module, torch.nn.Softmax2d):
    """torch.nn.Softmax2d: softmax over the channels of a (N, C, H, W) or (C, H, W) input."""

    def forward(self, input):
        if input.dim() not in (3, 4):
            raise ValueError(f"input: Softmax2d expects a 3-D or 4-D tensor, got {input.dim()}-D")
        return ops.softmax(input, -3, backend=self.backend)


class LogSoftmax(Module, torch.nn.LogSoftmax):
    """torch.nn.LogSoftmax(dim=None) on fastcnn kernels."""

    def forward(self, input):
        return ops.log_softmax(input, self.dim, backend=self.backend)
