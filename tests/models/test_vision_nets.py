"""What the zoo's vision networks promise beyond the generic checks (test_zoo.py), and the ops they brought
(fastcnn.ops.upfirdn2d, fastcnn.ops.modulated_conv2d, fastcnn.nn.spectral_norm)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fastcnn.nn as fnn
from fastcnn import models, ops
from fastcnn.ops.fir import upfirdn2d_reference
from helpers import CPU_BACKENDS, assert_close, gradcheck
from zoo_checks import torch_compute_kernels


def _small(name, **kw):
    torch.manual_seed(0)
    return models.get_model(name, size="small", **kw)


# ---------------------------------------------------------------------------------------------- HardNet

def test_hardnet_descriptors_are_unit_vectors():
    net = _small("hardnet").eval()
    with torch.no_grad():
        d = net(net.example_input(5))
    assert d.shape == (5, 32)
    assert_close(d.norm(dim=1), torch.ones(5), reduction=32)


def test_hardnet_standardises_each_patch_as_the_reference_input_norm():
    net = _small("hardnet")
    x = torch.rand(3, 1, 32, 32, dtype=torch.float64) * 5 + 2
    flat = x.view(3, -1)
    want = (x - flat.mean(1).view(3, 1, 1, 1)) / (flat.std(1).view(3, 1, 1, 1) + 1e-7)
    # the same up to where eps sits (1e-7 added to the std there, 1e-10 to the variance here): ~1e-7 relative
    torch.testing.assert_close(net.standardise(x), want, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------------------- R2D2

def test_r2d2_heads_are_in_range_at_any_size():
    net = _small("r2d2").eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 40, 36))
    assert out["descriptors"].shape == (2, 32, 40, 36)
    assert out["reliability"].shape == out["repeatability"].shape == (2, 1, 40, 36)
    for key in ("reliability", "repeatability"):
        assert 0 < out[key].min() and out[key].max() < 1, key
    assert_close(out["descriptors"].norm(dim=1), torch.ones(2, 40, 36), reduction=32)


def test_r2d2_heads_are_the_reference_formulas():
    net = _small("r2d2").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out = net(x)
        h = x
        for op in net.ops:
            h = op(h)
        rel = torch.softmax(net.clf(h ** 2), dim=1)[:, 1:2]
        s = F.softplus(net.sal(h ** 2))
    assert_close(out["reliability"], rel, reduction=32)
    assert_close(out["repeatability"], s / (1 + s), reduction=32)


# ------------------------------------------------------------------------------------------- SRResNet / D

def test_srresnet_upscales_by_four_any_size():
    net = _small("srresnet").eval()
    with torch.no_grad():
        y = net(torch.randn(1, 3, 12, 20))
    assert y.shape == (1, 3, 48, 80)
    assert y.abs().max() <= 1  # tanh


def test_srgan_discriminator_gives_a_probability_or_a_logit():
    prob_net, logit_net = _small("srgan_discriminator").eval(), _small("srgan_discriminator", logits=True).eval()
    logit_net.load_state_dict(prob_net.state_dict())
    x = prob_net.example_input(3)
    with torch.no_grad():
        p, z = prob_net(x), logit_net(x)
    assert_close(p, torch.sigmoid(z), reduction=1)
    assert prob_net.num_parameters() == logit_net.num_parameters()


# --------------------------------------------------------------------------------------------- upfirdn2d

UPFIRDN_CASES = [  # (filter shape, up, down, padding)
    ((5,), 1, 1, (2, 2, 2, 2)), ((4,), 2, 1, (2, 1, 2, 1)), ((6,), 1, 2, (0, 0, 0, 0)), ((12,), 4, 1, (6, 3, 6, 3)),
    ((3, 5), 1, 1, (1, 3, 2, 0)), ((4, 3), 3, 1, (-1, 2, 0, -1)), ((5, 4), 1, 3, (4, 4, 1, 2)),
    ((4,), 2, 2, (1, 2, 3, 0)),
    ((4,), (2, 3), (1, 2), (5, 4, 5, 4)),
]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("fshape,up,down,padding", UPFIRDN_CASES)
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_matches_the_zero_insertion_reference(backend, fshape, up, down, padding, flip):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 6)
    f = torch.randn(fshape)
    y = ops.upfirdn2d(x, f, up, down, padding, flip, 2.0, backend=backend)
    ref = upfirdn2d_reference(x.double(), f.double(), up, down, padding, flip, 2.0)
    assert_close(y, ref, reduction=f.numel())


def test_upfirdn2d_separable_equals_scipy_upfirdn_per_axis():
    """An independent ground truth: scipy.signal.upfirdn (full convolution) along W, then along H."""
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 7))
    f = rng.standard_normal(6)
    for up, down in ((1, 1), (2, 1), (3, 1), (1, 2), (2, 3)):
        k = len(f)
        want = signal.upfirdn(f, x, up, down, axis=3)
        want = signal.upfirdn(f, want, up, down, axis=2)
        # scipy's full convolution = pad k-1 before and k-up after the zero-inserted signal
        got = ops.upfirdn2d(torch.from_numpy(x), torch.from_numpy(f), up, down, (k - 1, k - up) * 2, backend="cpu")
        assert_close(got, torch.from_numpy(want), reduction=k * k, name=f"up {up} down {down}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_upfirdn2d_gradcheck(backend):
    torch.manual_seed(0)
    x = torch.randn(1, 1, 3, 4, dtype=torch.float64, requires_grad=True)
    f = torch.randn(4, dtype=torch.float64)

    def up_then_down(t):  # both kinds of pass (conv_transpose2d and strided conv2d) in one check
        t = ops.upfirdn2d(t, f, up=2, padding=(2, 1, 1, 2), gain=4, backend=backend)
        return ops.upfirdn2d(t, f, down=2, padding=1, backend=backend)

    gradcheck(up_then_down, [x])


def test_upfirdn2d_rejects_bad_input():
    x, f = torch.randn(1, 2, 4, 4), torch.ones(3)
    with pytest.raises(ValueError, match="input"):
        ops.upfirdn2d(torch.randn(2, 4, 4), f)
    with pytest.raises(ValueError, match="f"):
        ops.upfirdn2d(x, torch.ones(1, 1, 3))
    with pytest.raises(ValueError, match="up"):
        ops.upfirdn2d(x, f, up=0)
    with pytest.raises(ValueError, match="padding"):
        ops.upfirdn2d(x, torch.ones(9))
    with pytest.raises(TypeError, match="f"):
        ops.upfirdn2d(x, f.double())


# ------------------------------------------------------------------------------------- modulated_conv2d

@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_is_a_per_sample_conv_with_the_modulated_weight(backend, demodulate):
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 5, 7, 6), torch.randn(4, 5, 3, 3), torch.randn(3, 5)
    gain = torch.rand(5) + 0.5
    y = ops.modulated_conv2d(x, w, s, demodulate=demodulate, padding=1, input_gain=gain, backend=backend)
    for n in range(3):  # the definition, one sample at a time, in float64
        wn = w.double() * s[n].double().view(1, 5, 1, 1)
        if demodulate:
            wn = wn / (wn.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        wn = wn * gain.double().view(1, 5, 1, 1)
        assert_close(y[n:n + 1], F.conv2d(x[n:n + 1].double(), wn, padding=1), reduction=45, name=f"sample {n}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_modulated_conv2d_gradcheck(backend):
    torch.manual_seed(0)
    args = [torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True),
            torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True),
            torch.randn(2, 2, dtype=torch.float64, requires_grad=True)]
    gradcheck(lambda x, w, s: ops.modulated_conv2d(x, w, s, padding=1, backend=backend), args)


def test_modulated_conv2d_rejects_bad_styles():
    with pytest.raises(ValueError, match="styles"):
        ops.modulated_conv2d(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 3, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match="weight"):
        ops.modulated_conv2d(torch.randn(2, 3, 4, 4), torch.randn(2, 4, 3, 3), torch.randn(2, 3))


# ---------------------------------------------------------------------------------------- spectral norm

def test_spectral_norm_makes_sigma_one_and_matches_torch():
    torch.manual_seed(0)
    conv = fnn.Conv2d(6, 8, 3)
    ref = torch.nn.Conv2d(6, 8, 3)
    ref.load_state_dict(conv.state_dict())
    fnn.spectral_norm(conv)
    torch.nn.utils.spectral_norm(ref)
    with torch.no_grad():
        ref.weight_u.copy_(conv.weight_u)
        ref.weight_v.copy_(conv.weight_v)
    x = torch.randn(2, 6, 9, 9)
    for _ in range(30):  # training mode: one power iteration per call
        y, want = conv(x), ref(x)
    assert sorted(conv.state_dict()) == sorted(ref.state_dict())
    assert_close(y, want, reduction=54 * 30)
    sigma = torch.linalg.matrix_norm(conv.weight.detach().reshape(8, -1).double(), ord=2)
    assert abs(sigma.item() - 1) < 1e-4
    conv.eval()  # eval: no iteration, the stored u and v
    u = conv.weight_u.clone()
    conv(x)
    assert torch.equal(u, conv.weight_u)


def test_spectral_norm_runs_on_fastcnn_kernels():
    conv = fnn.spectral_norm(fnn.Conv2d(3, 4, 3))
    x = torch.randn(2, 3, 6, 6)
    assert torch_compute_kernels(lambda: conv(x).sum().backward()) == set()


def test_new_ops_run_on_fastcnn_kernels_forward_and_backward():
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    w, s = torch.randn(4, 3, 3, 3, requires_grad=True), torch.randn(2, 3, requires_grad=True)

    def step():
        y = ops.modulated_conv2d(x, w, s, padding=1)
        (ops.upfirdn2d(y, torch.ones(4) / 4, up=2, padding=(2, 1, 2, 1), gain=4).sum()
         + ops.upfirdn2d(y, torch.ones(4) / 4, down=2, padding=1).sum()).backward()

    assert torch_compute_kernels(step) == set()


# -------------------------------------------------------------------------------------------- StyleGAN-XL

def test_stylegan_xl_generator_truncation_and_classes():
    g = _small("stylegan_xl_generator").eval()
    z = g.example_input(4)
    c = torch.eye(10)[[0, 1, 2, 3]]
    with torch.no_grad():
        g.mapping.w_avg.copy_(torch.randn(10, 32))
        ws = g.mapping(z, c, truncation_psi=0.0)  # psi 0: every w is its class's centre
        assert_close(ws, g.mapping.w_avg[:4].unsqueeze(1).expand_as(ws), reduction=1)
        img_a, img_b = g(z, c), g(z, torch.eye(10)[[4, 5, 6, 7]])
    assert img_a.shape == (4, 3, 16, 16)
    assert (img_a - img_b).abs().max() > 1e-3  # the class conditions the image


def test_stylegan_xl_generator_tracks_class_centres():
    g = _small("stylegan_xl_generator").train()
    c = torch.eye(10)[[1, 1]]
    with torch.no_grad():
        g(g.example_input(2), c, update_emas=True)
    moved = g.mapping.w_avg.abs().sum(1) > 0
    assert moved.tolist() == [i == 1 for i in range(10)]


def test_stylegan_xl_discriminator_feature_network_is_frozen():
    d = _small("stylegan_xl_discriminator").train()
    assert not any(p.requires_grad for p in d.feature_network.parameters())
    assert not any(m.training for m in d.feature_network.modules())
    assert all(m.training for m in d.discs.modules())
    out = d(d.example_input(2), torch.eye(10)[[3, 4]])
    assert out.shape == (2, 100)
    names = [n for n, _ in d.named_parameters() if "weight_orig" in n]
    assert len(names) == 3 + 2 + 1 + 0 + 4  # DownBlocks from 64, 32, 16, 8 px to 8 px and the 4 cls convs


@pytest.mark.parametrize("name", ["stylegan_xl_generator", "stylegan_xl_discriminator"])
def test_stylegan_xl_canonical_widths(name):
    with torch.device("meta"):
        net = models.get_model(name)
    if name == "stylegan_xl_generator":  # reference: channel_base 65536, channel_max 1024: 1024 wide at <= 16 px
        assert {layer.weight.shape[0] for layer in net.synthesis.layers[:-1]} == {1024}
        assert net.mapping.z_dim == 64 and net.mapping.w_dim == 512 and len(net.mapping.fcs) == 2
        assert net.synthesis.num_ws == 8 + 8 + 1  # 8 stem layers kept of 11, 7 head layers + ToRGB, the input
    else:
        assert net.output_shape == (64,)  # 4 scales x 4x4 logits
