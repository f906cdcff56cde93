"""The eager op layer: fastcnn ops registered with torch's dispatcher by the C++ extension
(csrc/torchops/, namespace `fastcnn_eager`), each a C++ op with its own autograd Node on the cpu backend's
kernel tables. A public op's cpu body calls one instead of its Python autograd.Function where the
configuration allows (see each op); the result is the same kernels, without the Python frames of the
Function, its kernel wrapper and its Python backward node (most of a small layer's time).

    _ACT = EagerOp("activation")
    ...
    act = runnable(_ACT) if backend == "cpu" else None
    if act is not None:
        return act(x, code, p0, p1, from_output)

Outputs from 2 MiB up come from a pool of blocks that dead outputs hand back
(csrc/torchops/output_pool.h), shared with the Python kernel path (backends/cpu/_lib.py empty()):
glibc would return those to the OS and the next step page-faults them in again. Calls under
functorch transforms or while torch.compile traces do not take the eager ops (`runnable`; the C++
Functions read data pointers): the Python Functions handle those as before.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Optional

import torch

_ALL: list = []  # every EagerOp, for python_path()


class EagerOp:
    """fastcnn_eager::<name>, looked up on first use (by then the cpu backend has loaded fastcnn._C,
    whose loading registers the ops; `import fastcnn` itself stays free of it)."""

    __slots__ = ("name", "_fn", "_resolved")

    def __init__(self, name: str):
        self.name = name
        self._fn: Optional[Callable] = None
        self._resolved = False
        _ALL.append(self)

    def get(self) -> Optional[Callable]:
        """The op's dispatcher entry, or None when the extension lacks it (not built, or built
        without torch; FASTCNN_EAGER=0 turns the layer off). The default overload is called as the
        builtin behind it: the OpOverload's Python __call__ frame costs ~1 us per call."""
        if not self._resolved:
            self._fn = _lookup(self.name)
            self._resolved = True
        return self._fn


def _lookup(name: str) -> Optional[Callable]:
    import os

    if os.environ.get("FASTCNN_EAGER", "1") == "0":
        return None
    return builtin_op(name)


def builtin_op(name: str) -> Optional[Callable]:
    """fastcnn_eager::<name>'s default overload as the builtin behind it, or None when the extension
    lacks it (not built, or built without torch), whatever FASTCNN_EAGER says."""
    try:
        from fastcnn import _C  # noqa: F401 - loading the extension registers the ops
    except ImportError:
        return None
    if not hasattr(torch.ops.fastcnn_eager, name):
        return None
    overload = getattr(torch.ops.fastcnn_eager, name).default
    return getattr(overload, "_op", overload)


def release_output_pool() -> int:
    """Free every block of the cpu ops' output pool (csrc/torchops/output_pool.h); the bytes freed
    (0 in an extension built without it). Not an EagerOp: FASTCNN_EAGER=0 and python_path() leave
    the pool to the Python kernel path, which must still be able to release it."""
    fn = builtin_op("output_pool_release")
    return int(fn()) if fn is not None else 0


@contextlib.contextmanager
def python_path():
    """Within it, every op runs its Python autograd.Function as before the eager layer existed (what
    the tests compare the eager ops against)."""
    from ._op import forget_plans  # (public ops' lean plans call the eager ops directly)

    saved = [(op, op._fn, op._resolved) for op in _ALL]
    for op in _ALL:
        op._fn, op._resolved = None, True
    forget_plans()
    try:
        yield
    finally:
        for op, fn, resolved in saved:
            op._fn, op._resolved = fn, resolved
        forget_plans()


_functorch_active = torch._C._are_functorch_transforms_active
_is_compiling = torch.compiler.is_compiling


def runnable(op: EagerOp) -> Optional[Callable]:
    """op's entry if this call may take it, else None (functorch transforms, a graph being traced)."""
    if _functorch_active() or _is_compiling():  # first: a trace must not resolve op (a guard on op._resolved)
        return None
    return op.get()
