"""The zoo's fastcnn builds train fused (fastcnn.models._registry.fuse_fast): each Conv2d / Linear /
BatchNorm -> activation pair of a Sequential is one layer applying the activation in its own op, and llnet's
layers apply their sigmoid themselves. These tests fail if the fusion silently stops: the pairs each
network must fuse are listed, and a training forward's graph must hold the layers' own backward nodes
and no activation node of its own. (Parity with the torch twin: test_zoo.py, test_classic.py.)"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import fastcnn
from fastcnn import models
from fastcnn.ops import _eager

# network (small) -> the pairs its fastcnn build fuses
FUSED = {
    "mlp": ["layers.0+1 (relu epilogue)"],
    "vae": ["encoder.0+1 (relu epilogue)", "decoder.0+1 (relu epilogue)", "decoder.2+3 (sigmoid epilogue)"],
    "lenet": ["classifier.1+2 (relu epilogue)"],
    "alexnet": [f"features.{i}+{i + 1} (relu epilogue)" for i in (0, 4, 8, 10, 12)]
    + ["classifier.1+2 (relu epilogue)", "classifier.4+5 (relu epilogue)"],
    "dcgan_discriminator": ["main.0+1 (leaky_relu epilogue)", "main.3+4 (leaky_relu epilogue)",  # conv, BN, BN, conv
                            "main.6+7 (leaky_relu epilogue)", "main.8+9 (sigmoid epilogue)"],
    "srgan_discriminator": [f"features.{i}+{i + 1} (leaky_relu epilogue)" for i in (0, 3, 6, 9, 12, 15, 18, 21)]
    + ["classifier.1+2 (leaky_relu epilogue)", "classifier.3+4 (sigmoid epilogue)"],
    "segnet_basic": [f"encoder.{i}.1+2 (relu epilogue)" for i in range(4)],  # BatchNorm + ReLU
}
# networks all of whose activations are fused: their training graph holds no activation node
ALL_FUSED = ("mlp", "vae", "llnet", "alexnet", "segnet_basic", "dcgan_discriminator")


def _graph_nodes(out):
    leaves = [out] if isinstance(out, torch.Tensor) else list(out)
    seen, todo, names = set(), [t.grad_fn for t in leaves], []
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(node.name())
        todo += [n for n, _ in node.next_functions]
    return names


@pytest.mark.parametrize("name", sorted(FUSED))
def test_the_fastcnn_build_fuses_its_pairs(name):
    net = models.get_model(name, size="small")
    assert net.fused_layers == FUSED[name]
    modules = dict(net.named_modules())
    for pair in FUSED[name]:  # "<sequential>.<layer>+<slot> (<activation> epilogue)"
        layer, rest = pair.split("+")
        sequential, slot, activation = layer.rsplit(".", 1)[0], rest.split(" ")[0], rest.split(" ")[1][1:]
        assert isinstance(modules[layer], (fastcnn.nn.Conv2d, fastcnn.nn.Linear, fastcnn.nn.BatchNorm2d))
        assert modules[layer].activation == activation
        assert isinstance(modules[f"{sequential}.{slot}"], nn.Identity), pair
    twin = models.get_twin(name, size="small")
    assert list(net.state_dict()) == list(twin.state_dict())
    assert not hasattr(twin, "fused_layers")  # the twin stays plain torch.nn
    unfused = models.get_model(name, size="small", fuse=False)
    assert not any(getattr(m, "activation", None) for m in unfused.modules()
                   if isinstance(m, (fastcnn.nn.Conv2d, fastcnn.nn.Linear, fastcnn.nn.BatchNorm2d)))


def test_llnet_layers_apply_their_sigmoid():
    net, twin = models.get_model("llnet", size="small"), models.get_twin("llnet", size="small")
    layers = list(net.encoders) + list(net.decoders)
    assert len(layers) == 6 and all(m.activation == "sigmoid" for m in layers)
    assert isinstance(net.act, nn.Identity) and isinstance(twin.act, nn.Sigmoid)
    assert all(type(m) is nn.Linear for m in list(twin.encoders) + list(twin.decoders))
    plain = models.get_model("llnet", size="small", fuse=False)
    assert all(m.activation is None for m in list(plain.encoders) + list(plain.decoders))
    assert isinstance(plain.act, nn.Sigmoid)
    x = net.example_input(3)
    plain.load_state_dict(net.state_dict())
    assert torch.equal(net(x), plain(x))  # the same kernels: the fused op only saves the second pass
    assert torch.equal(net.tied_reconstruct(1, net.encode(x, 1)), plain.tied_reconstruct(1, plain.encode(x, 1)))


@pytest.mark.skipif(_eager.EagerOp("linear").get() is None, reason="fastcnn._C built without the eager op layer")
@pytest.mark.parametrize("name", ALL_FUSED)
def test_a_training_forward_runs_the_fused_ops(name):
    torch.manual_seed(0)
    net = models.get_model(name, size="small").train()
    out = net(net.example_input(2))
    nodes = _graph_nodes(out)
    kinds = {fastcnn.nn.Conv2d: "fastcnn::Conv2dBackward", fastcnn.nn.Linear: "fastcnn::LinearBackward",
             fastcnn.nn.BatchNorm2d: "fastcnn::BatchNormBackward"}
    layers = [m for m in net.modules() if type(m) in kinds]
    for kind, node in kinds.items():
        assert nodes.count(node) == sum(type(m) is kind for m in layers), node
    assert not [n for n in nodes if "Activation" in n or "Sigmoid" in n or "Relu" in n or "Tanh" in n], nodes
