"""Resampling modules with torch.nn's names and constructor arguments (subclasses of the torch.nn
classes, so repr, state_dict and isinstance checks carry over); forward runs fastcnn.ops. Each
takes an extra keyword `backend=` (None: chosen per call from the tensor's device)."""
from __future__ import annotations

import torch

from .. import ops

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle",
           "Unfold", "Fold"]


class Upsample(torch.nn.Upsample):
    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None, *, backend=None):
        super().__init__(size, scale_factor, mode, align_corners, recompute_scale_factor)
        self.backend = backend

    def forward(self, input):
        return ops.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                               recompute_scale_factor=self.recompute_scale_factor, backend=self.backend)


class UpsamplingNearest2d(Upsample):
    """torch.nn.UpsamplingNearest2d: Upsample with mode='nearest'."""

    def __init__(self, size=None, scale_factor=None, *, backend=None):
        super().__init__(size, scale_factor, mode="nearest", backend=backend)


class UpsamplingBilinear2d(Upsample):
    """torch.nn.UpsamplingBilinear2d: Upsample with mode='bilinear', align_corners=True."""

    def __init__(self, size=None, scale_factor=None, *, backend=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True, backend=backend)


class PixelShuffle(torch.nn.PixelShuffle):
    def __init__(self, upscale_factor, *, backend=None):
        super().__init__(upscale_factor)
        self.backend = backend

    def forward(self, input):
        return ops.pixel_shuffle(input, self.upscale_factor, backend=self.backend)


class PixelUnshuffle(torch.nn.PixelUnshuffle):
    def __init__(self, downscale_factor, *, backend=None):
        super().__init__(downscale_factor)
        self.backend = backend

    def forward(self, input):
        return ops.pixel_unshuffle(input, self.downscale_factor, backend=self.backend)


class Unfold(torch.nn.Unfold):
    def __init__(self, kernel_size, dilation=1, padding=0, stride=1, *, backend=None):
        super().__init__(kernel_size, dilation, padding, stride)
        self.backend = backend

    def forward(self, input):
        return ops.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride, backend=self.backend)


class Fold(torch.nn.Fold):
    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1, *, backend=None):
        super().__init__(output_size, kernel_size, dilation, padding, stride)
        self.backend = backend

    def forward(self, input):
        return ops.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride,
                        backend=self.backend)
