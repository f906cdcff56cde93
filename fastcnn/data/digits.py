"""scikit-learn's digits (1,797 8x8 images, 10 classes, shipped with sklearn), scaled to [0, 1]."""
from __future__ import annotations

import functools

import numpy as np
import torch

from ._resize import resize_stack
from .splits import Splits, split_tensors


@functools.lru_cache(maxsize=8)
def _images(size: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    images = d.images.astype(np.float32) / 16.0
    return torch.from_numpy(resize_stack(images, size)), torch.from_numpy(d.target.astype(np.int64))


def _check_size(size):
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size: expected an int >= 8 (the digits are 8x8), got {size!r}")


def digits(size: int = 8, channels: int = 1, seed: int = 0, fractions=(0.2, 0.2)) -> Splits:
    """Digits as [N, channels, size, size] float32 in [0, 1] (upsampled bilinearly from 8x8; channels
    repeat the gray image) with int64 labels 0-9; deterministic 60/20/20 splits from `seed`."""
    _check_size(size)
    x, y = _images(size)
    x = x[:, None].expand(-1, channels, -1, -1).contiguous()
    return split_tensors(x, y, seed, fractions)


def digits_binary(classes=(0, 1), size: int = 8, seed: int = 0, fractions=(0.2, 0.2)) -> Splits:
    """Only two digit classes, labels 0 (classes[0]) and 1 (classes[1]): the perceptron's task."""
    _check_size(size)
    x, y = _images(size)
    keep = (y == classes[0]) | (y == classes[1])
    return split_tensors(x[keep][:, None].contiguous(), (y[keep] == classes[1]).long(), seed, fractions)
