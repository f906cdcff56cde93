"""The cuda backend's pooling and resampling kernels (pool.cu, resample.cu) run on the CPU through
the host emulation (tests/cuda_host_emulator.py; atomicAdd from tests/cuda_host_shim.h), through
the public ops, against torch in float64: the launchers' plans, strides and index math, the
atomic accumulations (max-pool backward with overlapping windows, grid_sample's input gradient),
and that every output and gradient lands on the input's device. Small odd shapes: every block is
256 host threads."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fastcnn import ops
from helpers import ALL_PADDING_WINDOWS, assert_close


@pytest.fixture
def emulated_cuda(monkeypatch):
    """backend="cuda" on CPU tensors, its launches executed by the host emulation."""
    import cuda_host_emulator
    from fastcnn.backends.cuda import pool as cuda_pool, resample as cuda_resample  # registers; they import launch by name
    cuda_host_emulator.emulate(monkeypatch, cuda_pool, cuda_resample, public_ops=True)
    return "cuda"


def _check(op, ref, x, kwargs, reduction, *, extra=()):
    """op (emulated cuda) vs ref (torch, float64): output, input gradient, devices."""
    xg = x.detach().clone().requires_grad_()
    with torch.device("meta"):  # anything allocated without the input's device lands on meta and is caught
        out = op(xg, *extra, **kwargs, backend="cuda")
    out = out[0] if isinstance(out, tuple) else out
    xr = x.detach().double().requires_grad_()
    expected = ref(xr, *[e.double() if e.is_floating_point() else e for e in extra], **kwargs)
    expected = expected[0] if isinstance(expected, tuple) else expected
    assert out.device == x.device
    assert_close(out, expected, reduction=reduction)
    gy = torch.randn(expected.shape, dtype=torch.float64)
    with torch.device("meta"):
        out.backward(gy.to(out.dtype))
    expected.backward(gy)
    assert xg.grad.device == x.device
    assert_close(xg.grad, xr.grad, reduction=reduction, name="input gradient")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_emulated_cuda_pooling(emulated_cuda, dtype, channels_last):
    x = torch.randn(2, 3, 7, 9, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    # overlapping windows: several outputs pick the same input, the backward adds with atomicAdd
    _check(ops.max_pool2d, F.max_pool2d, x, dict(kernel_size=3, stride=1, padding=1), 9)
    _check(ops.max_pool2d, F.max_pool2d, x, dict(kernel_size=(3, 2), stride=2, dilation=(1, 2), ceil_mode=True), 6)
    _check(ops.avg_pool2d, F.avg_pool2d, x, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), 9)
    _check(ops.adaptive_avg_pool2d, F.adaptive_avg_pool2d, x, dict(output_size=(4, 5)), 12)
    _check(ops.adaptive_max_pool2d, F.adaptive_max_pool2d, x, dict(output_size=(4, 5)), 12)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    out = ops.max_unpool2d(y, idx, 2, output_size=x.shape[-2:], backend="cuda")
    assert torch.equal(out, F.max_unpool2d(y, idx, 2, output_size=x.shape[-2:]))


@pytest.mark.parametrize("shape, cfg", ALL_PADDING_WINDOWS)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_emulated_cuda_max_pool_window_all_padding(emulated_cuda, shape, cfg, channels_last):
    """A window with every tap in the padding: -inf and torch's index (the first tap at or after the
    window's top-left edge), as the cpu kernels (tests/ops/test_pool.py)."""
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    want_y, want_i = F.max_pool2d(x, **cfg, return_indices=True)
    assert torch.isneginf(want_y).any()  # the case under test is present
    y, i = ops.max_pool2d(x, **cfg, return_indices=True, backend="cuda")
    assert torch.equal(y, want_y) and torch.equal(i, want_i)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_emulated_cuda_resampling(emulated_cuda, dtype):
    x = torch.randn(2, 3, 5, 7, dtype=dtype)
    _check(ops.interpolate, F.interpolate, x, dict(scale_factor=2, mode="bilinear", align_corners=False), 16)
    _check(ops.interpolate, F.interpolate, x, dict(size=(4, 11), mode="nearest"), 4)
    _check(ops.pixel_shuffle, F.pixel_shuffle, torch.randn(1, 8, 3, 4, dtype=dtype), dict(upscale_factor=2), 1)
    for mode, padding_mode, align in (("bilinear", "zeros", False), ("bilinear", "border", False),
                                      ("bilinear", "reflection", True), ("nearest", "reflection", False),
                                      ("nearest", "zeros", True)):
        grid = torch.rand(2, 4, 6, 2, dtype=dtype) * 6.4 - 3.2  # points outside: every padding path
        _check(ops.grid_sample, F.grid_sample, x, dict(mode=mode, padding_mode=padding_mode, align_corners=align),
               4 * 49, extra=(grid,))
