"""The base of every fastcnn.nn module: fastcnn's own settings, adopting a torch.nn module, the repr.

A fastcnn.nn module that mirrors a torch.nn class subclasses it after `Module`:

    class Conv2d(Module, torch.nn.Conv2d, settings=dict(algo="auto", activation=None, activation_param=None)):
        def forward(self, input): ...

so constructor arguments, parameters, buffers, state_dict keys and isinstance checks are torch's, and
only forward runs fastcnn kernels. On top of torch's constructor it takes fastcnn's settings as
keywords only: `backend=` for every module (None: chosen per call from the tensor's device), plus the
ones a class declares with `settings=` (e.g. a convolution's `algo=`). `from_torch(module, **settings)`
turns an existing torch.nn module into the fastcnn one, sharing its parameters, buffers, hooks and
attributes (nothing is copied); fastcnn.nn.convert builds on it. A module fastcnn has and torch lacks
(Maxout, Step) subclasses `Module` alone and has no from_torch.
"""
from __future__ import annotations

import copy
import inspect
from typing import Any, Dict, Optional, Type

import torch
from torch import nn

__all__: list = []  # nothing public: the classes are re-exported by their family modules

# Parameter and buffer dtypes the kernels take (float16/bfloat16 are rejected by the ops).
SUPPORTED_DTYPES = (torch.float32, torch.float64)


def _mirrored_torch_class(cls) -> Optional[Type[nn.Module]]:
    """The first torch.nn class among cls's bases (None for a fastcnn-only module)."""
    for base in cls.__mro__[1:]:
        if base is not nn.Module and issubclass(base, nn.Module) and base.__module__.startswith("torch.nn."):
            return base
    return None


def _signature(torch_class, settings) -> inspect.Signature:
    """torch_class's constructor signature plus fastcnn's settings as keyword-only arguments."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)  # nn.Module's catch-alls
    params = [p for p in list(inspect.signature(torch_class.__init__).parameters.values())[1:]  # without self
              if p.kind not in variadic]
    extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in settings.items()]
    return inspect.Signature(params + extra)


class Module(nn.Module):
    """Base of fastcnn.nn modules (see the module docstring).

    Class attributes set for each subclass: `settings` ({name: default} of fastcnn's keyword-only
    settings, `backend` included, merged along the bases) and `torch_class` (the mirrored torch.nn
    class, or None)."""

    settings: Dict[str, Any] = {"backend": None}
    torch_class: Optional[Type[nn.Module]] = None

    def __init_subclass__(cls, settings: Optional[Dict[str, Any]] = None, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.settings = {**cls.settings, **(settings or {})}
        for name, default in cls.settings.items():  # defaults readable before __init__ has run
            setattr(cls, name, default)
        cls.torch_class = _mirrored_torch_class(cls)
        own_init = "__init__" in cls.__dict__  # an explicit constructor documents itself
        cls.__signature__ = None if own_init or cls.torch_class is None else _signature(cls.torch_class, cls.settings)

    def __init__(self, *args, **kwargs):
        chosen = {name: kwargs.pop(name, default) for name, default in self.settings.items()}
        super().__init__(*args, **kwargs)
        type(self).check_settings(self)
        self._set_settings(chosen)

    def _set_settings(self, chosen: Dict[str, Any]) -> None:
        for name, value in chosen.items():
            setattr(self, name, value)

    @classmethod
    def check_settings(cls, module: nn.Module) -> None:
        """Raises (ValueError / NotImplementedError naming the attribute) if `module`'s torch settings
        are outside what the fastcnn kernels compute; run on construction and by from_torch."""

    @classmethod
    def from_torch(cls, module: nn.Module, **settings) -> "Module":
        """The fastcnn twin of `module` (a torch.nn module of exactly cls.torch_class, or an instance of
        cls): the same parameters and buffers (shared, not copied), attributes, hooks and training
        mode; `settings` are fastcnn's keyword settings (cls.settings gives the names and defaults).
        Raises TypeError for another class or an unknown setting, ValueError / NotImplementedError
        when the kernels cannot compute what the module does (the message names why)."""
        theirs = cls.torch_class
        if theirs is None:
            raise TypeError(f"fastcnn.nn.{cls.__name__} mirrors no torch.nn class: nothing to convert from")
        if type(module) is not theirs and not isinstance(module, cls):
            raise TypeError(f"module: expected a torch.nn.{theirs.__name__}, got {_class_name(type(module))}")
        unknown = sorted(set(settings) - set(cls.settings))
        if unknown:
            raise TypeError(f"settings: fastcnn.nn.{cls.__name__} takes {sorted(cls.settings)}, not {unknown}")
        check_dtypes(module)
        cls.check_settings(module)
        ours = cls.__new__(cls)
        # Containers (parameter, buffer, child and hook dicts) are copied so that registering on one
        # module does not register on the other; the tensors inside are the same objects.
        ours.__dict__.update({k: copy.copy(v) if isinstance(v, (dict, set, list)) else v
                              for k, v in module.__dict__.items()})
        current = {name: getattr(module, name) for name in cls.settings if isinstance(module, Module)}
        ours._set_settings({**cls.settings, **current, **settings})
        return ours

    def _get_name(self):  # repr: "fastcnn.nn.Conv2d(...)" marks the layers that run fastcnn kernels
        return f"fastcnn.nn.{type(self).__name__}"

    def extra_repr(self) -> str:
        changed = [f"{name}={getattr(self, name)!r}" for name, default in self.settings.items()
                   if getattr(self, name) != default]
        return ", ".join([s for s in [super().extra_repr()] if s] + changed)


class Epilogue(Module, settings=dict(activation=None, activation_param=None)):
    """The fused activation settings of Conv2d, Linear and BatchNorm (the activation applied in the
    layer's own op), rejected on construction (and by from_torch) with the op's message when the
    epilogue cannot apply them."""

    def _set_settings(self, chosen: Dict[str, Any]) -> None:
        from ..ops._fused import fused_activation

        fused_activation(chosen["activation"], chosen["activation_param"])
        super()._set_settings(chosen)


def check_dtypes(module: nn.Module) -> None:
    """TypeError if a floating parameter or buffer of `module` itself has a dtype the kernels lack."""
    for name, t in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
        if t is not None and (t.is_floating_point() or t.is_complex()) and t.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{name}: dtype {t.dtype} is not supported (fastcnn kernels take float32 and float64)")


def _class_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
