"""silu, gelu (exact and tanh), hardswish, hardsigmoid on every backend against the float64 reference:
odd shapes, layouts, in-place forms, NaN/inf, the kinks at +-3, each cpu ISA copy, float64 gradcheck,
modules and bad input. They extend the element-wise activation kernels (ACT_KIND), backward from the
saved input."""
import pytest
import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import ops
from helpers import assert_close, backend_params, gradcheck, isa  # noqa: F401  (isa is a fixture)
from nonfinite import assert_close_nan

SMOOTH = {
    "silu": (lambda x, b: ops.silu(x, backend=b), F.silu),
    "gelu": (lambda x, b: ops.gelu(x, backend=b), F.gelu),
    "gelu_tanh": (lambda x, b: ops.gelu(x, approximate="tanh", backend=b), lambda x: F.gelu(x, approximate="tanh")),
    "hardswish": (lambda x, b: ops.hardswish(x, backend=b), F.hardswish),
    # torch's float64 hardsigmoid backward multiplies by a float32 1/6; relu6(x + 3) / 6 is the same
    # function with an exact gradient (hardtanh's: gy strictly inside (-3, 3)).
    "hardsigmoid": (lambda x, b: ops.hardsigmoid(x, backend=b), lambda x: F.relu6(x + 3) / 6),
}
class _HardswishScalarRule(torch.autograd.Function):
    """F.hardswish whose gradient at NaN is the incoming gradient: torch's rule (its scalar loop and
    float32 vector loop; its float64 vector loop alone gives NaN)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.hardswish(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return torch.where(x <= -3, 0.0, torch.where(x < 3, gy * (x / 3 + 0.5), gy))


_hardswish_nan_gradient_is_gy = _HardswishScalarRule.apply
SHAPES = [(3, 5, 7, 9), (1, 1, 1, 1), (2, 3, 11), (37,), (0, 3)]
KINKS = [-3.0, 3.0, -3.0000002, 2.9999998, 0.0, -0.0]


def _check(name, backend, x):
    fast, ref = SMOOTH[name]
    if name == "hardswish" and torch.isnan(x).any():
        ref = _hardswish_nan_gradient_is_gy
    x = x.requires_grad_()
    y = fast(x, backend)
    gy = torch.randn(y.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(3)).to(x.device)
    (gx,) = torch.autograd.grad(y, x, gy)
    x64 = x.detach().double().requires_grad_()
    y64 = ref(x64)
    (gx64,) = torch.autograd.grad(y64, x64, gy.double())
    assert_close_nan(y, y64, name=f"{name} forward")
    # the derivative is evaluated at the input: gx is accurate relative to |gy|
    assert_close_nan(gx, gx64, scale=gy.abs().max().item() if gy.numel() else 1.0, name=f"{name} backward")


def _make(shape, dtype, device, layout="contiguous", seed=0):
    g = torch.Generator().manual_seed(seed)
    if layout == "strided":
        return (torch.randn(shape[:-1] + (shape[-1] * 2 + 1,), generator=g, dtype=dtype)[..., 1::2] * 3).to(device)
    x = torch.randn(shape, generator=g, dtype=dtype) * 3
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(device)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("name", sorted(SMOOTH))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_matches_reference(backend, device, name, dtype):
    for shape in SHAPES:
        _check(name, backend, _make(shape, dtype, device))
    _check(name, backend, torch.tensor(KINKS, dtype=dtype, device=device))


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_layouts(backend, device, layout):
    for name in SMOOTH:
        _check(name, backend, _make((2, 3, 5, 4), torch.float32, device, layout))


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_cpu_each_isa(isa, name):
    # a size that leaves a tail in every vector width; values that reach the tails of erfc and exp
    _check(name, "cpu", torch.linspace(-12, 12, 100003))
    _check(name, "cpu", torch.tensor([-100.0, -88.5, -20.0, -1e-6, 1e-6, 20.0, 88.5, 100.0] + KINKS))


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # the triton interpreter's numpy, on NaN
@pytest.mark.parametrize("backend,device", backend_params())
def test_nan_and_inf(backend, device):
    """As torch in float64 (float32 torch's vectorised gelu gives NaN for +inf, its float64 and the
    formula give +inf)."""
    x = torch.tensor([float("nan"), float("inf"), float("-inf"), 1.0, -4.0] * 4, dtype=torch.float64, device=device)
    for name in SMOOTH:
        _check(name, backend, x.clone())
        _check(name, backend, x.float())


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("name", ["silu", "hardswish", "hardsigmoid"])
def test_inplace(backend, device, name):
    fast = getattr(ops, name)
    ref = getattr(F, name)
    base = torch.randn(3, 4, 5, device=device, requires_grad=True)
    x = base * 1.0  # a non-leaf, so in place is allowed
    out = fast(x, inplace=True, backend=backend)
    assert out is x
    (g,) = torch.autograd.grad(out.sum(), base)
    base64 = base.detach().double().requires_grad_()
    (g64,) = torch.autograd.grad(ref(base64).sum(), base64)
    assert_close(out, ref(base.detach().double()), name=f"{name}_ forward")
    assert_close(g, g64, name=f"{name}_ backward (from the input kept before it was overwritten)")
    with pytest.raises(ValueError, match="inplace"):
        fast(torch.randn(3, requires_grad=True), inplace=True, backend=backend)


@pytest.mark.parametrize("backend,device", backend_params())
def test_gradcheck(backend, device):
    x = torch.randn(2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).to(device) * 2.5
    x = torch.where((x.abs() - 3).abs() < 0.05, x + 0.1, x).requires_grad_()  # away from the kinks at +-3
    for name, (fast, _) in SMOOTH.items():
        gradcheck(lambda t: fast(t, backend), (x,))


def test_bad_input_rejected_naming_the_argument():
    with pytest.raises(ValueError, match="approximate"):
        ops.gelu(torch.randn(3), approximate="erf")
    for fn in (ops.silu, ops.gelu, ops.hardswish, ops.hardsigmoid):
        with pytest.raises(TypeError, match="input"):
            fn(torch.arange(3))
        with pytest.raises(TypeError, match="input"):
            fn([1.0, 2.0])


@pytest.mark.parametrize("cls,args", [("SiLU", ()), ("SiLU", (True,)), ("GELU", ()), ("GELU", ("tanh",)),
                                      ("Hardswish", ()), ("Hardsigmoid", ())])
def test_modules_and_from_torch(cls, args):
    theirs = getattr(torch.nn, cls)(*args)
    ours = getattr(fastcnn.nn, cls)(*args)
    adopted = getattr(fastcnn.nn, cls).from_torch(theirs, backend="cpu")
    # fastcnn's modules print as torch's, marked with their package, plus non-default settings
    assert repr(ours) == f"fastcnn.nn.{repr(theirs)}"
    inner = repr(theirs)[len(cls) + 1:-1]
    assert repr(adopted) == f"fastcnn.nn.{cls}({inner + ', ' if inner else ''}backend='cpu')"
    x = torch.randn(2, 3, 5)
    expected = theirs(x.clone())
    assert_close(ours(x.clone()), expected)
    assert_close(adopted(x.clone()), expected)
    assert adopted.backend == "cpu"


# --- the cuda kernel source on the host emulation (CPU tensors; tests/cuda_host_emulator.py) -------
@pytest.fixture
def emulated_cuda(monkeypatch):
    import cuda_host_emulator
    from fastcnn.backends.cuda import activation as cuda_activation  # registers the kernels; launch bound at import
    cuda_host_emulator.emulate(monkeypatch, cuda_activation, public_ops=True)
    return "cuda"


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_emulated_cuda_matches_reference(emulated_cuda):
    for name in SMOOTH:
        for dtype in (torch.float32, torch.float64):
            _check(name, emulated_cuda, _make((3, 5, 7), dtype, "cpu"))
            _check(name, emulated_cuda, torch.tensor(KINKS + [float("nan"), float("inf"), float("-inf")], dtype=dtype))
