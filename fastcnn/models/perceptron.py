"""Rosenblatt's perceptron (NETWORKS.md #1): y = step(w.x + b) on 8x8 digits, d + 1 = 65 parameters.

Trained by the perceptron rule w += eta (t - step(w.x + b)) x, which needs the pre-activation:
`score(x)` returns w.x + b, `forward(x)` the thresholded output in {0, 1} (1 where the score is > 0,
as sklearn.linear_model.Perceptron predicts). It is tiny, so the small size is the canonical one.
"""
from __future__ import annotations

from ._layers import FAST
from ._network import Network
from ._registry import register_model


class Perceptron(Network):
    name = "perceptron"

    def __init__(self, in_features: int = 64, lib=FAST, size: str = "canonical"):
        super().__init__((in_features,), lib, size=size)
        self.output_shape = (1,)
        self.linear = lib.Linear(in_features, 1)
        self.step = lib.Step()

    def score(self, x):
        """The pre-activation w.x + b, shape [N, 1] (what the perceptron rule and margins use)."""
        self.check_input(x)
        return self.linear(x)

    def forward(self, x):
        s = self.score(x)
        # The step's derivative is zero: a loss over the output backpropagates zeros. Learning goes
        # through score() (the perceptron rule).
        return self.step(s)


@register_model("perceptron", paper="Rosenblatt 1958", canonical_params=65,
                task="sklearn digits 0 vs 1 (8x8 = 64 inputs), perceptron rule")
def perceptron(size="canonical", lib=FAST, in_features: int = 64):
    return Perceptron(in_features, lib, size)
