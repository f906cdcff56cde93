"""SegNet and SegNet-Basic (Badrinarayanan, Kendall, Cipolla 2015), NETWORKS.md #14.

As alexgkendall/SegNet-Tutorial's Models/segnet_train.prototxt and segnet_basic_train.prototxt:

SegNet: the VGG16 encoder (13 x [conv 3x3, BN, ReLU]) with five 2x2 max pools that keep their argmax
indices; the mirrored decoder unpools with those indices (max_unpool2d: each value goes back to
where its maximum came from, the rest is zero) and runs the convolutions in reverse order
(conv-BN-ReLU, the last of each decoder stage narrowing to the next stage's width); conv1_1_D, a
3x3 convolution 64 -> classes with no BN, is the classifier. 29,449,355 parameters at 11 classes.

SegNet-Basic: LRN (5, alpha 1e-4, beta 0.75) on the input; 4 x [conv 7x7 -> 64, BN, ReLU, pool
with indices]; 4 x [unpool, conv 7x7 64 -> 64, BN] (no ReLU in the decoder, as the prototxt); a 1x1
classifier. 1,416,587 parameters at 11 classes.

Pools round up as Caffe's do, and each unpooling restores its encoder stage's exact size, so any
H, W work (CamVid's 360x480 pools to 23x30 -> 12x15); the network asks for even sizes only so that
a malformed input is caught. Output [N, classes, H, W]. Small: SegNet at widths / 16 with VGG11's
depth (1, 1, 2, 2, 2 convolutions per stage, so the decoder's first stage is the classifier alone),
SegNet-Basic at width 16, both on 3x48x64 (CamVid's 3:4) and without the convolution biases that
BN makes redundant (conv_bn).
"""
from __future__ import annotations

from torch import nn

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model

VGG16_STAGES = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))  # (convs, width) per pool
# The small SegNet's encoder has VGG11's depth: 26 train-mode BatchNorms in a row compound fp64
# rounding (about x1.1 per layer) past what twin parity allows, 16 stay well inside it.
SMALL_CONVS_PER_STAGE = (1, 1, 2, 2, 2)
PAPER = "Badrinarayanan, Kendall, Cipolla 2015, SegNet: A Deep Convolutional Encoder-Decoder Architecture"
TASK = "semantic segmentation (CamVid: 11 classes); synthetic shapes here"


class IndexUnpoolingNet(Network):
    """Encoder stages each followed by a 2x2 max pool that keeps its indices; decoder stages each
    preceded by the max unpooling of the mirrored encoder stage (its indices, its size); a classifier."""

    def __init__(self, name, size, lib, input_shape, encoder, decoder, classifier, num_classes, input_norm=None):
        super().__init__(input_shape, lib, size=size, hw_multiple=2, min_hw=2)
        self.name = name
        self.output_shape = (num_classes, *input_shape[1:])
        self.input_norm = lib.Identity() if input_norm is None else input_norm
        self.encoder = nn.ModuleList(encoder)
        self.pool = lib.MaxPool2d(2, 2, ceil_mode=True, return_indices=True)
        self.unpool = lib.MaxUnpool2d(2, 2)
        self.decoder = nn.ModuleList(decoder)
        self.classifier = classifier

    def forward(self, x):
        x = self.input_norm(x)
        pooled = []  # (indices, size before pooling) per encoder stage
        for stage in self.encoder:
            x = stage(x)
            size = x.shape[-2:]
            x, indices = self.pool(x)
            pooled.append((indices, size))
        for stage, (indices, size) in zip(self.decoder, reversed(pooled)):
            x = stage(self.unpool(x, indices, output_size=size))
        return self.classifier(x)


def conv_bn(lib, c_in, c_out, k, relu=True, bias=True):
    """conv k x k (same padding), BN, ReLU. `bias`: the published nets keep Caffe's convolution bias;
    the small ones drop it: BN's shift subsumes it, and in training its gradient is exactly zero
    (BN subtracts the batch mean), so comparing it with a twin would compare rounding noise."""
    layers = [lib.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias), lib.BatchNorm2d(c_out)]
    return layers + [lib.ReLU()] if relu else layers


def segnet_stages(lib, widths, convs_per_stage, bias):
    """VGG16's encoder stages and their mirror: decoder stage i runs encoder stage i's convolutions
    backwards (conv5_3_D ... conv1_2_D), its last narrowing to the width of the stage before."""
    encoder, c_in = [], 3
    for convs, w in zip(convs_per_stage, widths):
        layers = []
        for _ in range(convs):
            layers += conv_bn(lib, c_in, w, 3, bias=bias)
            c_in = w
        encoder.append(lib.Sequential(*layers))
    decoder = []
    for i in reversed(range(len(widths))):
        convs, w = convs_per_stage[i], widths[i]
        outs = [w] * (convs - 1) + [widths[i - 1] if i > 0 else w]
        if i == 0:
            outs = outs[:-1]  # conv1_1_D is the classifier
        layers = []
        for c_out in outs:
            layers += conv_bn(lib, w, c_out, 3, bias=bias)
        decoder.append(lib.Sequential(*layers))
    return encoder, decoder


@register_model("segnet", paper=PAPER, canonical_params=29_449_355, task=TASK)
def segnet(size="canonical", lib=FAST, num_classes: int = 11):
    widths = [w // pick(size, 1, 16) for _, w in VGG16_STAGES]
    convs = pick(size, [c for c, _ in VGG16_STAGES], SMALL_CONVS_PER_STAGE)
    encoder, decoder = segnet_stages(lib, widths, convs, bias=size == "canonical")
    classifier = lib.Conv2d(widths[0], num_classes, 3, padding=1)  # conv1_1_D
    return IndexUnpoolingNet("segnet", size, lib, pick(size, (3, 360, 480), (3, 48, 64)), encoder, decoder,
                             classifier, num_classes)


@register_model("segnet_basic", paper=PAPER + " (SegNet-Basic)", canonical_params=1_416_587, task=TASK)
def segnet_basic(size="canonical", lib=FAST, num_classes: int = 11):
    width = pick(size, 64, 16)
    bias = size == "canonical"
    encoder = [lib.Sequential(*conv_bn(lib, 3 if i == 0 else width, width, 7, bias=bias)) for i in range(4)]
    decoder = [lib.Sequential(*conv_bn(lib, width, width, 7, relu=False, bias=bias)) for _ in range(4)]
    return IndexUnpoolingNet("segnet_basic", size, lib, pick(size, (3, 360, 480), (3, 48, 64)), encoder, decoder,
                             lib.Conv2d(width, num_classes, 1), num_classes,
                             input_norm=lib.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0))
