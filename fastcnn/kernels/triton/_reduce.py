"""@triton.jit reductions for the norm/softmax/loss kernels.

triton.language's own tl.sum / tl.max / tl.zeros are @jit functions compiled for the GPU when
triton is imported; under the per-module interpreter copy (fastcnn/backends/triton/_lib.py) they
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


@triton.jit
def reduction_program(D, inner, BLOCK_I: tl.constexpr):
    """Program (o, j) of a grid (outer, cdiv(inner, BLOCK_I)) over a tensor [outer, D, inner] reduced
    along D: (o, the offset o * D * inner of its slice, its BLOCK_I columns, which are in range)."""
    o = tl.program_id(0).to(tl.int64)
    i = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    return o, o * D * inner, i, i < inner


@triton.jit
def online_logsumexp(x_ptr, base, D, inner, i, imask, ACC: tl.constexpr, BLOCK_D: tl.constexpr):
    """One pass over d < D of x[base + d * inner + i] (i: a [BLOCK_I] vector of columns): the
    running max m and s = sum exp(x - m), rescaled as m grows. Returns (m_safe, s) with m_safe = m
    where finite, else 0 (all-padding columns), so exp(x - m_safe) stays finite."""
    m = tl.full(i.shape, float("-inf"), dtype=ACC)
    s = tl.full(i.shape, 0.0, dtype=ACC)
    for d0 in range(0, D, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        mask = (d < D)[:, None] & imask[None, :]
        x = tl.load(x_ptr + base + d[:, None] * inner + i[None, :], mask=mask, other=float("-inf")).to(ACC)
        m_new = tl.maximum(m, block_max(x, 0))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # padded lanes: keep exp finite
        s = s * tl.exp(m - m_safe) + block_sum(tl.exp(x - m_safe[None, :]), 0)
        m = m_new
    return tl.where(m == float("-inf"), 0.0, m), s
