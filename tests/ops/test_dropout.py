"""dropout / dropout2d: mask drawn by torch's generator, mask * scale and its backward in our kernels."""
import pytest
import torch

import fastcnn
from fastcnn import ops
from helpers import assert_close, backend_params, gradcheck, isa  # noqa: F401


def _seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def _expected(x, keep, p):
    return torch.where(keep, x.double() / (1 - p), torch.zeros((), dtype=torch.float64))


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_dropout_applies_the_generators_mask(backend, device, dtype):
    p = 0.3
    x = torch.randn(3, 5, 7, dtype=dtype, device=device, requires_grad=True)
    y = ops.dropout(x, p, generator=_seeded(4), backend=backend)
    keep = torch.empty(x.shape, dtype=torch.uint8).bernoulli_(1 - p, generator=_seeded(4)).bool()
    assert_close(y, _expected(x, keep, p), name="output")
    gy = torch.randn_like(x)
    (gx,) = torch.autograd.grad(y, x, gy)
    assert_close(gx, _expected(gy, keep, p), name="grad_input")


@pytest.mark.parametrize("backend,device", backend_params())
def test_dropout2d_drops_whole_channels(backend, device):
    p = 0.5
    x = torch.randn(2, 6, 3, 5, device=device, requires_grad=True)
    y = ops.dropout2d(x, p, generator=_seeded(1), backend=backend)
    keep = torch.empty(2, 6, dtype=torch.uint8).bernoulli_(1 - p, generator=_seeded(1)).bool()[..., None, None]
    assert_close(y, _expected(x, keep.expand_as(x), p), name="output")
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(x))
    assert_close(gx, _expected(torch.ones_like(x), keep.expand_as(x), p), name="grad_input")


def test_dropout_each_isa(isa):
    for shape, p in [((37,), 0.5), ((4, 19), 0.2), ((1, 1), 0.9)]:
        x = torch.randn(shape)
        y = ops.dropout(x, p, generator=_seeded(2), backend="cpu")
        keep = torch.empty(shape, dtype=torch.uint8).bernoulli_(1 - p, generator=_seeded(2)).bool()
        assert_close(y, _expected(x, keep, p))
    x = torch.randn(2, 3, 5, 7)
    y = ops.dropout2d(x, 0.5, generator=_seeded(3), backend="cpu")
    keep = torch.empty(2, 3, dtype=torch.uint8).bernoulli_(0.5, generator=_seeded(3)).bool()[..., None, None]
    assert_close(y, _expected(x, keep.expand_as(x), 0.5))


def test_dropout_reproducible_under_manual_seed_and_rate():
    x = torch.ones(200, 100)
    torch.manual_seed(11)
    a = ops.dropout(x, 0.25)
    torch.manual_seed(11)
    b = ops.dropout(x, 0.25)
    assert torch.equal(a, b)
    dropped = (a == 0).double().mean().item()
    assert abs(dropped - 0.25) < 0.02  # 20000 Bernoulli draws: std 0.003
    assert torch.equal(a[a != 0], torch.full_like(a[a != 0], 1 / 0.75))


def test_dropout_eval_p0_p1_and_inplace():
    x = torch.randn(4, 5)
    assert ops.dropout(x, 0.5, training=False) is x
    assert torch.equal(ops.dropout(x, 0.0), x)
    assert torch.equal(ops.dropout(x, 1.0), torch.zeros_like(x))
    y = x.clone()
    out = ops.dropout(y, 0.5, inplace=True, generator=_seeded(5))
    assert out.data_ptr() == y.data_ptr()
    keep = torch.empty(4, 5, dtype=torch.uint8).bernoulli_(0.5, generator=_seeded(5)).bool()
    assert_close(y, _expected(x, keep, 0.5))
    leaf = torch.randn(3, 4, requires_grad=True)
    mid = leaf * 1.0
    ops.dropout(mid, 0.5, inplace=True, generator=_seeded(6)).sum().backward()
    keep = torch.empty(3, 4, dtype=torch.uint8).bernoulli_(0.5, generator=_seeded(6)).bool()
    assert_close(leaf.grad, _expected(torch.ones(3, 4), keep, 0.5))


@pytest.mark.parametrize("backend,device", backend_params())
def test_dropout_gradcheck(backend, device):
    x = torch.randn(3, 4, 2, 2, dtype=torch.float64, device=device, requires_grad=True)
    gradcheck(lambda x: ops.dropout(x, 0.4, generator=_seeded(8), backend=backend), [x])
    gradcheck(lambda x: ops.dropout2d(x, 0.4, generator=_seeded(9), backend=backend), [x])


def test_dropout_modules():
    m, m2 = fastcnn.nn.Dropout(0.3), fastcnn.nn.Dropout2d(0.3)
    x = torch.randn(2, 3, 4, 4)
    torch.manual_seed(0)
    y = m(x)
    assert ((y == 0) | torch.isclose(y, x / 0.7)).all()
    y2 = m2(x)
    per_channel = (y2 == 0).flatten(2).all(2) | torch.isclose(y2, x / 0.7).flatten(2).all(2)
    assert per_channel.all()
    m.eval(), m2.eval()
    assert torch.equal(m(x), x) and torch.equal(m2(x), x)


def test_dropout_rejects_bad_input():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="p"):
        ops.dropout(x, 1.5)
    with pytest.raises(ValueError, match="p"):
        ops.dropout2d(x, -0.1)
    with pytest.raises(TypeError, match="input"):
        ops.dropout(x.long())
    with pytest.raises(ValueError, match="input"):
        ops.dropout2d(torch.randn(3, 4))
    with pytest.raises(TypeError, match="generator"):
        ops.dropout(x, generator=0)

