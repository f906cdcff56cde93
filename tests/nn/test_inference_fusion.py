"""fastcnn.nn.optimize_for_inference (conv + BN folded, conv + activation epilogues) and
fuse_conv_activations (training): a new model, the input left untouched, outputs (and gradients)
equal to the unfused model's within the documented tolerance: assert_close against the unfused
model in float64, with the rounding of every conv layer along the chain (sum of C/g*R*S) as the
reduction."""
import pytest
import torch
from torch import nn

import fastcnn
from fastcnn.models import get_model
from helpers import assert_close


def _chain_reduction(model):
    return sum(m.weight[0].numel() for m in model.modules() if isinstance(m, nn.Conv2d))


def _with_running_stats(model, seed=0):
    """Non-trivial BatchNorm statistics and affine parameters, so that folding changes the weights."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model


def _snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [(n, type(m), m.training) for n, m in model.named_modules()])


def _unchanged(model, snapshot):
    state, modules = snapshot
    now = model.state_dict()
    assert now.keys() == state.keys() and all(torch.equal(now[k], state[k]) for k in state)
    assert [(n, type(m), m.training) for n, m in model.named_modules()] == modules


@pytest.mark.parametrize("name, folded, epilogues", [("segnet_basic", 8, 4), ("alexnet", 0, 5),
                                                    ("dcgan_discriminator", 2, 4)])
def test_optimize_for_inference_matches_the_eval_model(name, folded, epilogues):
    torch.manual_seed(0)
    model = _with_running_stats(get_model(name, size="small")).eval()
    before = _snapshot(model)
    fast = fastcnn.nn.optimize_for_inference(model)
    _unchanged(model, before)
    assert fast is not model and not fast.training
    assert sum("batch norm folded" in f for f in fast.fused_layers) == folded
    assert sum("epilogue" in f for f in fast.fused_layers) == epilogues
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules()) or folded == 0
    x = model.example_input(2)
    reference = _with_running_stats(get_model(name, size="small")).double().eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected = reference(x.double())
        assert_close(fast(x), expected, reduction=_chain_reduction(model), name=f"{name} fused")
        assert_close(model(x), expected, reduction=_chain_reduction(model), name=f"{name} unfused")  # same bound


def test_optimize_for_inference_keeps_what_it_cannot_fuse():
    bn_first = nn.Sequential(nn.BatchNorm2d(3), fastcnn.nn.Conv2d(3, 4, 3), nn.Hardswish())
    no_stats = nn.Sequential(fastcnn.nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.ReLU())
    for model in (bn_first, no_stats):
        fast = fastcnn.nn.optimize_for_inference(model)
        assert fast.fused_layers == []
        assert [type(m) for m in fast] == [type(m) for m in model]
    with pytest.raises(TypeError, match="model"):
        fastcnn.nn.optimize_for_inference("alexnet")


def test_fuse_conv_activations_trains_like_the_unfused_model():
    torch.manual_seed(1)
    model = get_model("alexnet", size="small").train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()  # the same function on both sides
    before = _snapshot(model)
    fused = fastcnn.nn.fuse_conv_activations(model)
    _unchanged(model, before)
    assert fused.training and len(fused.fused_layers) == 5
    reference = get_model("alexnet", size="small").double()
    reference.load_state_dict(model.state_dict())
    for m in reference.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    x = model.example_input(2)
    fused(x).square().sum().backward()
    reference(x.double()).square().sum().backward()
    reduction = _chain_reduction(model)
    for (name, p), (_, r) in zip(fused.named_parameters(), reference.named_parameters()):
        assert_close(p.grad, r.grad, reduction=reduction, name=name)
