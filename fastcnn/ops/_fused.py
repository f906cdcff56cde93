"""A fused epilogue activation (conv2d's and linear's `activation=` / `activation_param=`): the one check
of the two arguments, and its plain-torch reference."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts.activation import FUSED_ACTIVATIONS


def fused_activation(activation, activation_param) -> Tuple[Optional[str], float]:
    """(activation, its parameter with torch's default filled in); ValueError / TypeError naming the
    argument for an activation no epilogue fuses or a parameter it cannot take."""
    if activation is None:
        return None, 0.0
    if activation not in FUSED_ACTIVATIONS:
        raise ValueError(f"activation: expected None or one of {sorted(FUSED_ACTIVATIONS)}, got {activation!r}")
    param = FUSED_ACTIVATIONS[activation] if activation_param is None else _checks.number(activation_param,
                                                                                          "activation_param")
    # The backward pass works from the output; that needs y > 0 exactly where x > 0.
    if activation in ("leaky_relu", "elu") and param < 0:
        raise ValueError(f"activation_param: a fused {activation} needs a parameter >= 0, got {param}; "
                         f"apply fastcnn.ops.{activation} separately")
    return activation, param


def reference_activation(y: torch.Tensor, activation: Optional[str], param: float) -> torch.Tensor:
    """The checked fused activation applied to y by torch (backend='reference')."""
    if activation is None:
        return y
    if activation == "leaky_relu":
        return F.leaky_relu(y, param)
    if activation == "elu":
        return F.elu(y, param)
    return {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation](y)
