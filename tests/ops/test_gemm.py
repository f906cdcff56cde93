"""The gemm kernel: odd sizes, transposes, alpha/beta, float64, every ISA copy, every backend that
registers it; against a float64 torch reference."""
import pytest
import torch

from fastcnn.contracts import kernels
from helpers import CPU_BACKENDS, assert_close, isa  # noqa: F401  (isa is a fixture)

SIZES = [(1, 1, 1), (1, 7, 3), (5, 1, 9), (3, 5, 7), (6, 16, 8), (14, 32, 2), (15, 33, 17), (29, 31, 400),
         (97, 65, 130), (130, 70, 777)]
DTYPES = [torch.float32, torch.float64]


def _operands(M, N, K, trans_a, trans_b, dtype):
    a = torch.randn((K, M) if trans_a else (M, K), dtype=dtype)
    b = torch.randn((N, K) if trans_b else (K, N), dtype=dtype)
    return a, b


def _reference(a, b, trans_a, trans_b, alpha=1.0, beta=0.0, c=None):
    a64, b64 = a.double(), b.double()
    ref = alpha * ((a64.t() if trans_a else a64) @ (b64.t() if trans_b else b64))
    return ref if c is None else ref + beta * c.double()


@pytest.mark.parametrize("M,N,K", SIZES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_cpu_every_isa(isa, M, N, K, trans_a, trans_b, dtype):  # noqa: F811
    a, b = _operands(M, N, K, trans_a, trans_b, dtype)
    out = kernels.gemm["cpu"](a, b, trans_a=trans_a, trans_b=trans_b)
    assert out.dtype == dtype
    assert_close(out, _reference(a, b, trans_a, trans_b), reduction=K)


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, -2.0), (-1.5, 0.25), (0.0, 3.0), (2.0, 0.0)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_cpu_alpha_beta(isa, alpha, beta, dtype):  # noqa: F811
    M, N, K = 37, 45, 419  # K spans two KC blocks: beta applies on the first only
    a, b = _operands(M, N, K, False, True, dtype)
    c = torch.randn(M, N, dtype=dtype)
    expected = _reference(a, b, False, True, alpha, beta, c)
    out = c.clone()
    got = kernels.gemm["cpu"](a, b, trans_b=True, alpha=alpha, beta=beta, out=out)
    assert got is out
    assert_close(out, expected, reduction=K + 1)


def test_gemm_cpu_beta_zero_never_reads_out(isa):  # noqa: F811
    a, b = _operands(20, 18, 11, False, False, torch.float32)
    out = torch.full((20, 18), float("nan"))
    kernels.gemm["cpu"](a, b, beta=0.0, out=out)
    assert_close(out, _reference(a, b, False, False), reduction=11)


def test_gemm_cpu_empty_k_scales_out():
    a, b = torch.randn(4, 0), torch.randn(0, 6)
    out = torch.ones(4, 6)
    kernels.gemm["cpu"](a, b, beta=3.0, out=out)
    assert torch.equal(out, torch.full((4, 6), 3.0))


def test_gemm_cpu_views_and_strided_out():
    """Transposed views are read in place; an out with a row stride wider than N is honoured."""
    base_a, base_b = torch.randn(40, 30), torch.randn(25, 40)
    a_t, b_t = base_a.t(), base_b.t()  # non-contiguous views: 30x40 and 40x25
    wide = torch.zeros(30, 32)
    out = wide[:, :25]
    kernels.gemm["cpu"](a_t, b_t, out=out)
    assert_close(out, a_t.double() @ b_t.double(), reduction=40)
    assert torch.equal(wide[:, 25:], torch.zeros(30, 7))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_gemm_cpu_thread_splits(threads):
    """Row-strip split (tall C) and column-strip split (wide C) under several thread counts."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for M, N in [(2000, 9), (9, 2000), (333, 333)]:  # big enough for 2-3 strips
            a, b = _operands(M, N, 300, False, False, torch.float32)
            assert_close(kernels.gemm["cpu"](a, b), _reference(a, b, False, False), reduction=300)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("M", [50, 400])  # 50 rows split C by column panels, 400 by row strips
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_cpu_threads_several_blocks(M, threads, dtype):
    """Several threads over several NC and KC blocks (the last KC block thinner), so the shared
    packed B block is refilled while other threads may still use it (and beta applies only on
    the first KC block)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        N, K = 3100, 1001
        a, b = _operands(M, N, K, False, True, dtype)
        c = torch.randn(M, N, dtype=dtype)
        out = c.clone()
        kernels.gemm["cpu"](a, b, trans_b=True, alpha=0.5, beta=-1.0, out=out)
        assert_close(out, _reference(a, b, False, True, 0.5, -1.0, c), reduction=K + 1)
    finally:
        torch.set_num_threads(previous)


# The small-M and small-K paths (csrc/kernels/gemm.cpp Plan): B read in place for C of few rows
# (M <= 3 tiles), 8 + 8 row tiles for M = 15, 16 on AVX-512, the column split on two threads, private
# B blocks for K <= 32 (row split without a barrier), the N = 1 path with a transposed A (bias
# gradients); M around the tile heights, N and K odd and around a 32-column panel and K = 32.
SMALL_M = [(1, 33, 17), (2, 289, 16), (15, 31, 289), (16, 289, 289), (16, 64, 8), (17, 65, 7), (18, 97, 33),
           (16, 1, 16), (289, 1, 16), (47, 1, 401), (289, 47, 16), (289, 289, 16), (101, 301, 32),
           (101, 301, 33)]


@pytest.mark.parametrize("M,N,K", SMALL_M)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_gemm_cpu_small_m(isa, M, N, K, trans_a, trans_b, dtype, threads):  # noqa: F811
    a, b = _operands(M, N, K, trans_a, trans_b, dtype)
    c = torch.randn(M, N, dtype=dtype)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = c.clone()
        kernels.gemm["cpu"](a, b, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=-1.5, out=out)
        plain = kernels.gemm["cpu"](a, b, trans_a=trans_a, trans_b=trans_b)
    finally:
        torch.set_num_threads(previous)
    assert_close(out, _reference(a, b, trans_a, trans_b, 0.5, -1.5, c), reduction=K + 1)
    assert_close(plain, _reference(a, b, trans_a, trans_b), reduction=K)


@pytest.mark.parametrize("M,N,K", [(16, 289, 289), (3, 100, 64), (289, 1, 16), (289, 289, 16), (101, 301, 31)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_cpu_small_m_same_bits_on_any_threads(M, N, K, dtype):
    """Splitting C's columns (or rows, with private B blocks) between threads leaves every
    element's sum as it was."""
    a, b = _operands(M, N, K, M > N, False, dtype)
    previous = torch.get_num_threads()
    try:
        got = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            got.append(kernels.gemm["cpu"](a, b, trans_a=M > N))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(got[0], got[1]) and torch.equal(got[0], got[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_cpu_small_m_strided_operands(isa, dtype):  # noqa: F811
    """B read in place honours a row stride wider than N (and not a multiple of the panel); the
    N = 1 path honours strided b and out."""
    a = torch.randn(16, 70, dtype=dtype)
    b = torch.randn(70, 301, dtype=dtype)[:, 3:292]  # 289 columns, row stride 301
    wide = torch.zeros(16, 300, dtype=dtype)
    kernels.gemm["cpu"](a, b, out=wide[:, :289])
    assert_close(wide[:, :289], a.double() @ b.double(), reduction=70)
    assert torch.equal(wide[:, 289:], torch.zeros(16, 11, dtype=dtype))
    g = torch.randn(70, 37, dtype=dtype)  # op(A) = g^T, 37 x 70
    v = torch.randn(70, 5, dtype=dtype)[:, 2:3]  # a column with row stride 5
    col = torch.zeros(37, 4, dtype=dtype)
    kernels.gemm["cpu"](g, v, trans_a=True, out=col[:, 1:2])
    assert_close(col[:, 1:2], g.double().t() @ v.double(), reduction=70)
    assert torch.equal(col[:, [0, 2, 3]], torch.zeros(37, 3, dtype=dtype))


OTHER_BACKENDS = [b for b in CPU_BACKENDS if b != "cpu"]


@pytest.mark.parametrize("backend", OTHER_BACKENDS or [pytest.param("triton", marks=pytest.mark.skip(
    reason="no other backend is available here"))])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_other_backends(backend, trans_a, trans_b, dtype):
    if not kernels.gemm.offered_by(backend):
        pytest.skip(f"backend '{backend}' registers no gemm kernel")
    M, N, K = 9, 13, 7
    a, b = _operands(M, N, K, trans_a, trans_b, dtype)
    c = torch.randn(M, N, dtype=dtype)
    out = c.clone()
    kernels.gemm[backend](a, b, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=2.0, out=out)
    assert_close(out, _reference(a, b, trans_a, trans_b, 0.5, 2.0, c), reduction=K + 1)
