"""torch.compile and torch.export of models on fastcnn layers (fastcnn/ops/_library.py).

A compiled graph must hold fastcnn's kernels as custom ops, with no graph break (fullgraph=True) and
the results of eager mode, forward and backward; `_library.calls` counts the kernels that ran through
their custom op, which proves the compiled graph ran them (eager calls never pass there).
"""
from __future__ import annotations

import collections
import copy

import pytest
import torch
from torch import nn

import fastcnn
from fastcnn import models
from fastcnn.ops import _library

from helpers import assert_close


def _small_convnet():
    """A converted LeNet-sized model touching the ops the zoo networks use."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.LeakyReLU(0.1), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(6, 8), nn.Tanh(), nn.Dropout(0.0), nn.Linear(8, 5), nn.LogSoftmax(dim=1))
    return fastcnn.nn.convert(model)


def _grads(model):
    """Parameter gradients (parameters a step did not reach keep None, in eager and compiled runs alike)."""
    return {n: p.grad.clone() if p.grad is not None else None for n, p in model.named_parameters()}


def _train_step(model, x, target):
    out = model(x)
    loss = fastcnn.ops.nll_loss(out, target)
    loss.backward()
    return out.detach(), loss.detach()


def _assert_same(actual, expected, name):
    assert_close(actual, expected.double(), name=name)


@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_fullgraph_compile_matches_eager_forward_and_backward(compiler):
    eager = _small_convnet()
    compiled_model = copy.deepcopy(eager)
    x, target = torch.randn(3, 1, 10, 10), torch.tensor([0, 4, 2])

    out_e, loss_e = _train_step(eager, x, target)
    before = sum(_library.calls.values())
    compiled = torch.compile(compiled_model, fullgraph=True, backend=compiler)
    out_c, loss_c = _train_step(compiled, x, target)
    ran = sum(_library.calls.values()) - before

    _assert_same(out_c, out_e, "output")
    _assert_same(loss_c, loss_e, "loss")
    for name, g in _grads(eager).items():
        _assert_same(_grads(compiled_model)[name], g, f"grad {name}")
    bn_e, bn_c = eager[1], compiled_model[1]
    _assert_same(bn_c.running_mean, bn_e.running_mean, "running_mean")
    _assert_same(bn_c.running_var, bn_e.running_var, "running_var")
    # forward: 2 conv, bn, 3 activations, 2 pools, 2 linear, log_softmax; backward about as many again
    assert ran >= 20, f"only {ran} fastcnn kernels ran through their custom ops: {dict(_library.calls)}"
    for kernel in ("conv2d_forward", "conv2d_backward_weight", "batch_norm_backward", "max_pool2d_forward",
                   "avg_pool2d_backward", "gemm", "softmax_backward"):
        assert _library.calls[kernel] > 0, f"{kernel} never ran inside the compiled graph"


def test_eager_calls_do_not_go_through_custom_ops():
    model = _small_convnet()
    x, target = torch.randn(2, 1, 10, 10), torch.tensor([1, 3])
    before = dict(_library.calls)
    _train_step(model, x, target)
    assert dict(_library.calls) == before


def test_zoo_lenet_compiles_fullgraph_with_dropout():
    """The zoo's LeNet in training mode (dropout on: torch's generator draws the masks, which
    inductor's fallback_random keeps identical to eager), cross_entropy loss."""
    torch.manual_seed(0)
    eager = models.get_model("lenet", size="small").train()
    compiled_model = copy.deepcopy(eager)
    x, target = torch.randn(4, 1, 28, 28), torch.tensor([1, 7, 3, 0])

    def forward_and_loss(model, inp, tgt):
        out = model(inp)
        return out, fastcnn.ops.cross_entropy(out, tgt)

    def step(fn, model):
        torch.manual_seed(1)
        out, loss = fn(model, x, target)
        loss.backward()
        return out.detach()

    out_e = step(forward_and_loss, eager)
    before = _library.calls["conv2d_backward_input"]
    from torch._inductor import config

    with config.patch(fallback_random=True):
        out_c = step(torch.compile(forward_and_loss, fullgraph=True), compiled_model)
    _assert_same(out_c, out_e, "output")
    for name, g in _grads(eager).items():
        _assert_same(_grads(compiled_model)[name], g, f"grad {name}")
    assert _library.calls["conv2d_backward_input"] > before  # conv2's input gradient ran compiled
    assert _library.calls["cross_entropy_backward"] > 0 and _library.calls["dropout_masked_scale"] > 0


def test_export_round_trip_eval():
    model = _small_convnet().eval()
    x = torch.randn(2, 1, 10, 10)
    with torch.no_grad():
        expected = model(x)
    program = torch.export.export(model, (x,))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    fastcnn_ops = {t for t in targets if t.startswith("fastcnn.")}
    assert {"fastcnn.conv2d_pass.default", "fastcnn.batch_norm_forward.default",
            "fastcnn.max_pool2d_forward.default", "fastcnn.gemm_.default"} <= fastcnn_ops, targets
    before = _library.calls["conv2d_forward"]
    with torch.no_grad():
        got = program.module()(x)
    _assert_same(got, expected, "exported output")
    assert _library.calls["conv2d_forward"] == before + 2


def test_compiled_op_still_rejects_bad_input():
    """Argument checks run while tracing: a wrong shape is the eager ValueError (Dynamo hands the
    call back to eager mode, where it is raised); with fullgraph=True Dynamo reports that exception."""
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 2, 3, 3)
    with pytest.raises(ValueError, match="weight: expected 3 input channels"):
        torch.compile(lambda a, b: fastcnn.ops.conv2d(a, b), backend="aot_eager")(x, w)
    with pytest.raises(Exception, match="weight: expected 3 input channels"):
        torch.compile(lambda a, b: fastcnn.ops.conv2d(a, b), fullgraph=True, backend="aot_eager")(x, w)


def test_compiled_cross_entropy_rejects_bad_target():
    """The class-index range check needs values, so it runs in the custom op on the real tensors."""
    loss = torch.compile(lambda x, t: fastcnn.ops.cross_entropy(x, t), fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3)
    assert torch.isfinite(loss(x, torch.tensor([0, 2])))
    with pytest.raises(ValueError, match="target"):
        loss(x, torch.tensor([0, 3]))


def _zoo_training_step_matches_eager(name):
    """Fullgraph compile of the zoo network `name` (small size, training mode): output and parameter
    gradients of one step equal to eager; returns the kernels that ran through their custom ops."""
    torch.manual_seed(0)
    eager = models.get_model(name, size="small").train()
    compiled_model = copy.deepcopy(eager)
    x = eager.example_input(2)

    def step(model):
        torch.manual_seed(1)
        out = model(x)  # a tensor, a tuple or a dict of them: every output goes into the loss
        outs = [out] if isinstance(out, torch.Tensor) else list(out.values() if isinstance(out, dict) else out)
        sum(o.pow(2).mean() for o in outs).backward()
        return [o.detach() for o in outs]

    outs_e = step(eager)
    before = collections.Counter(_library.calls)
    outs_c = step(torch.compile(compiled_model, fullgraph=True, backend="aot_eager"))
    for i, (out_c, out_e) in enumerate(zip(outs_c, outs_e)):
        _assert_same(out_c, out_e, f"output {i}")
    compiled_grads = _grads(compiled_model)
    for pname, g in _grads(eager).items():
        if g is None:
            assert compiled_grads[pname] is None, f"grad {pname}: None in eager mode only"
        else:
            _assert_same(compiled_grads[pname], g, f"grad {pname}")
    return _library.calls - before


def test_zoo_srresnet_compiles_fullgraph():
    """SRResNet: PReLU and PixelShuffle (sub-pixel upsampling) inside the compiled graph (~8 s)."""
    ran = _zoo_training_step_matches_eager("srresnet")
    for kernel in ("prelu_forward", "prelu_backward", "pixel_shuffle", "conv2d_backward_input"):
        assert ran[kernel] > 0, f"{kernel} never ran inside the compiled graph: {dict(ran)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alexnet", "conv_autoencoder", "hardnet", "r2d2", "stylegan_xl_generator",
                                  "stylegan_xl_discriminator"])
def test_zoo_network_compiles_fullgraph(name):
    """Larger zoo networks (AlexNet's LRN, adaptive pooling and dropout; the autoencoder's transposed
    convolutions; HardNet's and R2D2's L2 normalisation; StyleGAN-XL's modulated convolutions and FIR
    resampling): fullgraph compile, training step equal to eager (3-12 s each)."""
    assert sum(_zoo_training_step_matches_eager(name).values()) > 0


def test_every_cpu_kernel_has_a_custom_op():
    """A kernel without a custom op makes torch.compile / torch.export fail on the op calling it; the
    convolution kernels (conv2d_*.<algo>) all run through the one conv2d_pass op."""
    import fnmatch

    from fastcnn import _registry

    _registry._load(_registry._BACKENDS["cpu"])
    cpu_kernels = sorted(_registry.registered("cpu"))
    assert len(cpu_kernels) > 40, cpu_kernels
    excluded = {}  # kernel name -> why it needs no custom op (none today)
    missing = [name for name in cpu_kernels if name not in excluded
               and not any(fnmatch.fnmatch(name, pattern) for pattern in _library.registered())]
    assert missing == [], f"cpu kernels without a custom op in fastcnn/ops/_library.py: {missing}"


class _ResampleNet(nn.Module):
    """Reflect-padded conv, GroupNorm, PReLU, LayerNorm, PixelShuffle: the ops of the SR/GAN networks."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 8, 3, padding=1, padding_mode="reflect")
        self.gn, self.act = nn.GroupNorm(2, 8), nn.PReLU(8)
        self.ln, self.shuffle = nn.LayerNorm([8, 6, 6]), nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.ln(self.act(self.gn(self.conv(x)))))


def test_fullgraph_compile_of_resampling_ops_matches_eager():
    """Model and MSE loss in one compiled graph; the input requires grad so padding runs backward."""
    torch.manual_seed(0)
    eager = fastcnn.nn.convert(_ResampleNet())
    compiled_model = copy.deepcopy(eager)
    x, target = torch.randn(2, 2, 6, 6), torch.randn(2, 2, 12, 12)

    def forward_and_loss(model, inp):
        out = model(inp)
        return out, fastcnn.ops.mse_loss(out, target)

    def step(fn, model):
        inp = x.clone().requires_grad_()
        out, loss = fn(model, inp)
        loss.backward()
        return out.detach(), loss.detach(), inp.grad

    out_e, loss_e, gx_e = step(forward_and_loss, eager)
    before = collections.Counter(_library.calls)
    out_c, loss_c, gx_c = step(torch.compile(forward_and_loss, fullgraph=True, backend="aot_eager"), compiled_model)
    ran = _library.calls - before

    _assert_same(out_c, out_e, "output")
    _assert_same(loss_c, loss_e, "loss")
    _assert_same(gx_c, gx_e, "input grad")
    for name, g in _grads(eager).items():
        _assert_same(_grads(compiled_model)[name], g, f"grad {name}")
    for kernel in ("pad2d_forward", "pad2d_backward", "group_rows_forward", "group_rows_backward", "prelu_forward",
                   "prelu_backward", "pixel_shuffle", "pointwise_loss_backward"):
        assert ran[kernel] > 0, f"{kernel} never ran inside the compiled graph: {dict(ran)}"
    assert ran["pointwise_loss_sum"] + ran["pointwise_loss_forward"] > 0, dict(ran)


def _other_ops(x, grid, target, probs, running_mean, running_var):
    """Ops without a zoo network in the default tests: maxout, grid_sample, unfold/fold, instance norm
    updating running statistics (a mutated argument), pixel_unshuffle, normalize, BCE with logits and
    cross_entropy with class-probability targets."""
    ops = fastcnn.ops
    y = ops.maxout(x, 2)                                                      # [2, 2, 6, 6]
    y = y + ops.grid_sample(y, grid, align_corners=False)
    y = ops.fold(ops.unfold(y, 3, padding=1), (6, 6), 3, padding=1)
    y = ops.instance_norm(y, running_mean, running_var, use_input_stats=True)
    y = ops.normalize(ops.pixel_unshuffle(y, 2), dim=1)                       # [2, 8, 3, 3]
    logits = y.flatten(2).mean(2)                                             # [2, 8]
    return y, ops.binary_cross_entropy_with_logits(y, target) + ops.cross_entropy(logits, probs)


def test_fullgraph_compile_of_remaining_ops_matches_eager():
    torch.manual_seed(0)
    x, grid = torch.randn(2, 4, 6, 6), torch.rand(2, 6, 6, 2) * 2 - 1
    target, probs = torch.rand(2, 8, 3, 3), torch.softmax(torch.randn(2, 8), 1)

    def step(fn):
        inp, g = x.clone().requires_grad_(), grid.clone().requires_grad_()
        stats = torch.zeros(2), torch.ones(2)
        out, loss = fn(inp, g, target, probs, *stats)
        loss.backward()
        return [out.detach(), loss.detach(), inp.grad, g.grad, *stats]

    expected = step(_other_ops)
    before = collections.Counter(_library.calls)
    got = step(torch.compile(_other_ops, fullgraph=True, backend="aot_eager"))
    ran = _library.calls - before
    for name, a, e in zip(["output", "loss", "input grad", "grid grad", "running_mean", "running_var"], got, expected):
        _assert_same(a, e, name)
    for kernel in ("maxout_forward", "maxout_backward", "grid_sample_forward", "grid_sample_backward", "im2col",
                   "col2im", "group_rows_forward", "group_rows_backward", "normalize_backward",
                   "pointwise_loss_backward", "soft_cross_entropy_forward", "soft_cross_entropy_backward"):
        assert ran[kernel] > 0, f"{kernel} never ran inside the compiled graph: {dict(ran)}"


def test_fullgraph_compile_of_spectral_norm_matches_eager():
    """A spectral-norm conv in training mode: the power iteration updates the u, v buffers inside
    the graph, and the fused kernels run as custom ops forward and backward."""
    torch.manual_seed(0)
    eager = fastcnn.nn.spectral_norm(fastcnn.nn.Conv2d(3, 5, 3))
    compiled_model = copy.deepcopy(eager)
    x = torch.randn(2, 3, 7, 7)

    def step(model):
        out = model(x)
        out.square().sum().backward()
        return [out.detach(), model.weight_orig.grad, model.weight_u.clone(), model.weight_v.clone()]

    expected = step(eager)
    before = collections.Counter(_library.calls)
    got = step(torch.compile(compiled_model, fullgraph=True, backend="aot_eager"))
    ran = _library.calls - before
    for name, a, e in zip(["output", "weight grad", "u", "v"], got, expected):
        _assert_same(a, e, name)
    for kernel in ("spectral_norm_forward", "spectral_norm_backward"):
        assert ran[kernel] > 0, f"{kernel} never ran inside the compiled graph: {dict(ran)}"


def test_export_of_resampling_ops_eval():
    model = fastcnn.nn.convert(_ResampleNet()).eval()
    x = torch.randn(2, 2, 6, 6)
    with torch.no_grad():
        expected = model(x)
    program = torch.export.export(model, (x,))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert {"fastcnn.pad2d_forward.default", "fastcnn.group_rows_forward.default", "fastcnn.prelu_forward.default",
            "fastcnn.pixel_shuffle.default"} <= targets, targets
    with torch.no_grad():
        _assert_same(program.module()(x), expected, "exported output")


_COMPILED_TRAIN_STEP = """
import torch, fastcnn
from torch import nn
torch.manual_seed(0)
model = {model}
x = torch.randn(4, 1, 12, 12)
params = list(model.parameters())

def step():  # the backward compiles lazily, inside the compiled frame
    loss = model(x).pow(2).mean()
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(1e-3 * g)
    return loss.detach()

compiled = torch.compile(step, backend="aot_eager")
losses = [float(compiled()) for _ in range(3)]
assert losses[2] < losses[0], losses
print("ok", losses)
"""


@pytest.mark.parametrize("model", ["torch", "fastcnn"])
def test_compiled_training_step_with_backward_inside_does_not_deadlock(model):
    """A compiled step that calls autograd.grad itself (as the bench's networks suite does) once hung
    forever in Dynamo's callback lock with fastcnn imported, whatever the model's layers; run in a
    child process so a regression fails on the timeout instead of hanging the suite."""
    import subprocess
    import sys

    net = "nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(300, 2))"
    if model == "fastcnn":
        net = f"fastcnn.nn.convert({net})"
    try:
        done = subprocess.run([sys.executable, "-c", _COMPILED_TRAIN_STEP.format(model=net)],
                              capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("torch.compile of a training step with its backward inside hung (Dynamo callback deadlock)")
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-2000:]


_FIRST_COMPILE_COUNTS_GRAPHS = """
import torch, fastcnn
from torch import nn
import torch._dynamo.utils as dynamo_utils
torch.manual_seed(0)
model = fastcnn.nn.convert(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()))
compiled = torch.compile(model, backend="aot_eager")
x = torch.randn(2, 3, 10, 10)
for _ in range(3):
    compiled(x)
print(dynamo_utils.counters["stats"]["unique_graphs"])
"""


def test_first_compile_of_a_fresh_process_is_not_recompiled():
    """In a process whose eager ops were never looked up, tracing once resolved them (fastcnn/ops/_eager.py
    EagerOp.get), which broke the trace's own guard on that state and compiled the model a second time;
    a child process, so that no earlier test has resolved them."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _FIRST_COMPILE_COUNTS_GRAPHS], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "1", done.stdout
