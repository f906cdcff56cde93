"""triton backend: kernels in fastcnn/kernels/triton/, registered by kernels.py (BACKEND.kernel)."""
import torch

from ..._registry import declare_backend


def _probe():
    try:
        import triton
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


BACKEND = declare_backend("triton", probe=_probe, devices={"cpu", "cuda"}, package=__name__, rank=1)
