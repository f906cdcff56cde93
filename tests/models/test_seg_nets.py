"""What the segmentation networks promise beyond the generic zoo checks (test_zoo.py): FCN's fixed
bilinear upsampling, SegNet's index unpooling, PSPNet's and PIDNet-S's two head configurations, and
outputs the size of the input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as torch_F

from fastcnn import models
from fastcnn.models.fcn import FixedBilinearUpsample
from helpers import assert_close
from test_zoo import _fan_in_depth, _scalar

FCNS = ["fcn32s", "fcn16s", "fcn8s"]


def _count(name, **overrides):
    with torch.device("meta"):
        return models.get_model(name, **overrides).num_parameters()


# ----------------------------------------------------------------------------------------------- FCN

@pytest.mark.parametrize("factor", [2, 8, 32])
def test_fixed_bilinear_upsampling_is_bilinear_interpolation(factor):
    """Cropped by factor/2 on each side (FCN's crop does this), the fixed deconvolution is bilinear
    interpolation with half-pixel centres wherever no border clamping is involved."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    up = FixedBilinearUpsample(3, factor).double()
    c = factor // 2
    out = up(x)[:, :, c:c + 5 * factor, c:c + 7 * factor]
    ref = torch_F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    inner = (slice(None), slice(None), slice(c, 5 * factor - c), slice(c, 7 * factor - c))
    assert_close(out[inner], ref[inner], reduction=4)
    assert not torch.allclose(out, ref)  # the borders differ: the deconvolution zero-pads, interpolate clamps


@pytest.mark.parametrize("name", FCNS)
def test_fcn_upsampling_is_fixed(name):
    torch.manual_seed(0)
    net = models.get_model(name, size="small")
    ups = [m for m in net.modules() if isinstance(m, FixedBilinearUpsample)]
    assert len(ups) == {"fcn32s": 1, "fcn16s": 2, "fcn8s": 3}[name]
    fixed = {id(m.weight) for m in ups}
    assert not any(id(p) in fixed for p in net.parameters())
    before = [m.weight.clone() for m in ups]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net(net.example_input(2)).square().mean().backward()
    opt.step()
    for m, w in zip(ups, before):
        assert m.weight.grad is None and not m.weight.requires_grad
        assert torch.equal(m.weight, w)
    assert net.score_fr.weight.grad is not None
    # learned counts: everything but the fixed upsampling
    total = sum(p.numel() for p in net.parameters())
    assert net.num_parameters() == total


@pytest.mark.parametrize("name", FCNS)
def test_fcn_output_matches_any_input_size(name):
    torch.manual_seed(0)
    net = models.get_model(name, size="small", num_classes=5).eval()
    for hw in [(64, 64), (46, 90)]:
        out = net(torch.randn(1, 3, *hw))
        assert tuple(out.shape) == (1, 5, *hw)


def test_fcn_learned_counts_exclude_the_fixed_upsampling():
    fixed = {"fcn32s": 21 * 64 * 64, "fcn16s": 21 * 4 * 4 + 21 * 32 * 32, "fcn8s": 2 * 21 * 4 * 4 + 21 * 16 * 16}
    for name in FCNS:
        with torch.device("meta"):
            net = models.get_model(name)
        buffers = sum(b.numel() for b in net.buffers())
        assert buffers == fixed[name]
        assert net.num_parameters() == models.model_spec(name).canonical_params


# -------------------------------------------------------------------------------------------- SegNet

@pytest.mark.parametrize("name", ["segnet", "segnet_basic"])
def test_segnet_unpools_with_the_encoders_indices(name):
    """Each unpooling gets the indices of the mirrored pooling (last pooled, first unpooled), so
    every value lands where its encoder maximum was and all other positions are zero."""
    torch.manual_seed(0)
    net = models.get_model(name, size="small").eval()
    pooled, unpooled = [], []
    net.pool.register_forward_hook(lambda m, i, out: pooled.append((i[0].shape, out[1])))
    net.unpool.register_forward_hook(lambda m, i, out: unpooled.append((i[1], i[0], out)))
    net(net.example_input(2))
    assert len(pooled) == len(unpooled) == len(net.encoder)
    for (size, indices), (idx, x, out) in zip(reversed(pooled), unpooled):
        assert idx is indices
        assert out.shape == size
        flat = out.flatten(2)
        assert torch.equal(flat.gather(2, idx.flatten(2)), x.flatten(2))
        placed = torch.zeros_like(flat, dtype=torch.bool).scatter_(2, idx.flatten(2), True)
        assert not flat[~placed].any()


@pytest.mark.parametrize("name", ["segnet", "segnet_basic"])
def test_segnet_output_matches_the_input_size(name):
    torch.manual_seed(0)
    net = models.get_model(name, size="small", num_classes=4).eval()
    for hw in [(48, 64), (46, 70)]:  # 46 -> 23 -> 12 -> 6 -> 3 -> 2 pools round up; unpooling restores each
        out = net(torch.randn(1, 3, *hw))
        assert tuple(out.shape) == (1, 4, *hw)


# -------------------------------------------------------------------------------------------- PSPNet

def test_pspnet_counts_with_and_without_the_auxiliary_head():
    assert _count("pspnet") == models.model_spec("pspnet").canonical_params == 46_716_373
    assert _count("pspnet", aux=True) == 46_716_373 + 2_365_205


def test_pspnet_auxiliary_head_runs_in_training_only():
    torch.manual_seed(0)
    net = models.get_model("pspnet", size="small", num_classes=5, aux=True)
    x = net.example_input(4)
    main, aux = net.train()(x)
    assert main.shape == aux.shape == (4, 5, 65, 65)
    (main.sum() + 0.4 * aux.sum()).backward()
    assert net.aux[0].weight.grad is not None and net.cls[0].weight.grad is not None
    out = net.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 5, 65, 65)
    assert tuple(out.shape[1:]) == net.output_shape


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_pspnet_auxiliary_head_matches_the_twin(mode):
    """The generic parity test builds the default (no aux); this covers the aux head (fp64)."""
    torch.manual_seed(0)
    net = models.get_model("pspnet", size="small", aux=True).double()
    twin = models.get_twin("pspnet", size="small", aux=True).double()
    twin.load_state_dict(net.state_dict())
    for m in (net, twin):
        getattr(m, mode)()
        for d in m.modules():
            if "Dropout" in type(d).__name__:
                d.p = 0.0
    x = net.example_input(4, dtype=torch.float64)
    outs, refs = net(x), twin(x)
    outs, refs = (outs, refs) if mode == "train" else ((outs,), (refs,))
    assert len(outs) == (2 if mode == "train" else 1)
    fan, depth = _fan_in_depth(net)
    for o, r in zip(outs, refs):
        assert_close(o, r, reduction=fan * depth)
    _scalar(outs).backward()
    _scalar(refs).backward()
    for (n, p), (_, q) in zip(net.named_parameters(), twin.named_parameters()):
        if n.startswith("aux."):
            assert (p.grad is not None) == (mode == "train"), n
        if p.grad is not None:
            assert_close(p.grad, q.grad, reduction=fan * depth, name=n)


# ------------------------------------------------------------------------------------------- PIDNet-S

def test_pidnet_counts_training_and_inference():
    assert _count("pidnet_s") == models.model_spec("pidnet_s").canonical_params == 7_720_935
    assert _count("pidnet_s", augment=False) == _count("pidnet_s", aux=False) == 7_625_715


def test_pidnet_planes_override_keeps_the_sizes_ratios():
    """planes=32 on the small size is the canonical network less the stem's two biases (2 x 32); the
    default small width is 8 planes."""
    assert _count("pidnet_s", size="small", planes=32) == 7_720_935 - 64
    assert _count("pidnet_s", size="small", planes=8) == _count("pidnet_s", size="small")
    assert _count("pidnet_s", size="small", planes=16) > _count("pidnet_s", size="small")


def test_pidnet_heads_and_output_size():
    torch.manual_seed(0)
    net = models.get_model("pidnet_s", size="small", num_classes=5).eval()
    p, main, d = net(torch.randn(2, 3, 64, 96))
    assert p.shape == main.shape == (2, 5, 64, 96) and d.shape == (2, 1, 64, 96)
    infer = models.get_model("pidnet_s", size="small", num_classes=5, augment=False).eval()
    out = infer(torch.randn(2, 3, 64, 96))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5, 64, 96)


def test_pidnet_auxiliary_heads_read_rectified_features():
    """The reference's in-place ReLUs rectify temp_p / temp_d (they alias x_ / x_d) before its P and D
    heads run; the zoo's heads must see the same non-negative features (the Pag / Bag mixes feeding them
    are negative in places)."""
    torch.manual_seed(0)
    net = models.get_model("pidnet_s", size="small", num_classes=5).eval()
    seen = {}
    for name in ("seghead_p", "seghead_d"):
        getattr(net, name).register_forward_hook(lambda m, inp, out, name=name: seen.__setitem__(name, inp[0]))
    with torch.no_grad():
        net(torch.randn(2, 3, 64, 64))
    assert set(seen) == {"seghead_p", "seghead_d"}
    for name, x in seen.items():
        assert x.min() >= 0 and (x > 0).any(), name
