"""A small workload that calls every triton launcher through the public ops (forward and backward,
float32 and float64, both memory layouts, the flags the launchers branch on), on CPU tensors under
the Triton interpreter. tests/backends/triton/test_triton_aot.py records its launches and compiles each for the GPU;
it also checks that every registered triton kernel and every launched @triton.jit kernel ran here.
Tiny shapes: the interpreter runs every program in Python."""
from __future__ import annotations

import contextlib
import os

import torch

from fastcnn import ops
from fastcnn.contracts import kernels
from fastcnn.contracts.conv import ConvShape

DTYPES = (torch.float32, torch.float64)
CPU = "cpu"  # explicit everywhere: run_all() makes meta the default device, so only the ops' own
# allocations that forget the input's device land there (and fastcnn.ops rejects the output)


def _rand(*shape, dtype, channels_last=False, grad=True):
    g = torch.Generator(device=CPU).manual_seed(sum(shape) * 7 + len(shape))
    t = torch.randn(*shape, generator=g, dtype=torch.float64, device=CPU).to(dtype)
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    return t.requires_grad_(grad)


def _backward(*outputs):
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype, device=CPU).view_as(o)).sum() for o in outputs)
    loss.backward()


def activations(dtype):
    x = _rand(2, 3, 4, 5, dtype=dtype)
    for name in ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus", "silu", "hardswish", "hardsigmoid"):
        _backward(getattr(ops, name)(x, backend="triton"))
    for approximate in ("none", "tanh"):
        _backward(ops.gelu(x, approximate=approximate, backend="triton"))
    _backward(ops.step(x.detach(), backend="triton") * x)
    w = _rand(3, dtype=dtype)
    _backward(ops.prelu(x, w, backend="triton"))
    _backward(ops.prelu(x, _rand(1, dtype=dtype), backend="triton"))
    _backward(ops.maxout(x, 3, dim=1, backend="triton"))


def convolutions(dtype):
    x, w, b = _rand(2, 4, 9, 9, dtype=dtype), _rand(4, 2, 3, 3, dtype=dtype), _rand(4, dtype=dtype)
    for algo in ("direct", "im2col", "fft", "winograd"):
        _backward(ops.conv2d(x, w, b, padding=1, groups=2, algo=algo, activation="elu", backend="triton"))
        _backward(ops.conv2d(x, w, None, padding=1, groups=2, algo=algo, backend="triton"))
    for algo in ("direct", "im2col"):
        _backward(ops.conv2d(x, w, b, stride=2, dilation=2, padding=1, groups=2, algo=algo, activation="leaky_relu",
                             backend="triton"))
        _backward(ops.conv_transpose2d(x, _rand(4, 3, 3, 3, dtype=dtype), b[:3], stride=2, padding=1,
                                       output_padding=1, algo=algo, backend="triton"))
    # the 64-point FFT (kernels up to 32) and a 1x1 kernel (im2col skips the column matrix)
    xl = _rand(1, 2, 40, 40, dtype=dtype)
    _backward(ops.conv2d(xl, _rand(2, 2, 17, 17, dtype=dtype), None, algo="fft", backend="triton"))
    _backward(ops.conv2d(x, _rand(6, 4, 1, 1, dtype=dtype), None, algo="im2col", backend="triton"))
    # TF32 tensor cores on request (float32 GEMM-like kernels only)
    os.environ["FASTCNN_TRITON_TF32"] = "1"
    try:
        for algo in ("direct", "im2col", "fft"):
            ops.conv2d(x.detach(), w.detach(), b.detach(), padding=1, groups=2, algo=algo, backend="triton")
    finally:
        del os.environ["FASTCNN_TRITON_TF32"]
    implicit_gemm(dtype, x, w, b)
    a, m = _rand(5, 7, dtype=dtype), _rand(7, 3, dtype=dtype)
    _backward(ops.matmul(a, m, backend="triton"))
    if dtype == torch.float32:  # the GEMM with TF32 as torch.backends.cuda.matmul.allow_tf32 asks
        with tf32(torch.backends.cuda.matmul, True):
            _backward(ops.linear(a, _rand(3, 7, dtype=dtype), _rand(3, dtype=dtype), backend="triton"))
    _backward(ops.linear(a, _rand(3, 7, dtype=dtype), _rand(3, dtype=dtype), backend="triton"))
    kernels.gemm["triton"](a.detach(), m.detach(), beta=1.0, out=torch.zeros(5, 3, dtype=dtype, device=CPU))


@contextlib.contextmanager
def tf32(flags, on):
    """`flags.allow_tf32` (torch.backends.cudnn or torch.backends.cuda.matmul) set for a block. cudnn's
    through its own flags() context: once torch's test utilities have run disable_global_flags() (the
    OpInfo corpus imports them), a plain assignment to a cudnn flag raises."""
    if flags is torch.backends.cudnn:
        c = torch.backends.cudnn
        with c.flags(enabled=c.enabled, benchmark=c.benchmark, deterministic=c.deterministic, allow_tf32=on):
            yield
        return
    saved = flags.allow_tf32
    flags.allow_tf32 = on
    try:
        yield
    finally:
        flags.allow_tf32 = saved


def implicit_gemm(dtype, x, w, b):
    """Every pass of the tensor-core convolution: float32 with TF32 on and off (torch.backends.cudnn.
    allow_tf32), float64, float16 (bfloat16: derived from these in the AOT test, the interpreter
    cannot multiply it); strided backward input (phases) and a split-K weight gradient."""
    with tf32(torch.backends.cudnn, False):
        _backward(ops.conv2d(x, w, b, padding=1, groups=2, algo="implicit_gemm", activation="elu", backend="triton"))
        _backward(ops.conv2d(x, w, None, stride=2, dilation=2, padding=1, groups=2, algo="implicit_gemm",
                             backend="triton"))
        # 2 x 12 x 12 output pixels: backward weight splits its reduction (sum_splits_kernel)
        _backward(ops.conv2d(_rand(2, 3, 12, 12, dtype=dtype), _rand(4, 3, 3, 3, dtype=dtype), None, padding=1,
                             algo="implicit_gemm", backend="triton"))
    if dtype == torch.float32:
        with tf32(torch.backends.cudnn, True):  # every pass on TF32 tensor cores
            _backward(ops.conv2d(x, w, b, padding=1, groups=2, algo="implicit_gemm", activation="elu",
                                 backend="triton"))
    if dtype == torch.float32:
        xh, wh, bh = (t.detach().half() for t in (x, w, b))
        shape = ConvShape.of(xh.shape, wh.shape, (2, 1), (1, 1), (1, 1), 2, (5, 9))
        y = kernels.conv2d_forward.implicit_gemm["triton"](xh, wh, bh, shape, "relu", 0.0)
        kernels.conv2d_backward_input.implicit_gemm["triton"](y, wh, shape)
        kernels.conv2d_backward_weight.implicit_gemm["triton"](xh, y, shape)


def pooling(dtype):
    for channels_last in (False, True):
        x = _rand(2, 3, 7, 9, dtype=dtype, channels_last=channels_last)
        y, idx = ops.max_pool2d(x, 3, 2, 1, return_indices=True, backend="triton")
        _backward(y)
        _backward(ops.max_pool2d(x, (3, 2), 2, 1, 2, True, backend="triton"))
        _backward(ops.avg_pool2d(x, 3, 2, 1, True, False, backend="triton"))
        _backward(ops.avg_pool2d(x, 2, 1, 0, False, True, 3, backend="triton"))
        _backward(ops.adaptive_avg_pool2d(x, (3, 4), backend="triton"))
        _backward(ops.adaptive_avg_pool2d(x, 1, backend="triton"))
        _backward(*ops.adaptive_max_pool2d(x, (3, 4), return_indices=True, backend="triton")[:1])
        y2, idx2 = ops.max_pool2d(x, 2, return_indices=True, backend="triton")
        _backward(ops.max_unpool2d(y2, idx2, 2, output_size=x.shape[-2:], backend="triton"))


def normalisation(dtype):
    for shape in ((4, 3), (2, 3, 5), (2, 3, 4, 5)):
        x = _rand(*shape, dtype=dtype)
        mean, var = torch.zeros(3, dtype=dtype, device=CPU), torch.ones(3, dtype=dtype, device=CPU)
        for training in (True, False):
            _backward(ops.batch_norm(x, mean, var, _rand(3, dtype=dtype), _rand(3, dtype=dtype), training=training,
                                     backend="triton"))
        _backward(ops.batch_norm(x, mean, var, None, None, training=True, backend="triton"))
    x = _rand(2, 5, 3, 4, dtype=dtype)
    for p in (2.0, 1.0, 3.0):
        for dim in (1, -1, 0):
            _backward(ops.normalize(x, p, dim, backend="triton"))
    _backward(ops.local_response_norm(x, 3, backend="triton"))
    _backward(ops.local_response_norm(_rand(2, 5, 7, dtype=dtype), 2, backend="triton"))
    # group / layer / instance norm share the row-group kernels
    x4 = _rand(2, 4, 5, 3, dtype=dtype)
    _backward(ops.group_norm(x4, 2, _rand(4, dtype=dtype), _rand(4, dtype=dtype), backend="triton"))
    _backward(ops.group_norm(x4, 4, backend="triton"))
    _backward(ops.layer_norm(x4, (5, 3), _rand(5, 3, dtype=dtype), _rand(5, 3, dtype=dtype), backend="triton"))
    mean, var = torch.zeros(4, dtype=dtype, device=CPU), torch.ones(4, dtype=dtype, device=CPU)
    _backward(ops.instance_norm(x4, mean, var, _rand(4, dtype=dtype), _rand(4, dtype=dtype), backend="triton"))


def padding(dtype):
    for channels_last in (False, True):
        x = _rand(2, 3, 5, 4, dtype=dtype, channels_last=channels_last)
        for mode in ("constant", "reflect", "replicate", "circular"):
            _backward(ops.pad(x, (1, 2, 2, 1), mode=mode, backend="triton"))


def softmax_and_losses(dtype):
    x = _rand(3, 5, 4, dtype=dtype)
    for dim in (1, -1, 0):
        _backward(ops.softmax(x, dim, backend="triton"))
        _backward(ops.log_softmax(x, dim, backend="triton"))
    logits = _rand(4, 5, dtype=dtype)
    target = torch.tensor([0, 4, 2, 1], device=CPU)
    weight = torch.rand(5, dtype=dtype, device=CPU)
    for reduction in ("mean", "sum", "none"):
        _backward(ops.cross_entropy(logits, target, reduction=reduction, backend="triton"))
        _backward(ops.cross_entropy(logits, target, weight=weight, ignore_index=2, reduction=reduction,
                                    backend="triton"))
        _backward(ops.nll_loss(logits, target, reduction=reduction, backend="triton"))
        _backward(ops.mse_loss(logits, logits.detach() * 0.5, reduction=reduction, backend="triton"))
        p = torch.sigmoid(logits.detach()).requires_grad_()
        _backward(ops.binary_cross_entropy(p, torch.rand(4, 5, dtype=dtype, device=CPU), reduction=reduction, backend="triton"))
        _backward(ops.binary_cross_entropy_with_logits(logits, torch.rand(4, 5, dtype=dtype, device=CPU), reduction=reduction,
                                                       backend="triton"))
        # class-probability targets (soft cross-entropy, with smoothing and weights) and targets that
        # require a gradient (the losses' target-gradient kinds)
        probs = torch.softmax(_rand(4, 5, dtype=dtype).detach(), 1).requires_grad_()
        _backward(ops.cross_entropy(logits, probs, weight=weight, label_smoothing=0.1, reduction=reduction,
                                    backend="triton"))
        soft = torch.rand(4, 5, dtype=dtype, device=CPU).requires_grad_()
        _backward(ops.binary_cross_entropy(p, soft, reduction=reduction, backend="triton"))
        _backward(ops.binary_cross_entropy_with_logits(logits, soft, reduction=reduction, backend="triton"))
    spatial = _rand(2, 3, 4, 5, dtype=dtype)
    _backward(ops.cross_entropy(spatial, torch.randint(0, 3, (2, 4, 5), device=CPU), backend="triton"))


def dropout(dtype):
    x = _rand(3, 4, 5, 6, dtype=dtype)
    g = torch.Generator(device=CPU).manual_seed(0)
    _backward(ops.dropout(x, 0.3, generator=g, backend="triton"))
    _backward(ops.dropout2d(x, 0.3, generator=g, backend="triton"))


def resampling(dtype):
    for channels_last in (False, True):
        x = _rand(1, 2, 5, 7, dtype=dtype, channels_last=channels_last)
        for kw in (dict(scale_factor=2, mode="nearest"), dict(size=(8, 9), mode="nearest"),
                   dict(scale_factor=2, mode="bilinear", align_corners=True),
                   dict(size=(4, 11), mode="bilinear", align_corners=False)):
            _backward(ops.interpolate(x, **kw, backend="triton"))
    x = _rand(1, 8, 3, 4, dtype=dtype)
    _backward(ops.pixel_shuffle(x, 2, backend="triton"))
    _backward(ops.pixel_unshuffle(_rand(1, 2, 4, 6, dtype=dtype), 2, backend="triton"))
    _backward(ops.unfold(_rand(1, 2, 5, 6, dtype=dtype), 3, padding=1, stride=2, backend="triton"))
    _backward(ops.fold(_rand(1, 2 * 9, 9, dtype=dtype), (5, 6), 3, padding=1, stride=2, backend="triton"))
    grid = (torch.rand(1, 4, 5, 2, dtype=dtype, device=CPU) * 2.4 - 1.2).requires_grad_()
    for mode in ("bilinear", "nearest"):
        for padding_mode in ("zeros", "border", "reflection"):
            for align in (False, True):
                _backward(ops.grid_sample(_rand(1, 2, 5, 6, dtype=dtype), grid, mode=mode, padding_mode=padding_mode,
                                          align_corners=align, backend="triton"))
    # a one-row image: the launcher passes H == 1, which the GPU runtime turns into a constexpr
    _backward(ops.grid_sample(_rand(1, 2, 1, 6, dtype=dtype), grid, backend="triton"))
    _backward(ops.grid_sample(_rand(1, 2, 1, 6, dtype=dtype), grid, padding_mode="reflection", align_corners=True,
                              backend="triton"))


FAMILIES = (activations, convolutions, pooling, normalisation, padding, softmax_and_losses, dropout, resampling)


def run_all() -> None:
    with torch.device("meta"):
        for dtype in DTYPES:
            for family in FAMILIES:
                family(dtype)
