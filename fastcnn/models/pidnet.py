"""PIDNet-S (Xu, Xiong, Bhattacharyya 2023, "PIDNet: A Real-time Semantic Segmentation Network Inspired
by PID Controllers"), NETWORKS.md #16, layer for layer as XuJiacong/PIDNet models/pidnet.py and
models/model_utils.py (m=2, n=3, planes 32, ppm_planes 96, head_planes 128, 19 classes: Cityscapes).

I branch: stem (two 3x3 s2 convolutions with bias, BN, ReLU), BasicBlock stages layer1..4 to 1/32,
two Bottlenecks (expansion 2) layer5 to 1/64, PAPPM (average pools (5,2,2), (9,4,4), (17,8,8) and
global, each BN-ReLU-1x1; a grouped 3x3 conv (groups 4) over the four; compression + shortcut).
P branch at 1/8: layer3_, layer4_ (BasicBlocks), layer5_ (Bottleneck), fed by the I branch through
Pag fusion (sigmoid of the channel sum of two 1x1 projections gates between the two). D branch at
1/8: layer3_d, layer4_d, layer5_d plus the I branch's diff3 / diff4 upsampled. Light-Bag fuses P, I
and D (sigmoid(D) weighs P against I); segmentation heads BN-ReLU-3x3-BN-ReLU-1x1.

`augment=True` (the training model, get_seg_model): forward returns (P head, main, D boundary
head) as the reference's [x_extra_p, x_, x_extra_d]; 7,720,935 parameters. `augment=False` (the
inference model, get_pred_model): main only, 7,625,715. `aux=` is accepted as another name for
augment (the zoo's common argument). The heads' outputs, 1/8 of the input in the reference, are
resized to the input here (bilinear, align_corners=False), as the reference's loss does first.

Input: H, W multiples of 8 (the reference sizes its 1/8 maps as H // 8); canonical 3x1024x2048
(Cityscapes); small: planes 8, ppm_planes 24, head_planes 32, 3x128x128, without the stem
convolutions' bias (redundant before BatchNorm, and its gradient is exactly zero in training).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model


def _resize(lib, x, size):
    return lib.F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, lib, c_in, planes, stride=1, downsample=None, no_relu=False):
        super().__init__()
        L = lib
        self.conv1 = L.Conv2d(c_in, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = L.BatchNorm2d(planes)
        self.relu = L.ReLU()
        self.conv2 = L.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = L.BatchNorm2d(planes)
        self.downsample = downsample
        self.no_relu = no_relu

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out = out + (x if self.downsample is None else self.downsample(x))
        return out if self.no_relu else self.relu(out)


class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, lib, c_in, planes, stride=1, downsample=None, no_relu=True):
        super().__init__()
        L = lib
        self.conv1, self.bn1 = L.Conv2d(c_in, planes, 1, bias=False), L.BatchNorm2d(planes)
        self.conv2 = L.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = L.BatchNorm2d(planes)
        self.conv3 = L.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = L.BatchNorm2d(planes * self.expansion)
        self.relu = L.ReLU()
        self.downsample = downsample
        self.no_relu = no_relu

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + (x if self.downsample is None else self.downsample(x))
        return out if self.no_relu else self.relu(out)


def conv_bn(lib, c_in, c_out, k=1, stride=1):
    """A k x k convolution without bias ("same" padding) and its batch norm, as one Sequential."""
    return lib.Sequential(lib.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False), lib.BatchNorm2d(c_out))


def _downsample(lib, c_in, c_out, stride):
    if stride == 1 and c_in == c_out:
        return None
    return conv_bn(lib, c_in, c_out, stride=stride)


def make_layer(lib, block, c_in, planes, blocks, stride=1):
    """The reference's _make_layer: the last of several blocks ends without ReLU."""
    layers = [block(lib, c_in, planes, stride, _downsample(lib, c_in, planes * block.expansion, stride))]
    for i in range(1, blocks):
        layers.append(block(lib, planes * block.expansion, planes, 1, no_relu=(i == blocks - 1)))
    return lib.Sequential(*layers)


def make_single_layer(lib, block, c_in, planes, stride=1):
    return block(lib, c_in, planes, stride, _downsample(lib, c_in, planes * block.expansion, stride), no_relu=True)


def bn_relu_conv(lib, c_in, c_out, k=1, groups=1):
    return [lib.BatchNorm2d(c_in), lib.ReLU(), lib.Conv2d(c_in, c_out, k, padding=k // 2, groups=groups, bias=False)]


class SegmentHead(nn.Module):
    def __init__(self, lib, c_in, c_mid, c_out):
        super().__init__()
        L = lib
        self.bn1 = L.BatchNorm2d(c_in)
        self.conv1 = L.Conv2d(c_in, c_mid, 3, padding=1, bias=False)
        self.bn2 = L.BatchNorm2d(c_mid)
        self.relu = L.ReLU()
        self.conv2 = L.Conv2d(c_mid, c_out, 1, bias=True)

    def forward(self, x):
        return self.conv2(self.relu(self.bn2(self.conv1(self.relu(self.bn1(x))))))


class PAPPM(nn.Module):
    """Parallel aggregation pyramid pooling: four pooled scales added to scale0, one grouped 3x3
    conv over them, compressed and added to a shortcut."""

    def __init__(self, lib, c_in, c_branch, c_out):
        super().__init__()
        L = lib
        self.lib = lib
        self.scale1 = L.Sequential(L.AvgPool2d(5, 2, 2), *bn_relu_conv(L, c_in, c_branch))
        self.scale2 = L.Sequential(L.AvgPool2d(9, 4, 4), *bn_relu_conv(L, c_in, c_branch))
        self.scale3 = L.Sequential(L.AvgPool2d(17, 8, 8), *bn_relu_conv(L, c_in, c_branch))
        self.scale4 = L.Sequential(L.AdaptiveAvgPool2d((1, 1)), *bn_relu_conv(L, c_in, c_branch))
        self.scale0 = L.Sequential(*bn_relu_conv(L, c_in, c_branch))
        self.scale_process = L.Sequential(*bn_relu_conv(L, c_branch * 4, c_branch * 4, 3, groups=4))
        self.compression = L.Sequential(*bn_relu_conv(L, c_branch * 5, c_out))
        self.shortcut = L.Sequential(*bn_relu_conv(L, c_in, c_out))

    def forward(self, x):
        size = x.shape[-2:]
        x_ = self.scale0(x)
        scales = [_resize(self.lib, s(x), size) + x_ for s in (self.scale1, self.scale2, self.scale3, self.scale4)]
        scale_out = self.scale_process(torch.cat(scales, 1))
        return self.compression(torch.cat([x_, scale_out], 1)) + self.shortcut(x)


class PagFM(nn.Module):
    """Pixel-attention-guided fusion: sigma = sigmoid(sum_c f_x(x) * up(f_y(y))); x <- (1-sigma) x + sigma up(y)."""

    def __init__(self, lib, c_in, c_mid):
        super().__init__()
        L = lib
        self.lib = lib
        self.f_x = conv_bn(L, c_in, c_mid)
        self.f_y = conv_bn(L, c_in, c_mid)

    def forward(self, x, y):
        size = x.shape[-2:]
        y_q = _resize(self.lib, self.f_y(y), size)
        sim_map = self.lib.F.sigmoid((self.f_x(x) * y_q).sum(1, keepdim=True))
        return (1 - sim_map) * x + sim_map * _resize(self.lib, y, size)


class LightBag(nn.Module):
    """Light boundary-attention-guided fusion: sigmoid(d) weighs the P and I branches."""

    def __init__(self, lib, c_in, c_out):
        super().__init__()
        L = lib
        self.lib = lib
        self.conv_p = conv_bn(L, c_in, c_out)
        self.conv_i = conv_bn(L, c_in, c_out)

    def forward(self, p, i, d):
        edge_att = self.lib.F.sigmoid(d)
        return self.conv_p((1 - edge_att) * i + p) + self.conv_i(i + edge_att * p)


class PIDNet(Network):
    name = "pidnet_s"

    def __init__(self, num_classes=19, augment=True, lib=FAST, size="canonical", m=2, n=3, planes=None):
        shape = pick(size, (3, 1024, 2048), (3, 128, 128))
        super().__init__(shape, lib, size=size, hw_multiple=8, min_hw=8)
        width = planes
        planes, ppm_planes, head_planes = pick(size, (32, 96, 128), (8, 24, 32))
        if width is not None:   # another width, the sizes' ratio 1 : 3 : 4 kept
            planes, ppm_planes, head_planes = width, 3 * width, 4 * width
        self.augment = augment
        hw = shape[1:]
        self.output_shape = ((num_classes, *hw), (num_classes, *hw), (1, *hw)) if augment else (num_classes, *hw)
        L, B, Bt = lib, BasicBlock, Bottleneck
        stem_bias = size == "canonical"
        # I branch
        self.conv1 = L.Sequential(
            L.Conv2d(3, planes, 3, stride=2, padding=1, bias=stem_bias), L.BatchNorm2d(planes), L.ReLU(),
            L.Conv2d(planes, planes, 3, stride=2, padding=1, bias=stem_bias), L.BatchNorm2d(planes), L.ReLU())
        self.relu = L.ReLU()
        self.layer1 = make_layer(L, B, planes, planes, m)
        self.layer2 = make_layer(L, B, planes, planes * 2, m, stride=2)
        self.layer3 = make_layer(L, B, planes * 2, planes * 4, n, stride=2)
        self.layer4 = make_layer(L, B, planes * 4, planes * 8, n, stride=2)
        self.layer5 = make_layer(L, Bt, planes * 8, planes * 8, 2, stride=2)
        # P branch
        self.compression3 = conv_bn(L, planes * 4, planes * 2)
        self.compression4 = conv_bn(L, planes * 8, planes * 2)
        self.pag3 = PagFM(L, planes * 2, planes)
        self.pag4 = PagFM(L, planes * 2, planes)
        self.layer3_ = make_layer(L, B, planes * 2, planes * 2, m)
        self.layer4_ = make_layer(L, B, planes * 2, planes * 2, m)
        self.layer5_ = make_layer(L, Bt, planes * 2, planes * 2, 1)
        # D branch (the m == 2 variant: PIDNet-S/M)
        self.layer3_d = make_single_layer(L, B, planes * 2, planes)
        self.layer4_d = make_layer(L, Bt, planes, planes, 1)
        self.diff3 = conv_bn(L, planes * 4, planes, 3)
        self.diff4 = conv_bn(L, planes * 8, planes * 2, 3)
        self.spp = PAPPM(L, planes * 16, ppm_planes, planes * 4)
        self.dfm = LightBag(L, planes * 4, planes * 4)
        self.layer5_d = make_layer(L, Bt, planes * 2, planes * 2, 1)
        # heads
        if augment:
            self.seghead_p = SegmentHead(L, planes * 2, head_planes, num_classes)
            self.seghead_d = SegmentHead(L, planes * 2, planes, 1)
        self.final_layer = SegmentHead(L, planes * 4, head_planes, num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        """The reference's init: He (fan_out) for convolutions, BN weight 1 and bias 0."""
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)

    def forward(self, x):
        in_size = x.shape[-2:]
        size = (x.shape[-2] // 8, x.shape[-1] // 8)
        lib = self.lib
        x = self.conv1(x)
        x = self.layer1(x)
        x = self.relu(self.layer2(self.relu(x)))
        x_ = self.layer3_(x)
        x_d = self.layer3_d(x)
        x = self.relu(self.layer3(x))
        x_ = self.pag3(x_, self.compression3(x))
        x_d = x_d + _resize(lib, self.diff3(x), size)
        temp_p = x_
        x = self.relu(self.layer4(x))
        x_ = self.layer4_(self.relu(x_))
        x_d = self.layer4_d(self.relu(x_d))
        x_ = self.pag4(x_, self.compression4(x))
        x_d = x_d + _resize(lib, self.diff4(x), size)
        temp_d = x_d
        x_ = self.layer5_(self.relu(x_))
        x_d = self.layer5_d(self.relu(x_d))
        x = _resize(lib, self.spp(self.layer5(x)), size)
        out = _resize(lib, self.final_layer(self.dfm(x_, x, x_d)), in_size)
        if not self.augment:
            return out
        # the reference's in-place ReLUs (self.relu(x_), self.relu(x_d) above) also rectify temp_p and
        # temp_d, which alias x_ and x_d there: its auxiliary heads read the rectified features
        p_head, d_head = self.seghead_p(self.relu(temp_p)), self.seghead_d(self.relu(temp_d))
        return (_resize(lib, p_head, in_size), out, _resize(lib, d_head, in_size))


@register_model("pidnet_s", paper="Xu, Xiong, Bhattacharyya 2023, PIDNet: A Real-time Semantic Segmentation Network "
                "Inspired by PID Controllers", canonical_params=7_720_935,
                task="semantic segmentation + boundaries (Cityscapes: 19 classes); synthetic shapes here; "
                     "augment=False (inference heads only): 7,625,715")
def pidnet_s(size="canonical", lib=FAST, num_classes: int = 19, augment: bool = True, aux: Optional[bool] = None,
             planes: Optional[int] = None):
    return PIDNet(num_classes, augment if aux is None else aux, lib, size, planes=planes)
