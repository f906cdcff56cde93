"""PSPNet (Zhao, Shi, Qi, Wang, Jia 2017), NETWORKS.md #15, as hszhao/semseg's model/pspnet.py.

Backbone: ResNet-50 with the deep stem (3x3 convs 3->64 s2, 64->64, 64->128, each BN + ReLU, then
max pool k3 s2 p1), bottlenecks [3, 4, 6, 3] (stride on the 3x3 convolution); layer3 and layer4
trade their stride for dilation 2 and 4 on every 3x3 convolution, so the features are 1/8 of the
input. Pyramid pooling on layer4's 2048 channels: for bins 1, 2, 3, 6 an adaptive average pool,
1x1 conv -> 512, BN, ReLU, bilinear upsampling (align_corners=True) back to the feature size; the
four and the features concatenated -> 4096 channels. Head: 3x3 conv -> 512, BN, ReLU, dropout2d 0.1,
1x1 conv -> classes; bilinear (align_corners=True) to the input's size.

Auxiliary head (`aux=True`, the paper's deep supervision, weighted 0.4 in the loss): the same head
on layer3's 1024 channels with 256 in the middle. As in semseg it runs only in training: a network
built with aux=True returns (main, aux) in train mode and main alone in eval mode; `output_shape`
describes eval mode (main only). `canonical_params` is the count without the auxiliary head,
46,716,373 at 21 classes (PASCAL VOC), NETWORKS.md's headline; the head adds 2,365,205.

Input: exactly input_shape, 3x473x473 (semseg's VOC / ADE20K crop; 8k+1 sizes keep
align_corners=True resampling on the feature grid); small: 3x65x65, every width / 4 and one
bottleneck per stage (ResNet's [3, 4, 6, 3] -> [1, 1, 1, 1]).

Training needs batches well above 2 (the paper: 16): the bin-1 branch's BatchNorm normalises N values
per channel, and at N = 2 its output is +-1 whatever the input, its gradient a cancellation that
fp32 resolves poorly (fastcnn and torch alike: at widths / 8 the fp32 gradients of both differ from
fp64 by up to 20% on the twin-parity input).
"""
from __future__ import annotations

import torch
from torch import nn

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model

BINS = (1, 2, 3, 6)


class Bottleneck(nn.Module):
    """ResNet bottleneck (expansion 4): 1x1, 3x3 (stride, dilation), 1x1, each BN; ReLU after the sum."""

    expansion = 4

    def __init__(self, lib, c_in, planes, stride=1, dilation=1):
        super().__init__()
        L, out = lib, planes * self.expansion
        self.conv1, self.bn1 = L.Conv2d(c_in, planes, 1, bias=False), L.BatchNorm2d(planes)
        self.conv2 = L.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = L.BatchNorm2d(planes)
        self.conv3, self.bn3 = L.Conv2d(planes, out, 1, bias=False), L.BatchNorm2d(out)
        self.relu = L.ReLU()
        self.downsample = None
        if stride != 1 or c_in != out:
            self.downsample = L.Sequential(L.Conv2d(c_in, out, 1, stride=stride, bias=False), L.BatchNorm2d(out))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def resnet_stage(lib, c_in, planes, blocks, stride, dilation):
    layers = [Bottleneck(lib, c_in, planes, stride, dilation)]
    layers += [Bottleneck(lib, planes * 4, planes, 1, dilation) for _ in range(blocks - 1)]
    return lib.Sequential(*layers)


class PyramidPooling(nn.Module):
    """The pyramid pooling module: per bin, adaptive average pool -> 1x1 conv -> BN -> ReLU ->
    bilinear back to the input's size; concatenated after the input."""

    def __init__(self, lib, c_in, c_branch, bins=BINS):
        super().__init__()
        self.lib = lib
        self.features = nn.ModuleList(
            lib.Sequential(lib.AdaptiveAvgPool2d(b), lib.Conv2d(c_in, c_branch, 1, bias=False),
                           lib.BatchNorm2d(c_branch), lib.ReLU()) for b in bins)

    def forward(self, x):
        size = x.shape[-2:]
        return torch.cat([x] + [self.lib.F.interpolate(f(x), size=size, mode="bilinear", align_corners=True)
                                for f in self.features], 1)


def seg_head(lib, c_in, c_mid, num_classes):
    return lib.Sequential(lib.Conv2d(c_in, c_mid, 3, padding=1, bias=False), lib.BatchNorm2d(c_mid), lib.ReLU(),
                          lib.Dropout2d(0.1), lib.Conv2d(c_mid, num_classes, 1))


class PSPNet(Network):
    name = "pspnet"

    def __init__(self, num_classes: int = 21, aux: bool = False, lib=FAST, size: str = "canonical"):
        hw = pick(size, 473, 65)
        super().__init__((3, hw, hw), lib, size=size)
        self.output_shape = (num_classes, hw, hw)
        div = pick(size, 1, 4)
        blocks = pick(size, (3, 4, 6, 3), (1, 1, 1, 1))
        stem, planes = [c // div for c in (64, 64, 128)], [p // div for p in (64, 128, 256, 512)]
        L = lib
        self.layer0 = L.Sequential(
            L.Conv2d(3, stem[0], 3, stride=2, padding=1, bias=False), L.BatchNorm2d(stem[0]), L.ReLU(),
            L.Conv2d(stem[0], stem[1], 3, padding=1, bias=False), L.BatchNorm2d(stem[1]), L.ReLU(),
            L.Conv2d(stem[1], stem[2], 3, padding=1, bias=False), L.BatchNorm2d(stem[2]), L.ReLU(),
            L.MaxPool2d(3, 2, padding=1))
        c_in = stem[2]
        for i, (p, n, stride, dilation) in enumerate(zip(planes, blocks, (1, 2, 1, 1), (1, 1, 2, 4))):
            setattr(self, f"layer{i + 1}", resnet_stage(L, c_in, p, n, stride, dilation))
            c_in = p * Bottleneck.expansion
        self.ppm = PyramidPooling(L, c_in, c_in // len(BINS))
        self.cls = seg_head(L, 2 * c_in, 512 // div, num_classes)
        self.aux = seg_head(L, c_in // 2, 256 // div, num_classes) if aux else None

    def forward(self, x):
        size = x.shape[-2:]
        mid = self.layer3(self.layer2(self.layer1(self.layer0(x))))
        out = self.cls(self.ppm(self.layer4(mid)))
        out = self.lib.F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        if self.aux is None or not self.training:
            return out
        aux = self.lib.F.interpolate(self.aux(mid), size=size, mode="bilinear", align_corners=True)
        return out, aux


@register_model("pspnet", paper="Zhao, Shi, Qi, Wang, Jia 2017, Pyramid Scene Parsing Network",
                canonical_params=46_716_373,
                task="semantic segmentation (PASCAL VOC: 21 classes); synthetic shapes here; aux=True adds "
                     "the layer3 head (2,365,205 parameters, loss weight 0.4, training only)")
def pspnet(size="canonical", lib=FAST, num_classes: int = 21, aux: bool = False):
    return PSPNet(num_classes, aux, lib, size)
