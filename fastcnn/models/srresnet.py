"""SRResNet, the SRGAN generator (Ledig et al. 2017), NETWORKS.md #12.

x4 super-resolution, 3x24x24 -> 3x96x96:
    conv k9 3->64, PReLU
    16 x [conv k3, BN, PReLU, conv k3, BN, + skip]
    conv k3, BN, + the skip from before the residual blocks
    2 x [conv k3 64->256, PixelShuffle(2), PReLU]
    conv k9 64->3, tanh
Every conv has a bias, every PReLU one shared slope (num_parameters=1). 1,549,462 parameters.
Fully convolutional: any LR H, W of at least the training crop.

Small size: 4 residual blocks at width 32, x4 from 3x12x12 to 3x48x48.
"""
from __future__ import annotations

from torch import nn

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model


class ResidualBlock(nn.Module):
    """conv k3, BN, PReLU, conv k3, BN, + skip."""

    def __init__(self, width: int, lib):
        super().__init__()
        L = lib
        self.body = L.Sequential(L.Conv2d(width, width, 3, padding=1), L.BatchNorm2d(width), L.PReLU(),
                                 L.Conv2d(width, width, 3, padding=1), L.BatchNorm2d(width))

    def forward(self, x):
        return x + self.body(x)


class SRResNet(Network):
    name = "srresnet"

    def __init__(self, width: int = 64, blocks: int = 16, scale: int = 4, crop: int = 24, lib=FAST,
                 size: str = "canonical"):
        super().__init__((3, crop, crop), lib, size=size, hw_multiple=1, min_hw=crop)
        self.output_shape = (3, crop * scale, crop * scale)
        L = lib
        self.head = L.Sequential(L.Conv2d(3, width, 9, padding=4), L.PReLU())
        self.blocks = L.Sequential(*[ResidualBlock(width, lib) for _ in range(blocks)])
        self.trunk_end = L.Sequential(L.Conv2d(width, width, 3, padding=1), L.BatchNorm2d(width))
        ups = []
        for _ in range(scale.bit_length() - 1):  # one x2 sub-pixel stage per factor of 2
            ups += [L.Conv2d(width, width * 4, 3, padding=1), L.PixelShuffle(2), L.PReLU()]
        self.upsample = L.Sequential(*ups)
        self.tail = L.Sequential(L.Conv2d(width, 3, 9, padding=4), L.Tanh())

    def forward(self, x):
        h = self.head(x)
        h = h + self.trunk_end(self.blocks(h))
        return self.tail(self.upsample(h))


@register_model("srresnet", paper="Ledig et al. 2017, Photo-Realistic Single Image Super-Resolution Using a GAN "
                                  "(SRResNet / SRGAN generator)", canonical_params=1_549_462,
                task="x4 super-resolution, 24x24 -> 96x96 RGB in [-1, 1]")
def srresnet(size="canonical", lib=FAST):
    return SRResNet(width=pick(size, 64, 32), blocks=pick(size, 16, 4), crop=pick(size, 24, 12), lib=lib, size=size)
