"""Registers every Triton kernel module's launchers for both devices.

Each module in fastcnn/kernels/triton/ holds @triton.jit kernels and the Python launchers that call
them, and lists its launchers in a dict `KERNELS = {"kernel_name": launcher}`. Whether a
@triton.jit function compiles for the GPU or runs under the Triton interpreter is fixed when it is
decorated, so each module is imported twice: normally (GPU) and as a second copy with the
interpreter switched on (CPU tensors). The launcher registered here picks the copy by the device
of its first tensor argument, so users never set TRITON_INTERPRET themselves.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import pkgutil
import sys

import torch
from triton import knobs

import fastcnn.kernels.triton as _pkg

from ..._registry import register

_INTERP_SUFFIX = "__interpreted"
_SHARED_PREFIX = _pkg.__name__ + "._"  # private modules with @triton.jit helpers shared by kernels
_shared_interpreted: dict = {}  # interpreted copies of those, reused by every interpreted module


def _import_interpreted(module_name: str):
    """Second copy of a kernel module whose @triton.jit functions, and those of the private helper
    modules it imports (fastcnn.kernels.triton._*), are interpreter functions."""
    name = module_name + _INTERP_SUFFIX
    if name in sys.modules:
        return sys.modules[name]
    origin = importlib.util.find_spec(module_name).origin
    spec = importlib.util.spec_from_file_location(name, origin)
    module = importlib.util.module_from_spec(spec)
    gpu_shared = {k: sys.modules.pop(k) for k in list(sys.modules) if k.startswith(_SHARED_PREFIX)}
    sys.modules.update(_shared_interpreted)
    previous = knobs.runtime.interpret
    knobs.runtime.interpret = True
    try:
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        knobs.runtime.interpret = previous
        for k in [k for k in sys.modules if k.startswith(_SHARED_PREFIX)]:
            _shared_interpreted[k] = sys.modules.pop(k)
        sys.modules.update(gpu_shared)
        for k, mod in gpu_shared.items():  # the import system rebinds package attributes
            setattr(_pkg, k.rsplit(".", 1)[1], mod)
    return module


def _first_tensor_device(args, kwargs):
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            return a.device.type
    return "cpu"


def _dispatching(module_name: str, kernel_name: str):
    gpu_module = importlib.import_module(module_name)

    @functools.wraps(gpu_module.KERNELS[kernel_name])
    def launch(*args, **kwargs):
        if _first_tensor_device(args, kwargs) == "cuda":
            return gpu_module.KERNELS[kernel_name](*args, **kwargs)
        return _import_interpreted(module_name).KERNELS[kernel_name](*args, **kwargs)

    return launch


for _mod in pkgutil.iter_modules(_pkg.__path__):
    if _mod.name.startswith("_"):
        continue
    _name = f"{_pkg.__name__}.{_mod.name}"
    for _kernel_name in importlib.import_module(_name).KERNELS:
        register("triton", _kernel_name)(_dispatching(_name, _kernel_name))
