"""fastcnn: hand-written CPU (C++/AVX-512), Triton and CUDA kernels for convolutional networks,
as PyTorch autograd ops (fastcnn.ops) and torch.nn-compatible modules (fastcnn.nn)."""
import os
import sys

import torch  # noqa: F401  (loads torch's OpenMP runtime before the extension, so both share it)

# Without a GPU, Triton kernels run under the Triton interpreter. Whether a @triton.jit function
# (Triton's own tl.sum etc. included) is interpreted is fixed when it is decorated, so the switch
# must be on before triton is first imported; users need not set it themselves.
if "triton" not in sys.modules and "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

from . import ops, nn  # noqa: E402
from ._registry import available_backends  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ops", "nn", "available_backends", "empty_cache"]


def empty_cache() -> None:
    """Give the free output buffers that fastcnn keeps for reuse back to the OS (the cpu ops' output
    pool, csrc/torchops/output_pool.h). FASTCNN_OUTPUT_CACHE_MB caps what it keeps (default 1024; 0
    turns it off)."""
    from .ops._eager import release_output_pool
    release_output_pool()
