"""batch_norm (functional, BatchNorm1d/2d, fuse_conv_bn), normalize and local_response_norm against torch
on odd shapes, per backend (cpu per ISA copy, triton under its interpreter, cuda on a GPU and on the
host emulation of its kernel source, tests/cuda_host_emulator.py)."""
import functools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import fastcnn
from fastcnn import ops
from helpers import assert_close, backend_params, gradcheck, isa  # noqa: F401  (isa is a fixture)

# (shape) deliberately odd: C=1, C=3, odd H/W, batch 1, (N, C) and (N, C, L) input.
SHAPES = [(2, 3, 5, 7), (1, 1, 9, 11), (3, 4, 1, 1), (5, 3), (7, 1), (2, 5, 9), (1, 17, 3, 3)]
TRITON_SHAPES = [(2, 3, 5, 7), (5, 3), (1, 2, 3, 3)]


def _shapes(backend):
    return TRITON_SHAPES if backend == "triton" else SHAPES


def _inputs(shape, dtype, device, affine=True):
    C = shape[1]
    g = torch.Generator().manual_seed(sum(shape))
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 0.5).to(dtype).to(device)
    w = (torch.rand(C, generator=g, dtype=torch.float64) + 0.5).to(dtype).to(device) if affine else None
    b = torch.randn(C, generator=g, dtype=torch.float64).to(dtype).to(device) if affine else None
    rm = torch.randn(C, generator=g, dtype=torch.float64).to(dtype).to(device)
    rv = (torch.rand(C, generator=g, dtype=torch.float64) + 0.5).to(dtype).to(device)
    return x, w, b, rm, rv


def _check_against_reference(backend, device, shape, training, affine, dtype, memory_format=None):
    x, w, b, rm, rv = _inputs(shape, dtype, device, affine)
    if memory_format is not None:
        x = x.contiguous(memory_format=memory_format)
    params = [t for t in (x, w, b) if t is not None]
    for t in params:
        t.requires_grad_(True)
    rm_ref, rv_ref = rm.double().clone(), rv.double().clone()
    y = ops.batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5, backend=backend)
    ref_params = [t.detach().double().requires_grad_(True) for t in params]
    xr, wr, br = (ref_params + [None, None])[:3] if affine else (ref_params[0], None, None)
    yr = F.batch_norm(xr, rm_ref, rv_ref, wr, br, training, 0.1, 1e-5)
    N_per_channel = x.numel() // shape[1]
    assert_close(y, yr, reduction=N_per_channel, name="output")
    assert_close(rm, rm_ref, reduction=N_per_channel, name="running_mean")
    assert_close(rv, rv_ref, reduction=N_per_channel, name="running_var")
    if memory_format is not None:
        assert y.is_contiguous(memory_format=memory_format)
    gy = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7)).to(device)
    grads = torch.autograd.grad(y, params, gy.to(dtype))
    grads_ref = torch.autograd.grad(yr, ref_params, gy)
    # grad_input = w/sigma * (gy - mean(gy) - xhat * mean(gy * xhat)): with few values per channel
    # the terms cancel, and the float32 result is accurate relative to |w| |gy| / sigma, not to itself.
    dims = [d for d in range(xr.dim()) if d != 1]
    sigma = (xr.detach().var(dim=dims, unbiased=False) + 1e-5).sqrt() if training else (rv_ref + 1e-5).sqrt()
    w_abs = wr.detach().abs().max() if affine else 1.0
    input_scale = (gy.abs().max() * w_abs / sigma.min()).item()
    for name, g, gr in zip(("grad_input", "grad_weight", "grad_bias"), grads, grads_ref):
        assert_close(g, gr, reduction=N_per_channel, name=name, scale=input_scale if name == "grad_input" else None)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_batch_norm_matches_torch(backend, device, training, affine, dtype):
    for shape in _shapes(backend):
        _check_against_reference(backend, device, shape, training, affine, dtype)


@pytest.mark.parametrize("backend,device", backend_params())
def test_batch_norm_channels_last(backend, device):
    _check_against_reference(backend, device, (2, 3, 5, 3), True, True, torch.float32,
                             memory_format=torch.channels_last)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_each_isa(isa, training):
    for shape in SHAPES + [(4, 37, 6, 6), (40, 19)]:  # 37, 19: channel blocks with tails on every ISA
        for dtype in (torch.float32, torch.float64):
            _check_against_reference("cpu", "cpu", shape, training, True, dtype)


def test_batch_norm_float32_large_mean_stays_accurate():
    # Shifted two-level sums: a channel with mean 1e3 and std 1 still gets its variance right in float32.
    x = torch.randn(8, 2, 64, 64, dtype=torch.float64) + 1000.0
    rm, rv = torch.zeros(2), torch.ones(2)
    y = ops.batch_norm(x.float(), rm, rv, None, None, True, backend="cpu")
    yr = F.batch_norm(x, torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64), None, None, True)
    assert (y.double() - yr).abs().max().item() < 1e-3  # float32 input rounding of 1000+x alone is ~3e-5 * invstd


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_gradcheck(backend, device, training):
    _gradcheck_batch_norm(backend, device, training, [(3, 2, 3, 2), (4, 3)])


def _gradcheck_batch_norm(backend, device, training, shapes):
    for shape in shapes:
        x, w, b, rm, rv = _inputs(shape, torch.float64, device)
        inputs = [t.requires_grad_(True) for t in (x, w, b)]
        gradcheck(lambda x, w, b: ops.batch_norm(x, rm.clone(), rv.clone(), w, b, training, 0.1, 1e-5,
                                                 backend=backend), inputs)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_batchnorm2d_module_running_stats_match_torch(backend, device, momentum):
    torch.manual_seed(3)
    ours = fastcnn.nn.BatchNorm2d(3, momentum=momentum).to(device)
    ours.backend = backend
    ref = torch.nn.BatchNorm2d(3, momentum=momentum).to(device)
    ref.load_state_dict(ours.state_dict())
    for step in range(4):
        x = torch.randn(2, 3, 5, 4, device=device) * (step + 1) + step
        assert_close(ours(x), ref(x), reduction=40, name=f"train step {step}")
    assert_close(ours.running_mean, ref.running_mean, reduction=40, name="running_mean")
    assert_close(ours.running_var, ref.running_var, reduction=40, name="running_var")
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 4
    ours.eval(), ref.eval()
    x = torch.randn(3, 3, 5, 4, device=device)
    assert_close(ours(x), ref(x), reduction=40, name="eval output")


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 4)), ("BatchNorm1d", (6, 4, 5)), ("BatchNorm2d", (2, 4, 3, 3))])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_batchnorm_module_state_dict_and_options(cls, shape, affine, track):
    ours = getattr(fastcnn.nn, cls)(4, eps=1e-3, momentum=0.2, affine=affine, track_running_stats=track)
    ref = getattr(torch.nn, cls)(4, eps=1e-3, momentum=0.2, affine=affine, track_running_stats=track)
    assert list(ours.state_dict()) == list(ref.state_dict())
    if affine:
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5), ours.bias.uniform_(-1, 1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(shape)
    for mode in ("train", "eval"):
        getattr(ours, mode)(), getattr(ref, mode)()
        assert_close(ours(x), ref(x), reduction=x.numel() // 4, name=mode)
    for key, value in ref.state_dict().items():
        if value.is_floating_point():
            assert_close(ours.state_dict()[key], value, reduction=x.numel() // 4, name=key)
        else:
            assert torch.equal(ours.state_dict()[key], value), key


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 9), h=st.integers(1, 7), w=st.integers(1, 7),
       training=st.booleans())
def test_batch_norm_hypothesis(n, c, h, w, training):
    if training and n * h * w == 1:
        training = False  # one value per channel has no batch variance (rejected; tested below)
    _check_against_reference("cpu", "cpu", (n, c, h, w), training, True, torch.float32)


def test_batch_norm_rejects_bad_input():
    x = torch.randn(2, 3, 4, 4)
    rm, rv = torch.zeros(3), torch.ones(3)
    with pytest.raises(ValueError, match="input"):
        ops.batch_norm(torch.randn(2, 3, 4, 4, 1), rm, rv)
    with pytest.raises(TypeError, match="input"):
        ops.batch_norm(x.to(torch.int32), rm, rv)
    with pytest.raises(ValueError, match="running_mean"):
        ops.batch_norm(x, torch.zeros(4), rv)
    with pytest.raises(ValueError, match="weight"):
        ops.batch_norm(x, rm, rv, torch.ones(5))
    with pytest.raises(TypeError, match="running_var"):
        ops.batch_norm(x, rm, rv.double())
    with pytest.raises(ValueError, match="running_mean"):
        ops.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="input"):
        ops.batch_norm(torch.randn(1, 3), rm, rv, training=True)
    with pytest.raises(ValueError, match="eps"):
        ops.batch_norm(x, rm, rv, eps=-1.0)
    with pytest.raises(ValueError, match="input"):
        fastcnn.nn.BatchNorm2d(3)(torch.randn(2, 3))



@pytest.mark.parametrize("bias,affine", [(True, True), (False, True), (True, False)])
def test_fuse_conv_bn_matches_conv_then_bn(bias, affine):
    torch.manual_seed(5)
    conv = torch.nn.Conv2d(3, 5, (3, 2), stride=2, padding=1, groups=1, bias=bias).double()
    bn = fastcnn.nn.BatchNorm2d(5, affine=affine).double()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
        if affine:
            bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
    conv.eval(), bn.eval()
    fused = fastcnn.nn.fuse_conv_bn(conv, bn)
    x = torch.randn(2, 3, 9, 7, dtype=torch.float64)
    assert_close(fused(x), bn(conv(x)), reduction=3 * 3 * 2, name="fused")


def test_fuse_conv_bn_rejects_training_mode():
    with pytest.raises(ValueError, match="bn"):
        fastcnn.nn.fuse_conv_bn(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match="bn"):
        fastcnn.nn.fuse_conv_bn(torch.nn.Conv2d(2, 3, 1).eval(), torch.nn.BatchNorm2d(4).eval())


# normalize and local_response_norm
NORMALIZE_CASES = [((5, 7), 1), ((5, 7), 0), ((2, 3, 5, 3), 1), ((3, 19, 2), 1), ((6,), 0), ((2, 37), -1)]
# Small enough for the Triton interpreter and the host emulation; still odd sizes, dim 0 / 1 / -1,
# rows (inner == 1) and lines across an inner dimension.
SMALL_NORMALIZE_CASES = [((5, 7), 1), ((3, 5), 0), ((2, 3, 5, 3), 1), ((3, 9, 2), -1), ((2, 3, 4), 0), ((7,), 0)]
# (shape, size): odd and even windows, windows wider than C, one channel.
SMALL_LRN_CASES = [((2, 7, 3), 3), ((2, 7, 3), 4), ((1, 3, 2, 3), 5), ((1, 3, 4), 8), ((2, 1, 5), 2), ((1, 5, 2, 2, 2), 1)]
LRN_PARAMS = dict(alpha=0.3, beta=0.75, k=2.0)
# cpu is covered per ISA copy below; these are the other kernel backends (triton on CPU tensors, GPU ones).
OTHER_BACKENDS = [p for p in backend_params() if p.id != "cpu"]


def _check_op(fn, ref, x, kwargs, reduction, name):
    x = x.detach().requires_grad_(True)
    xr = x.detach().double().requires_grad_(True)
    y, yr = fn(x, **kwargs), ref(xr, **{k: v for k, v in kwargs.items() if k != "backend"})
    assert_close(y, yr, reduction=reduction, name=f"{name} output")
    gy = torch.randn(yr.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(12345)).to(x.device)
    (gx,), (gxr,) = torch.autograd.grad(y, x, gy.to(x.dtype)), torch.autograd.grad(yr, xr, gy)
    assert_close(gx, gxr, reduction=reduction, name=f"{name} grad_input")


def _randn(shape, dtype, device, seed):
    return torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)).to(device, dtype)


def _check_normalize_cases(normalize, cases, p, device="cpu"):
    for shape, dim in cases:
        for dtype in (torch.float32, torch.float64):
            x = _randn(shape, dtype, device, len(shape) + dim)
            _check_op(normalize, F.normalize, x, dict(p=p, dim=dim), x.shape[dim], f"p={p} shape={shape} dim={dim}")


def _check_lrn_cases(lrn, cases, device="cpu"):
    for shape, size in cases:
        for dtype in (torch.float32, torch.float64):
            x = _randn(shape, dtype, device, size)
            _check_op(lrn, F.local_response_norm, x, dict(size=size, **LRN_PARAMS), size,
                      f"lrn size={size} shape={shape}")


def _gradcheck_normalize_and_lrn(normalize, lrn, device="cpu"):
    # Few elements: every one costs two forward launches, every output one backward (interpreter, emulation).
    for p, shape, dim in [(2.0, (2, 3, 2), 1), (1.0, (3, 3), 1), (3.5, (3, 2), 0), (1.5, (2, 3), -1)]:
        x = _randn(shape, torch.float64, device, 3).requires_grad_(True)
        gradcheck(lambda x: normalize(x, p, dim), [x])
    for shape, size in [((1, 5, 2), 3), ((1, 3, 3), 4), ((2, 4, 1), 2)]:
        x = _randn(shape, torch.float64, device, size).requires_grad_(True)
        gradcheck(lambda x: lrn(x, size, 0.5, 0.75, 1.0), [x])


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_normalize_matches_torch_each_isa(isa, p):
    _check_normalize_cases(functools.partial(ops.normalize, backend="cpu"), NORMALIZE_CASES, p)


@pytest.mark.parametrize("backend,device", OTHER_BACKENDS)
@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
def test_normalize_matches_torch(backend, device, p):
    _check_normalize_cases(functools.partial(ops.normalize, backend=backend), SMALL_NORMALIZE_CASES, p, device)


def test_normalize_zero_vector_uses_eps():
    x = torch.zeros(2, 4, dtype=torch.float64)
    x[1] = torch.tensor([3.0, 0.0, -4.0, 0.0])
    _check_op(ops.normalize, F.normalize, x, dict(dim=1, eps=1e-6), 4, "zero row")


@pytest.mark.parametrize("backend,device", OTHER_BACKENDS)
def test_normalize_zero_vector_uses_eps_other_backends(backend, device):
    x = torch.zeros(2, 4, dtype=torch.float64, device=device)
    x[1] = torch.tensor([3.0, 0.0, -4.0, 0.0])
    for p in (1.0, 2.0, 3.5):
        _check_op(ops.normalize, F.normalize, x, dict(p=p, dim=1, eps=1e-6, backend=backend), 4, f"zero row p={p}")


@pytest.mark.parametrize("p", [2.0, 1.5])
def test_normalize_gradcheck(p):
    x = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    gradcheck(lambda x: ops.normalize(x, p, 1, backend="cpu"), [x])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_local_response_norm_matches_torch_each_isa(isa, size):
    shapes = [(2, 7, 3, 5), (1, 3, 4), (2, 1, 5, 5), (1, 4, 37)]
    _check_lrn_cases(functools.partial(ops.local_response_norm, backend="cpu"), [(s, size) for s in shapes])


@pytest.mark.parametrize("backend,device", OTHER_BACKENDS)
def test_local_response_norm_matches_torch(backend, device):
    _check_lrn_cases(functools.partial(ops.local_response_norm, backend=backend), SMALL_LRN_CASES, device)


def test_local_response_norm_gradcheck_and_module():
    x = torch.randn(2, 5, 3, 2, dtype=torch.float64, requires_grad=True)
    gradcheck(lambda x: ops.local_response_norm(x, 3, 0.5, 0.75, 1.0, backend="cpu"), [x])
    x = torch.randn(2, 6, 4, 4)
    assert_close(fastcnn.nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)(x),
                 torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)(x.double()), reduction=5)


@pytest.mark.parametrize("backend,device", OTHER_BACKENDS)
def test_normalize_and_lrn_gradcheck(backend, device):
    _gradcheck_normalize_and_lrn(functools.partial(ops.normalize, backend=backend),
                                 functools.partial(ops.local_response_norm, backend=backend), device)


# --- cuda kernels on the host emulation (CPU tensors; the real .cu source on host threads) -------

@pytest.fixture
def emulated_cuda(monkeypatch):
    """backend="cuda" on CPU tensors: the public ops run their checks and autograd Functions as
    always, the cuda launchers run, and their launches go to tests/cuda_host_emulator.py."""
    import cuda_host_emulator
    from fastcnn.backends.cuda import norm as cuda_norm  # noqa: F401  (registers the cuda kernels)
    cuda_host_emulator.emulate(monkeypatch, public_ops=True)
    return "cuda"


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_emulated_cuda_batch_norm_matches_torch(emulated_cuda, training):
    for shape in TRITON_SHAPES:
        for dtype in (torch.float32, torch.float64):
            _check_against_reference(emulated_cuda, "cpu", shape, training, True, dtype)
    _check_against_reference(emulated_cuda, "cpu", (3, 2, 4), training, False, torch.float64)
    _gradcheck_batch_norm(emulated_cuda, "cpu", training, [(3, 2, 3), (4, 3)])


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
def test_emulated_cuda_normalize_matches_torch(emulated_cuda, p):
    # (2, 300): rows of more than one warp's worth per thread block, through the block reduction.
    _check_normalize_cases(functools.partial(ops.normalize, backend=emulated_cuda),
                           SMALL_NORMALIZE_CASES + [((2, 300), 1)], p)


def test_emulated_cuda_normalize_zero_vector_uses_eps(emulated_cuda):
    x = torch.zeros(2, 4, dtype=torch.float64)
    x[1] = torch.tensor([3.0, 0.0, -4.0, 0.0])
    for p in (1.0, 2.0, 3.5):
        _check_op(ops.normalize, F.normalize, x, dict(p=p, dim=1, eps=1e-6, backend=emulated_cuda), 4,
                  f"zero row p={p}")


def test_emulated_cuda_local_response_norm_matches_torch(emulated_cuda):
    _check_lrn_cases(functools.partial(ops.local_response_norm, backend=emulated_cuda), SMALL_LRN_CASES)


def test_emulated_cuda_normalize_and_lrn_gradcheck(emulated_cuda):
    _gradcheck_normalize_and_lrn(functools.partial(ops.normalize, backend=emulated_cuda),
                                 functools.partial(ops.local_response_norm, backend=emulated_cuda))


@pytest.mark.parametrize("source", ["norm.cu", "norm_lp.cu"])
def test_cuda_norm_sources_compile_with_nvrtc(source):
    """The run-time path (cupy compiles with NVRTC, which has no standard headers): no errors, no warnings."""
    import nvrtc_compile
    lib = nvrtc_compile.find_library()
    if lib is None:
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc, or set FASTCNN_NVRTC_LIB)")
    from fastcnn.backends.cuda._binaries import include_options
    cuda_dir = nvrtc_compile.CUDA_DIR
    res, log = nvrtc_compile.compile_source(lib, cuda_dir / source,
                                            ["-std=c++17", *include_options(cuda_dir), "--gpu-architecture=compute_80"])
    assert res == 0, f"NVRTC failed on {source}:\n{log}"
    assert "warning" not in log.lower(), f"NVRTC warnings on {source}:\n{log}"


def test_normalize_and_lrn_reject_bad_input():
    with pytest.raises(ValueError, match="p"):
        ops.normalize(torch.randn(2, 3), p=0.0)
    with pytest.raises(ValueError, match="dim"):
        ops.normalize(torch.randn(2, 3), dim=2)
    with pytest.raises(TypeError, match="input"):
        ops.normalize(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="input"):
        ops.local_response_norm(torch.randn(2, 3), 2)
    with pytest.raises(ValueError, match="size"):
        ops.local_response_norm(torch.randn(2, 3, 4), 0)
