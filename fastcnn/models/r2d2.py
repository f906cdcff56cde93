"""R2D2 keypoint detector and descriptor (Revaud et al. 2019), Quad_L2Net_ConfCFS, NETWORKS.md #6.

The layer list of the reference implementation (naver/r2d2, nets/patchnet.py, PatchNet with
dilated=True): the L2-Net strides are turned into dilations so that every map keeps the input's
resolution; a conv "with stride 2" runs at the current dilation and doubles it for the next ones.

    conv k3 p1       3 -> 32          BN ReLU
    conv k3 p1      32 -> 32          BN ReLU
    conv k3 p1      32 -> 64          BN ReLU     (dilation x2 from here)
    conv k3 d2 p2   64 -> 64          BN ReLU
    conv k3 d2 p2   64 -> 128         BN ReLU     (x2)
    conv k3 d4 p4  128 -> 128         BN ReLU
    conv k2 d4 p2  128 -> 128         BN          (x2; the L2-Net 8x8 conv as three 2x2 ones)
    conv k2 d8 p4  128 -> 128         BN          (x2)
    conv k2 d16 p8 128 -> 128 (dim)
All convolutions carry a bias; every BatchNorm is affine=False. Heads on x^2: reliability = channel 1 of
softmax(conv 1x1 dim->2), repeatability = s / (1 + s) with s = softplus(conv 1x1 dim->1); descriptors =
x L2-normalised over channels. 484,387 parameters.

forward(x[N, 3, H, W]) returns {"descriptors": [N, dim, H, W], "reliability": [N, 1, H, W],
"repeatability": [N, 1, H, W]}; any H, W (fully convolutional, resolution kept). input_shape is the
reference training crop, 3x192x192.

Small size: mchan = 1 (widths 8, 8, 16, 16, 32, 32, 32, 32; descriptor dim 32) on 3x32x32 crops.
"""
from __future__ import annotations

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model


class R2D2(Network):
    name = "r2d2"

    def __init__(self, mchan: int = 4, dim: int = 128, crop: int = 192, lib=FAST, size: str = "canonical"):
        super().__init__((3, crop, crop), lib, size=size, hw_multiple=1, min_hw=crop)
        self.output_shape = {"descriptors": (dim, crop, crop), "reliability": (1, crop, crop),
                             "repeatability": (1, crop, crop)}
        L = lib
        layers = []
        c_in, dilation = 3, 1

        def add_conv(c_out, k=3, stride=1, bn=True, relu=True):
            nonlocal c_in, dilation
            layers.append(L.Conv2d(c_in, c_out, k, padding=((k - 1) * dilation) // 2, dilation=dilation))
            if bn:
                layers.append(L.BatchNorm2d(c_out, affine=False))
            if relu:
                layers.append(L.ReLU())
            c_in, dilation = c_out, dilation * stride  # the stride becomes the next layers' dilation

        add_conv(8 * mchan)
        add_conv(8 * mchan)
        add_conv(16 * mchan, stride=2)
        add_conv(16 * mchan)
        add_conv(32 * mchan, stride=2)
        add_conv(32 * mchan)
        add_conv(32 * mchan, k=2, stride=2, relu=False)
        add_conv(32 * mchan, k=2, stride=2, relu=False)
        add_conv(dim, k=2, stride=2, bn=False, relu=False)
        # the reference's attribute names, so its state_dict keys fit (a ModuleList there; a Sequential
        # has the same keys and lets the fusion pass see each BN -> ReLU pair)
        self.ops = L.Sequential(*layers)
        self.clf = L.Conv2d(dim, 2, 1)  # reliability
        self.sal = L.Conv2d(dim, 1, 1)  # repeatability

    def forward(self, x):
        x = self.ops(x)
        energy = x * x
        F = self.lib.F
        reliability = F.softmax(self.clf(energy), dim=1)[:, 1:2]
        s = F.softplus(self.sal(energy))
        return {"descriptors": F.normalize(x, p=2.0, dim=1), "reliability": reliability,
                "repeatability": s / (1 + s)}


@register_model("r2d2", paper="Revaud et al. 2019, R2D2: Repeatable and Reliable Detector and Descriptor "
                              "(Quad_L2Net_ConfCFS)", canonical_params=484_387,
                task="image -> dense descriptors, reliability and repeatability maps")
def r2d2(size="canonical", lib=FAST):
    return R2D2(mchan=pick(size, 4, 1), dim=pick(size, 128, 32), crop=pick(size, 192, 32), lib=lib, size=size)
