"""Losses (functional and modules) against torch on odd shapes, per backend."""
import functools
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import fastcnn
from fastcnn import ops
from helpers import assert_close, backend_params, gradcheck, isa  # noqa: F401

REDUCTIONS = ["none", "mean", "sum"]
# (input shape): (N, C), segmentation (N, C, H, W), (N, C, L), unbatched (C,), C = 1, batch 1.
CLASS_SHAPES = [(5, 7), (2, 3, 5, 3), (3, 4, 7), (6,), (4, 1), (1, 21, 3, 5)]
TRITON_CLASS_SHAPES = [(5, 7), (2, 3, 3, 2)]


def _class_inputs(shape, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed + sum(shape))
    C = shape[0] if len(shape) == 1 else shape[1]
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype).to(device)
    tshape = () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])
    t = torch.randint(0, C, tshape, generator=g)
    if t.numel() > 2:
        t.view(-1)[1] = -100  # one ignored element
    w = (torch.rand(C, generator=g, dtype=torch.float64) + 0.5).to(dtype).to(device)
    return x, t.to(device), w


def _check_loss(fn, ref, x, args, kwargs, reduction_len, name):
    x = x.detach().requires_grad_(True)
    xr = x.detach().double().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    ref_args = [a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    ref_kwargs = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in kwargs.items()
                  if k != "backend"}
    out_ref = ref(xr, *ref_args, **ref_kwargs)
    assert_close(out, out_ref, reduction=reduction_len, name=f"{name} output")
    gy = torch.randn(out_ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).to(x.device)
    (gx,) = torch.autograd.grad(out, x, gy.to(x.dtype))
    (gxr,) = torch.autograd.grad(out_ref, xr, gy)
    assert_close(gx, gxr, reduction=reduction_len, name=f"{name} grad_input")


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_cross_entropy_matches_torch(backend, device, reduction, dtype):
    for shape in (TRITON_CLASS_SHAPES if backend == "triton" else CLASS_SHAPES):
        x, t, w = _class_inputs(shape, dtype, device)
        n = x.numel()
        combos = [(None, 0.0), (w, 0.25)] if backend == "triton" else [(a, e) for a in (None, w) for e in (0.0, 0.25)]
        for weight, smoothing in combos:
            _check_loss(ops.cross_entropy, F.cross_entropy, x, (t,),
                        dict(weight=weight, reduction=reduction, label_smoothing=smoothing, backend=backend), n,
                        f"cross_entropy{shape} w={weight is not None} e={smoothing}")


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(backend, device, reduction):
    for shape in (TRITON_CLASS_SHAPES if backend == "triton" else CLASS_SHAPES):
        x, t, w = _class_inputs(shape, torch.float32, device)
        for weight in (None, w):
            _check_loss(ops.nll_loss, F.nll_loss, x, (t,), dict(weight=weight, reduction=reduction, ignore_index=-100,
                                                             backend=backend), x.numel(), f"nll_loss{shape}")


def test_cross_entropy_each_isa(isa):
    for shape in CLASS_SHAPES + [(3, 1000), (2, 21, 9, 7)]:
        for dtype in (torch.float32, torch.float64):
            x, t, w = _class_inputs(shape, dtype, "cpu")
            _check_loss(ops.cross_entropy, F.cross_entropy, x, (t,), dict(weight=w, label_smoothing=0.1,
                                                                          backend="cpu"), x.numel(), "ce")


def test_cross_entropy_custom_ignore_index_and_all_ignored():
    x, t, _ = _class_inputs((6, 5), torch.float64, "cpu")
    t[:3] = 2
    _check_loss(ops.cross_entropy, F.cross_entropy, x, (t,), dict(ignore_index=2), 30, "ignore_index=2")
    everything_ignored = torch.full((6,), -100)
    ours = ops.cross_entropy(x, everything_ignored)
    assert torch.isnan(ours) and torch.isnan(F.cross_entropy(x, everything_ignored))  # 0 / 0 as torch


@pytest.mark.parametrize("backend,device", backend_params())
def test_class_losses_gradcheck(backend, device):
    # triton runs under its interpreter here: smaller inputs (gradcheck runs the op twice per element)
    for shape in ([(2, 3), (1, 3, 2, 1)] if backend == "triton" else [(3, 4), (2, 3, 2, 2)]):
        x, t, w = _class_inputs(shape, torch.float64, device)
        x.requires_grad_(True)
        for reduction in REDUCTIONS:
            gradcheck(lambda x: ops.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.2,
                                                  backend=backend), [x])
            gradcheck(lambda x: ops.nll_loss(x, t, w, reduction=reduction, backend=backend), [x])


def test_class_loss_modules_match_torch():
    x, t, w = _class_inputs((2, 4, 3, 3), torch.float32, "cpu")
    t[t == -100] = 1  # the modules below ignore class 1 instead
    for ours, ref in ((fastcnn.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1, ignore_index=1),
                       torch.nn.CrossEntropyLoss(weight=w.double(), label_smoothing=0.1, ignore_index=1)),
                      (fastcnn.nn.NLLLoss(weight=w, reduction="sum"), torch.nn.NLLLoss(weight=w.double(), reduction="sum"))):
        assert list(ours.state_dict()) == list(ref.state_dict())
        assert_close(ours(x, t), ref(x.double(), t), reduction=x.numel())


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 12), s=st.integers(1, 10), reduction=st.sampled_from(REDUCTIONS),
       smoothing=st.sampled_from([0.0, 0.3]))
def test_cross_entropy_hypothesis(n, c, s, reduction, smoothing):
    x, t, w = _class_inputs((n, c, s), torch.float32, "cpu", seed=7)
    _check_loss(ops.cross_entropy, F.cross_entropy, x, (t,), dict(weight=w, reduction=reduction,
                                                                  label_smoothing=smoothing), x.numel(), "ce")


def test_class_losses_reject_bad_input():
    x, t = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    with pytest.raises(TypeError, match="target"):
        ops.cross_entropy(x, t.to(torch.int32))
    with pytest.raises(TypeError, match="target"):  # class probabilities: input's dtype
        ops.cross_entropy(x, torch.rand(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="target"):
        ops.cross_entropy(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="target"):
        ops.cross_entropy(x, torch.tensor([0, 1, 3, 1]))
    with pytest.raises(ValueError, match="target"):
        ops.nll_loss(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="weight"):
        ops.cross_entropy(x, t, weight=torch.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        ops.nll_loss(x, t, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        ops.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(TypeError, match="input"):
        ops.cross_entropy(x.long(), t)
    with pytest.raises(ValueError, match="input"):
        ops.cross_entropy(torch.tensor(1.0), torch.tensor(0))


POINTWISE_SHAPES = [(5, 7), (2, 3, 5, 3), (1,), (3, 1, 17)]


def _pointwise_cases(shape, dtype, device):
    """(name, op, reference, input, kwargs) for every element-wise loss, inputs inside each domain."""
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    w_full = torch.rand(shape, generator=g, dtype=torch.float64) + 0.1
    w_last = torch.rand(shape[-1], generator=g, dtype=torch.float64) + 0.1
    to = lambda t: t.to(dtype).to(device)  # noqa: E731
    return [
        ("mse", ops.mse_loss, F.mse_loss, to(x), dict(target=to(y))),
        ("mse weighted", ops.mse_loss, F.mse_loss, to(x), dict(target=to(y), weight=to(w_full))),
        ("bce", ops.binary_cross_entropy, F.binary_cross_entropy, to(torch.sigmoid(x)), dict(target=to(y))),
        ("bce weighted", ops.binary_cross_entropy, F.binary_cross_entropy, to(torch.sigmoid(x)),
         dict(target=to(y), weight=to(w_last))),
        ("bce_logits", ops.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, to(x * 4),
         dict(target=to(y))),
        ("bce_logits pos_weight", ops.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits,
         to(x * 4), dict(target=to(y), weight=to(w_last), pos_weight=to(w_last + 0.5))),
    ]


def _check_pointwise_case(name, op, ref, x, kwargs, reduction, backend):
    target = kwargs["target"]
    rest = {k: v for k, v in kwargs.items() if k != "target"}
    _check_loss(op, ref, x, (target,), dict(rest, reduction=reduction, backend=backend), x.numel(), name)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_pointwise_losses_match_torch(backend, device, reduction, dtype):
    for shape in (POINTWISE_SHAPES[:2] if backend == "triton" else POINTWISE_SHAPES):
        for case in _pointwise_cases(shape, dtype, device):
            _check_pointwise_case(*case, reduction, backend)


def test_pointwise_losses_each_isa(isa):
    for shape in POINTWISE_SHAPES + [(4, 37)]:
        for case in _pointwise_cases(shape, torch.float32, "cpu"):
            _check_pointwise_case(*case, "none", "cpu")


def test_bce_with_logits_is_stable_for_large_logits():
    x = torch.tensor([-200.0, -30.0, 0.0, 30.0, 200.0])
    y = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0])
    ours = ops.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert torch.isfinite(ours).all()
    assert_close(ours, F.binary_cross_entropy_with_logits(x.double(), y.double(), reduction="none"), name="stable")


@pytest.mark.parametrize("backend,device", backend_params())
def test_pointwise_losses_gradcheck(backend, device):
    for name, op, _, x, kwargs in _pointwise_cases((2, 3) if backend == "triton" else (3, 4), torch.float64, device):
        x = x.clone().requires_grad_(True)
        for reduction in REDUCTIONS:
            gradcheck(lambda x: op(x, reduction=reduction, backend=backend, **kwargs), [x])


def test_pointwise_loss_modules_match_torch():
    x, y, w = torch.randn(4, 5), torch.rand(4, 5), torch.rand(5)
    pairs = [(fastcnn.nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum"), x),
             (fastcnn.nn.BCELoss(weight=w), torch.nn.BCELoss(weight=w.double()), torch.sigmoid(x)),
             (fastcnn.nn.BCEWithLogitsLoss(weight=w, pos_weight=w + 1),
              torch.nn.BCEWithLogitsLoss(weight=w.double(), pos_weight=w.double() + 1), x)]
    for ours, ref, inp in pairs:
        assert list(ours.state_dict()) == list(ref.state_dict())
        assert_close(ours(inp, y), ref(inp.double(), y.double()), reduction=inp.numel())


def test_pointwise_losses_reject_bad_input():
    x, y = torch.rand(3, 4), torch.rand(3, 4)
    with pytest.raises(ValueError, match="target"):
        ops.mse_loss(x, torch.rand(3, 5))
    with pytest.raises(TypeError, match="target"):
        ops.binary_cross_entropy(x, y.double())
    with pytest.raises(TypeError, match="target"):
        ops.binary_cross_entropy_with_logits(x, torch.ones(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="weight"):
        ops.mse_loss(x, y, weight=torch.ones(4))
    with pytest.raises(ValueError, match="pos_weight"):
        ops.binary_cross_entropy_with_logits(x, y, pos_weight=torch.ones(5))
    with pytest.raises(ValueError, match="reduction"):
        ops.binary_cross_entropy(x, y, reduction="mean ")
    with pytest.raises(ValueError, match="target"):
        ops.binary_cross_entropy_with_logits(x, torch.rand(3, 5, requires_grad=True))


# Every pointwise loss differentiates its target too, as torch's do (the OpInfo samples all ask it).
TARGET_GRAD_CASES = {
    "mse": lambda f, x, t, w, pw, r: f.mse_loss(x, t, reduction=r, **({"weight": w.expand_as(x)} if w is not None else {})),
    "bce": lambda f, x, t, w, pw, r: f.binary_cross_entropy(x.sigmoid(), t, weight=w, reduction=r),
    "bce_logits": lambda f, x, t, w, pw, r: f.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw,
                                                                               reduction=r),
}


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("loss", list(TARGET_GRAD_CASES))
@pytest.mark.parametrize("reduction,weighted", [("mean", False), ("sum", True), ("none", True)])
def test_pointwise_loss_target_gradient(backend, device, loss, reduction, weighted):
    if backend == "triton" and reduction != "sum":
        pytest.skip("triton under the interpreter: one reduction")
    g = torch.Generator().manual_seed(3)
    shape = (3, 7)  # odd sizes: vector tails
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(device)
    t = torch.rand(shape, generator=g, dtype=torch.float64).to(device)
    w = torch.rand(7, generator=g, dtype=torch.float64).to(device) + 0.5 if weighted else None
    pw = torch.rand(7, generator=g, dtype=torch.float64).to(device) * 2 if weighted else None
    call = TARGET_GRAD_CASES[loss]
    fast = SimpleNamespace(**{n: functools.partial(getattr(ops, n), backend=backend)
                              for n in ("mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits")})
    outs = []
    for f in (fast, F):
        xl, tl_ = x.clone().requires_grad_(True), t.clone().requires_grad_(True)
        y = call(f, xl, tl_, w, pw, reduction)
        gy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=device).reshape(y.shape)
        outs.append(torch.autograd.grad(y, (xl, tl_), gy))
    for a, e in zip(*outs):
        assert_close(a, e, reduction=x.numel())
    gradcheck(lambda xx, tt: call(fast, xx, tt, w, pw, reduction),
              (x.clone().requires_grad_(True), t.clone().requires_grad_(True)), fast_mode=backend == "triton")


# cross_entropy with class-probability targets (a float tensor of input's shape), with label smoothing
# and class weights; the target is differentiated too.
SOFT_CE_CASES = [((3, 5), {}), ((7,), {"label_smoothing": 0.2}), ((2, 4, 3, 5), {"weight": True}),
                 ((1, 3, 1, 9), {"label_smoothing": 0.3, "weight": True})]


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape,kw", SOFT_CE_CASES, ids=[f"{s}-{kw}" for s, kw in SOFT_CE_CASES])
def test_cross_entropy_probability_targets(backend, device, dtype, reduction, shape, kw):
    if backend == "triton" and (reduction != "mean" or dtype == torch.float32):
        pytest.skip("triton under the interpreter: one reduction and dtype")
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(device, dtype)
    t = torch.rand(shape, generator=g, dtype=torch.float64).to(device, dtype)
    C = shape[1] if len(shape) > 1 else shape[0]
    kw = dict(kw)
    if kw.pop("weight", False):
        kw["weight"] = torch.rand(C, generator=g, dtype=torch.float64).to(device, dtype) + 0.5
    outs = []
    for fn in (functools.partial(ops.cross_entropy, backend=backend), F.cross_entropy):
        xl, tl_ = x.clone().requires_grad_(True), t.clone().requires_grad_(True)
        y = fn(xl, tl_, reduction=reduction, **kw)
        gy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=device).reshape(y.shape)
        outs.append((y,) + torch.autograd.grad(y, (xl, tl_), gy))
    for a, e in zip(*outs):
        assert_close(a, e, reduction=x.numel())
    if dtype == torch.float64:
        gradcheck(lambda xx, tt: ops.cross_entropy(xx, tt, reduction=reduction, backend=backend, **kw),
                  (x.clone().requires_grad_(True), t.clone().requires_grad_(True)), fast_mode=backend == "triton")


def test_cross_entropy_probability_targets_reject_bad_input():
    x = torch.randn(3, 5)
    with pytest.raises(ValueError, match="target"):
        ops.cross_entropy(x, torch.rand(3, 4))
    with pytest.raises(TypeError, match="target"):
        ops.cross_entropy(x, torch.rand(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="ignore_index"):
        ops.cross_entropy(x, torch.rand(3, 5), ignore_index=1)
    with pytest.raises(ValueError, match="weight"):
        ops.cross_entropy(x, torch.rand(3, 5), weight=torch.rand(4))
    with pytest.raises(ValueError, match="label_smoothing"):
        ops.cross_entropy(x, torch.rand(3, 5), label_smoothing=1.5)
