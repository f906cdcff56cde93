"""Functional API mirroring torch.nn.functional; every op takes an extra keyword `backend=`
('cpu', 'triton', 'cuda', 'reference'; default from the tensor's device, env FASTCNN_BACKEND)."""
import importlib as _importlib
import pkgutil as _pkgutil

__all__ = []
# Each family module lists its public ops in __all__; they are re-exported here.
for _m in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _m.name.startswith("_"):
        _mod = _importlib.import_module(f"{__name__}.{_m.name}")
        for _name in getattr(_mod, "__all__", []):
            globals()[_name] = getattr(_mod, _name)
            __all__.append(_name)
