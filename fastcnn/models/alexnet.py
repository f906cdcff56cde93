"""AlexNet (Krizhevsky, Sutskever & Hinton 2012; NETWORKS.md #4) in the Caffe layout (bvlc_alexnet):

    conv1 96 k11 s4, ReLU, LRN, maxpool k3 s2;  conv2 256 k5 p2 g2, ReLU, LRN, maxpool k3 s2;
    conv3 384 k3 p1, ReLU;  conv4 384 k3 p1 g2, ReLU;  conv5 256 k3 p1 g2, ReLU, maxpool k3 s2;
    fc6 9216 -> 4096, ReLU, dropout 0.5;  fc7 4096 -> 4096, ReLU, dropout 0.5;  fc8 4096 -> 1000

on 3x227x227 input: 60,965,224 parameters. LRN: size 5, alpha 1e-4, beta 0.75, k 2 (the paper's k;
Caffe's default is 1), with torch's / Caffe's convention of dividing alpha by the size.

Small: the same topology at 1/4 convolution width (24, 64, 96, 96, 64) and 1/8 fully-connected width
(512) on 3x67x67 input (conv1 15x15, pool 7, pool 3, pool 1: 64 features), 10 classes: 453,738
parameters (LFW face / non-face: num_classes=2; grey images: in_channels=1).
"""
from __future__ import annotations

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model


class AlexNet(Network):
    name = "alexnet"

    def __init__(self, widths=(96, 256, 384, 384, 256), fc: int = 4096, side: int = 227, pooled: int = 6,
                 in_channels: int = 3, num_classes: int = 1000, lib=FAST, size: str = "canonical"):
        super().__init__((in_channels, side, side), lib, size=size)
        self.output_shape = (num_classes,)
        L = lib
        c1, c2, c3, c4, c5 = widths

        def lrn():
            return L.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)

        self.features = L.Sequential(
            L.Conv2d(in_channels, c1, 11, stride=4), L.ReLU(), lrn(), L.MaxPool2d(3, 2),
            L.Conv2d(c1, c2, 5, padding=2, groups=2), L.ReLU(), lrn(), L.MaxPool2d(3, 2),
            L.Conv2d(c2, c3, 3, padding=1), L.ReLU(),
            L.Conv2d(c3, c4, 3, padding=1, groups=2), L.ReLU(),
            L.Conv2d(c4, c5, 3, padding=1, groups=2), L.ReLU(), L.MaxPool2d(3, 2))
        self.classifier = L.Sequential(
            L.Flatten(),
            L.Linear(c5 * pooled * pooled, fc), L.ReLU(), L.Dropout(0.5),
            L.Linear(fc, fc), L.ReLU(), L.Dropout(0.5),
            L.Linear(fc, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("alexnet", paper="Krizhevsky, Sutskever & Hinton 2012 (Caffe layout)", canonical_params=60_965_224,
                task="canonical: ImageNet 3x227x227, 1000 classes; small: 3x67x67 digits or LFW face/non-face")
def alexnet(size="canonical", lib=FAST, num_classes: int = None, in_channels: int = 3):
    num_classes = pick(size, 1000, 10) if num_classes is None else num_classes
    if size == "canonical":
        return AlexNet((96, 256, 384, 384, 256), 4096, 227, 6, in_channels, num_classes, lib, size)
    return AlexNet((24, 64, 96, 96, 64), 512, 67, 1, in_channels, num_classes, lib, size)
