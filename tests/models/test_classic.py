"""What is specific to the classic networks of the zoo (perceptron, mlp, alexnet, conv_autoencoder,
llnet, vae, dcgan): counts per configuration, extra methods (score, encode/decode, tied decoders,
sampling) and output ranges. The generic checks (published count, twin parity, no torch compute) are
in test_zoo.py."""
from __future__ import annotations

import pytest
import torch

from fastcnn import models, ops
from fastcnn.models.mlp import ACTIVATIONS
from helpers import assert_close


def _count(name, size="canonical", **overrides):
    with torch.device("meta"):
        return models.get_model(name, size, **overrides).num_parameters()


def _twin_pair(name, size="small", dtype=torch.float64, **overrides):
    """The fastcnn network and its torch twin with the same weights."""
    torch.manual_seed(0)
    net = models.get_model(name, size, **overrides).to(dtype)
    twin = models.get_twin(name, size, **overrides).to(dtype)
    twin.load_state_dict(net.state_dict())
    return net, twin


# ---- perceptron ---------------------------------------------------------------------------------
def test_perceptron_output_is_the_step_of_its_score():
    net = models.get_model("perceptron")
    x = net.example_input(16)
    s = net.score(x)
    assert_close(s, x.double() @ net.linear.weight.double().t() + net.linear.bias.double(), reduction=64)
    y = net(x)
    assert y.shape == (16, 1)
    assert torch.equal(y, (s > 0).to(y.dtype))


def test_perceptron_output_carries_a_zero_gradient_on_both_sides():
    net, twin = _twin_pair("perceptron")
    x = net.example_input(4, dtype=torch.float64)
    net(x).sum().backward()
    twin(x).sum().backward()
    for p, q in zip(net.parameters(), twin.parameters()):
        assert torch.equal(p.grad, torch.zeros_like(p)) and torch.equal(q.grad, torch.zeros_like(q))


def test_perceptron_score_checks_its_input():
    with pytest.raises(ValueError, match=r"perceptron \(canonical\) expects \[N, 64\]"):
        models.get_model("perceptron").score(torch.randn(2, 63))


# ---- mlp ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_parameter_count_per_activation(activation):
    expected = 14_010 if activation == "maxout" else 7_510
    assert _count("mlp", activation=activation) == expected


def test_mlp_default_activation_is_the_registered_count():
    assert _count("mlp") == models.model_spec("mlp").canonical_params


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_twin_parity_per_activation(activation):
    net, twin = _twin_pair("mlp", activation=activation)
    x = net.example_input(3, dtype=torch.float64)
    out, ref = net(x), twin(x)
    assert_close(out, ref, reduction=64 * 2)
    w = torch.randn(out.shape, dtype=torch.float64)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    for (name, p), q in zip(net.named_parameters(), twin.parameters()):
        assert_close(p.grad, q.grad, reduction=64 * 2, name=f"grad {name}")


def test_mlp_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="activation: expected one of"):
        models.get_model("mlp", activation="swish")


# ---- conv_autoencoder ---------------------------------------------------------------------------
def test_conv_autoencoder_code_and_reconstruction():
    torch.manual_seed(0)
    net = models.get_model("conv_autoencoder").eval()
    x = torch.rand(2, 1, 28, 28)
    code = net.encode(x)
    assert code.shape == (2, 8, 4, 4)
    out = net(x)
    assert torch.equal(net.decode(code), out)
    assert out.shape == x.shape and out.min() > 0 and out.max() < 1  # sigmoid: inside (0, 1)


def test_conv_autoencoder_is_the_bench_suites_draft():
    """fastcnn/bench/suites.py's autoencoder() (a torch.nn Sequential) computes the same function."""
    from fastcnn.bench.suites import autoencoder

    torch.manual_seed(0)
    draft, twin = autoencoder().double(), models.get_twin("conv_autoencoder").double()
    with torch.no_grad():
        for q, p in zip(twin.parameters(), draft.parameters(), strict=True):
            q.copy_(p)
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    assert torch.equal(twin(x), draft(x))


# ---- vae ----------------------------------------------------------------------------------------
def test_vae_eval_is_deterministic_with_z_equal_to_mu():
    torch.manual_seed(0)
    net = models.get_model("vae", size="small").eval()
    x = torch.rand(3, 64)
    recon, mu, logvar = net(x)
    again = net(x)
    assert all(torch.equal(a, b) for a, b in zip((recon, mu, logvar), again))
    assert torch.equal(recon, net.decode(mu))


def test_vae_train_draws_fresh_noise_that_an_equal_state_dict_repeats():
    torch.manual_seed(0)
    net = models.get_model("vae", size="small").train()
    copy = models.get_model("vae", size="small").train()
    copy.load_state_dict(net.state_dict())
    x = torch.rand(3, 64)
    first, second = net(x)[0], net(x)[0]
    assert not torch.equal(first, second)  # a new eps per forward
    assert torch.equal(copy(x)[0], first) and torch.equal(copy(x)[0], second)


def test_vae_explicit_noise_is_the_reparameterisation():
    torch.manual_seed(0)
    net = models.get_model("vae", size="small").train()
    x, eps = torch.rand(3, 64), torch.randn(3, 8)
    recon, mu, logvar = net(x, eps=eps)
    assert torch.equal(recon, net.decode(mu + eps * torch.exp(0.5 * logvar)))


def test_vae_decode_samples_images():
    torch.manual_seed(0)
    net = models.get_model("vae").eval()
    with torch.no_grad():
        images = net.decode(torch.randn(4, 20))
    assert images.shape == (4, 784) and images.min() > 0 and images.max() < 1
    assert _count("vae", "small") == 64 * 128 + 128 + 2 * (128 * 8 + 8) + 8 * 128 + 128 + 128 * 64 + 64  # 19,792


# ---- dcgan --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", ["small", pytest.param("canonical", marks=pytest.mark.slow)])
def test_dcgan_generator_feeds_the_discriminator_in_range(size):
    torch.manual_seed(0)
    gen, disc = models.get_model("dcgan_generator", size), models.get_model("dcgan_discriminator", size)
    z = gen.example_input(3)
    fake = gen(z)
    assert fake.shape[1:] == disc.input_shape == gen.output_shape
    assert fake.min() >= -1 and fake.max() <= 1 and fake.abs().max() > 0.1  # tanh, not collapsed to 0
    p = disc(fake)
    assert p.shape == (3, 1) and p.min() > 0 and p.max() < 1  # sigmoid probabilities


def test_dcgan_small_sizes():
    assert models.get_model("dcgan_generator", "small").input_shape == (32, 1, 1)
    assert models.get_model("dcgan_discriminator", "small").input_shape == (1, 32, 32)
    assert _count("dcgan_generator", "small") == 230_336
    assert _count("dcgan_discriminator", "small") == 166_784


# ---- llnet --------------------------------------------------------------------------------------
def test_llnet_tied_decoder_is_linear_with_the_transposed_encoder_weight():
    net, twin = _twin_pair("llnet")
    h = torch.rand(3, 289, dtype=torch.float64)
    for i in range(net.depth):
        enc, dec = net.encoders[i], net.decoders[net.depth - 1 - i]
        code = torch.sigmoid(h @ enc.weight.t() + enc.bias)
        expected = torch.sigmoid(code @ enc.weight + dec.bias)
        out, ref = net.tied_reconstruct(i, h), twin.tied_reconstruct(i, h)
        assert out.shape == h.shape
        assert_close(out, expected, reduction=2 * enc.weight.shape[0])
        # W_i gets the gradient of both its uses (encoder and tied decoder), as in the twin
        w = torch.randn(out.shape, dtype=torch.float64)
        (out * w).sum().backward()
        (ref * w).sum().backward()
        assert_close(enc.weight.grad, twin.encoders[i].weight.grad, reduction=2 * enc.weight.shape[0])
        assert_close(dec.bias.grad, twin.decoders[net.depth - 1 - i].bias.grad, reduction=2 * enc.weight.shape[0])
        h = net.encode(torch.rand(3, 289, dtype=torch.float64), layers=i + 1).detach()


def test_llnet_tied_pretraining_runs_only_fastcnn_compute():
    from zoo_checks import torch_compute_kernels

    net = models.get_model("llnet", "small")
    h = torch.rand(2, 289)
    assert torch_compute_kernels(lambda: net.tied_reconstruct(0, h).sum().backward()) == set()


def test_llnet_untied_network_starts_from_the_tied_stack():
    torch.manual_seed(0)
    net = models.get_model("llnet", "small").double()
    net.untie_decoders()
    x = torch.rand(3, 289, dtype=torch.float64)
    h = net.encode(x)
    for i in reversed(range(net.depth)):
        h = net.tied_decode(i, h)
    assert_close(net(x), h, reduction=2 * 289)


def test_llnet_small_count():
    assert _count("llnet", "small") == 316_229


# ---- alexnet ------------------------------------------------------------------------------------
def test_alexnet_small_count_and_overrides():
    assert _count("alexnet", "small") == 453_738
    assert _count("alexnet", "small", num_classes=2) == 453_738 - 8 * 513
    assert _count("alexnet", "small", in_channels=1) == 453_738 - 2 * 121 * 24
    assert _count("alexnet", num_classes=10) == 60_965_224 - 990 * 4097
    assert models.get_model("alexnet", "small", in_channels=1).input_shape == (1, 67, 67)


@pytest.mark.parametrize("size,features", [("canonical", 9216), ("small", 64)])
def test_alexnet_feature_map_feeds_fc6(size, features):
    with torch.device("meta"):
        twin = models.get_twin("alexnet", size)
        pooled = twin.features(twin.example_input(1, device="meta"))
    assert pooled.flatten(1).shape[1] == features == twin.classifier[1].in_features
