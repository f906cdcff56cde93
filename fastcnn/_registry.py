"""The one registry of backends and kernels, and the one function that picks a backend.

Kernel backends ('cpu', 'triton', 'cuda') register *kernels*: plain functions on tensors with the
same name and signature on every backend (documented where the op that calls them lives, in
fastcnn/ops/). The 'reference' backend registers nothing: public ops route it to plain torch.

Each backend's kernel modules are imported lazily, the first time a kernel of that backend is asked
for, so `import fastcnn` stays cheap and a missing triton or cupy only disables its backend.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch

KERNEL_BACKENDS = ("cpu", "triton", "cuda")
ALL_BACKENDS = KERNEL_BACKENDS + ("reference",)

_KERNELS: Dict[Tuple[str, str], Callable] = {}
# Set by fastcnn.ops._library: (backend, name) -> the kernel as a torch.library custom op, used while
# torch.compile / torch.export trace a graph (a kernel that reads data pointers cannot take fake tensors).
_traced_kernel: Optional[Callable[[str, str], Callable]] = None


def register(backend: str, name: Optional[str] = None):
    """Decorator: register `fn` as kernel `name` (default: the function's name) of `backend`."""
    if backend not in KERNEL_BACKENDS:
        raise ValueError(f"backend: expected one of {KERNEL_BACKENDS}, got {backend!r}")

    def deco(fn):
        _KERNELS[(backend, name or fn.__name__)] = fn
        return fn

    return deco


@dataclass
class _Backend:
    name: str
    package: Optional[str]  # package whose modules register this backend's kernels
    probe: Callable[[], Tuple[bool, str]]
    loaded: bool = False
    load_error: Optional[str] = field(default=None)
    usable: bool = False  # a probe has succeeded: what it checks cannot become false in this process

    def ready(self) -> Tuple[bool, str]:
        """probe(), asked again only until it first succeeds (it sits on every op's call path)."""
        if self.usable:
            return True, ""
        ok, why = self.probe()
        self.usable = ok
        return ok, why


def _probe_cpu():
    try:
        from fastcnn import _C  # noqa: F401
    except ImportError as e:  # pragma: no cover - only without a built extension
        return False, f"the C++ extension fastcnn._C is not built ({e}); run `pip install -e .`"
    return True, f"C++ extension, ISA {_C.isa()}, OpenMP"


def _probe_triton():
    try:
        import triton  # noqa: F401
    except ImportError as e:
        return False, f"triton is not installed ({e}); `pip install triton`"
    from triton import knobs

    if torch.cuda.is_available():
        return True, (f"triton {triton.__version__}, compiled for the GPU (CPU tensors need TRITON_INTERPRET=1 "
                      "set before triton is imported)")
    if not knobs.runtime.interpret:
        return False, ("triton was imported before fastcnn without TRITON_INTERPRET=1 and there is no GPU; "
                       "import fastcnn first or set TRITON_INTERPRET=1")
    return True, f"triton {triton.__version__}, CPU tensors run under the Triton interpreter (slow, for validation)"


def _probe_cuda():
    if not torch.cuda.is_available():
        return False, "no CUDA GPU visible to torch (torch.cuda.is_available() is False)"
    try:
        import cupy  # noqa: F401
    except ImportError as e:
        return False, f"cupy is not installed ({e}); `pip install cupy-cuda12x` (NVRTC compiles fastcnn/kernels/cuda/*.cu)"
    return True, f"CUDA C++ kernels via cupy {cupy.__version__} / NVRTC"


_BACKENDS: Dict[str, _Backend] = {
    "cpu": _Backend("cpu", "fastcnn.backends.cpu", _probe_cpu),
    "triton": _Backend("triton", "fastcnn.backends.triton", _probe_triton),
    "cuda": _Backend("cuda", "fastcnn.backends.cuda", _probe_cuda),
    "reference": _Backend("reference", None, lambda: (True, "plain torch ops (ground truth)")),
}

# Which tensor devices each backend can take. The reference backend is plain torch, so it also takes meta
# tensors (shapes without data: a zoo network's torch twin on the meta device uses fastcnn's reference
# ops for what torch lacks, e.g. Step, Maxout).
_DEVICES = {"cpu": {"cpu"}, "triton": {"cpu", "cuda"}, "cuda": {"cuda"}, "reference": {"cpu", "cuda", "meta"}}


def available_backends() -> Dict[str, Dict[str, object]]:
    """Every backend with whether it is usable here and why (or why not)."""
    out = {}
    for name, b in _BACKENDS.items():
        ok, why = b.probe()
        out[name] = {"available": ok, "reason": why, "devices": sorted(_DEVICES[name])}
    return out


def _load(b: _Backend) -> None:
    if b.loaded or b.package is None:
        return
    ok, why = b.probe()
    if not ok:
        raise RuntimeError(f"fastcnn: backend '{b.name}' is not available here: {why}")
    pkg = importlib.import_module(b.package)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{b.package}.{mod.name}")
    b.loaded = True


def kernel(backend: str, name: str) -> Callable:
    """The kernel `name` of `backend`; NotImplementedError naming what exists instead. While
    torch.compile / torch.export trace, the kernel's custom op (fastcnn/ops/_library.py)."""
    if torch.compiler.is_compiling() and _traced_kernel is not None:
        _load(_BACKENDS[backend])
        return _traced_kernel(backend, name)
    fn = _KERNELS.get((backend, name))  # registered means its backend has loaded: no probe needed
    return fn if fn is not None else _lookup(backend, name)


def _lookup(backend: str, name: str) -> Callable:
    _load(_BACKENDS[backend])
    fn = _KERNELS.get((backend, name))
    if fn is None:
        others = []
        for other in KERNEL_BACKENDS:
            if other == backend:
                continue
            try:
                _load(_BACKENDS[other])
            except RuntimeError:
                continue
            if (other, name) in _KERNELS:
                others.append(other)
        hint = f"use backend={others[0]!r} or 'reference'" if others else "use backend='reference'"
        raise NotImplementedError(f"fastcnn: '{name}' has no kernel on backend '{backend}'; {hint}")
    return fn


def has_kernel(backend: str, name: str) -> bool:
    try:
        _load(_BACKENDS[backend])
    except RuntimeError:
        return False
    return (backend, name) in _KERNELS


# os.environ.get costs ~0.7 us (key encoding, Mapping.get); the backing dict answers the same in 0.04 us,
# and every op asks it. os.environ keeps _data current on every assignment.
_ENV_DATA = getattr(os.environ, "_data", None)
_ENV_KEY = os.environ.encodekey("FASTCNN_BACKEND") if _ENV_DATA is not None else None


def env_value(name: str) -> Optional[str]:
    """os.environ.get(name), as set now, at a twentieth of its cost (for per-call flags)."""
    if _ENV_DATA is None:  # pragma: no cover - a Python whose os.environ lacks the backing dict
        return os.environ.get(name)
    key = _ENV_KEYS.get(name)
    if key is None:
        key = _ENV_KEYS[name] = os.environ.encodekey(name)
    value = _ENV_DATA.get(key)
    return None if value is None else os.environ.decodevalue(value)


_ENV_KEYS: Dict[str, object] = {}


def env_backend() -> Optional[str]:
    """FASTCNN_BACKEND as set now (None when unset or empty)."""
    return env_value("FASTCNN_BACKEND") or None


def resolve_backend(backend: Optional[str], tensors: Iterable[torch.Tensor]) -> str:
    """Backend for a call: the `backend=` argument, else env FASTCNN_BACKEND, else by device
    (CPU tensors -> 'cpu'; CUDA tensors -> 'cuda' if usable, else 'triton')."""
    if (backend == "cpu" or backend is None and _ENV_DATA is not None and _ENV_KEY not in _ENV_DATA) \
            and _BACKENDS["cpu"].usable:
        for t in tensors:
            if not t.is_cpu:
                break
        else:
            return "cpu"  # the common case, decided without building device objects
    placed = {t.device for t in tensors if isinstance(t, torch.Tensor)}
    if len(placed) > 1:
        raise ValueError(f"tensors are on different devices: {sorted(str(d) for d in placed)}")
    device = placed.pop().type if placed else "cpu"
    chosen = backend if backend is not None else env_backend()
    if chosen is None:
        if device == "cuda":
            chosen = "cuda" if _BACKENDS["cuda"].ready()[0] else "triton"
        else:
            chosen = "cpu"
    if chosen not in _BACKENDS:
        raise ValueError(f"backend: expected one of {ALL_BACKENDS}, got {chosen!r}")
    if device not in _DEVICES[chosen]:
        raise ValueError(f"backend: '{chosen}' cannot run on {device} tensors (it takes {sorted(_DEVICES[chosen])})")
    ok, why = _BACKENDS[chosen].ready()
    if not ok:
        raise RuntimeError(f"fastcnn: backend '{chosen}' is not available here: {why}")
    return chosen
