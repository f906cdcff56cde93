"""The cpu output cache (fastcnn/backends/cpu/_output_cache.py): a large output buffer is reused only
once nothing but the cache refers to it, results stay right, and the limit and release hold."""
import pytest
import torch
from output_reuse import HOLDERS, assert_referenced_output_kept

import fastcnn
from fastcnn import ops
from fastcnn.backends.cpu import _lib
from fastcnn.backends.cpu._output_cache import OutputCache

BIG = 2 << 20  # float32 elements: 8 MiB, above the cache's 4 MiB threshold


@pytest.fixture
def cache(monkeypatch):
    fresh_cache = OutputCache(64 << 20)
    monkeypatch.setattr(_lib, "CACHE", fresh_cache)
    return fresh_cache


def test_dead_output_is_reused_and_results_are_right(cache):
    x = torch.randn(BIG)
    y = ops.relu(x, backend="cpu")
    ptr = y.data_ptr()
    del y
    z = ops.sigmoid(x, backend="cpu")  # same size: takes the freed buffer
    assert z.data_ptr() == ptr
    torch.testing.assert_close(z, torch.sigmoid(x))


@pytest.mark.parametrize("holder", HOLDERS)
def test_referenced_output_is_never_handed_out(cache, holder):
    assert_referenced_output_kept(holder, BIG, lambda t: ops.tanh(t, backend="cpu"),
                                  lambda t: ops.relu(t, backend="cpu"))


def test_layout_and_dtype_of_cached_outputs(cache):
    x = torch.randn(4, 64, 64, 64, dtype=torch.float64).to(memory_format=torch.channels_last)  # 8 MiB
    y = _lib.empty_like(x)
    assert y.dtype == torch.float64 and y.is_contiguous(memory_format=torch.channels_last)
    del y
    z = _lib.empty((2 << 20,), torch.float32)  # the same 8 MiB, another dtype and shape
    assert z.shape == (2 << 20,) and z.is_contiguous() and len(cache._blocks) == 1


def test_small_outputs_bypass_the_cache(cache):
    _lib.empty((1000,), torch.float32)
    assert cache._blocks == []


def test_free_buffers_are_trimmed_to_the_limit_and_released():
    cache = OutputCache(20 << 20)
    tensors = [torch.empty(8 << 20, dtype=torch.uint8) for _ in range(3)]
    for t in tensors:
        cache.add(t.untyped_storage())
    assert cache.free_bytes() == 0  # every buffer is still some tensor's
    del t
    tensors.clear()
    assert cache.free_bytes() == 24 << 20
    cache.add(torch.empty(1 << 20, dtype=torch.uint8).untyped_storage())  # adding trims the free ones
    assert cache.free_bytes() <= 20 << 20 and len(cache._blocks) == 3
    cache.release()
    assert cache.free_bytes() == 0 and cache._blocks == []


def test_empty_cache_is_public_and_turning_off_allocates_fresh(monkeypatch):
    fastcnn.empty_cache()
    off = OutputCache(0)
    monkeypatch.setattr(_lib, "CACHE", off)
    a = _lib.empty((BIG,), torch.float32)
    assert off._blocks == [] and a.numel() == BIG
