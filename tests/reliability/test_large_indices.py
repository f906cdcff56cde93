"""64-bit index math in the cpu kernels: tensors of more than 2^31 elements (float32, 8.6 GB, one at a
time), or small views that start beyond element 2^31 of a large storage. A 32-bit index would wrap
and read or write the wrong place; each test compares the far end of the result with torch on a slice
that holds the same data. All `slow` (each allocates ~9-11 GB) and skipped when the memory is not
there. Run: pytest -m slow tests/reliability/test_large_indices.py"""
from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F

from fastcnn import ops
from helpers import CPU_BACKENDS, assert_close

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif("cpu" not in CPU_BACKENDS, reason="the cpu backend is not built here")]

BIG = 2 ** 31
# A [1, 1, H, W] float32 image of 2,147,812,... elements (8.6 GB) whose last rows lie wholly beyond
# element 2^31: row 46344 starts at 2,147,627,... (pooling by 4 and convolving by 3 reach it).
H, W = 46348, 46341


def _available_gb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2 ** 20
    return 0.0


def _need(gb: float):
    gc.collect()
    if _available_gb() < gb * 1.15:
        pytest.skip(f"needs about {gb:.0f} GB of free memory, {_available_gb():.1f} GB available")


def _tail_image(rows: int, seed: int = 0) -> torch.Tensor:
    """[1, 1, H, W] float32 zeros whose last `rows` rows hold random values."""
    x = torch.zeros(1, 1, H, W)
    x[..., H - rows:, :] = torch.randn(rows, W, generator=torch.Generator().manual_seed(seed))
    return x


def test_elementwise_in_place_beyond_2_31():
    _need(9)
    n = BIG + 4099
    x = torch.empty(n)
    x[: n - 6000].fill_(-1.0)
    tail = torch.randn(6000, generator=torch.Generator().manual_seed(1))
    x[n - 6000:] = tail
    ops.relu_(x, backend="cpu")
    assert torch.equal(x[n - 6000:], tail.relu())
    assert bool((x[:: 2 ** 27] == 0).all()) and float(x[BIG - 1]) == 0.0
    del x


def test_max_pool_indices_beyond_2_31():
    _need(11)
    x = _tail_image(28)
    y, idx = ops.max_pool2d(x, 4, stride=4, return_indices=True, backend="cpu")
    first = H - 28  # 46320: output rows 11580..11586 read input rows 46320..46347
    ref, ref_idx = F.max_pool2d(x[..., first:, :], 4, stride=4, return_indices=True)
    assert y.shape[-2] == H // 4
    assert torch.equal(y[..., -7:, :], ref)
    assert torch.equal(idx[..., -7:, :], ref_idx + first * W)
    assert int(idx[..., -1, :].min()) > BIG  # the last output row's argmaxes all lie beyond 2^31
    del x, y, idx


def test_conv2d_direct_beyond_2_31():
    _need(11)
    x = _tail_image(13)
    w = torch.randn(1, 1, 3, 3, generator=torch.Generator().manual_seed(2))
    y = ops.conv2d(x, w, stride=3, algo="direct", backend="cpu")
    first = H - 13  # 46335: output rows 15445..15448 read input rows 46335..46346 (from 2^31 + 159,...)
    ref = F.conv2d(x[..., first:, :], w, stride=3)
    assert y.shape[-2] == first // 3 + ref.shape[-2]
    assert (first + 9) * W > BIG
    assert_close(y[..., first // 3:, :], ref, reduction=9)
    del x, y


# Small views that start beyond element 2^31 of one 8.6 GB storage: every op family's kernels get
# a pointer past 2^31 elements (the launchers' address arithmetic, the kernels' offsets from it).
_OFFSET_CASES = {
    "conv2d": (lambda f, x: f.conv2d(x, torch.linspace(-1, 1, 3 * 4 * 9).view(4, 3, 3, 3), padding=1), (2, 3, 9, 7)),
    "max_pool2d": (lambda f, x: f.max_pool2d(x, 3, stride=2), (2, 3, 9, 7)),
    "avg_pool2d": (lambda f, x: f.avg_pool2d(x, 2), (2, 3, 9, 7)),
    "batch_norm": (lambda f, x: f.batch_norm(x, None, None, training=True), (2, 3, 9, 7)),
    "layer_norm": (lambda f, x: f.layer_norm(x, (9, 7)), (2, 3, 9, 7)),
    "softmax": (lambda f, x: f.softmax(x, 1), (2, 3, 9, 7)),
    "linear": (lambda f, x: f.linear(x, torch.linspace(-1, 1, 5 * 7).view(5, 7)), (2, 3, 9, 7)),
    "interpolate": (lambda f, x: f.interpolate(x, scale_factor=1.5, mode="bilinear"), (2, 3, 9, 7)),
    "mse_loss": (lambda f, x: f.mse_loss(x, torch.ones_like(x), reduction="sum"), (2, 3, 9, 7)),
    "sigmoid": (lambda f, x: f.sigmoid(x), (2, 3, 9, 7)),
}


@pytest.fixture(scope="module")
def big_storage():
    _need(9)
    base = torch.empty(BIG + 8192)
    base[BIG - 1024:] = torch.randn(8192 + 1024, generator=torch.Generator().manual_seed(3))
    yield base
    del base
    gc.collect()


@pytest.mark.parametrize("op", list(_OFFSET_CASES))
def test_view_with_offset_beyond_2_31(big_storage, op):
    call, shape = _OFFSET_CASES[op]
    n = torch.Size(shape).numel()
    x = big_storage[BIG + 17: BIG + 17 + n].view(shape)
    assert x.storage_offset() > BIG
    fast = type("Ops", (), {k: staticmethod(lambda *a, _k=k, **kw: getattr(ops, _k)(*a, backend="cpu", **kw))
                             for k in _OFFSET_CASES})
    assert_close(call(fast, x), call(F, x.clone()), reduction=64)
