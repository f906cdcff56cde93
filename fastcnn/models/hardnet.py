"""HardNet local patch descriptor (Mishchuk et al. 2017), NETWORKS.md #5.

32x32x1 patch, standardised per sample; conv k3 p1 without bias 32, 32, 64 s2, 64, 128 s2, 128, each
followed by BatchNorm(affine=False) and ReLU; dropout 0.3; conv 128 k8 (valid) + BatchNorm(affine=False);
L2-normalised 128-d descriptor. 1,334,560 parameters (the reference HardNet's L2-Net layout).

Small size: the same seven convolutions at 1/4 width (8, 8, 16, 16, 32, 32, descriptor 32) on the same
32x32 patch (the k8 head needs the 8x8 map that two stride-2 convs leave of 32x32).
"""
from __future__ import annotations

import torch

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model


class HardNet(Network):
    name = "hardnet"

    def __init__(self, width: int = 32, dim: int = 128, dropout: float = 0.3, lib=FAST, size: str = "canonical"):
        super().__init__((1, 32, 32), lib, size=size)
        self.output_shape = (dim,)
        L = lib
        layers = []
        c_in = 1
        for mult, stride in ((1, 1), (1, 1), (2, 2), (2, 1), (4, 2), (4, 1)):
            c_out = width * mult
            layers += [L.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                       L.BatchNorm2d(c_out, affine=False), L.ReLU()]
            c_in = c_out
        layers += [L.Dropout(dropout), L.Conv2d(c_in, dim, 8, bias=False), L.BatchNorm2d(dim, affine=False)]
        self.features = L.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self):
        """HardNet's initialisation: orthogonal convolution weights with gain 0.6."""
        with torch.no_grad():
            for m in self.features:
                if isinstance(m, torch.nn.Conv2d):
                    torch.nn.init.orthogonal_(m.weight, gain=0.6)

    def standardise(self, x):
        """Each patch to zero mean, unit (unbiased) standard deviation, as HardNet's input_norm.

        Per-sample standardisation is batch normalisation of the [1, N, H*W] view with batch
        statistics (biased variance); the factor sqrt((n - 1) / n) turns it into a division by HardNet's
        unbiased std. HardNet divides by std + 1e-7 and detaches both statistics; here eps = 1e-10 sits under
        the square root and the statistics are differentiated (both only matter for a flat patch, or
        for gradients w.r.t. the input patch, which training never takes)."""
        n = x[0].numel()
        flat = x.reshape(1, x.shape[0], n)
        z = self.lib.F.batch_norm(flat, None, None, training=True, eps=1e-10)
        return z.view(x.shape) * (((n - 1) / n) ** 0.5)

    def forward(self, x):
        y = self.features(self.standardise(x))
        return self.lib.F.normalize(y.flatten(1), p=2.0, dim=1)


@register_model("hardnet", paper="Mishchuk et al. 2017, Working hard to know your neighbor's margins (HardNet)",
                canonical_params=1_334_560, task="32x32 grey patch -> L2-normalised descriptor")
def hardnet(size="canonical", lib=FAST, dropout: float = 0.3):
    return HardNet(width=pick(size, 32, 8), dim=pick(size, 128, 32), dropout=dropout, lib=lib, size=size)
