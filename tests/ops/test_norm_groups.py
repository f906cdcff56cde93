"""group_norm, layer_norm, instance_norm (one shared row-group kernel) and their modules against torch,
per backend on CPU tensors (cpu per ISA copy, triton under its interpreter; triton on a GPU), on odd
shapes, channels_last and non-contiguous input, empty batches, NaN/inf, float64 gradcheck."""
import pytest
import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import ops
from helpers import assert_close, backend_params, gradcheck, isa  # noqa: F401  (isa is a fixture)
from nonfinite import assert_close_nan

# The ops have cpu and triton kernels (no cuda backend kernel yet).
BACKENDS = [p for p in backend_params() if p.values[0] != "cuda"]
NAN, INF = float("nan"), float("inf")


def _rand(shape, seed, dtype=torch.float64, device="cpu", scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale + shift).to(dtype).to(device)


# (name, fastcnn call, torch call, input shape, parameter shape, row length): C not a multiple of
# the vector width, odd H/W, batch 1, one channel, one group, 2-D and 3-D inputs.
def _cases():
    return [
        ("group_norm", lambda f, x, w, b: f.group_norm(x, 3, w, b, 1e-5), (2, 6, 5, 7), (6,), 2 * 35),
        ("group_norm", lambda f, x, w, b: f.group_norm(x, 1, w, b, 1e-3), (1, 5, 3, 3), (5,), 5 * 9),
        ("group_norm", lambda f, x, w, b: f.group_norm(x, 5, w, b), (3, 10), (10,), 2),
        ("group_norm", lambda f, x, w, b: f.group_norm(x, 2, w, b), (2, 18, 9), (18,), 81),
        ("instance_norm", lambda f, x, w, b: f.instance_norm(x, weight=w, bias=b), (2, 3, 5, 7), (3,), 35),
        ("instance_norm", lambda f, x, w, b: f.instance_norm(x, weight=w, bias=b, eps=1e-3), (1, 1, 11), (1,), 11),
        ("layer_norm", lambda f, x, w, b: f.layer_norm(x, (5, 7), w, b), (2, 3, 5, 7), (5, 7), 35),
        ("layer_norm", lambda f, x, w, b: f.layer_norm(x, (19,), w, b), (4, 19), (19,), 19),
        ("layer_norm", lambda f, x, w, b: f.layer_norm(x, (1, 2), w, b), (5, 1, 2), (1, 2), 2),
    ]


CASES = _cases()
IDS = [f"{c[0]}-{'x'.join(map(str, c[2]))}" for c in CASES]


class _Backend:
    """fastcnn.ops with backend= bound, so one lambda serves fastcnn and torch.nn.functional."""

    def __init__(self, backend):
        self.backend = backend

    def __getattr__(self, name):
        op = getattr(ops, name)
        return lambda *a, **k: op(*a, backend=self.backend, **k)


def _compare(backend, device, case, dtype, affine=True, prepare=None):
    name, call, shape, pshape, row = case
    x = _rand(shape, 1, dtype, device, scale=2.0, shift=0.5)
    if prepare is not None:
        x = prepare(x)
    w = (_rand(pshape, 2, dtype, device) + 1.5) if affine else None
    b = _rand(pshape, 3, dtype, device) if affine else None
    params = [t.requires_grad_(True) for t in (x, w, b) if t is not None]
    y = call(_Backend(backend), x, w, b)
    ref = [t.detach().double().requires_grad_(True) for t in params]
    yr = call(F, *(ref + [None, None])[:3])
    assert_close(y, yr, reduction=row, name=f"{name} output")
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        assert y.is_contiguous(memory_format=torch.channels_last) == yr.is_contiguous(memory_format=torch.channels_last)
    gy = _rand(y.shape, 4, torch.float64, device)
    grads = torch.autograd.grad(y, params, gy.to(dtype))
    grads_ref = torch.autograd.grad(yr, ref, gy)
    # grad_input = rstd (g - mean(g) - xhat mean(g xhat)): the terms cancel, so the float32 result
    # is accurate relative to |w| |gy| rstd, not to itself.
    input_scale = (gy.abs().max() * (w.abs().max() if affine else 1.0) / 0.5).item()
    for gname, g, gr in zip(("grad_input", "grad_weight", "grad_bias"), grads, grads_ref):
        assert_close(g, gr, reduction=row * max(1, x.numel() // max(1, row)), name=f"{name} {gname}",
                     scale=input_scale if gname == "grad_input" else None)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_matches_torch(backend, device, case, dtype):
    _compare(backend, device, case, dtype)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[6]], ids=["group", "instance", "layer"])
def test_without_affine_channels_last_and_views(backend, device, case):
    _compare(backend, device, case, torch.float32, affine=False)
    if len(case[2]) == 4:
        _compare(backend, device, case, torch.float32, prepare=lambda t: t.contiguous(memory_format=torch.channels_last))
    # a non-contiguous view with a storage offset
    name, call, shape, pshape, row = case
    wide = list(shape)
    wide[-1] = 2 * shape[-1] + 1
    _compare(backend, device, case, torch.float32, prepare=lambda t: _rand(wide, 9, t.dtype, t.device)[..., 1::2])


@pytest.mark.parametrize("isa_case", [0, 2, 7], ids=["group", "group-2d", "layer"])
def test_cpu_each_isa(isa, isa_case):
    _compare("cpu", "cpu", CASES[isa_case], torch.float32)


def test_cpu_long_rows_float32_stay_accurate():
    """Rows longer than a vector chunk, mean far from 0: statistics accumulate in double."""
    x = _rand((2, 4, 70, 90), 5, torch.float32, scale=0.5, shift=100.0)
    assert_close(ops.group_norm(x, 2, backend="cpu"), F.group_norm(x.double(), 2), reduction=2 * 6300,
                 scale=1.0)
    assert_close(ops.layer_norm(x, (4, 70, 90), backend="cpu"), F.layer_norm(x.double(), (4, 70, 90)),
                 reduction=25200, scale=1.0)


GRADCHECK_CASES = [  # small: gradcheck differentiates every element numerically (slow under the interpreter)
    ("group_norm", lambda f, x, w, b: f.group_norm(x, 2, w, b), (1, 4, 2, 3), (4,), 12),
    ("instance_norm", lambda f, x, w, b: f.instance_norm(x, weight=w, bias=b), (2, 2, 5), (2,), 5),
    ("layer_norm", lambda f, x, w, b: f.layer_norm(x, (5,), w, b), (3, 5), (5,), 5),
]


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck(backend, device, case):
    name, call, shape, pshape, row = case
    x = _rand(shape, 11, device=device).requires_grad_(True)
    w = (_rand(pshape, 12, device=device) + 1.5).requires_grad_(True)
    b = _rand(pshape, 13, device=device).requires_grad_(True)
    gradcheck(lambda *t: call(_Backend(backend), *t), (x, w, b))


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_instance_norm_running_stats_and_eval(backend, device):
    x = _rand((3, 4, 5, 3), 21, torch.float32, device, scale=2.0, shift=1.0)
    rm, rv = _rand((4,), 22, torch.float32, device), _rand((4,), 23, torch.float32, device).abs() + 0.5
    rm_ref, rv_ref = rm.double().clone(), rv.double().clone()
    y = ops.instance_norm(x, rm, rv, momentum=0.3, backend=backend)
    yr = F.instance_norm(x.double(), rm_ref, rv_ref, momentum=0.3)
    assert_close(y, yr, reduction=15)
    assert_close(rm, rm_ref, reduction=45, name="running_mean")
    assert_close(rv, rv_ref, reduction=45, name="running_var")
    # use_input_stats=False normalises with the running statistics (gradient too)
    xg = x.clone().requires_grad_(True)
    xr = x.double().requires_grad_(True)
    y = ops.instance_norm(xg, rm, rv, use_input_stats=False, backend=backend)
    yr = F.instance_norm(xr, rm_ref, rv_ref, use_input_stats=False)
    assert_close(y, yr)
    assert_close(torch.autograd.grad(y.sum(), xg)[0], torch.autograd.grad(yr.sum(), xr)[0])


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_empty_batch(backend, device):
    for call, shape, pshape in ((lambda f, x, w: f.group_norm(x, 2, w, w), (0, 4, 3, 3), (4,)),
                                (lambda f, x, w: f.instance_norm(x, weight=w, bias=w), (0, 4, 3), (4,)),
                                (lambda f, x, w: f.layer_norm(x, (3,), w, w), (0, 3), (3,)),
                                (lambda f, x, w: f.group_norm(x, 2, w, w), (2, 4, 0, 3), (4,))):
        x = torch.zeros(shape, device=device, requires_grad=True)
        w = torch.ones(pshape, device=device, requires_grad=True)
        y = call(_Backend(backend), x, w)
        assert y.shape == x.shape
        gx, gw = torch.autograd.grad(y.sum(), (x, w))
        assert gx.shape == x.shape and torch.equal(gw, torch.zeros_like(w))


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # the triton interpreter's numpy, on NaN
@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[6]], ids=["group", "instance", "layer"])
def test_nan_and_inf_propagate_as_torch(backend, device, case):
    name, call, shape, pshape, row = case
    x = _rand(shape, 31, device=device)
    x.view(-1)[0], x.view(-1)[-1] = INF, NAN
    x.requires_grad_(True)
    w, b = _rand(pshape, 32, device=device), _rand(pshape, 33, device=device)
    xr = x.detach().clone().requires_grad_(True)
    y, yr = call(_Backend(backend), x, w, b), call(F, xr, w, b)
    assert_close_nan(y, yr, reduction=row)
    assert torch.isnan(yr).any() and not torch.isnan(yr).all()  # spreads to its rows only
    gy = _rand(y.shape, 34, device=device)
    assert_close_nan(torch.autograd.grad(y, x, gy)[0], torch.autograd.grad(yr, xr, gy)[0], reduction=row,
                     name="grad_input")


def test_bad_input_rejected_naming_the_argument():
    x = torch.randn(2, 6, 3, 3)
    with pytest.raises(ValueError, match="num_groups"):
        ops.group_norm(x, 4)
    with pytest.raises(TypeError, match="num_groups"):
        ops.group_norm(x, 2.0)
    with pytest.raises(ValueError, match="weight"):
        ops.group_norm(x, 2, torch.ones(5))
    with pytest.raises(TypeError, match="input"):
        ops.group_norm(x.half(), 2)
    with pytest.raises(ValueError, match="input"):
        ops.group_norm(torch.randn(6), 2)
    with pytest.raises(ValueError, match="normalized_shape"):
        ops.layer_norm(x, (4, 3))
    with pytest.raises(TypeError, match="normalized_shape"):
        ops.layer_norm(x, "3")
    with pytest.raises(ValueError, match="bias"):
        ops.layer_norm(x, (3,), None, torch.ones(3, 1))
    with pytest.raises(TypeError, match="bias"):
        ops.layer_norm(x, (3,), None, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="eps"):
        ops.layer_norm(x, (3,), eps=-1.0)
    with pytest.raises(ValueError, match="input"):
        ops.instance_norm(torch.randn(2, 6))
    with pytest.raises(ValueError, match="input"):
        ops.instance_norm(torch.randn(2, 6, 1, 1))
    with pytest.raises(ValueError, match="running_mean"):
        ops.instance_norm(x, use_input_stats=False)
    with pytest.raises(ValueError, match="running_var"):
        ops.instance_norm(x, torch.zeros(6))
    with pytest.raises(TypeError, match="use_input_stats"):
        ops.instance_norm(x, use_input_stats=1)


# ---- modules ------------------------------------------------------------------------------------
MODULES = [
    ("GroupNorm", (3, 6), {}, (2, 6, 5, 3)),
    ("GroupNorm", (2, 4), dict(affine=False, eps=1e-3), (3, 4)),
    ("LayerNorm", ((5, 3),), {}, (2, 6, 5, 3)),
    ("LayerNorm", (3,), dict(elementwise_affine=False), (4, 3)),
    ("LayerNorm", (3,), dict(bias=False), (4, 3)),
    ("InstanceNorm2d", (6,), {}, (2, 6, 5, 3)),
    ("InstanceNorm2d", (6,), dict(affine=True, track_running_stats=True, momentum=0.2), (2, 6, 5, 3)),
    ("InstanceNorm2d", (6,), dict(affine=True), (6, 5, 3)),
    ("InstanceNorm1d", (4,), dict(affine=True, track_running_stats=True), (3, 4, 7)),
]


@pytest.mark.parametrize("cls,args,kwargs,shape", MODULES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODULES)])
def test_module_matches_torch_and_state_dict_round_trip(cls, args, kwargs, shape):
    theirs = getattr(torch.nn, cls)(*args, **kwargs)
    ours = getattr(fastcnn.nn, cls)(*args, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p))
    ours.load_state_dict(theirs.state_dict())
    adopted = getattr(fastcnn.nn, cls).from_torch(theirs.__class__(*args, **kwargs).requires_grad_(False))
    adopted.load_state_dict(theirs.state_dict())
    x = torch.randn(shape)
    for mode in ("train", "eval"):
        for m in (ours, theirs, adopted):
            m.train(mode == "train")
        expected = theirs(x)
        assert_close(ours(x), expected, reduction=x.numel())
        assert_close(adopted(x), expected, reduction=x.numel())
    for key, value in theirs.state_dict().items():  # running statistics tracked the same way
        if value.is_floating_point():
            assert_close(ours.state_dict()[key], value, reduction=x.numel(), name=key)
        else:
            assert torch.equal(ours.state_dict()[key], value), key
    theirs.load_state_dict(ours.state_dict())


def test_from_torch_shares_parameters_and_trains():
    theirs = torch.nn.GroupNorm(2, 4)
    ours = fastcnn.nn.GroupNorm.from_torch(theirs, backend="cpu")
    assert ours.weight is theirs.weight and ours.backend == "cpu"
    x = torch.randn(2, 4, 3, 3)
    ours(x).square().sum().backward()
    assert theirs.weight.grad is not None and theirs.weight.grad.abs().sum() > 0
