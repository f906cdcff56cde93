"""The SRGAN discriminator (Ledig et al. 2017), NETWORKS.md #12.

8 conv k3 p1, LeakyReLU 0.2: 64, 64 s2, 128, 128 s2, 256, 256 s2, 512, 512 s2, BatchNorm after all but the
first (every conv keeps its bias, as the count requires); AdaptiveAvgPool 6x6; FC 512*36 -> 1024,
LeakyReLU 0.2; FC 1024 -> 1; sigmoid as in the paper. 23,565,505 parameters (the sigmoid has none, so
`logits=True`, which returns the score before it for a BCE-with-logits loss, has the same count).
Input 3x96x96 (the HR crop); any H, W that are multiples of 16 (four stride-2 convs).

Small size: widths / 4 (16 ... 128), 3x48x48 input, pool 3x3, FC 1152 -> 256 -> 1.
"""
from __future__ import annotations

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model


class SRGANDiscriminator(Network):
    name = "srgan_discriminator"

    def __init__(self, width: int = 64, hidden: int = 1024, pool: int = 6, crop: int = 96, logits: bool = False,
                 lib=FAST, size: str = "canonical"):
        super().__init__((3, crop, crop), lib, size=size, hw_multiple=16, min_hw=16)
        self.output_shape = (1,)
        L = lib
        layers, c_in = [], 3
        for i, (mult, stride) in enumerate(((1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))):
            c_out = width * mult
            layers.append(L.Conv2d(c_in, c_out, 3, stride=stride, padding=1))
            if i > 0:
                layers.append(L.BatchNorm2d(c_out))
            layers.append(L.LeakyReLU(0.2))
            c_in = c_out
        self.features = L.Sequential(*layers)
        self.pool = L.AdaptiveAvgPool2d(pool)
        head = [L.Flatten(), L.Linear(c_in * pool * pool, hidden), L.LeakyReLU(0.2), L.Linear(hidden, 1)]
        if not logits:
            head.append(L.Sigmoid())
        self.classifier = L.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


@register_model("srgan_discriminator", paper="Ledig et al. 2017, Photo-Realistic Single Image Super-Resolution "
                                             "Using a GAN (discriminator)", canonical_params=23_565_505,
                task="96x96 RGB crop -> probability that it is a real HR image")
def srgan_discriminator(size="canonical", lib=FAST, logits: bool = False):
    return SRGANDiscriminator(width=pick(size, 64, 16), hidden=pick(size, 1024, 256), pool=pick(size, 6, 3),
                              crop=pick(size, 96, 48), logits=logits, lib=lib, size=size)
