"""Layer fusion: `optimize_for_inference(model)` for eval, `fuse_activations(model)` for training too
(`fuse_conv_activations` is its former name).

Both return a new model (a deep copy; the input model is left as it was; `fuse_activations(model,
inplace=True)` changes `model` itself, as the zoo's fastcnn builds do) in which, inside every
nn.Sequential (the containers the zoo builds its layer stacks from; a custom forward's order of calls
is not visible, so it is left alone):
  - Conv2d -> BatchNorm2d with running statistics (eval only) becomes one Conv2d holding the folded
    weight and bias (fuse_conv_bn, computed in float64);
  - fastcnn.nn.Conv2d, Linear or BatchNorm1d/2d -> ReLU / LeakyReLU / ELU (parameter >= 0) / Sigmoid /
    Tanh becomes one layer that applies the activation in the same op (a conv kernel's epilogue, to
    its registers before the store; linear's and batch norm's, in place over the result while it is
    in cache), and in training runs the activation's backward from the saved output, as the unfused
    layer's does, inside the layer's one backward node. (In training a BatchNorm between a conv and
    its activation stays: conv -> BN+activation.)
The replaced module's slot holds an nn.Identity (no parameters), so the Sequential keeps its indices
and the state_dict its keys.

Accuracy (eval): folding changes the rounding only, one float32 rounding of the folded weight and
bias per element (the fold itself is computed in float64), so the outputs equal the unfused eval
model's within the conv tolerance of tests/helpers.assert_close over C/g*R*S products per layer.
"""
from __future__ import annotations

import copy
from typing import List, Optional, Tuple

import torch
from torch import nn

from .conv import Conv2d, Linear
from .fuse import fuse_conv_bn
from .norm import BatchNorm1d, BatchNorm2d

# layers that may take the next module's activation into their own op (fastcnn's, with `activation=`)
_EPILOGUE_LAYERS = (Conv2d, Linear, BatchNorm1d, BatchNorm2d)

__all__ = ["optimize_for_inference", "fuse_activations", "fuse_conv_activations"]


def _epilogue(module: nn.Module) -> Optional[Tuple[str, Optional[float]]]:
    """(activation, param) of the fused epilogue equal to `module`, or None if it has none."""
    if isinstance(module, nn.ReLU):
        return "relu", None
    if isinstance(module, nn.LeakyReLU) and module.negative_slope >= 0:  # the backward reads the output's sign
        return "leaky_relu", float(module.negative_slope)
    if isinstance(module, nn.ELU) and module.alpha >= 0:
        return "elu", float(module.alpha)
    if isinstance(module, nn.Sigmoid):
        return "sigmoid", None
    if isinstance(module, nn.Tanh):
        return "tanh", None
    return None


def _foldable_bn(module: nn.Module, channels: int) -> bool:
    return (isinstance(module, nn.BatchNorm2d) and module.running_mean is not None
            and module.num_features == channels)


def _fuse_sequential(seq: nn.Sequential, fold_bn: bool, fuse_act: bool, fused: List[str], prefix: str) -> None:
    names = list(seq._modules)
    i = 0
    while i < len(names):
        layer = seq._modules[names[i]]
        if not isinstance(layer, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            i += 1
            continue
        j = i + 1
        if fold_bn and isinstance(layer, nn.Conv2d) and j < len(names) \
                and _foldable_bn(seq._modules[names[j]], layer.out_channels) and getattr(layer, "activation", None) is None:
            layer = fuse_conv_bn(layer, seq._modules[names[j]])
            seq._modules[names[i]], seq._modules[names[j]] = layer, nn.Identity()
            fused.append(f"{prefix}{names[i]}+{names[j]} (batch norm folded)")
            j += 1
        if fuse_act and j < len(names) and isinstance(layer, _EPILOGUE_LAYERS) and layer.activation is None:
            epilogue = _epilogue(seq._modules[names[j]])
            if epilogue is not None:
                layer.activation, layer.activation_param = epilogue
                seq._modules[names[j]] = nn.Identity()
                fused.append(f"{prefix}{names[i]}+{names[j]} ({epilogue[0]} epilogue)")
                j += 1
        i = j


def _fuse(model: nn.Module, fold_bn: bool, fuse_act: bool, inplace: bool = False) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    new = model if inplace else copy.deepcopy(model)
    if fold_bn:
        new.eval()
    fused: List[str] = []
    for name, module in list(new.named_modules()):
        if isinstance(module, nn.Sequential):
            _fuse_sequential(module, fold_bn, fuse_act, fused, f"{name}." if name else "")
    new.fused_layers = fused  # what was fused, for inspection (a plain list attribute)
    return new


def optimize_for_inference(model: nn.Module, *, fuse_activations: bool = True) -> nn.Module:
    """A new eval-mode model computing model.eval()'s function with conv + BN folded and, unless
    fuse_activations=False, conv + activation fused (see the module docstring); `model` is not
    modified. The new model's `fused_layers` lists what was fused."""
    return _fuse(model, fold_bn=True, fuse_act=fuse_activations)


def fuse_activations(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """A new model (same training mode) in which every fastcnn.nn.Conv2d, Linear or BatchNorm1d/2d
    directly followed by an activation in a Sequential applies it in its epilogue; it trains like the
    original (the same parameter values, copied). `model` is not modified, unless inplace=True (then
    it is the model returned)."""
    return _fuse(model, fold_bn=False, fuse_act=True, inplace=inplace)


fuse_conv_activations = fuse_activations  # its former name (it fused convolutions only)
