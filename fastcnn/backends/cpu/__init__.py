"""cpu backend: the C++ extension fastcnn._C (csrc/). One module per kernel family; each registers its
kernels with `@cpu_kernel(kernels.<slot>)` (_lib.py: BACKEND.kernel, following torch's thread count)."""
from ..._registry import declare_backend


def _probe():
    try:
        from fastcnn import _C
    except ImportError as e:  # pragma: no cover - only without a built extension
        return False, f"the C++ extension fastcnn._C is not built ({e}); run `pip install -e .`"
    return True, f"C++ extension, ISA {_C.isa()}, OpenMP"


BACKEND = declare_backend("cpu", probe=_probe, devices={"cpu"}, package=__name__, rank=0)
