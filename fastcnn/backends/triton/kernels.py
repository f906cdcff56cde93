"""Imports every kernel module of fastcnn/kernels/triton/ (the private `_*` helper modules come with
them), whose `@triton_kernel(kernels.<slot>)` decorators (_lib.py) register the launchers. The registry
imports this module the first time a triton kernel is asked for, so triton's kernels stay out of
`import fastcnn`."""
import importlib
import pkgutil

import fastcnn.kernels.triton as _pkg

for _mod in pkgutil.iter_modules(_pkg.__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{_pkg.__name__}.{_mod.name}")
