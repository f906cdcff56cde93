"""softmax / log_softmax (functional and modules) against torch on odd shapes, per backend and cpu ISA."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import fastcnn
from fastcnn import ops
from helpers import assert_close, backend_params, gradcheck, isa, reference_f64  # noqa: F401

# (shape, dim): rows (last dim), NCHW class dim, middle dims, a 1-D vector, C = 1, a long row with tails.
CASES = [((5, 7), 1), ((5, 7), 0), ((2, 3, 5, 3), 1), ((2, 1, 4, 3), 1), ((3, 4, 5), -1), ((7,), 0),
         ((2, 37), 1), ((1, 3, 1, 1), 1), ((3, 19, 2), 1)]
TRITON_CASES = [((5, 7), 1), ((2, 3, 5, 3), 1), ((7,), 0), ((3, 4, 2), 0)]
FUNCS = [(ops.softmax, F.softmax), (ops.log_softmax, F.log_softmax)]


def _check(backend, device, shape, dim, fn, ref, dtype):
    g = torch.Generator().manual_seed(len(shape) * 31 + dim)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(dtype).to(device).requires_grad_(True)
    y = fn(x, dim, backend=backend)
    xr = x.detach().double().requires_grad_(True)
    yr = ref(xr, dim)
    D = x.shape[dim] if x.dim() else 1
    assert_close(y, yr, reduction=D, name=f"{fn.__name__} output")
    gy = torch.randn(shape, generator=g, dtype=torch.float64).to(device)
    (gx,) = torch.autograd.grad(y, x, gy.to(dtype))
    (gxr,) = torch.autograd.grad(yr, xr, gy)
    # gx = y * (gy - <gy, y>) (softmax) or gy - softmax * sum(gy) (log_softmax) cancels for short or
    # peaked rows: accurate relative to |gy|, not to itself.
    assert_close(gx, gxr, reduction=D, scale=gy.abs().max(), name=f"{fn.__name__} grad_input")


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("fn,ref", FUNCS, ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_softmax_matches_torch(backend, device, fn, ref, dtype):
    for shape, dim in (TRITON_CASES if backend == "triton" else CASES):
        _check(backend, device, shape, dim, fn, ref, dtype)


@pytest.mark.parametrize("fn,ref", FUNCS, ids=["softmax", "log_softmax"])
def test_softmax_each_isa(isa, fn, ref):
    for shape, dim in CASES + [((3, 1000), 1), ((2, 21, 9, 7), 1)]:
        for dtype in (torch.float32, torch.float64):
            _check("cpu", "cpu", shape, dim, fn, ref, dtype)


def test_softmax_large_logits_do_not_overflow():
    x = torch.tensor([[1000.0, 999.0, -1000.0], [-1e4, -1e4 + 1, -1e4 + 2]])
    for fn, ref in FUNCS:
        assert_close(fn(x, 1, backend="cpu"), ref(x.double(), 1), reduction=3)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("fn", [ops.softmax, ops.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_gradcheck(backend, device, fn):
    for shape, dim in [((3, 4), 1), ((2, 3, 2, 2), 1)]:
        x = torch.randn(shape, dtype=torch.float64, device=device, requires_grad=True)
        gradcheck(lambda x: fn(x, dim, backend=backend), [x])


def test_softmax_dim_none_and_dtype_follow_torch():
    x = torch.randn(2, 3, 4)
    assert_close(ops.softmax(x), F.softmax(x.double(), 0), reduction=2)  # torch's legacy rule: dim 0 for 3-D
    y = ops.log_softmax(x, 2, dtype=torch.float64)
    assert y.dtype == torch.float64
    assert_close(y, F.log_softmax(x.double(), 2), reduction=4)


def test_softmax_modules():
    x = torch.randn(4, 5, 3)
    assert_close(fastcnn.nn.Softmax(dim=1)(x), torch.nn.Softmax(dim=1)(x.double()), reduction=5)
    assert_close(fastcnn.nn.LogSoftmax(dim=-1)(x), torch.nn.LogSoftmax(dim=-1)(x.double()), reduction=3)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), data=st.data())
def test_softmax_hypothesis(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    log = data.draw(st.booleans())
    fn, ref = FUNCS[int(log)]
    _check("cpu", "cpu", tuple(shape), dim, fn, ref, torch.float32)


def test_softmax_rejects_bad_input():
    with pytest.raises(TypeError, match="input"):
        ops.softmax(torch.ones(3, dtype=torch.int64), 0)
    with pytest.raises(ValueError, match="dim"):
        ops.softmax(torch.ones(3, 4), 2)
    with pytest.raises(TypeError, match="dim"):
        ops.log_softmax(torch.ones(3, 4), 1.0)
    with pytest.raises(TypeError, match="dtype"):
        ops.softmax(torch.ones(3, 4), 1, dtype=torch.int32)
    with pytest.raises(TypeError, match="input"):
        ops.softmax([1.0, 2.0], 0)

