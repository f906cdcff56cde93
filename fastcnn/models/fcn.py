"""FCN-32s / FCN-16s / FCN-8s (Long, Shelhamer, Darrell 2015), NETWORKS.md #13.

The Caffe nets of shelhamer/fcn.berkeleyvision.org (voc-fcn{32,16,8}s/net.py), layer for layer:
VGG16 with conv1_1 padding 100 and 2x2 max pools rounding up (Caffe pools ceil); fc6 as a 7x7
convolution -> 4096, fc7 1x1 -> 4096, each ReLU + dropout 0.5; score_fr 1x1 -> classes. The
upsampling layers are Caffe 'Deconvolution's with a bilinear filler and lr_mult 0: fixed, never
learned (FixedBilinearUpsample), so the learned counts are 134,346,581 / 134,357,354 / 134,362,751.
Skips: FCN-16s adds score_pool4 (cropped at 5) to the 2x upsampled score; FCN-8s also score_pool3
(cropped at 9) to the next 2x upsampling; the final upsampling (x32 / x16 / x8) is cropped at
19 / 27 / 31 to the input's size. Outputs [N, classes, H, W] for an input [N, 3, H, W].

Input: any H, W work (the padding of 100 is what makes them work); the network asks for even
sizes only so that a malformed input is caught. Canonical 3x500x500 (PASCAL VOC's largest side);
small: every width / 16 (fc 4096 -> 256), 3x64x64.
"""
from __future__ import annotations

import torch
from torch import nn

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model

VGG16_STAGES = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))  # (convs, width) per pool
SMALL_WIDTH_DIVISOR = 16

# Crop offsets from Caffe's coord_map for these geometries (pad 100, ceil pools, unpadded deconvs).
POOL4_CROP, POOL3_CROP = 5, 9
FINAL_CROP = {32: 19, 16: 27, 8: 31}


def bilinear_kernel(size: int, like: torch.Tensor) -> torch.Tensor:
    """The size x size bilinear interpolation filter of Caffe's 'bilinear' filler / FCN's
    surgery.upsample_filt, in like's dtype and device (meta included)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    t = 1 - (torch.arange(size, dtype=like.dtype, device=like.device) - center).abs() / factor
    return t[:, None] * t[None, :]


class FixedBilinearUpsample(nn.Module):
    """x `factor` upsampling by a transposed convolution (kernel 2*factor, stride factor, no padding,
    no bias) whose weight is the fixed bilinear filter on each channel: FCN's Deconvolution with
    lr_mult 0. The filter is a buffer (in the state_dict, never a parameter, never a gradient); Caffe
    stores it as a full [C, C, k, k] weight that is zero off the diagonal, here it is the equivalent
    per-channel (groups = C) weight [C, 1, k, k]."""

    def __init__(self, channels: int, factor: int, lib=FAST):
        super().__init__()
        self.lib, self.channels, self.factor = lib, channels, factor
        self.register_buffer("weight", torch.empty(channels, 1, 2 * factor, 2 * factor))
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(2 * self.factor, self.weight).expand_as(self.weight))

    def forward(self, x):
        return self.lib.F.conv_transpose2d(x, self.weight, None, stride=self.factor, groups=self.channels)

    def extra_repr(self):
        return f"{self.channels}, factor={self.factor}, fixed bilinear"


def vgg16_stages(lib, widths, first_padding: int, batch_norm: bool = False) -> nn.ModuleList:
    """VGG16's five [conv 3x3 + ReLU]* + 2x2 max pool stages (pools round up, as Caffe's);
    the very first convolution pads by first_padding. batch_norm: BN between each conv and its ReLU
    (VGG16-BN; not the paper's, which fine-tunes ImageNet VGG16)."""
    stages, c_in = [], 3
    for (convs, _), width in zip(VGG16_STAGES, widths):
        layers = []
        for _ in range(convs):
            pad = first_padding if not stages and not layers else 1
            layers += [lib.Conv2d(c_in, width, 3, padding=pad)]
            layers += [lib.BatchNorm2d(width)] if batch_norm else []
            layers += [lib.ReLU()]
            c_in = width
        layers.append(lib.MaxPool2d(2, 2, ceil_mode=True))
        stages.append(lib.Sequential(*layers))
    return nn.ModuleList(stages)


def _crop(x, offset: int, like_hw):
    h, w = like_hw
    return x[:, :, offset:offset + h, offset:offset + w]


class FCN(Network):
    """FCN-`stride`s on VGG16; see the module docstring."""

    def __init__(self, stride: int, num_classes: int = 21, lib=FAST, size: str = "canonical", batch_norm: bool = False):
        hw = pick(size, 500, 64)
        super().__init__((3, hw, hw), lib, size=size, hw_multiple=2, min_hw=2)
        self.name = f"fcn{stride}s"
        self.stride = stride
        self.output_shape = (num_classes, hw, hw)
        div = pick(size, 1, SMALL_WIDTH_DIVISOR)
        widths = [w // div for _, w in VGG16_STAGES]
        fc = 4096 // div
        L = lib
        self.stages = vgg16_stages(L, widths, first_padding=100, batch_norm=batch_norm)
        self.fc6 = L.Sequential(L.Conv2d(widths[4], fc, 7), L.ReLU(), L.Dropout(0.5))
        self.fc7 = L.Sequential(L.Conv2d(fc, fc, 1), L.ReLU(), L.Dropout(0.5))
        self.score_fr = L.Conv2d(fc, num_classes, 1)
        if stride <= 16:
            self.upscore2 = FixedBilinearUpsample(num_classes, 2, L)
            self.score_pool4 = L.Conv2d(widths[3], num_classes, 1)
        if stride <= 8:
            self.upscore_pool4 = FixedBilinearUpsample(num_classes, 2, L)
            self.score_pool3 = L.Conv2d(widths[2], num_classes, 1)
        self.upscore = FixedBilinearUpsample(num_classes, stride, L)  # upscore / upscore16 / upscore8
        self.reset_parameters()

    def reset_parameters(self):
        """He initialisation of every convolution (fan_out, zero bias: torchvision's VGG init). FCN
        starts from ImageNet VGG weights, which do not exist offline; torch's default init makes the
        16-layer gradient vanish (the first layers' gradients then are sums of cancelling terms that
        fp32 cannot resolve, in torch as in fastcnn)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        pools = []
        h = x
        for stage in self.stages:
            h = stage(h)
            pools.append(h)
        score = self.score_fr(self.fc7(self.fc6(h)))
        if self.stride <= 16:
            up = self.upscore2(score)
            score = up + _crop(self.score_pool4(pools[3]), POOL4_CROP, up.shape[-2:])
        if self.stride <= 8:
            up = self.upscore_pool4(score)
            score = up + _crop(self.score_pool3(pools[2]), POOL3_CROP, up.shape[-2:])
        return _crop(self.upscore(score), FINAL_CROP[self.stride], x.shape[-2:])


PAPER = "Long, Shelhamer, Darrell 2015, Fully Convolutional Networks for Semantic Segmentation"
TASK = "semantic segmentation (PASCAL VOC: 21 classes); synthetic shapes here"


@register_model("fcn32s", paper=PAPER, canonical_params=134_346_581, task=TASK)
def fcn32s(size="canonical", lib=FAST, num_classes: int = 21, batch_norm: bool = False):
    return FCN(32, num_classes, lib, size, batch_norm)


@register_model("fcn16s", paper=PAPER, canonical_params=134_357_354, task=TASK)
def fcn16s(size="canonical", lib=FAST, num_classes: int = 21, batch_norm: bool = False):
    return FCN(16, num_classes, lib, size, batch_norm)


@register_model("fcn8s", paper=PAPER, canonical_params=134_362_751, task=TASK)
def fcn8s(size="canonical", lib=FAST, num_classes: int = 21, batch_norm: bool = False):
    return FCN(8, num_classes, lib, size, batch_norm)
