"""cuda backend: CUDA C++ kernels in fastcnn/kernels/cuda/*.cu, compiled at first use with NVRTC
through cupy and launched on torch's current stream; modules register with `@cuda_kernel(kernels.<slot>)`
(_lib.py: BACKEND.kernel)."""
import torch

from ..._registry import declare_backend


def _probe():
    if not torch.cuda.is_available():
        return False, "no CUDA GPU visible to torch (torch.cuda.is_available() is False)"
    try:
        import cupy
    except ImportError as e:
        return False, f"cupy is not installed ({e}); `pip install cupy-cuda12x` (NVRTC compiles fastcnn/kernels/cuda/*.cu)"
    return True, f"CUDA C++ kernels via cupy {cupy.__version__} / NVRTC"


BACKEND = declare_backend("cuda", probe=_probe, devices={"cuda"}, package=__name__, rank=2)
