"""Every network of the zoo: published parameter count, output shape, only fastcnn compute inside,
forward and gradients equal to its torch twin, clear errors on a wrong input."""
from __future__ import annotations

import math

import pytest
import torch

from fastcnn import models
from helpers import assert_close
from zoo_checks import torch_compute_kernels, torch_compute_modules

LECTURE_MODELS = sorted("""perceptron mlp lenet alexnet hardnet r2d2 conv_autoencoder llnet vae dcgan_generator
dcgan_discriminator stylegan_xl_generator stylegan_xl_discriminator srresnet srgan_discriminator fcn32s fcn16s
fcn8s segnet segnet_basic pspnet pidnet_s""".split())
NAMES = models.list_models()


def test_the_zoo_holds_the_lecture_networks():
    assert models.list_models() == LECTURE_MODELS


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="known models: .*lenet"):
        models.get_model("lenett")


def test_unknown_size_is_rejected():
    with pytest.raises(ValueError, match="size: expected one of"):
        models.get_model("lenet", size="huge")


@pytest.mark.parametrize("name", NAMES)
def test_canonical_parameter_count_is_the_published_one(name):
    spec = models.model_spec(name)
    with torch.device("meta"):
        net, twin = models.get_model(name), models.get_twin(name)
    assert net.num_parameters() == spec.canonical_params
    assert twin.num_parameters() == spec.canonical_params
    assert list(net.state_dict()) == list(twin.state_dict())


def _shapes(out):
    if isinstance(out, torch.Tensor):
        return tuple(out.shape[1:])
    if isinstance(out, dict):
        return {k: _shapes(v) for k, v in out.items()}
    return tuple(_shapes(o) for o in out)


@pytest.mark.parametrize("name", NAMES)
def test_canonical_output_shape(name):
    """The torch twin on the meta device (no memory, no time) checks the canonical topology's
    output against the shape the network declares; the fastcnn forward at canonical size is a slow test."""
    with torch.device("meta"):
        twin = models.get_twin(name).eval()
        out = twin(twin.example_input(1, device="meta"))
    assert _shapes(out) == twin.output_shape


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_canonical_forward_runs_on_fastcnn(name):
    net = models.get_model(name).eval()
    with torch.no_grad():
        out = net(net.example_input(1))
    assert _shapes(out) == net.output_shape


@pytest.mark.parametrize("name", NAMES)
def test_only_fastcnn_compute_inside(name):
    torch.manual_seed(0)
    net = models.get_model(name, size="small").train()
    assert torch_compute_modules(net) == []
    x = net.example_input(2)

    def step():
        _scalar(net(x)).backward()

    assert torch_compute_kernels(step) == set()


@pytest.mark.parametrize("name", NAMES)
def test_wrong_input_is_a_clear_error(name):
    net = models.get_model(name, size="small")
    x = net.example_input(1)
    bad = x[..., :-1] if x.dim() > 2 else x[:, :-1]
    with pytest.raises(ValueError, match=rf"{name} \(small\) expects \[N, "):
        net(bad)
    with pytest.raises(TypeError, match="floating-point"):
        net(x.long())


def _scalar(out, weights=None):
    """A loss that touches every output element with its own fixed weight."""
    leaves = [out] if isinstance(out, torch.Tensor) else list(out.values()) if isinstance(out, dict) else list(out)
    leaves = [t for t in leaves if isinstance(t, torch.Tensor) and t.is_floating_point()]
    gen = torch.Generator().manual_seed(1)
    total = 0
    for t in leaves:
        w = torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.dtype)
        total = total + (t * w).sum()
    return total


def _no_dropout(net):
    for m in net.modules():
        if "Dropout" in type(m).__name__:
            m.p = 0.0
    return net


def _fan_in_depth(net):
    """Largest number of products summed into one output (fan-in) and the number of layers with
    weights: the scale of accumulated rounding through the network."""
    fan, depth = 1, 0
    for p in net.parameters():
        if p.dim() >= 2:
            fan, depth = max(fan, math.prod(p.shape[1:])), depth + 1
    return fan, max(depth, 1)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_twin_parity(name, dtype, mode):
    """fastcnn network vs its torch twin with the same weights and input (dropout off in train mode,
    so both compute the same function): output and every parameter's gradient. fp32 results are
    compared with the twin in fp64; the tolerance scales with fan-in x depth."""
    torch.manual_seed(0)
    net = _no_dropout(models.get_model(name, size="small").to(dtype))
    twin = _no_dropout(models.get_twin(name, size="small").double())
    twin.load_state_dict(net.state_dict())
    getattr(net, mode)(), getattr(twin, mode)()
    x = net.example_input(2, dtype=dtype)
    out, ref = net(x), twin(x.double())
    fan, depth = _fan_in_depth(net)
    for (k, o), (_, r) in zip(_leaves(out), _leaves(ref)):
        assert_close(o, r, reduction=fan * depth, name=f"output {k}")
    _scalar(out).backward()
    _scalar(ref).backward()
    grad_scale = _gradient_scales(twin)
    # A parameter's gradient also sums over every sample and position (N*H*W products), and training-mode
    # BatchNorm's statistics are sums of that length: the products summed into each gradient element.
    grad_reduction = fan * depth * (x.numel() // x.shape[1])
    for (pname, p), (_, q) in zip(net.named_parameters(), twin.named_parameters()):
        if p.requires_grad:
            assert (p.grad is None) == (q.grad is None), pname
            if p.grad is not None:
                assert_close(p.grad, q.grad, reduction=grad_reduction, scale=grad_scale[pname],
                             name=f"grad {pname}")
    twin_buffers = dict(twin.named_buffers())
    for (bname, b), (_, c) in zip(net.named_buffers(), twin.named_buffers()):
        if b.is_floating_point():
            assert_close(b, c, reduction=grad_reduction, scale=_buffer_scale(bname, twin_buffers),
                         name=f"buffer {bname}")


def _buffer_scale(name, buffers):
    """A BatchNorm running mean is a mean of N*H*W activations: its rounding is relative to their
    spread (sqrt of the running variance), not to the mean itself, which can be exactly 0 (a BN
    after a BN); other buffers are compared on their own scale (None)."""
    owner, _, leaf = name.rpartition(".")
    var = buffers.get(f"{owner}.running_var" if owner else "running_var")
    if leaf != "running_mean" or var is None:
        return None
    return var.detach().double().clamp_min(0).sqrt().pow(2).mean().sqrt().item()


def _gradient_scales(net):
    """{parameter name: the scale its gradient is compared on}: the rms of the gradients of its module's
    parameters or of all the network's, whichever is larger. A gradient that is a long cancelling sum is
    accurate relative to the gradients flowing through its layer and the network, not to itself: a conv
    bias before a training-mode BatchNorm has a gradient of exactly 0 (rounding noise on both sides); a
    shared PReLU slope sums N*C*H*W products whose magnitudes are 10^4 times their sum."""
    grads = {name: p.grad.detach().double().flatten() for name, p in net.named_parameters() if p.grad is not None}
    if not grads:
        return {}
    rms = lambda gs: torch.cat(gs).pow(2).mean().sqrt().item()  # noqa: E731
    overall = rms(list(grads.values()))
    owner = lambda name: name.rpartition(".")[0]  # noqa: E731
    return {name: max(overall, rms([g for other, g in grads.items() if owner(other) == owner(name)]))
            for name in grads}


def _leaves(out, prefix="out"):
    if isinstance(out, torch.Tensor):
        return [(prefix, out)]
    items = out.items() if isinstance(out, dict) else enumerate(out)
    return [leaf for k, v in items for leaf in _leaves(v, f"{prefix}[{k}]")]
