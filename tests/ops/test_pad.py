"""fastcnn.ops.pad (constant, reflect, replicate, circular; 4-D input, 2-D spatial padding) and
Conv2d(padding_mode=...) against torch, per backend on CPU tensors: odd shapes, batch 1, one
channel, channels_last and non-contiguous input, empty batch, NaN/inf, float64 gradcheck (the
backward adds padded copies back into the border), bad input."""
import pytest
import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import ops
from helpers import assert_close, backend_params, gradcheck, isa  # noqa: F401  (isa is a fixture)
from nonfinite import assert_close_nan

BACKENDS = [p for p in backend_params() if p.values[0] != "cuda"]  # cpu and triton kernels (no cuda one)
MODES = ["constant", "reflect", "replicate", "circular"]
# (input shape, pad): odd H/W, C = 1 and 3, batch 1, asymmetric pads, pads as large as allowed.
CASES = [((2, 3, 5, 7), (1, 2, 3, 0)), ((1, 1, 4, 3), (2, 2, 3, 3)), ((3, 2, 6, 5), (0, 4, 0, 0)),
         ((1, 5, 3, 2), (1, 1, 2, 2))]


def _rand(shape, seed, dtype=torch.float32, device="cpu"):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype).to(device)


def _check(backend, x, pad, mode, value=None):
    x = x.detach().requires_grad_()
    y = ops.pad(x, pad, mode=mode, value=value, backend=backend)
    xr = x.detach().double().requires_grad_()
    yr = F.pad(xr, pad, mode=mode, value=value)
    assert_close_nan(y, yr, name=f"{mode} forward")
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        assert y.is_contiguous(memory_format=torch.channels_last), "channels_last input keeps its layout"
    gy = _rand(y.shape, 5, x.dtype, x.device)
    (gx,) = torch.autograd.grad(y, x, gy)
    (gxr,) = torch.autograd.grad(yr, xr, gy.double())
    assert_close_nan(gx, gxr, reduction=9, name=f"{mode} backward")


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_matches_torch(backend, device, mode, dtype):
    for shape, pad in CASES:
        _check(backend, _rand(shape, 1, dtype, device), pad, mode)
    if mode == "constant":
        _check(backend, _rand((2, 3, 4, 5), 2, dtype, device), (1, 0, 2, 1), mode, value=-1.5)
        _check(backend, _rand((2, 3, 4, 5), 2, dtype, device), (2, 3), mode)  # the width only


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_layouts_and_empty(backend, device, mode):
    x = _rand((2, 3, 5, 4), 3, device=device)
    _check(backend, x.contiguous(memory_format=torch.channels_last), (2, 1, 1, 3), mode)
    _check(backend, _rand((2, 3, 5, 9), 4, device=device)[..., 1::2], (1, 2, 2, 1), mode)  # a strided view
    _check(backend, _rand((0, 3, 5, 4), 4, device=device), (1, 2, 2, 1), mode)


@pytest.mark.parametrize("mode", MODES)
def test_cpu_each_isa(isa, mode):
    _check("cpu", _rand((2, 3, 9, 11), 6), (3, 2, 1, 4), mode)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_nan_and_inf_stay_where_torch_puts_them(backend, device):
    x = _rand((1, 2, 4, 5), 7, device=device)
    x[0, 0, 0, 0], x[0, 1, 3, 4] = float("nan"), float("inf")
    for mode in MODES:
        _check(backend, x, (2, 1, 1, 2), mode)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_gradcheck(backend, device, mode):
    # small: every element is differentiated numerically (slow under the triton interpreter)
    x = _rand((1, 1, 3, 3), 8, torch.float64, device).requires_grad_()
    gradcheck(lambda t: ops.pad(t, (2, 1, 2, 1), mode=mode, backend=backend), (x,))


def test_bad_input_rejected_naming_the_argument():
    x = torch.randn(1, 2, 3, 4)
    with pytest.raises(ValueError, match="pad"):
        ops.pad(x, (4, 0), mode="reflect")  # not smaller than W
    with pytest.raises(ValueError, match="pad"):
        ops.pad(x, (0, 0, 4, 0), mode="circular")  # more than H
    with pytest.raises(ValueError, match="pad"):
        ops.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="pad"):
        ops.pad(x, (-1, 0))
    with pytest.raises(ValueError, match="pad"):
        ops.pad(x, (1, 1), mode="replicate")  # torch's non-constant modes pad both spatial dimensions
    with pytest.raises(ValueError, match="mode"):
        ops.pad(x, (1, 1), mode="symmetric")
    with pytest.raises(ValueError, match="value"):
        ops.pad(x, (1, 1, 1, 1), mode="reflect", value=2.0)
    with pytest.raises(ValueError, match="input"):
        ops.pad(torch.randn(2, 3, 4), (1, 1))
    with pytest.raises(TypeError, match="input"):
        ops.pad(x.half(), (1, 1))


@pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_modes_match_torch(padding_mode):
    theirs = torch.nn.Conv2d(3, 4, 3, stride=2, padding=(1, 2), padding_mode=padding_mode).double()
    ours = fastcnn.nn.Conv2d(3, 4, 3, stride=2, padding=(1, 2), padding_mode=padding_mode).double()
    ours.load_state_dict(theirs.state_dict())
    adopted = fastcnn.nn.Conv2d.from_torch(theirs)
    x = _rand((2, 3, 7, 6), 9, torch.float64).requires_grad_()
    expected = theirs(x)
    for m in (ours, adopted):
        y = m(x)
        assert_close(y, expected, reduction=27)
        (g,) = torch.autograd.grad(y.sum(), x)
        (gr,) = torch.autograd.grad(expected.sum(), x, retain_graph=True)
        assert_close(g, gr, reduction=27)
    with pytest.raises(ValueError, match="padding_mode"):
        fastcnn.nn.Conv2d(3, 4, 3, padding_mode="symmetric")
