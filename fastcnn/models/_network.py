"""The base class of every zoo network: its name, size and the input it expects."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from ._layers import FAST, LayerLib


class Network(nn.Module):
    """A zoo network. Subclasses build their layers from `lib` (fastcnn or torch, see _layers.py) and
    implement forward(). `input_shape` is one sample's shape without the batch dimension.

    `hw_multiple`: None if the spatial size must be exactly input_shape's; an int k if any H, W that
    are multiples of k (and at least input_shape's minimum `min_hw`) are accepted (fully convolutional
    networks). Wrong inputs raise a ValueError naming the expected shape before any layer runs."""

    name = "network"
    # One sample's output shape (no batch dimension); a tuple/dict of shapes for several outputs.
    output_shape = None

    def __init__(self, input_shape: Tuple[int, ...], lib: LayerLib = FAST, *, size: str = "canonical",
                 hw_multiple: Optional[int] = None, min_hw: int = 1):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.size = size
        self.lib = lib
        self.hw_multiple = hw_multiple
        self.min_hw = min_hw
        self.register_forward_pre_hook(_check_input)

    def expected_input(self) -> str:
        dims = ", ".join(str(s) for s in self.input_shape)
        if self.hw_multiple is not None and len(self.input_shape) == 3:
            dims = f"{self.input_shape[0]}, H, W"
        return f"[N, {dims}]"

    def check_input(self, x) -> None:
        where = f"{self.name} ({self.size})"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{where} expects a tensor {self.expected_input()}, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{where} expects a floating-point tensor {self.expected_input()}, got dtype {x.dtype}")
        shape = tuple(x.shape)
        want = self.input_shape
        ok = len(shape) == len(want) + 1
        if ok and self.hw_multiple is not None and len(want) == 3:
            h, w = shape[2], shape[3]
            ok = (shape[1] == want[0] and h >= self.min_hw and w >= self.min_hw
                  and h % self.hw_multiple == 0 and w % self.hw_multiple == 0)
            if not ok:
                raise ValueError(f"{where} expects {self.expected_input()} with H, W multiples of {self.hw_multiple} "
                                 f"and >= {self.min_hw}, got {list(shape)}")
        elif ok:
            ok = shape[1:] == want
        if not ok:
            raise ValueError(f"{where} expects {self.expected_input()}, got {list(shape)}")

    def example_input(self, batch: int = 2, **kwargs) -> torch.Tensor:
        """A random input of the expected shape (kwargs go to torch.randn: dtype, device, generator)."""
        return torch.randn(batch, *self.input_shape, **kwargs)

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def _check_input(module: Network, args):
    if args:
        module.check_input(args[0])
