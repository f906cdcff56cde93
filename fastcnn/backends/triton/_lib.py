"""The triton backend's registration decorator, `@triton_kernel(slot)`, for launchers on both devices.

Each module in fastcnn/kernels/triton/ holds @triton.jit kernels and the Python launchers that call
them, and registers its launchers with `@triton_kernel(kernels.<slot>)` (BACKEND.kernel, as `@cpu_kernel` /
`@cuda_kernel` do; the module returns the launcher unchanged). Whether a @triton.jit function
compiles for the GPU or runs under the Triton interpreter is fixed when it is decorated, so each
kernel module exists twice: imported normally (GPU; its decorators register) and as a second copy
with the interpreter switched on (CPU tensors; made at the first CPU launch, its decorators register
nothing). The registered launcher picks the copy by the device of its first tensor argument, so
users never set TRITON_INTERPRET themselves. kernels.py imports the modules when the backend loads.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
from typing import Callable

import torch
from triton import knobs

import fastcnn.kernels.triton as _pkg

from . import BACKEND

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


class _LanguageGuard:
    """Puts triton.language back as it was after every interpreted launch.

    The interpreter swaps triton.language's builtins (tl.load, tl.arange, tensor methods, ...) for
    numpy-backed versions while a kernel runs and restores them at the end, but a @triton.jit helper
    called as a device function patches them again and never restores (InterpretedFunction.__call__
    in triton 3.6-3.9). Some sequences of interpreted launches then leave the builtins swapped, and
    every later *compile* in the process fails ("Did you forget to add @triton.jit?" from the
    interpreter's semantics): the GPU launches of a process that also ran CPU tensors, and the
    ahead-of-time compile tests (tests/backends/triton/test_triton_aot.py) in a full test run."""

    def __init__(self):
        import triton.language as tl

        spaces = [tl, tl.core, tl.math] + [getattr(tl.core, n) for n in (
            "tensor", "dtype", "condition", "tensor_descriptor_base") if hasattr(tl.core, n)]
        self._saved = [(ns, dict(vars(ns))) for ns in spaces]

    def dirty(self) -> list:
        """Names whose value differs from the snapshot taken when the backend was loaded."""
        return [f"{getattr(ns, '__name__', ns)}.{k}" for ns, saved in self._saved for k, v in saved.items()
                if vars(ns).get(k, _MISSING) is not v]

    def restore(self) -> None:
        for ns, saved in self._saved:
            current = vars(ns)
            for k, v in saved.items():
                if current.get(k, _MISSING) is not v:
                    setattr(ns, k, v)


_MISSING = object()
LANGUAGE_GUARD = _LanguageGuard()


def _first_tensor_device(args, kwargs):
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            return a.device.type
    return "cpu"


def _dispatching(module_name: str, attr: str, gpu_launcher: Callable) -> Callable:
    """The registered launcher: `gpu_launcher` for CUDA tensors, else the same attribute of the
    module's interpreted copy."""
    @functools.wraps(gpu_launcher)
    def launch(*args, **kwargs):
        if _first_tensor_device(args, kwargs) == "cuda":
            return gpu_launcher(*args, **kwargs)
        try:
            return getattr(_import_interpreted(module_name), attr)(*args, **kwargs)
        finally:
            LANGUAGE_GUARD.restore()

    return launch


def triton_kernel(slot):
    """Decorator: register the launcher as the triton backend's implementation of `slot` (a slot of
    fastcnn/contracts/kernels.py), for both devices; returns it unchanged. Also callable on a
    launcher a module imported (`triton_kernel(kernels.im2col)(im2col)`): the interpreted copy is
    found by the name the launcher has in the registering module."""
    # The registering module (the caller) names the interpreted copy to use for CPU tensors; a
    # launcher's own __module__ may be a private helper module, which has no copy of its own.
    module_name = sys._getframe(1).f_globals["__name__"]
    register = BACKEND.kernel(slot)  # a TypeError here for anything but a slot

    def deco(fn: Callable) -> Callable:
        if not module_name.endswith(_INTERP_SUFFIX):  # the interpreted copy registers nothing
            register(_dispatching(module_name, fn.__name__, fn))
        return fn

    return deco
