"""Activation codes: the one mapping from names to the kernels' enum (csrc/common/activation_math.h
enum Act, fastcnn/kernels/cuda/activation_math.cuh, fastcnn/kernels/triton/_activation_math.py)."""
from __future__ import annotations

from typing import Optional

ACT_KIND = {"identity": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "sigmoid": 4, "tanh": 5, "softplus": 6, "step": 7,
            "silu": 8, "gelu": 9, "gelu_tanh": 10, "hardswish": 11, "hardsigmoid": 12}

# Activations a convolution epilogue may fuse, with the parameter torch uses when none is given.
FUSED_ACTIVATIONS = {"relu": 0.0, "leaky_relu": 0.01, "elu": 1.0, "sigmoid": 0.0, "tanh": 0.0}


def fused_code(activation: Optional[str]) -> int:
    """The enum code of a fused epilogue activation (None: identity); ValueError naming the argument
    for one a convolution cannot fuse."""
    if activation is None:
        return 0
    if activation not in FUSED_ACTIVATIONS:
        raise ValueError(f"activation: expected None or one of {sorted(FUSED_ACTIVATIONS)}, got {activation!r}")
    return ACT_KIND[activation]
