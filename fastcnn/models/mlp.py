"""Fully-connected network of the lecture (NETWORKS.md #2): 64-100-10 on 8x8 digits.

The hidden layer's activation is chosen by `activation=`: sigmoid, tanh, relu (default), leaky_relu
(slope 0.1, the lecture's max(0.1x, x)), elu (alpha 1) or maxout (k = 2: the hidden Linear has 2 x 100
units and Maxout keeps the larger of each pair, max(w1.x + b1, w2.x + b2)). The output layer is linear
(the scores y' that the lecture's 1/2 sum (y' - y)^2 on one-hot targets compares). 7,510 parameters,
14,010 with maxout (only the hidden layer carries the doubled units). It trains on 2 cores in seconds,
so the small size is the canonical one.
"""
from __future__ import annotations

from ._layers import FAST
from ._network import Network
from ._registry import register_model

MAXOUT_PIECES = 2
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "maxout", "elu")


def hidden_activation(lib, activation: str):
    """The activation module for `activation` (a name of ACTIVATIONS)."""
    table = {"sigmoid": lambda: lib.Sigmoid(), "tanh": lambda: lib.Tanh(), "relu": lambda: lib.ReLU(),
             "leaky_relu": lambda: lib.LeakyReLU(0.1), "elu": lambda: lib.ELU(1.0),
             "maxout": lambda: lib.Maxout(MAXOUT_PIECES)}
    if activation not in table:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
    return table[activation]()


class MLP(Network):
    name = "mlp"

    def __init__(self, activation: str = "relu", in_features: int = 64, hidden: int = 100, num_classes: int = 10,
                 lib=FAST, size: str = "canonical"):
        super().__init__((in_features,), lib, size=size)
        self.activation = activation
        self.output_shape = (num_classes,)
        act = hidden_activation(lib, activation)
        pieces = MAXOUT_PIECES if activation == "maxout" else 1
        self.layers = lib.Sequential(lib.Linear(in_features, hidden * pieces), act, lib.Linear(hidden, num_classes))

    def forward(self, x):
        return self.layers(x)


@register_model("mlp", paper="Rumelhart, Hinton & Williams 1986 (the lecture's FCN)", canonical_params=7_510,
                task="sklearn digits (64 inputs), 10 classes")
def mlp(size="canonical", lib=FAST, activation: str = "relu", hidden: int = 100, num_classes: int = 10):
    return MLP(activation, 64, hidden, num_classes, lib, size)
