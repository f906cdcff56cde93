"""Memory format, empty batches and autocast as a torch user meets them: conv2d/conv_transpose2d on a
channels_last input give a channels_last result and gradient (torch's rule); BatchNorm2d in eval
mode takes an empty batch; under torch.autocast a fastcnn op refuses clearly instead of silently
computing float32."""
from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import ops
from helpers import CPU_BACKENDS, assert_close

BACKENDS = [pytest.param(b, id=b) for b in CPU_BACKENDS]
CL = torch.channels_last


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_conv_channels_last_in_channels_last_out(backend, transposed):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 7, 6, generator=g, dtype=torch.float64).contiguous(memory_format=CL)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    fast = (lambda a, b: ops.conv_transpose2d(a, b, stride=2, backend=backend)) if transposed else \
        (lambda a, b: ops.conv2d(a, b.transpose(0, 1).contiguous(), padding=1, backend=backend))
    ref = (lambda a, b: F.conv_transpose2d(a, b, stride=2)) if transposed else \
        (lambda a, b: F.conv2d(a, b.transpose(0, 1).contiguous(), padding=1))
    results = []
    for fn in (fast, ref):
        xl = x.detach().clone(memory_format=torch.preserve_format).requires_grad_(True)
        y = fn(xl, w)
        (gx,) = torch.autograd.grad(y, xl, torch.ones_like(y))
        results.append((y, gx))
    (y, gx), (yr, gxr) = results
    assert yr.is_contiguous(memory_format=CL) and gxr.is_contiguous(memory_format=CL)
    assert y.is_contiguous(memory_format=CL), f"output strides {y.stride()}"
    assert gx.is_contiguous(memory_format=CL), f"input-gradient strides {gx.stride()}"
    assert_close(y, yr, reduction=36)
    assert_close(gx, gxr, reduction=36)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_eval_empty_batch(backend):
    bn = fastcnn.nn.BatchNorm2d(3).eval()
    ref = torch.nn.BatchNorm2d(3).eval()
    y = ops.batch_norm(torch.randn(0, 3, 4, 4), bn.running_mean, bn.running_var, bn.weight, bn.bias,
                       training=False, backend=backend)
    assert y.shape == ref(torch.randn(0, 3, 4, 4)).shape == (0, 3, 4, 4)
    assert bn(torch.randn(0, 3, 4, 4)).shape == (0, 3, 4, 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_is_refused_clearly(backend):
    model = fastcnn.nn.convert(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
    x = torch.randn(1, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(NotImplementedError, match="autocast"):
            model(x)
        with pytest.raises(NotImplementedError, match="autocast"):
            ops.relu(x, backend=backend)
        assert ops.relu(x, backend="reference").dtype == torch.float32  # torch's own op: its autocast rules
        with torch.autocast("cpu", enabled=False):  # the documented way out
            assert ops.conv2d(x, torch.randn(4, 3, 3, 3), backend=backend).dtype == torch.float32


# Ops whose kernels take NCHW: a channels_last input still gives a channels_last result and input
# gradient, as torch's do (dropout: its kept values are checked, the mask being random).
_FOLLOWS_INPUT = {
    "local_response_norm": lambda f, x: f.local_response_norm(x, 3),
    "normalize": lambda f, x: f.normalize(x, dim=3),
    "dropout": lambda f, x: f.dropout(x, 0.5),
    "dropout2d": lambda f, x: f.dropout2d(x, 0.5),
    "pixel_shuffle": lambda f, x: f.pixel_shuffle(x, 2),
    "pixel_unshuffle": lambda f, x: f.pixel_unshuffle(x, 2),
    "prelu": lambda f, x: f.prelu(x, torch.linspace(0.1, 0.5, 8, dtype=x.dtype)),
    "batch_norm": lambda f, x: f.batch_norm(x, None, None, training=True),
    "group_norm": lambda f, x: f.group_norm(x, 2),
    "interpolate": lambda f, x: f.interpolate(x, scale_factor=1.5, mode="bilinear"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", list(_FOLLOWS_INPUT))
def test_channels_last_in_channels_last_out(backend, op):
    call = _FOLLOWS_INPUT[op]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 6, 4, generator=g, dtype=torch.float64).contiguous(memory_format=CL)
    gy = None
    results = []
    for f in (SimpleNamespace(**{n: functools.partial(getattr(ops, n), backend=backend) for n in _FOLLOWS_INPUT}), F):
        xl = x.detach().clone(memory_format=torch.preserve_format).requires_grad_(True)
        y = call(f, xl)
        gy = torch.randn(y.shape, generator=g, dtype=y.dtype).contiguous(memory_format=CL) if gy is None else gy
        (gx,) = torch.autograd.grad(y, xl, gy)
        results.append((y, gx))
    (y, gx), (yr, gxr) = results
    assert yr.is_contiguous(memory_format=CL) and gxr.is_contiguous(memory_format=CL)
    assert y.is_contiguous(memory_format=CL), f"output strides {y.stride()}"
    assert gx.is_contiguous(memory_format=CL), f"input-gradient strides {gx.stride()}"
    if op.startswith("dropout"):  # each output is 0 or x / (1 - p); the gradient is that mask / (1 - p)
        kept = y != 0
        assert_close(y[kept], x[kept] * 2)
        assert_close(gx, gy * kept * 2)
        return
    assert_close(y, yr, reduction=64)
    assert_close(gx, gxr, reduction=64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inplace_dropout_channels_last_writes_the_callers_tensor(backend):
    x = torch.randn(2, 8, 6, 4).contiguous(memory_format=CL)
    y = ops.dropout(x, 0.5, inplace=True, backend=backend)
    assert y.data_ptr() == x.data_ptr() and bool(((x == 0) | (x != 0)).all())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_refused_for_every_layer_kind(dtype):
    """bfloat16 stays a documented rejection (docs/reliability.md): under CPU autocast each converted
    layer kind refuses (the first to run raises), none quietly runs torch's kernels or float32."""
    layers = [torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(3), torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(2),
              torch.nn.ReLU(), torch.nn.Sigmoid(), torch.nn.Linear(8, 2)]
    for layer in layers:
        model = fastcnn.nn.convert(torch.nn.Sequential(layer))
        assert type(model[0]).__module__.startswith("fastcnn"), f"{layer} not converted"
        x = torch.randn(2, 8) if isinstance(layer, torch.nn.Linear) else torch.randn(2, 3, 8, 8)
        with torch.autocast("cpu", dtype=dtype):
            with pytest.raises(NotImplementedError, match="autocast"):
                model(x)
