"""The model registry: a name -> a builder, in the style of torchvision.models."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Dict, List

from torch import nn

from ._layers import FAST, TORCH

SIZES = ("canonical", "small")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., nn.Module]  # build(size=..., lib=..., **overrides)
    paper: str
    canonical_params: int  # the published count (NETWORKS.md) that the canonical size reproduces
    task: str = ""

    def __call__(self, size: str = "canonical", lib=FAST, *, fuse: bool = True, **overrides) -> nn.Module:
        """The network; built from FAST, with its activations fused into the layers before them
        (fuse_fast) unless fuse=False (the layers as written: what the fusion tests and benchmarks
        compare with). A builder that fuses in its own forward takes `fuse` itself (llnet)."""
        if size not in SIZES:
            raise ValueError(f"size: expected one of {SIZES}, got {size!r}")
        if "fuse" in inspect.signature(self.build).parameters:
            overrides["fuse"] = fuse and lib is FAST
        net = self.build(size=size, lib=lib, **overrides)
        return fuse_fast(net) if fuse and lib is FAST else net


_MODELS: Dict[str, ModelSpec] = {}


def register_model(name: str, *, paper: str, canonical_params: int, task: str = ""):
    """Decorator for a builder `fn(size, lib, **overrides) -> Network`."""
    def deco(fn):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = ModelSpec(name, fn, paper, canonical_params, task)
        return fn
    return deco


def list_models() -> List[str]:
    """The names of every network in the zoo, sorted."""
    _load_all()
    return sorted(_MODELS)


def model_spec(name: str) -> ModelSpec:
    _load_all()
    if name not in _MODELS:
        raise ValueError(f"name: unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def fuse_fast(net: nn.Module) -> nn.Module:
    """`net` (built from FAST) with every Conv2d / Linear / BatchNorm -> activation pair of its
    Sequentials fused into one layer, in place (fastcnn.nn.fuse_activations): one op and one backward
    node per pair in training and inference. The activation's slot holds an nn.Identity, so the
    state_dict keys stay the torch twin's; `net.fused_layers` lists the pairs. Networks that apply an
    activation in their own forward fuse it themselves where it pays (llnet)."""
    from ..nn.inference import fuse_activations

    return fuse_activations(net, inplace=True)


def get_model(name: str, size: str = "canonical", *, fuse: bool = True, **overrides) -> nn.Module:
    """The zoo network `name` built from fastcnn layers, in its canonical (published) or small
    (trainable on 2 CPU cores in minutes) size, its activations fused into the layers before them
    (fuse_fast; fuse=False: the layers as written); overrides (e.g. num_classes=, activation=) go to
    its builder. Works under `with torch.device("meta"):` (counts without allocating)."""
    return model_spec(name)(size, FAST, fuse=fuse, **overrides)


def get_twin(name: str, size: str = "canonical", **overrides) -> nn.Module:
    """The same network built from torch.nn layers (same state_dict keys): the reference to compare with."""
    return model_spec(name)(size, TORCH, **overrides)


_loaded = False


def _load_all() -> None:
    """Imports every network module of fastcnn.models (they register themselves)."""
    global _loaded
    if _loaded:
        return
    import importlib
    import pkgutil

    import fastcnn.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"fastcnn.models.{mod.name}")
    _loaded = True


def pick(size: str, canonical, small):
    """The canonical or small value of a configuration entry."""
    return canonical if size == "canonical" else small

