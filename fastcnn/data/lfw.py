"""scikit-image's lfw_subset(): 200 gray 25x25 crops, the first 100 faces and the next 100 non-faces."""
from __future__ import annotations

import functools

import numpy as np
import torch

from ._resize import resize_stack
from .splits import Splits, split_tensors


@functools.lru_cache(maxsize=4)
def _images(size: int):
    from skimage.data import lfw_subset

    images = lfw_subset().astype(np.float32)
    if images.max() > 1.0:
        images = images / 255.0
    labels = np.r_[np.ones(100), np.zeros(len(images) - 100)].astype(np.int64)
    return torch.from_numpy(resize_stack(images, size)), torch.from_numpy(labels)


def lfw_faces(size: int = 25, channels: int = 1, seed: int = 0, fractions=(0.2, 0.2)) -> Splits:
    """[N, channels, size, size] float32 in [0, 1], label 1 = face, 0 = non-face; splits from `seed`."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size: expected a positive int, got {size!r}")
    x, y = _images(size)
    return split_tensors(x[:, None].expand(-1, channels, -1, -1).contiguous(), y, seed, fractions)
