"""Outputs stay on the inputs' device under a default-device context (`with torch.device(...)`,
torch.set_default_device): every kernel names the device it allocates on. meta stands in for a GPU."""
from __future__ import annotations

import pytest
import torch

import fastcnn.ops as ops

CPU = torch.device("cpu")


def _calls():
    g = torch.Generator(device=CPU).manual_seed(0)
    x = torch.randn(2, 3, 9, 8, generator=g, device=CPU, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, generator=g, device=CPU, requires_grad=True)
    t = torch.randn(2, 4, 7, 6, generator=g, device=CPU)
    return {
        "conv2d": lambda b: ops.conv2d(x, w, padding=0, backend=b),
        "conv2d_winograd": lambda b: ops.conv2d(x, w, padding=0, algo="winograd", backend=b),
        "max_pool2d": lambda b: ops.max_pool2d(x, 2, backend=b),
        "avg_pool2d": lambda b: ops.avg_pool2d(x, 3, stride=2, padding=1, backend=b),
        "relu": lambda b: ops.relu(x, backend=b),
        "mse_loss": lambda b: ops.mse_loss(ops.conv2d(x, w, backend=b), t, backend=b),
        "cross_entropy": lambda b: ops.cross_entropy(x.flatten(1)[:, :5], torch.tensor([1, 3], device=CPU),
                                                     backend=b),
    }


@pytest.mark.parametrize("backend", ["cpu", "triton"])
@pytest.mark.parametrize("name", list(_calls()))
def test_outputs_and_gradients_stay_on_the_input_device(name, backend):
    call = _calls()[name]
    with torch.device("meta"):
        y = call(backend)
        assert y.device == CPU, f"{name} ({backend}) output on {y.device}"
        grads = torch.autograd.grad(y.sum(), [p for p in _leaves(y)], allow_unused=True)
    assert all(g is None or g.device == CPU for g in grads), f"{name} ({backend}) gradient off the cpu"


def _leaves(y):
    """The leaf tensors y depends on (its inputs that require grad)."""
    seen, stack, out = set(), [y.grad_fn], []
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if hasattr(fn, "variable"):
            out.append(fn.variable)
        stack.extend(f for f, _ in fn.next_functions)
    return out
