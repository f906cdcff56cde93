"""Resampling geometry shared by the pixel_shuffle op and every backend's permutation kernel."""
from __future__ import annotations

import torch


def shuffle_geometry(x: torch.Tensor, r: int, to_space: bool):
    """(C, H, W, output) of a pixel_shuffle (to_space) or pixel_unshuffle permutation kernel:
    C, H, W are the low-resolution per-channel sizes every backend's kernel takes."""
    N, Cx, Hx, Wx = x.shape
    if to_space:
        C, H, W = Cx // (r * r), Hx, Wx
        return C, H, W, x.new_empty((N, C, H * r, W * r))
    C, H, W = Cx, Hx // r, Wx // r
    return C, H, W, x.new_empty((N, C * r * r, H, W))
