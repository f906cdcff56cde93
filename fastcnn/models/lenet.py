"""LeNet-like CNN, the lecture's 5x5x10 -> 5x5x20 example (NETWORKS.md #3).

conv 1->10 k5, maxpool 2, ReLU, conv 10->20 k5, dropout2d, maxpool 2, ReLU, FC 320->50, ReLU,
dropout, FC 50->10; input 1x28x28; 21,840 parameters. It already trains on 2 cores in seconds, so
the small size is the canonical one.
"""
from __future__ import annotations

from ._layers import FAST
from ._network import Network
from ._registry import register_model


class LeNet(Network):
    name = "lenet"

    def __init__(self, num_classes: int = 10, lib=FAST, size: str = "canonical"):
        super().__init__((1, 28, 28), lib, size=size)
        self.output_shape = (num_classes,)
        L = lib
        self.features = L.Sequential(
            L.Conv2d(1, 10, 5), L.MaxPool2d(2), L.ReLU(),
            L.Conv2d(10, 20, 5), L.Dropout2d(), L.MaxPool2d(2), L.ReLU())
        self.classifier = L.Sequential(
            L.Flatten(), L.Linear(320, 50), L.ReLU(), L.Dropout(), L.Linear(50, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("lenet", paper="LeCun et al. 1998 (the lecture's LeNet-like example)", canonical_params=21_840,
                task="digits upsampled to 28x28, 10 classes")
def lenet(size="canonical", lib=FAST, num_classes: int = 10):
    return LeNet(num_classes, lib, size)
