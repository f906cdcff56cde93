"""NaN and +-inf propagate as torch's: the same outputs become non-finite (the same 'blast radius'),
with the same values (+inf stays +inf), in every convolution algorithm and pass, in batch_norm's
output and running statistics, and in max-pool values and argmax."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fastcnn import ops
from fastcnn.ops import _conv_algo as algos
from helpers import CPU_BACKENDS

BACKENDS = [pytest.param(b, id=b) for b in CPU_BACKENDS]
NAN, INF = float("nan"), float("inf")


def _same_nonfinite(actual, expected, what):
    """Non-finite values at the same places with the same values (counts shown on failure)."""
    bad_a, bad_e = ~torch.isfinite(actual), ~torch.isfinite(expected)
    assert torch.equal(bad_a, bad_e), \
        f"{what}: {int(bad_a.sum())} non-finite values, torch has {int(bad_e.sum())}"
    assert torch.equal(actual[bad_a].nan_to_num(0.5), expected[bad_e].nan_to_num(0.5)), \
        f"{what}: non-finite values differ from torch's (NaN where torch has inf?)"
    assert int(bad_e.sum()) > 0, f"{what}: the case puts no non-finite value in torch's result"


def _poison(t, value, places):
    t = t.clone()
    for p in places:
        t[p] = value
    return t


# interior pixel and a corner pixel, in different images and channels
PLACES = [(0, 1, 5, 6), (1, 3, 0, 11)]


def _algos(backend, direction, k=3):
    return algos.candidates(backend, direction, (1, 1), (1, 1), (k, k))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("k", [3, 5])
def test_conv2d_forward_blast_radius(backend, value, k):
    g = torch.Generator().manual_seed(k)
    x = _poison(torch.randn(2, 8, 12, 12, generator=g), value, PLACES)
    w = torch.randn(6, 8, k, k, generator=g)
    expected = F.conv2d(x, w, padding=k // 2)
    for algo in _algos(backend, "conv2d_forward", k):
        _same_nonfinite(ops.conv2d(x, w, padding=k // 2, algo=algo, backend=backend), expected, f"forward {algo}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_forward_inf_and_minus_inf_and_overflowing_sum(backend):
    """The tile algorithms' non-finite check sums the output (ops/conv.py _holds_nonfinite): +inf and
    -inf in one output (their sum is NaN) still reach torch's places; finite values whose sum overflows
    only rerun the pass (the result stays torch's)."""
    g = torch.Generator().manual_seed(2)
    x = _poison(_poison(torch.randn(2, 8, 12, 12, generator=g), INF, PLACES[:1]), -INF, PLACES[1:])
    w = torch.randn(6, 8, 3, 3, generator=g)
    big = torch.full((2, 8, 40, 40), 1e33) + torch.rand(2, 8, 40, 40, generator=g) * 1e32  # outputs ~6e34
    for algo in _algos(backend, "conv2d_forward"):
        _same_nonfinite(ops.conv2d(x, w, padding=1, algo=algo, backend=backend), F.conv2d(x, w, padding=1),
                        f"forward {algo}")
        got = ops.conv2d(big, w.abs(), padding=1, algo=algo, backend=backend)
        want = F.conv2d(big.double(), w.double().abs(), padding=1)
        assert torch.isfinite(got).all() and not torch.isfinite(got.sum()), "the case must overflow the sum"
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [NAN, INF], ids=["nan", "inf"])
def test_conv2d_backward_blast_radius(backend, value):
    """Input gradient from a poisoned output gradient; weight gradient from a poisoned input."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 12, 12, generator=g)
    x_bad = _poison(x, value, PLACES)
    w = torch.randn(6, 8, 3, 3, generator=g)
    gy = torch.randn(2, 6, 12, 12, generator=g)
    gy_bad = _poison(gy, value, [(0, 2, 5, 6), (1, 4, 11, 0)])

    def grads(fn, xx, gyy):
        xl, wl = xx.clone().requires_grad_(), w.clone().requires_grad_()
        return torch.autograd.grad(fn(xl, wl), (xl, wl), gyy)

    ref_gx, _ = grads(lambda a, b: F.conv2d(a, b, padding=1), x, gy_bad)
    _, ref_gw = grads(lambda a, b: F.conv2d(a, b, padding=1), x_bad, gy)
    for algo in sorted(set(_algos(backend, "conv2d_backward_input")) | set(_algos(backend, "conv2d_backward_weight"))):
        gx, _ = grads(lambda a, b: ops.conv2d(a, b, padding=1, algo=algo, backend=backend), x, gy_bad)
        _same_nonfinite(gx, ref_gx, f"input gradient {algo}")
        _, gw = grads(lambda a, b: ops.conv2d(a, b, padding=1, algo=algo, backend=backend), x_bad, gy)
        _same_nonfinite(gw, ref_gw, f"weight gradient {algo}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_batch_norm_training_nonfinite(backend, value):
    """torch: the channel's output is all NaN, its running mean +-inf/NaN and running var NaN."""
    x = _poison(torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0)), value, [(1, 1, 2, 2)])
    outs = []
    for fn in (F.batch_norm, lambda *a, **k: ops.batch_norm(*a, backend=backend, **k)):
        rm, rv = torch.zeros(3), torch.ones(3)
        y = fn(x, rm, rv, torch.ones(3), torch.zeros(3), training=True, momentum=0.1)
        outs.append((y, rm, rv))
    (y, rm, rv), (ye, rme, rve) = outs[1], outs[0]
    _same_nonfinite(y, ye, "output")
    _same_nonfinite(rv, rve, "running_var")
    _same_nonfinite(rm, rme, "running_mean")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_nan_argmax(backend, channels_last):
    """A NaN in a window wins (value NaN, argmax at the NaN), as torch; infinities are ordinary maxima."""
    x = torch.randn(2, 3, 7, 7, generator=torch.Generator().manual_seed(3))
    x = _poison(x, NAN, [(0, 1, 2, 3), (0, 0, 0, 0), (0, 0, 0, 1)])
    x = _poison(x, INF, [(1, 2, 4, 4)])
    x = _poison(x, -INF, [(1, 0, 1, 1)])
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for k, s, p in ((3, 2, 1), (2, 2, 0), (3, 1, 1)):
        y, i = ops.max_pool2d(x, k, s, p, return_indices=True, backend=backend)
        ye, ie = F.max_pool2d(x, k, s, p, return_indices=True)
        _same_nonfinite(y, ye, f"max_pool2d k{k} s{s}")
        assert torch.equal(i, ie), f"argmax differs from torch's (k{k} s{s} p{p})"
    y, i = ops.adaptive_max_pool2d(x, 3, return_indices=True, backend=backend)
    ye, ie = F.adaptive_max_pool2d(x, 3, return_indices=True)
    _same_nonfinite(y, ye, "adaptive_max_pool2d")
    assert torch.equal(i, ie)
