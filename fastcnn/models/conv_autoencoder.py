"""Convolutional autoencoder (NETWORKS.md #7) on 1x28x28 digits, 4,385 parameters.

Encoder: conv k3 p1 1->16, ReLU, maxpool 2 (14x14); conv 8, ReLU, maxpool 2 (7x7); conv 8, ReLU,
maxpool 2 with ceil (4x4): an 8x4x4 bottleneck. Decoder mirrors it with nearest x2 upsampling: conv 8,
ReLU, up (8x8); conv 8, ReLU, up (16x16); conv 16 k3 without padding (14x14), ReLU, up (28x28);
conv k3 p1 16->1 + sigmoid (the reconstruction in [0, 1], for a BCE loss). It trains on 2 cores in
minutes, so the small size is the canonical one.
"""
from __future__ import annotations

from ._layers import FAST
from ._network import Network
from ._registry import register_model

BOTTLENECK = (8, 4, 4)


class ConvAutoencoder(Network):
    name = "conv_autoencoder"

    def __init__(self, lib=FAST, size: str = "canonical"):
        super().__init__((1, 28, 28), lib, size=size)
        self.output_shape = (1, 28, 28)
        L = lib
        self.encoder = L.Sequential(
            L.Conv2d(1, 16, 3, padding=1), L.ReLU(), L.MaxPool2d(2),
            L.Conv2d(16, 8, 3, padding=1), L.ReLU(), L.MaxPool2d(2),
            L.Conv2d(8, 8, 3, padding=1), L.ReLU(), L.MaxPool2d(2, ceil_mode=True))  # 7 -> 4
        self.decoder = L.Sequential(
            L.Conv2d(8, 8, 3, padding=1), L.ReLU(), L.Upsample(scale_factor=2, mode="nearest"),
            L.Conv2d(8, 8, 3, padding=1), L.ReLU(), L.Upsample(scale_factor=2, mode="nearest"),
            L.Conv2d(8, 16, 3), L.ReLU(), L.Upsample(scale_factor=2, mode="nearest"),  # 16 -> 14 -> 28
            L.Conv2d(16, 1, 3, padding=1), L.Sigmoid())

    def encode(self, x):
        """The 8x4x4 code of a batch of 1x28x28 images."""
        self.check_input(x)
        return self.encoder(x)

    def decode(self, code):
        """The 1x28x28 reconstruction (in [0, 1]) of a batch of 8x4x4 codes."""
        return self.decoder(code)

    def forward(self, x):
        return self.decoder(self.encoder(x))


@register_model("conv_autoencoder", paper="convolutional autoencoder (the lecture's representation learning example)",
                canonical_params=4_385, task="digits upsampled to 28x28: reconstruction / denoising, BCE loss")
def conv_autoencoder(size="canonical", lib=FAST):
    return ConvAutoencoder(lib, size)
