"""Loss modules with torch.nn's names, constructor arguments and buffers (weight, pos_weight), on
fastcnn.ops. Each subclasses the torch.nn class for its constructor and replaces forward (base: _base.py)."""
from __future__ import annotations

import torch

from .. import ops
from ._base import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss"]


class CrossEntropyLoss(Module, torch.nn.CrossEntropyLoss):
    """torch.nn.CrossEntropyLoss (class-index targets) on fastcnn kernels."""

    def forward(self, input, target):
        return ops.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                                 reduction=self.reduction, label_smoothing=self.label_smoothing, backend=self.backend)


class NLLLoss(Module, torch.nn.NLLLoss):
    """torch.nn.NLLLoss on fastcnn kernels."""

    def forward(self, input, target):
        return ops.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                            reduction=self.reduction, backend=self.backend)


class MSELoss(Module, torch.nn.MSELoss):
    """torch.nn.MSELoss on fastcnn kernels."""

    def forward(self, input, target):
        return ops.mse_loss(input, target, reduction=self.reduction, backend=self.backend)


class BCELoss(Module, torch.nn.BCELoss):
    """torch.nn.BCELoss on fastcnn kernels."""

    def forward(self, input, target):
        return ops.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction,
                                        backend=self.backend)


class BCEWithLogitsLoss(Module, torch.nn.BCEWithLogitsLoss):
    """torch.nn.BCEWithLogitsLoss (weight and pos_weight buffers as torch) on fastcnn kernels."""

    def forward(self, input, target):
        return ops.binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                    pos_weight=self.pos_weight, backend=self.backend)
