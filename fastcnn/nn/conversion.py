"""fastcnn.nn.convert(model): swap every supported torch.nn layer for its fastcnn twin, in place.

The table is discovered, not written: every class exported by a fastcnn.nn family module that has
the name of a torch.nn class and a `from_torch` classmethod replaces that torch.nn class. A new
family adds its modules to the table just by defining them that way.
"""
from __future__ import annotations

from typing import Dict, Type

from torch import nn

__all__ = ["convert", "conversion_table"]


def conversion_table() -> Dict[Type[nn.Module], Type[nn.Module]]:
    """{torch.nn class: fastcnn.nn class} for every fastcnn.nn module with a `from_torch`."""
    import fastcnn.nn as fnn

    table = {}
    for name in getattr(fnn, "__all__", []):
        ours = getattr(fnn, name, None)
        theirs = getattr(nn, name, None)
        if isinstance(ours, type) and isinstance(theirs, type) and ours is not theirs and hasattr(ours, "from_torch"):
            table[theirs] = ours
    return table


def convert(model: nn.Module, **kwargs) -> nn.Module:
    """Replaces, in place, every layer of `model` whose exact type is a supported torch.nn class by
    the fastcnn module sharing its parameters; returns the model (or its replacement when `model`
    itself is such a layer). kwargs (e.g. backend='cpu') go to every from_torch that accepts them."""
    table = conversion_table()

    def swap(module):
        ours = table.get(type(module))
        if ours is None:
            return None
        try:
            return ours.from_torch(module, **kwargs)
        except TypeError:  # a from_torch without these keywords
            return ours.from_torch(module)

    top = swap(model)
    if top is not None:
        return top
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            replacement = swap(child)
            if replacement is not None:
                setattr(parent, name, replacement)
    return model
