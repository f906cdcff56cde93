"""Deterministic train / validation / test splits from a seed."""
from __future__ import annotations

from typing import NamedTuple, Tuple

import torch
from torch.utils.data import Dataset, TensorDataset


class Splits(NamedTuple):
    train: Dataset
    val: Dataset
    test: Dataset


def split_indices(n: int, seed: int, fractions: Tuple[float, float] = (0.2, 0.2)):
    """A permutation of range(n) from `seed`, cut into (train, val, test) index tensors;
    `fractions` are the validation and test shares."""
    if n < 3:
        raise ValueError(f"n: need at least 3 samples to split, got {n}")
    val_frac, test_frac = fractions
    if not (0 <= val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(f"fractions: validation and test shares must lie in [0, 1) and sum below 1, got {fractions}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    n_test = max(1, round(n * test_frac))
    n_val = round(n * val_frac)
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]


def split_tensors(x: torch.Tensor, y: torch.Tensor, seed: int, fractions=(0.2, 0.2)) -> Splits:
    """TensorDatasets (x, y) for each split."""
    return Splits(*(TensorDataset(x[i], y[i]) for i in split_indices(len(x), seed, fractions)))
