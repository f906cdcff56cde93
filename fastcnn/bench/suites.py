"""The benchmark cases: ops, layers of the lecture networks, whole networks. One line per case.

Shapes are float32, NCHW, the batch sizes stated in each name. Cases whose fastcnn op does not
exist yet are listed as unavailable by the runner rather than dropped silently."""
from __future__ import annotations

import copy
import math
from typing import List

import torch
import torch.nn.functional as F

import fastcnn
from fastcnn.contracts import kernels

from .cases import Case, conv_flops, elementwise_bytes, op_contenders, train_factor

CASES: List[Case] = []


def fast_op(name):
    """fastcnn.ops.<name>, or a function raising NotImplementedError if that op does not exist yet."""
    fn = getattr(fastcnn.ops, name, None)
    if fn is None:
        def missing(*a, **k):
            raise NotImplementedError(f"fastcnn.ops.{name} does not exist yet")
        return missing
    return fn


# ---- ops: activations ------------------------------------------------------------------------
ACT_NUMEL = 16 * 1024 * 1024  # 64 MB of float32, far beyond the caches


def activation_case(name, torch_fn, quick=False, **kw):
    def build(mode, backends):
        x = torch.randn(ACT_NUMEL)
        return op_contenders(fast_op(name), torch_fn, [x], mode, backends, kwargs=kw)
    CASES.append(Case("ops", f"{name} [16M] out of place", "activation", build,
                      nbytes=lambda mode: elementwise_bytes(ACT_NUMEL, mode), quick=quick))


def inplace_case(name, torch_fn, quick=False):
    """In place on a preallocated tensor: no page faults, pure streaming (forward only)."""
    def build(mode, backends):
        x = torch.randn(ACT_NUMEL)
        fast = {f"fastcnn[{b}]": (lambda b=b: fast_op(name)(x, backend=b)) for b in backends}
        return fast, {"torch": lambda: torch_fn(x)}
    CASES.append(Case("ops", f"{name} [16M] in place", "activation", build,
                      nbytes=lambda mode: elementwise_bytes(ACT_NUMEL, mode), quick=quick, modes=("forward",),
                      rtol=float("inf")))  # x changes between calls; relu_ is idempotent but others are not


activation_case("relu", F.relu, quick=True)
activation_case("sigmoid", torch.sigmoid, quick=True)
activation_case("tanh", torch.tanh)
activation_case("elu", F.elu)
activation_case("leaky_relu", F.leaky_relu, negative_slope=0.1)
inplace_case("relu_", torch.relu_, quick=True)


# ---- ops: pooling ------------------------------------------------------------------------------
def pool_case(label, name, torch_fn, shape, quick=False, **kw):
    numel_in = 1
    for s in shape:
        numel_in *= s

    def build(mode, backends):
        x = torch.randn(*shape)
        return op_contenders(fast_op(name), torch_fn, [x], mode, backends, kwargs=kw, channels_last=True)
    CASES.append(Case("ops", label, "pool", build, nbytes=lambda mode: 4 * numel_in * (1.25 if mode == "forward" else 3),
                      quick=quick))


pool_case("max_pool2d 3x3/2 [16,64,112,112]", "max_pool2d", F.max_pool2d, (16, 64, 112, 112), quick=True,
          kernel_size=3, stride=2, padding=1)
pool_case("avg_pool2d 3x3/2 [16,64,112,112]", "avg_pool2d", F.avg_pool2d, (16, 64, 112, 112), kernel_size=3,
          stride=2, padding=1)
pool_case("max_pool2d 2x2/2 [64,20,24,24] (LeNet)", "max_pool2d", F.max_pool2d, (64, 20, 24, 24), kernel_size=2)
pool_case("adaptive_avg_pool2d 6x6 [16,256,13,13]", "adaptive_avg_pool2d", F.adaptive_avg_pool2d, (16, 256, 13, 13),
          output_size=6)


# ---- ops: GEMM ---------------------------------------------------------------------------------
def gemm_case(n, quick=False):
    def build(mode, backends):
        a, b = torch.randn(n, n), torch.randn(n, n)
        return op_contenders(fast_op("matmul"), torch.matmul, [a, b], mode, backends, grad_args=(0, 1))
    CASES.append(Case("ops", f"matmul {n}x{n}x{n}", "gemm", build, flops=lambda mode: 2.0 * n ** 3 * train_factor(mode),
                      quick=quick, rtol=1e-4 * max(1.0, (n / 256) ** 0.5)))


for _n in (1024, 2048, 4096):
    gemm_case(_n, quick=_n <= 2048)


# ---- ops: normalisation, softmax, losses, resampling ---------------------------------------------
# Memory-bound: GB/s counts the bytes the minimal algorithm must move, in units of the input's
# numel x 4 bytes per pass: `passes` = (forward, forward + backward).
def simple_case(label, family, name, torch_fn, make_inputs, numel, passes, quick=False, grad_args=(0,), **kw):
    def build(mode, backends):
        return op_contenders(fast_op(name), torch_fn, make_inputs(), mode, backends, kwargs=kw, grad_args=grad_args)
    CASES.append(Case("ops", label, family, build, quick=quick,
                      nbytes=lambda mode: 4 * numel * (passes[0] if mode == "forward" else passes[1])))


def batch_norm_case(shape, quick=False):
    C = shape[1]
    # forward: read x twice (statistics, normalise), write y; backward: read gy and x twice, write gx
    simple_case(f"batch_norm train {list(shape)}", "norm", "batch_norm", F.batch_norm,
                lambda: [torch.randn(shape), torch.zeros(C), torch.ones(C), torch.ones(C), torch.zeros(C)],
                numel=math.prod(shape), passes=(3, 8), quick=quick, grad_args=(0, 3, 4), training=True)


def softmax_case(shape, quick=False):
    # forward: read x (max and sum), read x, write y; backward: read gy and y (dot), read them, write gx
    simple_case(f"softmax dim=1 {list(shape)}", "softmax", "softmax", F.softmax, lambda: [torch.randn(shape)],
                numel=math.prod(shape), passes=(3, 8), quick=quick, dim=1)


def cross_entropy_case(shape, quick=False):
    targets = (shape[0],) + tuple(shape[2:])
    # forward: read the logits twice (max, log-sum-exp); backward: read them, write the gradient
    simple_case(f"cross_entropy {list(shape)}", "loss", "cross_entropy", F.cross_entropy,
                lambda: [torch.randn(shape), torch.randint(0, shape[1], targets)],
                numel=math.prod(shape), passes=(2, 4), quick=quick)


def pointwise_loss_case(name, torch_fn, shape, make_input, make_target, **kw):
    # forward: read input and target; backward: read both again, write the gradient
    simple_case(f"{name} {list(shape)}", "loss", name, torch_fn, lambda: [make_input(shape), make_target(shape)],
                numel=math.prod(shape), passes=(2, 5), **kw)


def _probabilities(shape):
    return torch.rand(shape).clamp_(1e-3, 1 - 1e-3)


def interpolate_case(shape, quick=False, **kw):
    N, C, H, W = shape
    factor = kw["scale_factor"] ** 2
    align = f" align_corners={kw['align_corners']}" if "align_corners" in kw else ""
    # forward: read x, write the factor^2 larger y; backward: read gy, write gx
    simple_case(f"interpolate {kw['mode']} x{kw['scale_factor']}{align} {list(shape)}", "resample", "interpolate",
                F.interpolate, lambda: [torch.randn(shape)], numel=math.prod(shape),
                passes=(1 + factor, 2 + 2 * factor), quick=quick, **kw)


batch_norm_case((16, 64, 56, 56), quick=True)
batch_norm_case((64, 128, 28, 28))
# AlexNet's LRN after conv1; R2D2's L2-normalised dense descriptors (dim 1 of [4,128,64,64]).
simple_case("local_response_norm size=5 [16,96,55,55]", "norm", "local_response_norm", F.local_response_norm,
            lambda: [torch.randn(16, 96, 55, 55)], numel=16 * 96 * 55 * 55, passes=(2, 5), size=5)
simple_case("normalize p=2 dim=1 [4,128,64,64]", "norm", "normalize", F.normalize,
            lambda: [torch.randn(4, 128, 64, 64)], numel=4 * 128 * 64 * 64, passes=(3, 8), dim=1)


def spectral_norm_case(shape, what):
    """The weight a spectral-norm layer uses each step (one power iteration), against the steps of
    torch.nn.utils.spectral_norm's hook. The weight has a clear largest singular value, so both
    sides' iterations (on the same u, v) converge to it in a few calls and their results agree."""
    rows, cols = shape[0], math.prod(shape[1:])

    def build(mode, backends):
        g = torch.Generator().manual_seed(0)
        rank1 = torch.randn(rows, 1, generator=g) @ torch.randn(1, cols, generator=g)
        w = (torch.randn(rows, cols, generator=g) * 0.05 + rank1 / cols ** 0.5).view(shape)
        u = F.normalize(torch.randn(rows, generator=g), dim=0)
        v = F.normalize(torch.randn(cols, generator=g), dim=0)
        return op_contenders(fast_op("spectral_normalize"), fastcnn.ops.spectral_normalize.reference, [w, u, v],
                             mode, backends)
    # forward: read w for W^T u, W v and the division, write y; backward: read gy and y twice, write gw
    CASES.append(Case("ops", f"spectral_normalize {list(shape)} ({what})", "norm", build,
                      nbytes=lambda mode: 4 * rows * cols * (4 if mode == "forward" else 8)))


spectral_norm_case((16, 8, 4, 4), "StyleGAN-XL D small: per-call cost")
spectral_norm_case((512, 512, 4, 4), "StyleGAN-XL D canonical")
softmax_case((256, 1000))
softmax_case((8, 21, 64, 64))
cross_entropy_case((256, 1000))
cross_entropy_case((8, 21, 64, 64), quick=True)
# SRGAN's pixel loss and a GAN discriminator's / autoencoder's losses at the SRGAN output size.
SRGAN_HR = (16, 3, 384, 384)
pointwise_loss_case("mse_loss", F.mse_loss, SRGAN_HR, torch.randn, torch.randn, quick=True)
pointwise_loss_case("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, SRGAN_HR, torch.randn,
                    torch.rand)
pointwise_loss_case("binary_cross_entropy", F.binary_cross_entropy, SRGAN_HR, _probabilities, torch.rand)
interpolate_case((8, 64, 64, 64), quick=True, scale_factor=2, mode="bilinear", align_corners=False)
interpolate_case((8, 64, 64, 64), scale_factor=2, mode="bilinear", align_corners=True)
interpolate_case((8, 64, 64, 64), scale_factor=2, mode="nearest")
simple_case("pixel_shuffle x2 [16,256,24,24]", "resample", "pixel_shuffle", F.pixel_shuffle,
            lambda: [torch.randn(16, 256, 24, 24)], numel=16 * 256 * 24 * 24, passes=(2, 4), upscale_factor=2)


# ---- layers: the convolutions of the lecture networks ----------------------------------------------
CONV_ALGOS = kernels.CONV_ALGOS


def conv_case(label, N, C, K, H, W, R, S=None, stride=1, padding=0, dilation=1, groups=1, quick=False):
    S = S or R
    P = (H + 2 * padding - dilation * (R - 1) - 1) // stride + 1
    Q = (W + 2 * padding - dilation * (S - 1) - 1) // stride + 1
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)

    def build(mode, backends):
        x, w, b = torch.randn(N, C, H, W), torch.randn(K, C // groups, R, S) * (C * R * S) ** -0.5, torch.randn(K)
        unit = stride == 1 and dilation == 1
        applicable = [a for a in CONV_ALGOS if not (a in ("fft", "winograd") and not unit)
                      and not (a == "winograd" and (R, S) != (3, 3))]
        variants = {"auto": {"algo": "auto"}}
        variants.update({a: {"algo": a} for a in applicable
                         if any(kernels.conv2d_forward.algo(a).offered_by(be) for be in backends)})
        extra = {}
        # torch._nnpack_available() initialises NNPACK; without it the first call fails.
        if (groups == 1 and dilation == 1 and mode == "forward" and hasattr(torch, "_nnpack_available")
                and torch._nnpack_available()):
            extra["nnpack"] = lambda: torch._nnpack_spatial_convolution(x, w, b, [padding, padding], [stride, stride])
        return op_contenders(fast_op("conv2d"), F.conv2d, [x, w, b], mode, backends, kwargs=kw, variants=variants,
                             channels_last=False, extra_baselines=extra, grad_args=(0, 1, 2))
    CASES.append(Case("layers", label, "conv", build,
                      flops=lambda mode: conv_flops(N, C, K, R, S, P, Q, groups) * train_factor(mode),
                      quick=quick, rtol=2e-4))


conv_case("LeNet conv1 1->10 k5 28x28 b64", 64, 1, 10, 28, 28, 5)
conv_case("LeNet conv2 10->20 k5 12x12 b64", 64, 10, 20, 12, 12, 5, quick=True)
conv_case("AlexNet conv1 3->96 k11 s4 227 b16", 16, 3, 96, 227, 227, 11, stride=4)
conv_case("AlexNet conv2 96->256 k5 p2 g2 27 b16", 16, 96, 256, 27, 27, 5, padding=2, groups=2, quick=True)
# the same layer ungrouped, as issue #3 states it: NNPACK (no groups) can run beside it
conv_case("AlexNet conv2 96->256 k5 p2 27 b16 (ungrouped)", 16, 96, 256, 27, 27, 5, padding=2)
conv_case("AlexNet conv3 256->384 k3 p1 13 b16", 16, 256, 384, 13, 13, 3, padding=1, quick=True)
conv_case("AlexNet conv4 384->384 k3 p1 g2 13 b16", 16, 384, 384, 13, 13, 3, padding=1, groups=2)
conv_case("AlexNet conv5 384->256 k3 p1 g2 13 b16", 16, 384, 256, 13, 13, 3, padding=1, groups=2)
conv_case("HardNet 64->64 k3 p1 16x16 b256", 256, 64, 64, 16, 16, 3, padding=1)
conv_case("HardNet 64->128 k3 s2 p1 16x16 b256", 256, 64, 128, 16, 16, 3, stride=2, padding=1)
conv_case("R2D2 64->128 k3 d2 p2 64x64 b4", 4, 64, 128, 64, 64, 3, padding=2, dilation=2)
conv_case("R2D2 128->128 k2 d16 p8 64x64 b4", 4, 128, 128, 64, 64, 2, padding=8, dilation=16)
conv_case("SRResNet 64->64 k3 p1 96x96 b16", 16, 64, 64, 96, 96, 3, padding=1, quick=True)
conv_case("SRResNet conv_in 3->64 k9 p4 96x96 b16", 16, 3, 64, 96, 96, 9, padding=4)
conv_case("DCGAN D 64->128 k4 s2 p1 16x16 b64", 64, 64, 128, 16, 16, 4, stride=2, padding=1)
conv_case("SegNet-Basic 64->64 k7 p3 45x60 b4", 4, 64, 64, 45, 60, 7, padding=3)
conv_case("PIDNet-S 64->64 k3 p1 64x64 b4", 4, 64, 64, 64, 64, 3, padding=1)


def conv_transpose_case(label, N, C, K, H, W, R, stride, padding, quick=False):
    P = (H - 1) * stride - 2 * padding + R

    def build(mode, backends):
        x, w = torch.randn(N, C, H, W), torch.randn(C, K, R, R) * (C * R * R) ** -0.5
        return op_contenders(fast_op("conv_transpose2d"), F.conv_transpose2d, [x, w], mode, backends,
                             kwargs=dict(stride=stride, padding=padding), grad_args=(0, 1))
    CASES.append(Case("layers", label, "conv", build,
                      flops=lambda mode: conv_flops(N, K, C, R, R, H, W) * train_factor(mode), quick=quick, rtol=2e-4))


conv_transpose_case("DCGAN G 256->128 convT k4 s2 p1 8x8 b64", 64, 256, 128, 8, 8, 4, 2, 1, quick=True)
conv_transpose_case("DCGAN G 128->64 convT k4 s2 p1 16x16 b64", 64, 128, 64, 16, 16, 4, 2, 1)


def pyramid_pooling_case(label, N, C, H, W):
    def build(mode, backends):
        x = torch.randn(N, C, H, W)
        fn = lambda t, backend=None: [fast_op("adaptive_avg_pool2d")(t, b, backend=backend) for b in (1, 2, 3, 6)]
        ref = lambda t: [F.adaptive_avg_pool2d(t, b) for b in (1, 2, 3, 6)]
        if mode == "train":
            fn2 = lambda t, backend=None: sum(o.sum() for o in fn(t, backend=backend))
            ref2 = lambda t: sum(o.sum() for o in ref(t))
            return op_contenders(fn2, ref2, [x], mode, backends)
        return op_contenders(fn, ref, [x], mode, backends)
    CASES.append(Case("layers", label, "pool", build, nbytes=lambda mode: 4 * N * C * H * W * 4))


pyramid_pooling_case("PSPNet pyramid pooling bins 1,2,3,6 [4,512,60,60]", 4, 512, 60, 60)


# ---- overhead: the per-call cost of a public op, on tensors so small that the kernel is nothing -------
# What the Python layer (argument checks, backend dispatch, autograd.Function, output allocation) costs
# beside torch.nn.functional's C++ dispatch; it decides small networks such as LeNet. Not in the
# default run (`fastcnn bench --suite overhead`).
def overhead_case(label, name, torch_fn, make_inputs, grad_args=(0,), **kw):
    def build(mode, backends):
        return op_contenders(fast_op(name), torch_fn, make_inputs(), mode, backends, kwargs=kw, grad_args=grad_args)
    CASES.append(Case("overhead", label, "overhead", build, quick=True))


overhead_case("relu [8]", "relu", F.relu, lambda: [torch.randn(8)])
overhead_case("conv2d 1x1 [1,1,4,4]", "conv2d", F.conv2d,
              lambda: [torch.randn(1, 1, 4, 4), torch.randn(1, 1, 1, 1), torch.randn(1)], grad_args=(0, 1, 2))
overhead_case("max_pool2d 2x2 [1,1,4,4]", "max_pool2d", F.max_pool2d, lambda: [torch.randn(1, 1, 4, 4)], kernel_size=2)
overhead_case("linear 8->4 [2,8]", "linear", F.linear, lambda: [torch.randn(2, 8), torch.randn(4, 8), torch.randn(4)],
              grad_args=(0, 1, 2))
overhead_case("batch_norm train [4,3,2,2]", "batch_norm", F.batch_norm,
              lambda: [torch.randn(4, 3, 2, 2), torch.zeros(3), torch.ones(3), torch.ones(3), torch.zeros(3)],
              grad_args=(0, 3, 4), training=True)
overhead_case("cross_entropy [4,5]", "cross_entropy", F.cross_entropy,
              lambda: [torch.randn(4, 5), torch.randint(0, 5, (4,))])


# ---- networks: every zoo network in its small size, one inference pass and one training step ----
# fastcnn's network (fastcnn.models.get_model) against its torch twin (get_twin: the same definition
# on torch.nn layers, same weights) in eager mode, NCHW and channels_last; `--compile` adds
# torch.compile of the twin. Dropout is off in both (p=0) so they compute the same function and the
# results can be checked against each other; BatchNorm runs in training mode for the training step.
NETWORK_BATCH = 16
NETWORK_QUICK = ("lenet", "conv_autoencoder")
# Networks whose training-mode forward advances a state on every call (the VAE's noise counter,
# spectral norm's power iteration): fastcnn's and the twin's results depend on how often each was
# timed, so the harness's after-timing check cannot compare them; tests/models checks their parity.
NETWORK_STATEFUL = ("vae", "stylegan_xl_discriminator")


def _no_dropout(model):
    for m in model.modules():
        if "Dropout" in type(m).__name__:
            m.p = 0.0
    return model


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    return _first_tensor(next(iter(out.values())) if isinstance(out, dict) else out[0])


def _network_loss(out):
    """A scalar touching every floating output (the benchmark times the network, not a loss)."""
    leaves = [out] if isinstance(out, torch.Tensor) else list(out.values()) if isinstance(out, dict) else list(out)
    return sum(t.float().pow(2).mean() for t in leaves if isinstance(t, torch.Tensor) and t.is_floating_point())


def _network_call(model, x, mode):
    if mode == "forward":
        model.eval()

        def infer():
            with torch.no_grad():
                return _first_tensor(model(x))
        return infer
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]

    def train_step():  # forward, backward, SGD update; returns the loss (parameters keep changing)
        loss = _network_loss(model(x))
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads):
                if g is not None:
                    p.sub_(1e-6 * g)
        return loss.detach()
    return train_step


def _with_backend(call, backend):
    """call() with every fastcnn op of the network on `backend` (modules are built with backend=None).
    Where backend=None picks it anyway (cpu, FASTCNN_BACKEND unset: the networks' tensors are on the
    CPU), call itself: setting and restoring the variable around every call cost some 4 us, charged
    to fastcnn's time alone (3% of a small MLP's training step)."""
    import os

    if backend == "cpu" and not os.environ.get("FASTCNN_BACKEND"):
        return call

    def run():
        old = os.environ.get("FASTCNN_BACKEND")
        os.environ["FASTCNN_BACKEND"] = backend
        try:
            return call()
        finally:
            if old is None:
                del os.environ["FASTCNN_BACKEND"]
            else:
                os.environ["FASTCNN_BACKEND"] = old
    return run


def network_case(name, batch=NETWORK_BATCH, quick=False):
    from fastcnn import models

    def fresh_twin(net, memory_format=torch.contiguous_format):
        twin = _no_dropout(models.get_twin(name, size="small"))  # built anew: some hold non-leaf caches
        twin.load_state_dict(net.state_dict())
        return twin.to(memory_format=memory_format)

    def build(mode, backends):
        torch.manual_seed(0)
        net = _no_dropout(models.get_model(name, size="small"))
        twin = fresh_twin(net)
        x = net.example_input(batch)
        if mode == "train" and not _network_loss(twin(x)).requires_grad:
            raise NotImplementedError(f"{name} has no gradient (it trains by its own rule)")
        fast = {f"fastcnn[{b}]": _with_backend(_network_call(net, x, mode), b) for b in backends}
        twin_cl = fresh_twin(net, torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
        base = {"torch": _network_call(twin, x, mode), "torch_cl": _network_call(twin_cl, x_cl, mode)}
        return fast, base

    def compile_source(mode):  # the same start (seed, weights, input) on a twin of its own
        torch.manual_seed(0)
        net = _no_dropout(models.get_model(name, size="small"))
        return _network_call(fresh_twin(net), net.example_input(batch), mode)
    CASES.append(Case("networks", f"{name} (small) b{batch}", "network", build, quick=quick, memory=True,
                      rtol=float("inf") if name in NETWORK_STATEFUL else 1e-3, compile_source=compile_source))


def _network_cases():
    from fastcnn import models

    for name in models.list_models():
        network_case(name, quick=name in NETWORK_QUICK)


_network_cases()
