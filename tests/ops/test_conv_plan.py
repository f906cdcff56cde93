"""fastcnn.ops.conv_plan: the per-pass algorithm choice made visible. It never names an algorithm
that cannot run the geometry, it matches what conv2d / conv_transpose2d then run (the "fastcnn.conv"
DEBUG log of each pass), with the heuristic and with the autotuner, and FASTCNN_CONV_LOG=1 prints
the choices."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fastcnn import ops
from fastcnn.contracts import kernels
from fastcnn.ops import _conv_algo
from helpers import assert_close

# (x_shape, w_shape, stride, padding, dilation, groups): 1x1, 3x3 strided / dilated / grouped, 4x4 s2
# (DCGAN), 5x5, and 3x3 stride-1 layers wide enough for winograd and fft.
GEOMETRIES = [
    ((2, 8, 9, 7), (6, 8, 1, 1), 1, 0, 1, 1),
    ((2, 6, 11, 9), (4, 6, 3, 3), 2, 1, 1, 1),
    ((1, 6, 13, 12), (4, 3, 3, 3), 1, 2, 2, 2),
    ((2, 8, 16, 16), (16, 8, 4, 4), 2, 1, 1, 1),
    ((2, 4, 12, 10), (5, 4, 5, 5), 1, 2, 1, 1),
    ((1, 64, 17, 16), (64, 64, 3, 3), 1, 1, 1, 1),
    ((1, 64, 33, 32), (64, 64, 3, 3), 1, 1, 1, 1),
    ((1, 64, 33, 32), (64, 64, 3, 3), 2, 1, 1, 1),
    ((1, 64, 20, 18), (64, 16, 3, 3), 1, 1, 3, 4),
    ((16, 64, 9, 8), (64, 64, 5, 5), 1, 2, 1, 1),
]


def _ids(g):
    return "x{}w{}s{}p{}d{}g{}".format(*g).replace(" ", "")


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_plan_only_names_algorithms_that_run_the_geometry(geometry, transposed):
    x_shape, w_shape, stride, padding, dilation, groups = geometry
    if transposed:  # the same weight read as conv_transpose2d's [in, out/groups, R, S]
        x_shape = (x_shape[0], w_shape[0]) + x_shape[2:]
    plan = ops.conv_plan(x_shape, w_shape, stride, padding, dilation, groups, transposed=transposed, backend="cpu")
    for algo, kernel_name in zip(plan[:3], plan.kernels):
        assert kernel_name.endswith("." + algo)
        assert kernels.declared()[kernel_name].offered_by("cpu")
        assert _conv_algo.why_not_applicable(algo, (stride, stride), (dilation, dilation), w_shape[-2:]) is None
        if algo == "winograd":
            assert w_shape[-2:] == (3, 3) and stride == 1 and dilation == 1


class _Choices(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.ran = []

    def emit(self, record):
        self.ran.append((record.conv_direction, record.conv_algo))


@pytest.fixture
def ran():
    log = logging.getLogger("fastcnn.conv")
    handler, level = _Choices(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    yield handler.ran
    log.removeHandler(handler)
    log.setLevel(level)


def _train_step(x_shape, w_shape, stride, padding, dilation, groups, transposed, algo="auto"):
    x = torch.randn(x_shape, requires_grad=True)
    w = torch.randn(w_shape, requires_grad=True)
    if transposed:
        y = ops.conv_transpose2d(x, w, None, stride, padding, 0, groups, dilation, algo=algo, backend="cpu")
    else:
        y = ops.conv2d(x, w, None, stride, padding, dilation, groups, algo=algo, backend="cpu")
    y.backward(torch.randn_like(y))


def _expected(plan):
    return sorted((k.rsplit(".", 1)[0], a) for k, a in zip(plan.kernels, plan[:3]))


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_ids)
@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_plan_matches_what_runs(geometry, transposed, ran):
    x_shape, w_shape, stride, padding, dilation, groups = geometry
    if transposed:
        x_shape = (x_shape[0], w_shape[0]) + x_shape[2:]
    plan = ops.conv_plan(x_shape, w_shape, stride, padding, dilation, groups, transposed=transposed, backend="cpu")
    _train_step(x_shape, w_shape, stride, padding, dilation, groups, transposed)
    assert sorted(ran) == _expected(plan)


def test_plan_of_an_explicit_algo_matches_what_runs(ran):
    geometry = ((1, 8, 10, 9), (8, 8, 3, 3), 1, 1, 1, 1)
    plan = ops.conv_plan(*geometry[:2], 1, 1, algo="winograd", backend="cpu")
    assert plan[:3] == ("winograd",) * 3  # every pass has a cpu winograd kernel
    _train_step(*geometry, transposed=False, algo="winograd")
    assert sorted(ran) == _expected(plan)


def test_plan_follows_the_autotuner(monkeypatch, tmp_path, ran):
    monkeypatch.setenv("FASTCNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_conv_algo, "_memory", {})
    monkeypatch.setitem(_conv_algo._state, "enabled", True)
    geometry = ((2, 8, 12, 11), (8, 8, 3, 3), 1, 1, 1, 1)
    plan = ops.conv_plan(*geometry[:4], backend="cpu")  # tunes now (timing random tensors) and caches
    assert (tmp_path / "conv_autotune.json").exists()
    _train_step(*geometry, transposed=False)
    assert sorted(ran) == _expected(plan)


def test_bad_plans_are_rejected():
    with pytest.raises(ValueError, match="x_shape"):
        ops.conv_plan((3, 8, 8), (4, 3, 3, 3))
    with pytest.raises(ValueError, match="groups"):
        ops.conv_plan((1, 6, 8, 8), (4, 3, 3, 3), groups=4)
    with pytest.raises(ValueError, match="winograd"):
        ops.conv_plan((1, 8, 9, 9), (8, 8, 3, 3), stride=2, algo="winograd", backend="cpu")
    with pytest.raises(TypeError, match="w_shape"):
        ops.conv_plan((1, 8, 9, 9), "8x8x3x3")


def test_strided_backward_input_rule_follows_the_isa():
    layer = dict(N=64, C=128, K=256, kernel_hw=(4, 4), in_hw=(16, 16), stride=(2, 2))
    options = ["direct", "im2col"]
    assert _conv_algo.heuristic(options, _conv_algo.Layer(**layer, isa="avx2"), "conv2d_backward_input") == "im2col"
    assert _conv_algo.heuristic(options, _conv_algo.Layer(**layer, isa="avx512"), "conv2d_backward_input") == "direct"


def test_many_residue_classes_backward_input_takes_im2col():
    """FCN-32s' fixed x32 upsampling (conv_transpose2d, 64x64 kernel, stride 32, groups 21): im2col on
    every ISA; FCN-16s' x16 (256 residue classes), FCN-8s' x8 and a non-overlapping patchify kernel stay
    direct."""
    options = ["direct", "im2col"]
    upscore32 = _conv_algo.Layer(16, 21, 21, (64, 64), (128, 128), (32, 32), groups=21)
    for isa in ("avx512", "avx2"):
        assert _conv_algo.heuristic(options, upscore32._replace(isa=isa), "conv2d_backward_input") == "im2col"
    for factor, hw in ((16, 144), (8, 152)):
        upscore = _conv_algo.Layer(16, 21, 21, (2 * factor,) * 2, (hw, hw), (factor, factor), groups=21, isa="avx512")
        assert _conv_algo.heuristic(options, upscore, "conv2d_backward_input") == "direct"
    # 8 channels: onto 1-4 channels the strided rule takes im2col whatever the windows (a 3-channel
    # patchify measured direct 7.26 / im2col 1.95 ms, 1 thread; test_conv_algo's small convolutions)
    patchify = _conv_algo.Layer(16, 8, 64, (32, 32), (64, 64), (32, 32), isa="avx512")
    assert _conv_algo.heuristic(options, patchify, "conv2d_backward_input") == "direct"
    assert _conv_algo.heuristic(options, patchify._replace(C=3), "conv2d_backward_input") == "im2col"


def test_many_residue_classes_transposed_conv_matches_reference():
    """An odd-sized x32 grouped upsampling (1024 residue classes) through auto, float64 forward and both
    gradients against torch."""
    torch.manual_seed(5)
    x = torch.randn(2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 1, 64, 64, dtype=torch.float64, requires_grad=True)
    plan = ops.conv_plan(x.shape, w.shape, 32, 0, 1, 3, transposed=True, backend="cpu", dtype=torch.float64)
    assert plan.forward == "im2col"
    y = ops.conv_transpose2d(x, w, None, 32, groups=3, backend="cpu")
    gy = torch.randn_like(y)
    y.backward(gy)
    xr, wr = (t.detach().requires_grad_() for t in (x, w))
    yr = F.conv_transpose2d(xr, wr, None, 32, groups=3)
    yr.backward(gy)
    assert_close(y, yr, reduction=4)
    assert_close(x.grad, xr.grad, reduction=64 * 64)
    assert_close(w.grad, wr.grad, reduction=2 * 3 * 2)


def test_env_log_prints_each_choice_once():
    root = Path(__file__).resolve().parents[2]
    code = ("import torch, fastcnn\n"
            "x = torch.randn(1, 3, 9, 9)\nw = torch.randn(4, 3, 3, 3)\n"
            "for _ in range(3): fastcnn.ops.conv2d(x, w, padding=1, algo='direct', backend='cpu')\n")
    env = dict(os.environ, FASTCNN_CONV_LOG="1", PYTHONPATH=str(root))
    err = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stderr
    lines = [ln for ln in err.splitlines() if ln.startswith("fastcnn.conv:")]
    assert len(lines) == 1 and "conv2d_forward.direct" in lines[0], err
