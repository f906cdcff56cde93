"""LLNet (Lore, Akintayo & Sarkar 2017; NETWORKS.md #8): a stacked sparse denoising autoencoder that
maps darkened, noisy 17x17 grey patches (flattened, 289 values in [0, 1]) to clean ones.

    289 -> 867 -> 578 -> 289 -> 578 -> 867 -> 289, every layer Linear + sigmoid: 1,840,930 parameters.

Training has two phases (written by the training code; this module gives it the pieces):
1. Layer-wise pretraining with tied weights: layer i is a denoising autoencoder whose encoder is
   `encoders[i]` and whose decoder is `tied_decode(i, h)` = sigmoid(h @ W_i + c_i): the encoder's
   transposed weight W_i^T and, as its bias c_i, the bias of the mirrored decoder layer
   `decoders[depth - 1 - i]` (same size: layer i's input width). `encode(x, layers=i)` gives the input
   of layer i.
2. Fine-tuning of the unrolled network with untied decoder layers (that is how the published count
   comes out: 3 encoder + 3 decoder Linear layers, each with its own weight and bias).
   `untie_decoders()` starts it by copying each W_i^T into its mirrored decoder layer.

Small: the same 17x17 patches with one third of the hidden widths, 289-289-192-96-192-289-289
(316,229 parameters).

With `fuse` (the default of a FAST build: get_model), every layer applies its sigmoid in its own op
(fastcnn.nn.Linear(activation="sigmoid"): one op and one backward node per layer) and `act` is an
Identity; otherwise (the torch twin, get_model(fuse=False)) the layers are plain Linear followed by
`act`, a Sigmoid. Neither changes the state_dict (no parameters).
"""
from __future__ import annotations

import torch

from ._layers import FAST
from ._network import Network
from ._registry import pick, register_model


class LLNet(Network):
    name = "llnet"

    def __init__(self, widths=(289, 867, 578, 289), lib=FAST, size: str = "canonical", fuse: bool = False):
        super().__init__((widths[0],), lib, size=size)
        self.output_shape = (widths[0],)
        L = lib
        pairs = list(zip(widths, widths[1:]))
        self._fused = dict(activation="sigmoid") if fuse else {}  # Linear's keywords (see the module doc)
        self.encoders = L.ModuleList([L.Linear(a, b, **self._fused) for a, b in pairs])
        self.decoders = L.ModuleList([L.Linear(b, a, **self._fused) for a, b in reversed(pairs)])
        self.act = L.Identity() if self._fused else L.Sigmoid()  # after each layer

    @property
    def depth(self) -> int:
        return len(self.encoders)

    def encode(self, x, layers: int = None):
        """x through the first `layers` encoder layers (all by default): the input of layer `layers`."""
        self.check_input(x)
        for enc in self.encoders[:self.depth if layers is None else layers]:
            x = self.act(enc(x))
        return x

    def tied_decode(self, i: int, h):
        """Pretraining decoder of layer i: sigmoid(linear(h, W_i^T, c_i)), with W_i the weight of
        encoders[i] and c_i the bias of its mirrored decoder layer (see the module doc)."""
        return self.act(self.lib.F.linear(h, self.encoders[i].weight.t(), self.decoders[self.depth - 1 - i].bias,
                                          **self._fused))

    def tied_reconstruct(self, i: int, h):
        """Layer i as a tied denoising autoencoder: its input h -> code -> reconstruction of h."""
        return self.tied_decode(i, self.act(self.encoders[i](h)))

    @torch.no_grad()
    def untie_decoders(self) -> None:
        """After pretraining: each decoder layer starts fine-tuning from its encoder's W^T."""
        for i, enc in enumerate(self.encoders):
            self.decoders[self.depth - 1 - i].weight.copy_(enc.weight.t())

    def forward(self, x):
        h = self.encode(x)
        for dec in self.decoders:
            h = self.act(dec(h))
        return h


@register_model("llnet", paper="Lore, Akintayo & Sarkar 2017 (LLNet)", canonical_params=1_840_930,
                task="17x17 grey patches (289 values): low-light enhancement and denoising")
def llnet(size="canonical", lib=FAST, fuse: bool = False):
    return LLNet(pick(size, (289, 867, 578, 289), (289, 289, 192, 96)), lib, size, fuse)
