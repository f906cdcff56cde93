"""fastcnn: hand-written CPU (C++/AVX-512), Triton and CUDA kernels for convolutional networks,
as PyTorch autograd ops (fastcnn.ops) and torch.nn-compatible modules (fastcnn.nn)."""
import torch  # noqa: F401  (loads torch's OpenMP runtime before the extension, so both share it)

from . import ops, nn  # noqa: E402
from ._registry import available_backends  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ops", "nn", "available_backends"]
