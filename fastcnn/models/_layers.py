"""The layer libraries a zoo network is built from.

Every network in fastcnn.models is written once, against a layer library `lib`:

    lib.Conv2d(1, 10, 5), lib.BatchNorm2d(64), lib.ReLU() ...   modules, torch.nn's names and arguments
    lib.F.interpolate(x, scale_factor=2) ...                       functions, torch.nn.functional's names

`FAST` resolves every name to fastcnn (fastcnn.nn / fastcnn.ops: our kernels forward and backward).
`TORCH` resolves it to torch.nn / torch.nn.functional: the network's torch twin, with the same
state_dict keys by construction. A fastcnn module or op that torch lacks (Maxout, Step, ...) resolves
in TORCH to fastcnn's own class with backend='reference', which runs plain torch ops.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as torch_F
from torch import nn as torch_nn


# Modules that compute nothing (containers, reshapes): torch.nn's in both libraries.
STRUCTURE = frozenset({"Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Identity",
                       "Flatten", "Unflatten"})


class _Functions:
    def __init__(self, lib: "LayerLib"):
        self._lib = lib

    def __getattr__(self, name):
        from .. import ops

        if self._lib.name == "fastcnn":
            if not hasattr(ops, name):
                raise AttributeError(f"fastcnn.ops has no {name!r}: write the op (kernels forward and backward) first")
            return getattr(ops, name)
        if hasattr(torch_F, name):
            return getattr(torch_F, name)
        return functools.partial(getattr(ops, name), backend="reference")


class LayerLib:
    """Module classes and functions by torch.nn's names, from fastcnn or from torch."""

    def __init__(self, name: str):
        self.name = name
        self.F = _Functions(self)

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        from .. import nn as fast_nn

        if attr in STRUCTURE:
            return getattr(torch_nn, attr)
        if self.name == "fastcnn":
            if attr not in getattr(fast_nn, "__all__", ()):
                raise AttributeError(f"fastcnn.nn has no {attr!r}: write the module (on fastcnn ops) first")
            return getattr(fast_nn, attr)
        if hasattr(torch_nn, attr):
            return getattr(torch_nn, attr)
        return functools.partial(getattr(fast_nn, attr), backend="reference")

    def __repr__(self):
        return f"LayerLib({self.name!r})"

    # A library is a constant: copies and pickles of a network refer to the same one.
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (_library, (self.name,))


def _library(name: str) -> "LayerLib":
    return FAST if name == "fastcnn" else TORCH


FAST = LayerLib("fastcnn")
TORCH = LayerLib("torch")
