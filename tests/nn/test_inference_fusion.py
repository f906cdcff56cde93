"""fastcnn.nn.optimize_for_inference (conv + BN folded, conv / linear + activation epilogues) and
fuse_activations (training): a new model (or the model itself with inplace=True), the input left
untouched, outputs (and gradients) equal to the unfused model's within the documented tolerance:
assert_close against the unfused model in float64, with the rounding of every conv layer along the
chain (sum of C/g*R*S) as the reduction. The zoo's own fused builds: tests/models/test_fused_zoo.py."""
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


@pytest.mark.parametrize("name, folded, epilogues", [("segnet_basic", 8, 4), ("alexnet", 0, 7),
                                                    ("dcgan_discriminator", 2, 4)])
def test_optimize_for_inference_matches_the_eval_model(name, folded, epilogues):
    torch.manual_seed(0)
    model = _with_running_stats(get_model(name, size="small", fuse=False)).eval()
    before = _snapshot(model)
    fast = fastcnn.nn.optimize_for_inference(model)
    _unchanged(model, before)
    assert fast is not model and not fast.training
    assert sum("batch norm folded" in f for f in fast.fused_layers) == folded
    assert sum("epilogue" in f for f in fast.fused_layers) == epilogues
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules()) or folded == 0
    x = model.example_input(2)
    reference = _with_running_stats(get_model(name, size="small", fuse=False)).double().eval()
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


def test_fuse_activations_trains_like_the_unfused_model():
    torch.manual_seed(1)
    model = get_model("alexnet", size="small", fuse=False).train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()  # the same function on both sides
    before = _snapshot(model)
    fused = fastcnn.nn.fuse_activations(model)
    _unchanged(model, before)
    assert fused.training and len(fused.fused_layers) == 7  # 5 conv + 2 linear epilogues
    reference = get_model("alexnet", size="small", fuse=False).double()
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


def _linear_stack():
    """fastcnn's activation modules: the unfused model runs the same activation kernels."""
    F = fastcnn.nn
    return nn.Sequential(F.Linear(7, 9), F.Sigmoid(), F.Linear(9, 5), F.LeakyReLU(0.2), F.Linear(5, 5), F.Tanh(),
                         F.Linear(5, 3), F.GELU(), F.Linear(3, 4), F.LeakyReLU(-0.5), nn.Linear(4, 2), F.ReLU())


def test_fuse_activations_fuses_linear_layers_with_the_same_results():
    torch.manual_seed(2)
    model = _linear_stack()
    fused = fastcnn.nn.fuse_activations(model)
    # GELU is no epilogue, a negative slope cannot be undone from the output, torch's nn.Linear has no epilogue
    assert fused.fused_layers == ["0+1 (sigmoid epilogue)", "2+3 (leaky_relu epilogue)", "4+5 (tanh epilogue)"]
    assert [type(m) for m in fused][:6] == [fastcnn.nn.Linear, nn.Identity] * 3
    assert [(m.activation, m.activation_param) for m in list(fused)[:5:2]] == [("sigmoid", None), ("leaky_relu", 0.2),
                                                                              ("tanh", None)]
    assert list(fused.state_dict()) == list(model.state_dict())
    x = torch.randn(6, 7)
    y_fused, y = fused(x), model(x)
    assert torch.equal(y_fused, y)  # the same kernels on the same values, in one op
    y_fused.square().sum().backward()
    y.square().sum().backward()
    for (name, p), q in zip(fused.named_parameters(), model.parameters()):
        assert torch.equal(p.grad, q.grad), name


def test_fuse_activations_in_place_and_its_former_name():
    model = _linear_stack()
    assert fastcnn.nn.fuse_activations(model, inplace=True) is model and len(model.fused_layers) == 3
    assert isinstance(model[1], nn.Identity) and model[0].activation == "sigmoid"
    assert fastcnn.nn.fuse_conv_activations is fastcnn.nn.fuse_activations
