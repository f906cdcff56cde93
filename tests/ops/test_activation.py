"""Activations on every backend against the reference (float64 ground truth): odd shapes, layouts,
in-place forms, NaN, each cpu ISA copy, float64 gradcheck, bad input."""
import pytest
import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import ops
from helpers import assert_close, backend_params, gradcheck, isa, reference_f64  # noqa: F401

# op name -> (fastcnn call, reference call on float64)
UNARY = {
    "relu": (lambda x, b: ops.relu(x, backend=b), F.relu),
    "leaky_relu": (lambda x, b: ops.leaky_relu(x, 0.13, backend=b), lambda x: F.leaky_relu(x, 0.13)),
    "elu": (lambda x, b: ops.elu(x, 0.7, backend=b), lambda x: F.elu(x, 0.7)),
    "sigmoid": (lambda x, b: ops.sigmoid(x, backend=b), torch.sigmoid),
    "tanh": (lambda x, b: ops.tanh(x, backend=b), torch.tanh),
    "softplus": (lambda x, b: ops.softplus(x, 1.5, 6.0, backend=b), lambda x: F.softplus(x, 1.5, 6.0)),
}
SHAPES = [(3, 5, 7, 9), (1, 1, 1, 1), (2, 3, 11), (37,), (2, 17, 1, 5)]


def make(shape, dtype, device, layout="contiguous"):
    x = torch.randn(shape, dtype=dtype) * 3
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.randn(shape[:-1] + (shape[-1] * 2,), dtype=dtype)[..., ::2] * 3
    return x.to(device)


def check_unary(name, backend, device, shape, dtype, layout="contiguous"):
    fast, ref = UNARY[name]
    x = make(shape, dtype, device, layout).requires_grad_()
    y = fast(x, backend)
    gy = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, gy)
    x64 = x.detach().double().requires_grad_()
    y64 = ref(x64)
    (gx64,) = torch.autograd.grad(y64, x64, gy.double())
    assert_close(y, y64, name=f"{name} forward")
    # f' is taken from the rounded output (as torch does), so gx is accurate relative to |gy|.
    assert_close(gx, gx64, scale=gy.abs().max(), name=f"{name} backward")


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unary_matches_reference(backend, device, name, dtype):
    for shape in SHAPES:
        check_unary(name, backend, device, shape, dtype)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_unary_layouts(backend, device, layout):
    for name in UNARY:
        check_unary(name, backend, device, (2, 3, 5, 4), torch.float32, layout)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_cpu_each_isa(isa, name):  # noqa: F811
    # A size that leaves a tail in every vector width, and large values that hit exp's clamps.
    check_unary(name, "cpu", "cpu", (1000003,), torch.float32)
    x = torch.tensor([-100.0, -88.5, -20.0, -1e-6, 0.0, 1e-6, 20.0, 88.5, 100.0])
    fast, ref = UNARY[name]
    assert_close(fast(x, "cpu"), ref(x.double()), name=f"{name} extremes")


@pytest.mark.parametrize("backend,device", backend_params())
def test_nan_propagates(backend, device):
    x = torch.tensor([float("nan"), 1.0, -1.0, 0.0], device=device)
    for name, (fast, ref) in UNARY.items():
        assert torch.equal(torch.isnan(fast(x, backend)), torch.isnan(ref(x))), name


@pytest.mark.parametrize("backend,device", backend_params())
def test_inplace_forms(backend, device):
    for fn, ref, kwargs in [(ops.relu_, F.relu, {}), (ops.leaky_relu_, F.leaky_relu, {"negative_slope": 0.2}),
                            (ops.elu_, F.elu, {"alpha": 0.5})]:
        base = torch.randn(3, 4, 5, device=device, requires_grad=True)
        x = base * 1.0  # a non-leaf, so in-place is allowed
        out = fn(x, **kwargs, backend=backend)
        assert out is x
        (g,) = torch.autograd.grad(out.sum(), base)
        base64 = base.detach().double().requires_grad_()
        (g64,) = torch.autograd.grad(ref(base64, **kwargs).sum(), base64)
        assert_close(out, ref(base.detach().double(), **kwargs), name=f"{fn.__name__} forward")
        assert_close(g, g64, name=f"{fn.__name__} backward")
    x = torch.randn(4, device=device)
    y = ops.relu(x, inplace=True, backend=backend)
    assert y is x and (x >= 0).all()


@pytest.mark.parametrize("backend,device", backend_params())
def test_gradcheck(backend, device):
    x = (torch.randn(2, 3, 4, 5, dtype=torch.float64, device=device) * 2)
    x = (x + 0.1 * torch.sign(x)).requires_grad_()  # keep away from relu's kink at 0
    for name, (fast, _) in UNARY.items():
        gradcheck(lambda t: fast(t, backend), (x,))
    w = torch.rand(3, dtype=torch.float64, device=device, requires_grad=True)
    gradcheck(lambda t, ww: ops.prelu(t, ww, backend=backend), (x, w))
    gradcheck(lambda t: ops.maxout(t, 3, dim=1, backend=backend), (x,))


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("num_parameters", [1, 5])
def test_prelu(backend, device, num_parameters):
    x = torch.randn(3, 5, 7, 2, device=device, requires_grad=True)
    w = (torch.rand(num_parameters, device=device) * 0.5).requires_grad_()
    y = ops.prelu(x, w, backend=backend)
    gy = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, w), gy)
    x64, w64 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    y64 = F.prelu(x64, w64)
    gx64, gw64 = torch.autograd.grad(y64, (x64, w64), gy.double())
    assert_close(y, y64)
    assert_close(gx, gx64)
    assert_close(gw, gw64, reduction=x.numel() // num_parameters, name="prelu weight grad")


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("shape,k,dim", [((3, 12, 5, 3), 3, 1), ((4, 10), 2, 1), ((2, 3, 8), 4, -1), ((6, 7), 1, 0)])
def test_maxout(backend, device, shape, k, dim):
    x = torch.randn(shape, device=device, requires_grad=True)
    y = ops.maxout(x, k, dim, backend=backend)
    gy = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, gy)
    x2 = x.detach().clone().requires_grad_()
    y_ref = ops.maxout(x2, k, dim, backend="reference")
    (gx_ref,) = torch.autograd.grad(y_ref, x2, gy)
    assert torch.equal(y, y_ref) and torch.equal(gx, gx_ref)


@pytest.mark.parametrize("backend,device", backend_params())
def test_step(backend, device):
    x = torch.tensor([-2.0, 0.0, 3.0, -0.0, 1e-30], device=device, requires_grad=True)
    y = ops.step(x, 0.5, backend=backend)
    assert y.tolist() == [0.0, 0.5, 1.0, 0.5, 1.0]
    # differentiable with a zero derivative (the perceptron's output joins a graph without a detach)
    (gx,) = torch.autograd.grad((y * torch.arange(1.0, 6.0, device=device)).sum(), x)
    assert gx.tolist() == [0.0] * 5


@pytest.mark.parametrize("backend,device", backend_params())
def test_empty(backend, device):
    for name, (fast, ref) in UNARY.items():
        x = torch.empty(0, 3, 4, device=device, requires_grad=True)
        y = fast(x, backend)
        assert y.shape == x.shape
        y.sum().backward()
        assert x.grad.shape == x.shape


def test_modules_match_torch_and_load_state_dict():
    x = torch.randn(4, 6, 5, 5)
    pairs = [(fastcnn.nn.ReLU(), torch.nn.ReLU()), (fastcnn.nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
             (fastcnn.nn.ELU(0.3), torch.nn.ELU(0.3)), (fastcnn.nn.Sigmoid(), torch.nn.Sigmoid()),
             (fastcnn.nn.Tanh(), torch.nn.Tanh()), (fastcnn.nn.Softplus(2.0, 5.0), torch.nn.Softplus(2.0, 5.0)),
             (fastcnn.nn.PReLU(6, 0.1), torch.nn.PReLU(6, 0.1))]
    for fast, ref in pairs:
        assert_close(fast(x), ref(x.double()) if not isinstance(ref, torch.nn.PReLU) else ref.double()(x.double()),
                     name=type(fast).__name__)
        assert type(fast).from_torch(ref).state_dict().keys() == ref.state_dict().keys()
    torch.nn.PReLU(6).load_state_dict(fastcnn.nn.PReLU(6, 0.3).state_dict())
    assert fastcnn.nn.Maxout(2)(x).shape == (4, 3, 5, 5)


def test_bad_input_names_the_argument():
    with pytest.raises(TypeError, match="input"):
        ops.relu(torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="input"):
        ops.sigmoid([1.0, 2.0])
    with pytest.raises(ValueError, match="weight"):
        ops.prelu(torch.randn(2, 3, 4), torch.rand(2))
    with pytest.raises(TypeError, match="weight"):
        ops.prelu(torch.randn(2, 3, 4), torch.rand(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="pool_size"):
        ops.maxout(torch.randn(2, 5), 2)
    with pytest.raises(ValueError, match="dim"):
        ops.maxout(torch.randn(2, 4), 2, dim=3)
    with pytest.raises(ValueError, match="inplace"):
        ops.relu(torch.randn(3, requires_grad=True), inplace=True)
    with pytest.raises(ValueError, match="beta"):
        ops.softplus(torch.randn(3), beta=0)
    with pytest.raises(ValueError, match="backend"):
        ops.relu(torch.randn(3), backend="tpu")
    with pytest.raises(ValueError, match="backend"):
        ops.relu(torch.randn(3), backend="cuda")  # CPU tensor on the GPU-only backend


@pytest.mark.parametrize("offset", [0, 3])
def test_cpu_streaming_stores_large_outputs(isa, offset):  # noqa: F811
    # Outputs of 16 MB and more take the non-temporal store path; an offset output misaligns it.
    from fastcnn.contracts import kernels

    n = (16 << 20) // 4 + 37
    x = torch.randn(n)
    out = torch.empty(n + offset)[offset:]
    y = kernels.activation_forward["cpu"](x, "tanh", out=out)
    assert y is out
    assert_close(y, torch.tanh(x.double()), name="tanh streamed")
    gy = torch.randn(n)
    gx = kernels.activation_backward["cpu"](gy, y, "tanh", 0.0, 0.0, True)
    assert_close(gx, gy.double() * (1 - y.double() ** 2), name="tanh backward streamed")
