"""fastcnn.ops._op.apply: an op whose tensor arguments need no gradient runs its autograd
Function's forward directly; the results must be those of the autograd path, and nothing of a
graph may leak into them."""
import pytest
import torch

import fastcnn.ops as ops
from fastcnn.ops._op import apply


def _cases():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 9, 11)
    w = torch.randn(4, 6, 3, 3)
    return [
        ("relu", lambda a: ops.relu(a), x),
        ("max_pool2d", lambda a: ops.max_pool2d(a, 3, 2, 1), x),
        ("max_pool2d indices", lambda a: ops.max_pool2d(a, 3, 2, 1, return_indices=True), x),
        ("conv2d", lambda a: ops.conv2d(a, w, padding=1, activation="relu"), x),
        ("softmax", lambda a: ops.softmax(a, dim=1), x),
        ("batch_norm", lambda a: ops.batch_norm(a, None, None, training=True), x),
    ]


@pytest.mark.parametrize("name,op,x", _cases(), ids=[c[0] for c in _cases()])
def test_plain_call_matches_autograd_call(name, op, x):
    tracked = op(x.clone().requires_grad_())
    with torch.no_grad():
        plain_nograd = op(x.clone().requires_grad_())
    plain = op(x.clone())  # grad mode on, but nothing to differentiate
    tracked = tracked if isinstance(tracked, tuple) else (tracked,)
    for result in (plain_nograd, plain):
        result = result if isinstance(result, tuple) else (result,)
        for got, want in zip(result, tracked):
            assert got.grad_fn is None and not got.requires_grad
            assert torch.equal(got, want.detach())
    assert tracked[0].grad_fn is not None


def test_plain_call_in_place_returns_the_input():
    x = torch.randn(3, 5)
    with torch.no_grad():
        y = ops.relu_(x)
    assert y is x and bool((x >= 0).all())


def test_apply_keeps_autograd_when_a_gradient_is_needed():
    class Double(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, scale):
            ctx.scale = scale
            return a * scale

        @staticmethod
        def backward(ctx, g):
            return g * ctx.scale, None

    a = torch.randn(4, requires_grad=True)
    apply(Double, a, 2.0).sum().backward()
    assert torch.equal(a.grad, torch.full((4,), 2.0))
    with torch.no_grad():
        assert apply(Double, a, 3.0).grad_fn is None
