"""LLNet's synthetic low-light pairs (Lore et al. 2017): a clean patch x becomes x^gamma, gamma ~ U(2, 5),
plus Gaussian noise with variance sigma^2 ~ U(0, 0.01), clipped to [0, 1]. The lecture's variant
replaces the Gaussian noise by Poisson (shot) noise at a random photon count."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

NOISES = ("gaussian", "poisson")


def darken(x: torch.Tensor, gamma: float, noise: str = "gaussian", level: float = 0.0,
           generator: torch.Generator = None) -> torch.Tensor:
    """x^gamma plus noise, clipped to [0, 1]. level: the Gaussian variance sigma^2, or for 'poisson'
    the photon count at full brightness (0: no noise)."""
    if noise not in NOISES:
        raise ValueError(f"noise: expected one of {NOISES}, got {noise!r}")
    dark = x.clamp(0, 1) ** gamma
    if level > 0 and noise == "gaussian":
        dark = dark + torch.randn(dark.shape, generator=generator, dtype=dark.dtype) * level ** 0.5
    elif level > 0:
        dark = torch.poisson(dark * level, generator=generator) / level
    return dark.clamp(0, 1)


class LowLightPairs(Dataset):
    """(darkened noisy patch, clean patch) for every item of `clean` (a Dataset of [C, H, W] tensors).
    Item i draws gamma and the noise from a generator seeded by (seed, i): deterministic in any order."""

    def __init__(self, clean: Dataset, seed: int = 0, noise: str = "gaussian", gamma=(2.0, 5.0),
                 max_variance: float = 0.01, photons=(10.0, 100.0)):
        if noise not in NOISES:
            raise ValueError(f"noise: expected one of {NOISES}, got {noise!r}")
        self.clean, self.seed, self.noise = clean, int(seed), noise
        self.gamma, self.max_variance, self.photons = gamma, max_variance, photons

    def __len__(self):
        return len(self.clean)

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(i))
        u = torch.rand(2, generator=g, dtype=torch.float64).tolist()
        gamma = self.gamma[0] + (self.gamma[1] - self.gamma[0]) * u[0]
        if self.noise == "gaussian":
            level = self.max_variance * u[1]
        else:
            level = self.photons[0] + (self.photons[1] - self.photons[0]) * u[1]
        x = self.clean[i]
        return darken(x, gamma, self.noise, level, g), x
