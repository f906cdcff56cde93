"""Variational autoencoder (Kingma & Welling 2013; NETWORKS.md #9), the layout of pytorch/examples:

    784 -> 400 (ReLU) -> 20 mu, 20 logvar;  z = mu + eps * exp(logvar / 2);  20 -> 400 (ReLU) -> 784 sigmoid

652,824 parameters on flattened 28x28 images. Small: 64-128-8 on flattened 8x8 digits (19,792).
forward(x) returns (reconstruction, mu, logvar) for the loss BCE + KL; decode(z) maps latents to
images (sampling: decode(randn(n, latent))). `activation="tanh"` gives the paper's tanh hidden layers.

The noise eps: in eval mode z = mu (deterministic). In train mode eps ~ N(0, 1) is drawn from a
generator seeded by the buffers `sample_seed` (drawn from torch's global generator when the network
is built, so torch.manual_seed makes runs reproducible) and `samples_drawn` (counts the draws, as
BatchNorm's num_batches_tracked counts batches). So two networks with the same state_dict (a network
and its torch twin) draw the same eps. forward(x, eps=...) takes an explicit noise instead.
"""
from __future__ import annotations

import torch

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model

_GOLDEN = 0x9E3779B97F4A7C15  # spreads successive draws' seeds over the seed space
_SEED_SPACE = 2 ** 62


class VAE(Network):
    name = "vae"

    def __init__(self, in_features: int = 784, hidden: int = 400, latent: int = 20, activation: str = "relu",
                 lib=FAST, size: str = "canonical"):
        super().__init__((in_features,), lib, size=size)
        self.latent = latent
        self.output_shape = ((in_features,), (latent,), (latent,))
        L = lib
        act = {"relu": L.ReLU, "tanh": L.Tanh}
        if activation not in act:
            raise ValueError(f"activation: expected one of {sorted(act)}, got {activation!r}")
        self.encoder = L.Sequential(L.Linear(in_features, hidden), act[activation]())
        self.mu = L.Linear(hidden, latent)
        self.logvar = L.Linear(hidden, latent)
        self.decoder = L.Sequential(L.Linear(latent, hidden), act[activation](), L.Linear(hidden, in_features),
                                    L.Sigmoid())
        self.register_buffer("sample_seed", torch.randint(0, _SEED_SPACE, (), dtype=torch.int64))
        self.register_buffer("samples_drawn", torch.zeros((), dtype=torch.int64))

    def encode(self, x):
        """(mu, logvar) of q(z | x)."""
        self.check_input(x)
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        """The Bernoulli means (pixels in [0, 1]) of p(x | z) for latents z [N, latent]."""
        return self.decoder(z)

    def draw_noise(self, like: torch.Tensor) -> torch.Tensor:
        """eps ~ N(0, 1) shaped like `like`, from this network's own generator (see the module doc).
        Drawn in float32 and converted, so networks in different dtypes draw equal values."""
        seed = (int(self.sample_seed) + int(self.samples_drawn) * _GOLDEN) % _SEED_SPACE
        self.samples_drawn.add_(1)
        gen = torch.Generator(device=like.device).manual_seed(seed)
        return torch.randn(like.shape, generator=gen, device=like.device, dtype=torch.float32).to(like.dtype)

    def reparameterize(self, mu, logvar, eps=None):
        """z = mu + eps * exp(logvar / 2); z = mu in eval mode unless eps is given."""
        if eps is None:
            if not self.training:
                return mu
            eps = self.draw_noise(mu)
        return mu + eps * torch.exp(0.5 * logvar)

    def forward(self, x, eps=None):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, eps)), mu, logvar


@register_model("vae", paper="Kingma & Welling 2013", canonical_params=652_824,
                task="canonical: flattened 28x28 images; small: flattened 8x8 digits (64-128-8); BCE + KL")
def vae(size="canonical", lib=FAST, activation: str = "relu", latent: int = None):
    in_features, hidden = pick(size, (784, 400), (64, 128))
    latent = pick(size, 20, 8) if latent is None else latent
    return VAE(in_features, hidden, latent, activation, lib, size)
