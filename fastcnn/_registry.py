"""The one registry of backends and kernels, and the one function that picks a backend.

A kernel backend is a package fastcnn/backends/<name>/ whose __init__.py declares it with
`declare_backend(name, probe=..., devices=..., rank=...)` (cheap: nothing heavy is imported there);
the registry finds every such package when fastcnn is imported, so adding a backend is adding a
folder. The backend's other modules register *kernels* with one decorator, `@BACKEND.kernel(slot)`
(spelt `@cpu_kernel` / `@cuda_kernel` / `@triton_kernel`, the same decorator with the backend
bound; triton's also picks the GPU or interpreted copy of its module per call), where `slot` is a
KernelSlot of the kernel table fastcnn/contracts/kernels.py: every kernel a backend may provide,
declared once with its signature. Ops call `slot[backend]` (e.g. `kernels.gemm[backend](a, b)`), so a
reader or a static tool follows an op to the slot and from the slot to every registration. The
'reference' backend registers nothing: public ops route it to plain torch.

Each backend's kernel modules are imported lazily, the first time a kernel of that backend is asked
for, so `import fastcnn` stays cheap and a missing triton or cupy only disables its backend.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Iterable, Optional, Tuple

import torch

# (backend, kernel name) -> its slot, for every registration: what the custom-op layer and the tests
# enumerate. The functions themselves live in their slot (KernelSlot.impls), where ops look them up.
_REGISTERED: Dict[Tuple[str, str], "KernelSlot"] = {}
# Set by fastcnn.ops._library: (backend, name) -> the kernel as a torch.library custom op, used while
# torch.compile / torch.export trace a graph (a kernel that reads data pointers cannot take fake tensors).
_traced_kernel: Optional[Callable[[str, str], Callable]] = None


class KernelSlot:
    """One kernel of the kernel table (fastcnn/contracts/kernels.py): its name, its signature, and
    the function each backend registered for it (`impls`, filled by Backend.kernel).

    `slot[backend]` is that function (the backend's modules are imported on first use;
    NotImplementedError naming the backends that have it instead; while torch.compile /
    torch.export trace, the kernel's custom op from fastcnn/ops/_library.py). It sits on every op's
    call path, so the hit is one dict get after the tracing check. `slot.offered_by(backend)`: does
    that backend provide it (loading the backend if needed)."""

    __slots__ = ("name", "signature", "impls")

    def __init__(self, name: str, signature: str):
        self.name = name
        self.signature = signature
        self.impls: Dict[str, Callable] = {}

    def __getitem__(self, backend: str) -> Callable:
        if torch.compiler.is_compiling() and _traced_kernel is not None:
            _load(_BACKENDS[backend])
            return _traced_kernel(backend, self.name)
        fn = self.impls.get(backend)  # registered means its backend has loaded: no probe needed
        return fn if fn is not None else _lookup(self, backend)

    def offered_by(self, backend: str) -> bool:
        try:
            _load(_BACKENDS[backend])
        except RuntimeError:
            return False
        return backend in self.impls

    def __repr__(self) -> str:
        return f"KernelSlot({self.name!r}: {self.signature})"


@dataclass
class Backend:
    name: str
    probe: Callable[[], Tuple[bool, str]]
    devices: FrozenSet[str]  # tensor device types it takes
    package: Optional[str]  # package whose modules register this backend's kernels
    rank: int = 0  # place in listings (and in the tests' parametrisation)
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

    def kernel(self, slot: KernelSlot, wrap: Optional[Callable[[Callable], Callable]] = None):
        """Decorator: register `fn` (through `wrap`, if given) as this backend's implementation of
        `slot` (a KernelSlot of fastcnn/contracts/kernels.py); returns what it registered."""
        if not isinstance(slot, KernelSlot):
            raise TypeError(f"{self.name} kernel registration: expected a KernelSlot of fastcnn/contracts/kernels.py "
                            f"(e.g. @{self.name}_kernel(kernels.gemm)), got {type(slot).__name__} {slot!r}")

        def deco(fn):
            registered = wrap(fn) if wrap is not None else fn
            slot.impls[self.name] = registered
            _REGISTERED[(self.name, slot.name)] = slot
            return registered

        return deco


_BACKENDS: Dict[str, Backend] = {}


def declare_backend(name: str, *, probe, devices, package: Optional[str] = None, rank: int = 0) -> Backend:
    """A backend's declaration, called by its package's __init__.py (see the module docstring)."""
    backend = _BACKENDS.get(name)
    if backend is None:
        backend = _BACKENDS[name] = Backend(name, probe, frozenset(devices), package, rank)
    return backend


def _discover() -> None:
    import fastcnn.backends as backends

    for mod in pkgutil.iter_modules(backends.__path__):
        if mod.ispkg and not mod.name.startswith("_"):
            importlib.import_module(f"{backends.__name__}.{mod.name}")
    # The reference backend is plain torch, so it also takes meta tensors (shapes without data: a zoo
    # network's torch twin on the meta device uses fastcnn's reference ops for what torch lacks).
    declare_backend("reference", probe=lambda: (True, "plain torch ops (ground truth)"),
                    devices={"cpu", "cuda", "meta"}, rank=1000)
    ordered = sorted(_BACKENDS.values(), key=lambda b: (b.rank, b.name))
    _BACKENDS.clear()
    _BACKENDS.update((b.name, b) for b in ordered)


_discover()
KERNEL_BACKENDS = tuple(name for name, b in _BACKENDS.items() if b.package is not None)
ALL_BACKENDS = tuple(_BACKENDS)


def available_backends() -> Dict[str, Dict[str, object]]:
    """Every backend with whether it is usable here and why (or why not)."""
    out = {}
    for name, b in _BACKENDS.items():
        ok, why = b.probe()
        out[name] = {"available": ok, "reason": why, "devices": sorted(b.devices),
                     "kernels": b.package is not None}
    return out


def _load(b: Backend) -> None:
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


def _lookup(slot: KernelSlot, backend: str) -> Callable:
    """slot[backend] outside a trace, loading the backend first (the custom ops' real implementation)."""
    _load(_BACKENDS[backend])
    fn = slot.impls.get(backend)
    if fn is None:
        others = []
        for other in KERNEL_BACKENDS:
            if other == backend:
                continue
            try:
                _load(_BACKENDS[other])
            except RuntimeError:
                continue
            if other in slot.impls:
                others.append(other)
        hint = f"use backend={others[0]!r} or 'reference'" if others else "use backend='reference'"
        raise NotImplementedError(f"fastcnn: '{slot.name}' has no kernel on backend '{backend}'; {hint}")
    return fn


def registered(backend: Optional[str] = None) -> Dict[str, KernelSlot]:
    """Kernel name -> slot of every kernel `backend` (default: any backend) registered so far."""
    return {name: slot for (b, name), slot in _REGISTERED.items() if backend is None or b == backend}


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


def cpu_by_default() -> bool:
    """Whether a call without `backend=` on CPU tensors runs on the cpu backend: FASTCNN_BACKEND is
    unset, empty or 'cpu' (asked per call on public ops' repeat path, so the usual answer is one
    dict lookup)."""
    if _ENV_DATA is not None and _ENV_KEY not in _ENV_DATA:
        return True
    return env_backend() in (None, "cpu")


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
    devices = _BACKENDS[chosen].devices
    if device not in devices:
        raise ValueError(f"backend: '{chosen}' cannot run on {device} tensors (it takes {sorted(devices)})")
    ok, why = _BACKENDS[chosen].ready()
    if not ok:
        raise RuntimeError(f"fastcnn: backend '{chosen}' is not available here: {why}")
    return chosen
