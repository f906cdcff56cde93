"""Normalisation modules with torch.nn's names, constructor arguments and state_dict keys.

BatchNorm1d/2d subclass the torch.nn classes for their parameters, buffers and input-rank checks
(so load_state_dict works both ways) and replace only forward with fastcnn.ops.batch_norm; the
base (_base.py) adds `backend=` and from_torch."""
from __future__ import annotations

import torch

from .. import ops
from ._base import Epilogue, Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "LocalResponseNorm", "GroupNorm", "LayerNorm", "InstanceNorm1d",
           "InstanceNorm2d"]


class _FastBatchNorm(Epilogue):
    """forward() of torch.nn's _BatchNorm (momentum None = cumulative average, track_running_stats,
    num_batches_tracked) on fastcnn.ops.batch_norm; `activation=` fuses an activation into the op."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        args = (input, self.running_mean if track else None, self.running_var if track else None, self.weight,
                self.bias, use_batch_stats, factor, self.eps)
        if self.activation is None:
            return ops.batch_norm(*args, backend=self.backend)
        return ops.batch_norm(*args, activation=self.activation, activation_param=self.activation_param,
                              backend=self.backend)


class BatchNorm1d(_FastBatchNorm, torch.nn.BatchNorm1d):
    """torch.nn.BatchNorm1d on fastcnn kernels: (N, C) or (N, C, L) input."""


class BatchNorm2d(_FastBatchNorm, torch.nn.BatchNorm2d):
    """torch.nn.BatchNorm2d on fastcnn kernels: (N, C, H, W) input (contiguous or channels_last)."""


class LocalResponseNorm(Module, torch.nn.LocalResponseNorm):
    """torch.nn.LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0) on fastcnn kernels."""

    def forward(self, input):
        return ops.local_response_norm(input, self.size, self.alpha, self.beta, self.k, backend=self.backend)


class GroupNorm(Module, torch.nn.GroupNorm):
    """torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True) on fastcnn kernels."""

    def forward(self, input):
        return ops.group_norm(input, self.num_groups, self.weight, self.bias, self.eps, backend=self.backend)


class LayerNorm(Module, torch.nn.LayerNorm):
    """torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True) on fastcnn kernels."""

    def forward(self, input):
        return ops.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps, backend=self.backend)


class _FastInstanceNorm(Module):
    """torch's _InstanceNorm.forward (input checks, unbatched input) with the normalisation itself on
    fastcnn.ops.instance_norm."""

    def _apply_instance_norm(self, input):
        return ops.instance_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                                 self.training or not self.track_running_stats,
                                 self.momentum if self.momentum is not None else 0.0, self.eps, backend=self.backend)


class InstanceNorm1d(_FastInstanceNorm, torch.nn.InstanceNorm1d):
    """torch.nn.InstanceNorm1d on fastcnn kernels: (N, C, L) or (C, L) input."""


class InstanceNorm2d(_FastInstanceNorm, torch.nn.InstanceNorm2d):
    """torch.nn.InstanceNorm2d on fastcnn kernels: (N, C, H, W) or (C, H, W) input."""
