"""Softmax and LogSoftmax modules (torch.nn names and arguments) on fastcnn.ops."""
from __future__ import annotations

import torch

from .. import ops

__all__ = ["Softmax", "LogSoftmax"]


class Softmax(torch.nn.Softmax):
    """torch.nn.Softmax(dim=None) on fastcnn kernels; `backend` picks the kernel backend (None: auto)."""

    backend = None

    def forward(self, input):
        return ops.softmax(input, self.dim, backend=self.backend)


class LogSoftmax(torch.nn.LogSoftmax):
    """torch.nn.LogSoftmax(dim=None) on fastcnn kernels."""

    backend = None

    def forward(self, input):
        return ops.log_softmax(input, self.dim, backend=self.backend)
