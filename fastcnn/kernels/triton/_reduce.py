"""@triton.jit reductions for the norm/softmax/loss kernels.

triton.language's own tl.sum / tl.max / tl.zeros are @jit functions compiled for the GPU when
triton is imported; under the per-module interpreter copy (fastcnn/backends/triton/kernels.py) they
cannot be called. These helpers use only builtins (tl.reduce, tl.full) with combine functions defined
here, so they work in both copies."""
import triton
import triton.language as tl


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _max(a, b):
    return tl.maximum(a, b)


@triton.jit
def block_sum(x, axis: tl.constexpr):
    return tl.reduce(x, axis, _add)


@triton.jit
def block_max(x, axis: tl.constexpr):
    return tl.reduce(x, axis, _max)
