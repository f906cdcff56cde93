"""Per-pass algorithm choice of conv2d / conv_transpose2d: with algo='auto' the forward, backward-input
and backward-weight passes each choose (heuristic or autotuner, one cache entry per pass); an
explicit algo= serves every pass. Which kernel ran is recorded by wrapping the registered cpu kernels."""
import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from fastcnn import ops
from fastcnn.ops import _conv_algo
from helpers import assert_close

ALGOS = ("direct", "im2col", "fft")
FWD, BWD_IN, BWD_W = _conv_algo.DIRECTIONS


class Calls(list):
    """(direction, algo) of each kernel call, in order. `slow`: kernels that advance `clock` (the
    autotuner's clock in the tests that install it) by a second per call, so it never picks them."""

    def __init__(self):
        super().__init__()
        self.slow = set()
        self.clock = 0.0


@pytest.fixture
def ran(monkeypatch):
    """Wraps every cpu conv kernel; returns the list of (direction, algo) calls, in order.
    `ran.slow` = {(direction, algo)} makes those kernels take a second of `ran.clock`."""
    calls = Calls()
    for direction in _conv_algo.DIRECTIONS:
        for algo in ALGOS:
            slot = _conv_algo.kernel_slot(direction, algo)
            if not slot.offered_by("cpu"):
                pytest.skip(f"the cpu backend registers no {slot.name}")
            inner = slot["cpu"]

            def wrapper(*args, _inner=inner, _what=(direction, algo)):
                calls.append(_what)
                if _what in calls.slow:
                    calls.clock += 1.0
                return _inner(*args)
            monkeypatch.setitem(slot.impls, "cpu", wrapper)
    return calls


def _pick_per_direction(monkeypatch, choice):
    monkeypatch.setattr(_conv_algo, "heuristic", lambda options, layer, direction: choice[direction])


def _conv2d_train(algo="auto", dtype=torch.float64, dilation=1):
    x = torch.randn(2, 3, 9, 8, dtype=dtype, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=dtype, requires_grad=True)
    y = ops.conv2d(x, w, None, 1, dilation, dilation, algo=algo, backend="cpu")
    gy = torch.randn_like(y)
    y.backward(gy)
    xr, wr = x.detach().requires_grad_(), w.detach().requires_grad_()
    yr = F.conv2d(xr, wr, None, 1, dilation, dilation)
    yr.backward(gy)
    assert_close(y, yr, reduction=27)
    assert_close(x.grad, xr.grad, reduction=36)
    assert_close(w.grad, wr.grad, reduction=2 * 9 * 8)


def test_auto_gives_each_conv2d_pass_its_own_algorithm(ran, monkeypatch):
    choice = {FWD: "fft", BWD_IN: "direct", BWD_W: "im2col"}
    _pick_per_direction(monkeypatch, choice)
    _conv2d_train()
    assert ran == [(FWD, "fft"), (BWD_IN, "direct"), (BWD_W, "im2col")]


def test_explicit_algo_serves_every_pass(ran, monkeypatch):
    _pick_per_direction(monkeypatch, {FWD: "fft", BWD_IN: "fft", BWD_W: "fft"})  # must not be asked
    _conv2d_train(algo="im2col")
    assert ran == [(FWD, "im2col"), (BWD_IN, "im2col"), (BWD_W, "im2col")]


def test_conv_transpose2d_passes_choose_separately(ran, monkeypatch):
    # forward = backward-input; input gradient = forward; weight gradient = backward-weight
    _pick_per_direction(monkeypatch, {FWD: "im2col", BWD_IN: "fft", BWD_W: "direct"})
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    y = ops.conv_transpose2d(x, w, b, 1, 1, backend="cpu")
    gy = torch.randn_like(y)
    y.backward(gy)
    assert ran == [(BWD_IN, "fft"), (FWD, "im2col"), (BWD_W, "direct")]
    xr, wr, br = (t.detach().requires_grad_() for t in (x, w, b))
    yr = F.conv_transpose2d(xr, wr, br, 1, 1)
    yr.backward(gy)
    assert_close(y, yr, reduction=36)
    for got, want in ((x.grad, xr.grad), (w.grad, wr.grad), (b.grad, br.grad)):
        assert_close(got, want, reduction=2 * 5 * 6 * 9)


def test_conv_transpose2d_explicit_algo_serves_every_pass(ran):
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    ops.conv_transpose2d(x, w, None, 2, 1, algo="direct", backend="cpu").sum().backward()
    assert ran == [(BWD_IN, "direct"), (FWD, "direct"), (BWD_W, "direct")]


def test_real_heuristic_differs_per_direction(ran):
    # 3 -> 4 channels, 3x3, dilated: with AVX2 the backward-input pass goes to im2col, the others stay
    # direct; with AVX-512 the dilated backward-input stays direct, and so do forward and
    # backward-weight (few channels: the direct kernel's few-channel tiles); with stride 2, the short
    # reduction (C*R*S = 27) sends the forward to im2col, backward-weight stays direct (SHORT_REDUCTION)
    layer = _conv_algo.Layer(2, 3, 4, (3, 3), (9, 8), (1, 1), (2, 2))
    for isa, want in (("avx2", {FWD: "direct", BWD_IN: "im2col", BWD_W: "direct"}),
                      ("avx512", {FWD: "direct", BWD_IN: "direct", BWD_W: "direct"})):
        assert {d: _conv_algo.heuristic(ALGOS[:2], layer._replace(isa=isa), d) for d in _conv_algo.DIRECTIONS} == want
    strided = layer._replace(stride=(2, 2), isa="avx512")
    assert [_conv_algo.heuristic(ALGOS[:2], strided, d) for d in (FWD, BWD_W)] == ["im2col", "direct"]
    here = {d: _conv_algo.heuristic(ALGOS[:2], layer._replace(isa=_conv_algo.cpu_isa()), d)
            for d in _conv_algo.DIRECTIONS}
    _conv2d_train(dilation=2)
    assert ran == [(FWD, here[FWD]), (BWD_IN, here[BWD_IN]), (BWD_W, here[BWD_W])]


def test_heuristic_small_convolutions():
    """The zoo's small layers (docs/ops-conv.md, "Small convolutions of the zoo")."""
    def pick(layer, direction):
        return _conv_algo.heuristic(ALGOS, layer, direction)
    stem = _conv_algo.Layer(16, 3, 8, (3, 3), (128, 128), (2, 2), isa="avx512")  # PIDNet-S / StyleGAN-XL stems
    assert [pick(stem, d) for d in (FWD, BWD_W)] == ["im2col", "direct"]
    lenet = _conv_algo.Layer(16, 1, 10, (5, 5), (28, 28), isa="avx512")  # one input channel: im2col both
    assert [pick(lenet, d) for d in (FWD, BWD_W)] == ["im2col", "im2col"]
    assert [pick(stem._replace(isa="avx2"), d) for d in (FWD, BWD_W)] == ["direct", "direct"]
    fcn_stem = _conv_algo.Layer(16, 3, 4, (3, 3), (64, 64), isa="avx512")  # stride 1: few-channel tiles
    assert [pick(fcn_stem, d) for d in (FWD, BWD_W)] == ["direct", "direct"]
    assert [pick(fcn_stem._replace(K=16), d) for d in (FWD, BWD_W)] == ["im2col", "direct"]  # 16 output channels
    segnet = _conv_algo.Layer(16, 3, 16, (7, 7), (48, 64), isa="avx512")  # C*R*S = 147: direct
    assert pick(segnet, FWD) == pick(segnet, BWD_W) == "direct"
    depthwise = _conv_algo.Layer(16, 32, 32, (3, 3), (32, 32), groups=32, isa="avx512")
    assert pick(depthwise, FWD) == pick(depthwise, BWD_W) == "direct"
    hardnet = _conv_algo.Layer(16, 32, 32, (8, 8), (8, 8), isa="avx512", out_hw=(1, 1))  # one output pixel
    assert [pick(hardnet, d) for d in _conv_algo.DIRECTIONS] == ["im2col"] * 3
    assert pick(hardnet._replace(out_hw=(2, 2)), BWD_IN) == "direct"
    to_image = _conv_algo.Layer(16, 1, 32, (4, 4), (32, 32), (2, 2), isa="avx512")  # DCGAN G's convT to 1 channel
    assert pick(to_image, BWD_IN) == pick(to_image._replace(isa="avx2"), BWD_IN) == "im2col"
    assert pick(to_image._replace(C=4), BWD_IN) == "im2col"
    assert pick(to_image._replace(C=8, K=16, kernel_hw=(3, 3)), BWD_IN) == "direct"  # PIDNet-S / HardNet
    assert pick(to_image._replace(stride=(1, 1)), BWD_IN) == "direct"
    dilated = _conv_algo.Layer(16, 32, 32, (3, 3), (32, 32), dilation=(4, 4), isa="avx512")  # R2D2
    assert pick(dilated, BWD_IN) == "direct"
    assert pick(dilated._replace(isa="avx2"), BWD_IN) == "im2col"


def test_heuristic_wide_kernels_take_fft():
    """7x7+ kernels with >= 16 input channels on maps of >= 24x32 (docs/ops-conv.md, "SegNet-Basic's 7x7 passes")."""
    def plan(layer):
        return [_conv_algo.heuristic(ALGOS, layer, d) for d in (FWD, BWD_IN, BWD_W)]
    segnet = _conv_algo.Layer(16, 16, 16, (7, 7), (24, 32), isa="avx512")  # SegNet-Basic (small)
    assert plan(segnet) == ["fft", "fft", "direct"]  # the direct weight gradient's row tiles win
    assert plan(segnet._replace(isa="avx2")) == ["fft", "fft", "fft"]
    assert plan(segnet._replace(in_hw=(12, 16))) == ["direct"] * 3  # small maps
    assert plan(segnet._replace(kernel_hw=(5, 5))) == ["direct"] * 3
    assert plan(segnet._replace(C=8)) == ["direct"] * 3
    assert plan(segnet._replace(C=3)) == ["direct"] * 3  # the stem
    assert plan(_conv_algo.Layer(16, 32, 3, (9, 9), (48, 48), isa="avx512")) == ["fft"] * 3  # SRResNet's output
    assert plan(segnet._replace(in_hw=None)) == ["direct"] * 3  # no image size: no guess
    assert plan(_conv_algo.Layer(4, 64, 64, (7, 7), (45, 60), isa="avx512")) == ["fft"] * 3  # canonical
    fc6 = _conv_algo.Layer(16, 32, 256, (7, 7), (9, 9), isa="avx512")  # FCN's fc6 on pool5
    assert plan(fc6) == ["direct"] * 3


@pytest.mark.parametrize("direction,want", [(FWD, "fft"), (BWD_IN, "fft"), (BWD_W, "direct")])
def test_heuristic_rules_per_direction(direction, want):
    pidnet = _conv_algo.Layer(4, 64, 64, (3, 3), (64, 64))  # fft loses backward-weight on few pixels
    assert _conv_algo.heuristic(ALGOS, pidnet, direction) == want
    srresnet = _conv_algo.Layer(16, 64, 64, (3, 3), (96, 96))
    assert _conv_algo.heuristic(ALGOS, srresnet, direction) == "fft"
    alexnet3 = _conv_algo.Layer(16, 256, 384, (3, 3), (13, 13))
    assert _conv_algo.heuristic(ALGOS, alexnet3, direction) == "direct"
    alexnet4 = _conv_algo.Layer(16, 384, 384, (3, 3), (13, 13), groups=2)
    assert _conv_algo.heuristic(ALGOS, alexnet4, direction) == "direct"


def test_autotuner_times_and_caches_each_pass(ran, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_conv_algo, "_memory", {})
    monkeypatch.setattr(_conv_algo, "heuristic", lambda *a: pytest.fail("the heuristic was asked"))
    winner = {FWD: "im2col", BWD_IN: "direct", BWD_W: "fft"}
    ran.slow.update((d, a) for d in winner for a in ALGOS if a != winner[d])
    monkeypatch.setattr(_conv_algo, "time", SimpleNamespace(perf_counter=lambda: ran.clock))
    ops.autotune(True)
    try:
        _conv2d_train()
        assert {d for d, _ in ran} == set(winner)
        assert all(ran.count((d, a)) >= 2 for d in winner for a in ALGOS)  # every candidate was timed
        assert ran[-1] == (BWD_W, "fft")  # after timing, the pass runs its winner
        entries = json.loads((tmp_path / "conv_autotune.json").read_text())
        assert sorted(entries.values()) == sorted(winner.values())
        for direction, algo in winner.items():
            assert [v for k, v in entries.items() if f"|{direction}|" in k] == [algo]
        # a new process (fresh memory) reads the file: each pass runs its winner, nothing is timed
        monkeypatch.setattr(_conv_algo, "_memory", {})
        ran.clear()
        _conv2d_train()
        assert ran == [(FWD, "im2col"), (BWD_IN, "direct"), (BWD_W, "fft")]
    finally:
        ops.autotune(False)
