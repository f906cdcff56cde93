"""Resampling modules with torch.nn's names and constructor arguments (subclasses of the torch.nn
classes, so repr, state_dict and isinstance checks carry over); forward runs fastcnn.ops. The base
(_base.py) adds the keyword `backend=` (None: chosen per call from the tensor's device) and from_torch."""
from __future__ import annotations

import torch

from .. import ops
from ._base import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle",
           "Unfold", "Fold"]


_KERNEL_MODES = ("nearest", "bilinear")


class Upsample(Module, torch.nn.Upsample):
    @classmethod
    def check_settings(cls, module):
        if module.mode not in _KERNEL_MODES:
            raise NotImplementedError(f"mode: fastcnn interpolate has kernels for {_KERNEL_MODES}, not {module.mode!r}")

    def forward(self, input):
        return ops.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                               recompute_scale_factor=self.recompute_scale_factor, backend=self.backend)


class UpsamplingNearest2d(Upsample, torch.nn.UpsamplingNearest2d):
    """torch.nn.UpsamplingNearest2d: Upsample with mode='nearest'."""


class UpsamplingBilinear2d(Upsample, torch.nn.UpsamplingBilinear2d):
    """torch.nn.UpsamplingBilinear2d: Upsample with mode='bilinear', align_corners=True."""


class PixelShuffle(Module, torch.nn.PixelShuffle):
    def forward(self, input):
        return ops.pixel_shuffle(input, self.upscale_factor, backend=self.backend)


class PixelUnshuffle(Module, torch.nn.PixelUnshuffle):
    def forward(self, input):
        return ops.pixel_unshuffle(input, self.downscale_factor, backend=self.backend)


class Unfold(Module, torch.nn.Unfold):
    def forward(self, input):
        return ops.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride, backend=self.backend)


class Fold(Module, torch.nn.Fold):
    def forward(self, input):
        return ops.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride,
                        backend=self.backend)
