"""DCGAN (Radford et al. 2015; NETWORKS.md #10), the layout of pytorch/examples (state_dict keys main.*).

Generator, latent [nz, 1, 1] -> image in [-1, 1] (tanh):
    convT k4 s1 p0 nz -> 8 ngf (4x4), BN, ReLU; convT k4 s2 p1 -> 4 ngf (8x8), 2 ngf (16x16), ngf (32x32),
    each + BN + ReLU; convT k4 s2 p1 -> nc (64x64), tanh.
Discriminator, image -> probability of "real" [1] (sigmoid):
    conv k4 s2 p1 nc -> ndf, LeakyReLU 0.2; conv k4 s2 p1 -> 2 ndf, 4 ndf, 8 ndf, each + BN + LeakyReLU 0.2;
    conv k4 s1 p0 -> 1 (1x1), sigmoid.
No convolution has a bias (BatchNorm's shift replaces it; the first and last layers have none either, as
in pytorch/examples): canonical nz 100, ngf = ndf = 64, nc 3, 64x64 images: G 3,576,704, D 2,765,568.

Small: one stride-2 block fewer (32x32 images), nz 32, ngf = ndf = 32, nc 1 (digits or LFW faces):
G 230,336, D 166,784.
"""
from __future__ import annotations

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model


def _widths(base: int, blocks: int):
    """Channel widths from the widest to the narrowest: base * 2^(blocks-1), ..., base."""
    return [base * 2 ** i for i in reversed(range(blocks))]


class DCGANGenerator(Network):
    name = "dcgan_generator"

    def __init__(self, nz: int, ngf: int, nc: int, blocks: int, lib=FAST, size: str = "canonical"):
        super().__init__((nz, 1, 1), lib, size=size)
        L = lib
        widths = _widths(ngf, blocks)
        self.output_shape = (nc, 4 * 2 ** blocks, 4 * 2 ** blocks)
        layers = [L.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False), L.BatchNorm2d(widths[0]), L.ReLU()]
        for cin, cout in zip(widths, widths[1:]):
            layers += [L.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), L.BatchNorm2d(cout), L.ReLU()]
        layers += [L.ConvTranspose2d(widths[-1], nc, 4, 2, 1, bias=False), L.Tanh()]
        self.main = L.Sequential(*layers)

    def forward(self, z):
        return self.main(z)


class DCGANDiscriminator(Network):
    name = "dcgan_discriminator"

    def __init__(self, ndf: int, nc: int, blocks: int, lib=FAST, size: str = "canonical"):
        side = 4 * 2 ** blocks
        super().__init__((nc, side, side), lib, size=size)
        L = lib
        widths = _widths(ndf, blocks)[::-1]
        self.output_shape = (1,)
        layers = [L.Conv2d(nc, widths[0], 4, 2, 1, bias=False), L.LeakyReLU(0.2)]
        for cin, cout in zip(widths, widths[1:]):
            layers += [L.Conv2d(cin, cout, 4, 2, 1, bias=False), L.BatchNorm2d(cout), L.LeakyReLU(0.2)]
        layers += [L.Conv2d(widths[-1], 1, 4, 1, 0, bias=False), L.Sigmoid(), L.Flatten()]
        self.main = L.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


PAPER = "Radford, Metz & Chintala 2015 (DCGAN)"
TASK = "canonical: 64x64 RGB; small: 32x32 grey digits or LFW faces, latent 32"


@register_model("dcgan_generator", paper=PAPER, canonical_params=3_576_704, task=TASK)
def dcgan_generator(size="canonical", lib=FAST, nz: int = None, ngf: int = None, nc: int = None):
    nz = pick(size, 100, 32) if nz is None else nz
    ngf = pick(size, 64, 32) if ngf is None else ngf
    nc = pick(size, 3, 1) if nc is None else nc
    return DCGANGenerator(nz, ngf, nc, pick(size, 4, 3), lib, size)


@register_model("dcgan_discriminator", paper=PAPER, canonical_params=2_765_568, task=TASK)
def dcgan_discriminator(size="canonical", lib=FAST, ndf: int = None, nc: int = None):
    ndf = pick(size, 64, 32) if ndf is None else ndf
    nc = pick(size, 3, 1) if nc is None else nc
    return DCGANDiscriminator(ndf, nc, pick(size, 4, 3), lib, size)
