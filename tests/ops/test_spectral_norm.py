"""spectral_normalize (fastcnn/ops/spectral_norm.py) and fastcnn.nn.spectral_norm against torch's
spectral norm on odd shapes, per backend: the fused cpu kernels (csrc/host/spectral_norm.cpp), the
composed matmul / normalize steps elsewhere (triton under its interpreter, cuda on a GPU)."""
import pytest
import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import ops
from fastcnn.contracts import kernels
from helpers import assert_close, backend_params, gradcheck

# (weight shape, dim): conv weights normalised over out (dim 0) and, as for a transposed conv, dim 1;
# a vector, a matrix along its last dim, a single weight, a wide and a tall matrix.
CASES = [((5, 3, 4, 4), 0), ((3, 7, 2, 3), 1), ((6,), 0), ((4, 9), -1), ((1, 1, 1, 1), 0), ((2, 33), 0),
         ((37, 2), 0)]


def _unit(n, dtype, generator):
    return F.normalize(torch.randn(n, dtype=torch.float64, generator=generator), dim=0).to(dtype)


def _inputs(shape, dim, dtype, device):
    g = torch.Generator().manual_seed(sum(shape) + dim)
    w = torch.randn(shape, dtype=torch.float64, generator=g).to(dtype)
    rows = shape[dim]
    return w.to(device), _unit(rows, dtype, g).to(device), _unit(w.numel() // rows, dtype, g).to(device)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("iterations", [0, 1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_spectral_normalize_matches_torch(backend, device, iterations, dtype):
    for shape, dim in CASES:
        w, u, v = _inputs(shape, dim, dtype, device)
        w.requires_grad_(True)
        w_ref = w.detach().double().requires_grad_(True)
        u_ref, v_ref = u.double().clone(), v.double().clone()  # (a copy for float64 too)
        y = ops.spectral_normalize(w, u, v, dim, iterations, backend=backend)
        y_ref = ops.spectral_normalize(w_ref, u_ref, v_ref, dim, iterations, backend="reference")
        products = w.numel() * max(iterations, 1)  # each product sums a row or column; sigma sums them again
        assert_close(y, y_ref, reduction=products, name=f"{shape} dim {dim} output")
        assert_close(u, u_ref, reduction=products, name=f"{shape} dim {dim} u")
        assert_close(v, v_ref, reduction=products, name=f"{shape} dim {dim} v")
        gy = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
        g, = torch.autograd.grad(y, w, gy.to(dtype).to(device))
        g_ref, = torch.autograd.grad(y_ref, w_ref, gy)
        sigma = (w_ref / y_ref).detach().flatten()[0].abs()
        # gy / sigma minus a rank-1 term: accurate relative to |gy| / sigma, not to the difference.
        assert_close(g, g_ref, reduction=products, scale=(gy.abs().max() / sigma).item(),
                     name=f"{shape} dim {dim} grad")


def test_spectral_normalize_leaves_u_v_alone_without_iterations():
    w, u, v = _inputs((4, 3, 3, 3), 0, torch.float32, "cpu")
    u0, v0 = u.clone(), v.clone()
    ops.spectral_normalize(w, u, v, 0, 0)
    assert torch.equal(u, u0) and torch.equal(v, v0)
    ops.spectral_normalize(w, u, v, 0, 1)
    assert not torch.equal(u, u0) and not torch.equal(v, v0)


@pytest.mark.parametrize("backend,device", backend_params())
def test_spectral_normalize_gradcheck(backend, device):
    # With iterations u and v would change between gradcheck's evaluations; the gradient holds them
    # constant either way, so 0 iterations checks exactly that gradient.
    for shape, dim in [((3, 2, 2, 2), 0), ((2, 3, 2), 1)]:
        w, u, v = _inputs(shape, dim, torch.float64, device)
        gradcheck(lambda w: ops.spectral_normalize(w, u, v, dim, 0, backend=backend), [w.requires_grad_(True)])


def test_spectral_normalize_is_one_kernel_call_each_way_on_cpu(monkeypatch):
    from fastcnn import _C

    calls = []
    for name in ("forward", "backward"):
        kernel = getattr(_C.spectral_norm, name)
        monkeypatch.setattr(_C.spectral_norm, name,
                            lambda *args, _k=kernel, _n=name: (calls.append(_n), _k(*args))[1])
    w, u, v = _inputs((4, 3, 3, 3), 0, torch.float32, "cpu")
    ops.spectral_normalize(w.requires_grad_(True), u, v, 0, 1, backend="cpu").sum().backward()
    assert calls == ["forward", "backward"]
    assert w.grad is not None


@pytest.mark.parametrize("bad,match", [
    (dict(weight=torch.zeros(0, 3)), "weight"),
    (dict(weight=torch.ones(2, 3, dtype=torch.int64)), "weight"),
    (dict(u=torch.ones(3)), "u"),
    (dict(u=torch.ones(2, dtype=torch.float64)), "u"),
    (dict(v=torch.ones(2)), "v"),
    (dict(v=[1.0, 2.0, 3.0]), "v"),
    (dict(dim=2), "dim"),
    (dict(dim=1.0), "dim"),
    (dict(n_power_iterations=-1), "n_power_iterations"),
    (dict(n_power_iterations=True), "n_power_iterations"),
    (dict(eps=-1.0), "eps"),
])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_spectral_normalize_rejects_bad_input(bad, match, backend):
    args = dict(weight=torch.ones(2, 3), u=torch.ones(2), v=torch.ones(3), dim=0, n_power_iterations=1, eps=1e-12)
    args.update(bad)
    with pytest.raises((TypeError, ValueError), match=match):
        ops.spectral_normalize(**args, backend=backend)


@pytest.mark.parametrize("module", ["Conv2d", "ConvTranspose2d", "Linear"])
def test_spectral_norm_module_matches_torch_over_training_steps(module):
    torch.manual_seed(0)
    make = {"Conv2d": lambda nn: nn.Conv2d(5, 7, 3), "ConvTranspose2d": lambda nn: nn.ConvTranspose2d(5, 7, 3),
            "Linear": lambda nn: nn.Linear(11, 6)}[module]
    ours, ref = make(fastcnn.nn), make(torch.nn)
    ref.load_state_dict(ours.state_dict())
    fastcnn.nn.spectral_norm(ours)
    torch.nn.utils.spectral_norm(ref)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 6, 6) if module != "Linear" else torch.randn(3, 11)
    reduction = ours.weight_orig.numel() + x[0].numel()
    for step in range(5):
        for m in (ours, ref):
            m.zero_grad()
        y, want = ours(x), ref(x)
        y.square().sum().backward()
        want.square().sum().backward()
        assert_close(y, want, reduction=reduction * (step + 1), name=f"step {step} output")
        assert_close(ours.weight_orig.grad, ref.weight_orig.grad, reduction=reduction * (step + 1),
                     name=f"step {step} weight grad")
    for key, value in ref.state_dict().items():
        assert_close(ours.state_dict()[key], value, reduction=reduction * 5, name=key)
