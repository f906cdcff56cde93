"""Pooling family: max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d, max_unpool2d
against torch.nn.functional (float64 reference), on every backend, every cpu ISA copy and both
memory layouts; gradcheck; random configurations (hypothesis); argument errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import fastcnn
import fastcnn._C
from fastcnn import ops
from helpers import ALL_PADDING_WINDOWS, CPU_BACKENDS, assert_close, backend_params, gradcheck, isa, reference_f64  # noqa: F401  (isa: fixture)

# (id, fastcnn op, torch op, input shape, kwargs, values summed per output for the tolerance)
MAX_CASES = [
    ("k3s2", (2, 3, 11, 13), dict(kernel_size=3, stride=2)),
    ("k3s2p1", (2, 3, 10, 9), dict(kernel_size=3, stride=2, padding=1)),
    ("k32s3p1d2ceil", (1, 1, 9, 10), dict(kernel_size=(3, 2), stride=3, padding=1, dilation=2, ceil_mode=True)),
    ("k2s1p1ceil", (3, 2, 8, 7), dict(kernel_size=2, stride=1, padding=1, ceil_mode=True)),
    ("k24s12d13", (1, 4, 12, 37), dict(kernel_size=(2, 4), stride=(1, 2), dilation=(1, 3))),
    ("k3s2wide", (1, 2, 5, 41), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
]
AVG_CASES = [
    ("k3s2p1", (2, 3, 11, 13), dict(kernel_size=3, stride=2, padding=1)),
    ("k3s2p1_nopad_ceil", (2, 3, 10, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                              count_include_pad=False)),
    ("k32s3p1ceil_div5", (1, 1, 9, 10), dict(kernel_size=(3, 2), stride=3, padding=1, ceil_mode=True,
                                             divisor_override=5)),
    ("k2s1", (3, 2, 8, 37), dict(kernel_size=2, stride=1)),
    ("k3s2wide_ceil", (1, 2, 5, 41), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
]
ADAPTIVE_CASES = [
    ("4x5", (2, 3, 11, 13), (4, 5)),
    ("global", (2, 3, 11, 13), 1),
    ("none3", (1, 2, 9, 10), (None, 3)),
    ("upsample", (1, 2, 3, 4), (5, 7)),
    ("uniform_s2", (1, 3, 8, 20), (4, 10)),
    ("uniform_s3", (2, 2, 9, 12), (3, 4)),
    ("pyramid6", (2, 3, 9, 9), 6),  # PSPNet's 9x9 -> 6x6: overlapping narrow windows
    ("narrow_wide", (1, 2, 7, 37), (3, 10)),  # narrow windows on rows of several vectors plus a tail
]


def _case_params(cases):
    return [pytest.param(shape, kw, id=name) for name, shape, kw in cases]


def _input(shape, dtype=torch.float32, channels_last=False, device="cpu", distinct=False):
    if distinct:  # no ties anywhere: max-pooling gradients are then well defined for gradcheck
        n = 1
        for s in shape:
            n *= s
        x = (torch.randperm(n, dtype=torch.float64) / n - 0.5).to(dtype).reshape(shape)
    else:
        x = torch.randn(shape, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(device)


def _check_against_reference(op, ref, x, kwargs, reduction, backend, *, indices=False):
    """Forward (values, indices, memory format) and backward of op vs ref on float64 copies."""
    xg = x.detach().clone().requires_grad_()
    out = op(xg, **kwargs, backend=backend)
    xr = x.detach().cpu().double().requires_grad_()  # the reference runs on the CPU, whatever x's device
    expected = ref(xr, **kwargs)
    if indices:
        (out, idx), (expected, idx_ref) = out, expected
        assert torch.equal(idx.cpu(), idx_ref), "indices differ from torch's"
        assert idx.dtype == torch.int64
    assert_close(out, expected, reduction=reduction)
    # (an input that is both NCHW- and channels_last-contiguous, e.g. 1x1 maps, counts as NCHW, as in torch)
    if (x.dim() == 4 and x.numel() and x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last)
            and not x.is_contiguous() and out.shape[-1] > 1):
        assert out.is_contiguous(memory_format=torch.channels_last), "channels_last input must give channels_last output"
    gy = torch.randn(expected.shape, dtype=torch.float64)
    out.backward(gy.to(out.dtype).to(out.device))
    expected.backward(gy)
    assert_close(xg.grad, xr.grad, reduction=reduction, name="input gradient")


def _window(kwargs):
    k = kwargs["kernel_size"]
    return k * k if isinstance(k, int) else k[0] * k[1]


def _adaptive_reduction(shape, out):
    return (shape[-2] + 1) * (shape[-1] + 1)


# --------------------------------------------------------------------- every backend, odd shapes

@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("shape,kwargs", _case_params(MAX_CASES))
def test_max_pool2d(backend, device, channels_last, shape, kwargs):
    x = _input(shape, channels_last=channels_last, device=device)
    _check_against_reference(ops.max_pool2d, F.max_pool2d, x, dict(kwargs, return_indices=True),
                             _window(kwargs), backend, indices=True)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("shape,kwargs", _case_params(AVG_CASES))
def test_avg_pool2d(backend, device, channels_last, shape, kwargs):
    x = _input(shape, channels_last=channels_last, device=device)
    _check_against_reference(ops.avg_pool2d, F.avg_pool2d, x, kwargs, _window(kwargs), backend)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("shape,output_size", _case_params(ADAPTIVE_CASES))
def test_adaptive_pools(backend, device, channels_last, shape, output_size):
    x = _input(shape, channels_last=channels_last, device=device)
    red = _adaptive_reduction(shape, output_size)
    _check_against_reference(ops.adaptive_avg_pool2d, F.adaptive_avg_pool2d, x, dict(output_size=output_size), red,
                             backend)
    _check_against_reference(ops.adaptive_max_pool2d, F.adaptive_max_pool2d, x,
                             dict(output_size=output_size, return_indices=True), red, backend, indices=True)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_max_unpool2d_round_trip(backend, device, channels_last):
    x = _input((2, 3, 9, 11), channels_last=channels_last, device=device)
    y, idx = F.max_pool2d(x, 3, 2, return_indices=True)  # overlapping windows: repeated indices
    for size in (None, (9, 11), (1, 1, 10, 12)):
        out = ops.max_unpool2d(y, idx, 3, 2, output_size=size, backend=backend)
        ref = F.max_unpool2d(y, idx, 3, 2, output_size=size)
        assert torch.equal(out.cpu(), ref.cpu())
    # through our own max_pool2d, non-overlapping windows: unpool puts each max back in place
    y2, idx2 = ops.max_pool2d(x, 2, return_indices=True, backend=backend)
    back = ops.max_unpool2d(y2, idx2, 2, output_size=x.shape[-2:], backend=backend)
    kept = back != 0
    assert torch.equal(back[kept], x[kept]) and int(kept.sum()) == y2.numel()
    # backward of unpool gathers the gradient at the indices
    yg = y2.detach().double().requires_grad_()
    gy = torch.randn(back.shape, dtype=torch.float64, device=device)
    ops.max_unpool2d(yg, idx2, 2, output_size=x.shape[-2:], backend=backend).backward(gy)
    expected = gy.flatten(2).gather(2, idx2.flatten(2)).view_as(yg)
    assert torch.equal(yg.grad, expected)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_cpu_thread_splits(channels_last):
    # The cpu pool kernels give a thread at least 16K output values: on an odd map large enough for
    # 2-3 threads, every pool's forward and backward equals the 1-thread result bit for bit, and
    # torch's (max values, indices and unpooling exactly; averages to rounding).
    x = _input((2, 7, 131, 97), dtype=torch.float64, channels_last=channels_last, distinct=True)
    calls = {
        "max": (lambda t: ops.max_pool2d(t, 3, 2, padding=1, return_indices=True, backend="cpu"),
                lambda t: F.max_pool2d(t, 3, 2, padding=1, return_indices=True)),
        "avg": (lambda t: ops.avg_pool2d(t, 3, 2, ceil_mode=True, backend="cpu"),
                lambda t: F.avg_pool2d(t, 3, 2, ceil_mode=True)),
        "adaptive": (lambda t: ops.adaptive_avg_pool2d(t, (60, 45), backend="cpu"),
                     lambda t: F.adaptive_avg_pool2d(t, (60, 45))),
    }
    _, idx = F.max_pool2d(x, 2, 2, return_indices=True)  # unpooled values: every other row and column of x
    hw = x.shape[-2:]
    calls["unpool"] = (lambda t: ops.max_unpool2d(t[..., :130:2, :96:2], idx, 2, output_size=hw, backend="cpu"),
                       lambda t: F.max_unpool2d(t[..., :130:2, :96:2], idx, 2, output_size=hw))

    def forward_backward(op, gy=None):  # (outputs as a tuple, input gradient, gy)
        xg = x.detach().requires_grad_()
        out = op(xg)
        out = out if isinstance(out, tuple) else (out,)
        gy = torch.linspace(-1, 1, out[0].numel(), dtype=x.dtype).view(out[0].shape) if gy is None else gy
        return out, torch.autograd.grad(out[0], xg, gy)[0], gy

    previous = torch.get_num_threads()
    try:
        for name, (ours, theirs) in calls.items():
            torch.set_num_threads(1)
            out1, gx1, gy = forward_backward(ours)
            for threads in (2, 3):
                torch.set_num_threads(threads)
                out, gx, _ = forward_backward(ours, gy)
                assert all(torch.equal(a, b) for a, b in zip(out, out1)) and torch.equal(gx, gx1), (name, threads)
            ref, ref_gx, _ = forward_backward(theirs, gy)
            if name in ("max", "unpool"):  # indices and values exactly
                assert all(torch.equal(a, b) for a, b in zip(out1, ref)) and torch.equal(gx1, ref_gx), name
            else:
                assert_close(out1[0], ref[0], reduction=9, name=name)
                assert_close(gx1, ref_gx, reduction=9, name=name + " grad")
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------- every cpu ISA copy

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_cpu_isa_copies(isa, dtype, channels_last):
    """The vectorised paths of every ISA copy: full vectors, partial tails, borders, both layouts."""
    for shape in [(2, 5, 23, 29), (1, 19, 12, 70)]:
        x = _input(shape, dtype=dtype, channels_last=channels_last)
        for _, _, kw in MAX_CASES:
            y, i = ops.max_pool2d(x, **kw, return_indices=True, backend="cpu")
            yr, ir = F.max_pool2d(x, **kw, return_indices=True)
            assert torch.equal(y, yr) and torch.equal(i, ir), kw
        for _, _, kw in AVG_CASES:
            _check_against_reference(ops.avg_pool2d, F.avg_pool2d, x, kw, _window(kw), "cpu")
        for _, _, size in ADAPTIVE_CASES:
            red = _adaptive_reduction(shape, size)
            _check_against_reference(ops.adaptive_avg_pool2d, F.adaptive_avg_pool2d, x, dict(output_size=size),
                                     red, "cpu")
            _check_against_reference(ops.adaptive_max_pool2d, F.adaptive_max_pool2d, x,
                                     dict(output_size=size, return_indices=True), red, "cpu", indices=True)
        _check_against_reference(ops.max_pool2d, F.max_pool2d, x, dict(kernel_size=3, stride=2, padding=1), 9, "cpu")


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_cpu_ties_and_nan_match_torch(isa, channels_last):
    """Ties keep the first index, NaN propagates with the index of the last NaN, -inf windows keep
    the first tap: exactly torch's values and indices."""
    x = torch.randint(0, 3, (2, 17, 13, 40)).float()
    x[0, :, 2:5, 3:9] = float("nan")
    x[1, 2, ::3, ::2] = float("nan")
    x[1, 3] = float("-inf")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for kw in [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=1, dilation=(2, 1))]:
        y, i = ops.max_pool2d(x, **kw, return_indices=True, backend="cpu")
        yr, ir = F.max_pool2d(x, **kw, return_indices=True)
        assert torch.equal(y.isnan(), yr.isnan()) and torch.equal(y.nan_to_num(), yr.nan_to_num())
        assert torch.equal(i, ir)
    for size in [(4, 5), 1, (13, 20)]:
        y, i = ops.adaptive_max_pool2d(x, size, return_indices=True, backend="cpu")
        yr, ir = F.adaptive_max_pool2d(x, size, return_indices=True)
        assert torch.equal(y.isnan(), yr.isnan()) and torch.equal(y.nan_to_num(), yr.nan_to_num())
        assert torch.equal(i, ir)


SEPARABLE_CASES = [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=1, dilation=(2, 1)),
                   dict(kernel_size=(3, 4), stride=(1, 3), padding=(1, 2), ceil_mode=True),
                   dict(kernel_size=5, stride=(2, 4), padding=2, dilation=(1, 2)), dict(kernel_size=1, stride=2)]


@pytest.mark.parametrize("with_indices", [False, True], ids=["values", "indices"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_cpu_separable_max_matches_torch(isa, dtype, channels_last, with_indices):
    """The separable forward (row maxima, then column maxima; rows with a NaN take the exact path):
    strides 1-4 (all phase splits), dilation, padding, ceil_mode, ties (also -0 against +0, which
    must keep torch's row-major first), -inf, inf and NaN rows; values to the sign bit, indices."""
    x = torch.randint(-2, 3, (2, 19, 23, 37)).to(dtype)
    x[1, 7:9] = torch.where(torch.rand(2, 23, 37) < 0.5, -0.0, 0.0).to(dtype)
    x[0, 1:4, 5:7] = float("nan")
    x[1, 0, ::4, ::3] = float("nan")
    x[1, 5] = float("-inf")
    x[0, 6, :, :11] = float("inf")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for kw in SEPARABLE_CASES:
        out = ops.max_pool2d(x, **kw, return_indices=with_indices, backend="cpu")
        ref = F.max_pool2d(x, **kw, return_indices=with_indices)
        (y, i), (yr, ir) = (out, ref) if with_indices else ((out, None), (ref, None))
        assert y.shape == yr.shape and y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format), kw
        assert torch.equal(y.isnan(), yr.isnan()) and torch.equal(y.nan_to_num(), yr.nan_to_num()), kw
        if with_indices:
            assert torch.equal(i, ir) and torch.equal(y.signbit(), yr.signbit()), kw


@pytest.mark.parametrize("backend,device", [p for p in backend_params() if p.values[0] != "cpu"])
def test_ties_and_nan_other_backends(backend, device):
    x = torch.randint(0, 2, (1, 2, 5, 6)).double()
    x[0, 0, 1:3, 1:3] = float("nan")
    x = x.to(device)
    y, i = ops.max_pool2d(x, 3, 2, 1, return_indices=True, backend=backend)
    yr, ir = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert torch.equal(y.isnan(), yr.isnan()) and torch.equal(i, ir)


# --------------------------------------------------------------------- gradcheck (float64)

@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_gradcheck(backend, device, channels_last):
    shape = (1, 2, 5, 7) if backend == "triton" else (2, 3, 7, 9)
    fast = backend == "triton"  # the interpreter is slow; fast mode still checks the Jacobian
    x = _input(shape, torch.float64, channels_last, device, distinct=True).requires_grad_()
    gradcheck(lambda t: ops.max_pool2d(t, (3, 2), 2, 1, 2, True, backend=backend), [x], fast_mode=fast)
    gradcheck(lambda t: ops.avg_pool2d(t, 3, 2, 1, True, False, backend=backend), [x], fast_mode=fast)
    gradcheck(lambda t: ops.avg_pool2d(t, 2, 1, 0, False, True, 3, backend=backend), [x], fast_mode=fast)
    gradcheck(lambda t: ops.adaptive_avg_pool2d(t, (3, 4), backend=backend), [x], fast_mode=fast)
    gradcheck(lambda t: ops.adaptive_max_pool2d(t, (3, 4), backend=backend), [x], fast_mode=fast)
    y, idx = F.max_pool2d(x.detach(), 2, return_indices=True)  # non-overlapping: no repeated index
    gradcheck(lambda t: ops.max_unpool2d(t, idx, 2, output_size=shape[-2:], backend=backend),
              [y.requires_grad_()], fast_mode=fast)


# --------------------------------------------------------------------- random configurations

@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    cfg = dict(
        kernel_size=(kh, kw),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=(draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))),
        dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        ceil_mode=draw(st.booleans()),
    )
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 12)), draw(st.integers(1, 30)))
    return shape, cfg, draw(st.booleans())


def _torch_result(fn, *args, **kwargs):
    """fn(*args, **kwargs), or None where torch rejects the configuration (a RuntimeError)."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError:
        return None


@settings(max_examples=30, deadline=None)
@given(pool_configs())
def test_random_configs_cpu(config):
    shape, cfg, channels_last = config
    x = _input(shape, channels_last=channels_last)
    ref = _torch_result(F.max_pool2d, x, **cfg, return_indices=True)
    if ref is None:
        # torch rejects it (empty output): so must we, with a ValueError naming the argument
        with pytest.raises(ValueError, match="kernel_size"):
            ops.max_pool2d(x, **cfg, backend="cpu")
    else:
        y, i = ops.max_pool2d(x, **cfg, return_indices=True, backend="cpu")
        assert torch.equal(y, ref[0]) and torch.equal(i, ref[1])
    avg_cfg = {k: v for k, v in cfg.items() if k != "dilation"}
    if _torch_result(F.avg_pool2d, x, **avg_cfg) is None:
        with pytest.raises(ValueError, match="kernel_size"):
            ops.avg_pool2d(x, **avg_cfg, backend="cpu")
    else:
        for cip in (True, False):
            _check_against_reference(ops.avg_pool2d, F.avg_pool2d, x, dict(avg_cfg, count_include_pad=cip),
                                     _window(cfg), "cpu")


# Windows that hold no input element (every tap in the padding): torch returns -inf and, as index, the
# window's first tap at or after the top-left edge; hypothesis found the cpu separable path reporting a
# padding position instead (1x1 input, kernel (1, 2), padding (0, 1), dilation (1, 2)).
@pytest.mark.parametrize("shape, cfg", ALL_PADDING_WINDOWS)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_max_pool_window_all_padding(backend, shape, cfg, channels_last):
    x = _input(shape, channels_last=channels_last)
    want_y, want_i = F.max_pool2d(x, **cfg, return_indices=True)
    assert torch.isneginf(want_y).any()  # the case under test is present
    y, i = ops.max_pool2d(x, **cfg, return_indices=True, backend=backend)
    assert torch.equal(y, want_y) and torch.equal(i, want_i)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 14), st.integers(1, 30), st.integers(1, 8),
       st.integers(1, 8), st.booleans())
def test_random_adaptive_cpu(n, c, h, w, oh, ow, channels_last):
    x = _input((n, c, h, w), channels_last=channels_last)
    red = _adaptive_reduction(x.shape, (oh, ow))
    _check_against_reference(ops.adaptive_avg_pool2d, F.adaptive_avg_pool2d, x, dict(output_size=(oh, ow)), red, "cpu")
    _check_against_reference(ops.adaptive_max_pool2d, F.adaptive_max_pool2d, x,
                             dict(output_size=(oh, ow), return_indices=True), red, "cpu", indices=True)


# --------------------------------------------------------------------- shapes torch also accepts

@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_unbatched_and_empty_batch(backend):
    x3 = _input((3, 7, 8))
    _check_against_reference(ops.max_pool2d, F.max_pool2d, x3, dict(kernel_size=2), 4, backend)
    _check_against_reference(ops.avg_pool2d, F.avg_pool2d, x3, dict(kernel_size=3, padding=1), 9, backend)
    _check_against_reference(ops.adaptive_avg_pool2d, F.adaptive_avg_pool2d, x3, dict(output_size=(2, 3)), 20, backend)
    empty = torch.randn(0, 3, 7, 8, requires_grad=True)
    for op, ref, kw in [(ops.max_pool2d, F.max_pool2d, dict(kernel_size=2)),
                        (ops.avg_pool2d, F.avg_pool2d, dict(kernel_size=2)),
                        (ops.adaptive_max_pool2d, F.adaptive_max_pool2d, dict(output_size=3)),
                        (ops.adaptive_avg_pool2d, F.adaptive_avg_pool2d, dict(output_size=3))]:
        out = op(empty, **kw, backend=backend)
        assert out.shape == ref(empty, **kw).shape
        out.sum().backward()
        assert empty.grad.shape == empty.shape
        empty.grad = None


def test_out_size_matches_torch():
    """pool_geometry.cuh's out_size (shared with the CUDA kernels) against torch's output shapes."""
    for size in range(1, 12):
        for k in range(1, 5):
            for s in range(1, 4):
                for pad in range(0, k // 2 + 1):
                    for dil in (1, 2):
                        for ceil in (False, True):
                            ours = fastcnn._C.pool.out_size(size, k, s, pad, dil, ceil)
                            try:
                                theirs = F.max_pool2d(torch.zeros(1, 1, 1, size), (1, k), (1, s), (0, pad), (1, dil),
                                                      ceil).shape[-1]
                            except RuntimeError:
                                assert ours < 1
                                continue
                            assert ours == theirs, (size, k, s, pad, dil, ceil)


def test_adaptive_windows_cover_input():
    """pool_geometry.cuh's adaptive windows: torch's bounds, together covering every input element."""
    for size in range(1, 15):
        for out in range(1, 15):
            starts = [fastcnn._C.pool.adaptive_begin(o, size, out) for o in range(out)]
            ends = [fastcnn._C.pool.adaptive_end(o, size, out) for o in range(out)]
            assert starts[0] == 0 and ends[-1] == size
            assert all(b < e for b, e in zip(starts, ends))
            assert all(starts[o + 1] <= ends[o] for o in range(out - 1))


# --------------------------------------------------------------------- nn modules

@pytest.mark.parametrize("backend", ["cpu"])
def test_modules_match_torch(backend):
    x = _input((2, 3, 11, 13))
    pairs = [
        (fastcnn.nn.MaxPool2d(3, 2, 1, ceil_mode=True, backend=backend), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (fastcnn.nn.AvgPool2d((3, 2), 2, count_include_pad=False, backend=backend),
         torch.nn.AvgPool2d((3, 2), 2, count_include_pad=False)),
        (fastcnn.nn.AdaptiveAvgPool2d((4, None), backend=backend), torch.nn.AdaptiveAvgPool2d((4, None))),
        (fastcnn.nn.AdaptiveMaxPool2d(3, backend=backend), torch.nn.AdaptiveMaxPool2d(3)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == f"fastcnn.nn.{repr(theirs)[:-1]}, backend='{backend}')"  # marked, settings shown
        assert ours.state_dict().keys() == theirs.state_dict().keys()
        assert_close(ours(x), reference_f64(theirs, x), reduction=16)
    pool = fastcnn.nn.MaxPool2d(2, return_indices=True, backend=backend)
    y, idx = pool(x)
    unpool = fastcnn.nn.MaxUnpool2d(2, backend=backend)
    assert torch.equal(unpool(y, idx, output_size=x.shape), torch.nn.MaxUnpool2d(2)(y, idx, output_size=x.shape))


def test_convert_swaps_pooling_layers():
    model = torch.nn.Sequential(torch.nn.MaxPool2d(3, 2, 1), torch.nn.AvgPool2d(2), torch.nn.AdaptiveAvgPool2d(1))
    x = _input((2, 3, 17, 19))
    expected = reference_f64(model, x)
    converted = fastcnn.nn.convert(model, backend="cpu")
    assert [type(m) for m in converted] == [fastcnn.nn.MaxPool2d, fastcnn.nn.AvgPool2d, fastcnn.nn.AdaptiveAvgPool2d]
    assert all(m.backend == "cpu" for m in converted)
    assert_close(converted(x), expected, reduction=16)


# --------------------------------------------------------------------- bad input

@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_bad_input(backend):
    x = torch.randn(1, 2, 9, 9)
    cases = [
        (ValueError, "input", lambda: ops.max_pool2d(torch.randn(9, 9), 2, backend=backend)),
        (ValueError, "input", lambda: ops.avg_pool2d(torch.randn(1, 1, 1, 9, 9), 2, backend=backend)),
        (TypeError, "input", lambda: ops.max_pool2d(torch.ones(1, 1, 4, 4, dtype=torch.int32), 2, backend=backend)),
        (TypeError, "input", lambda: ops.adaptive_avg_pool2d(x.half(), 2, backend=backend)),
        (ValueError, "input", lambda: ops.max_pool2d(torch.randn(1, 0, 4, 4), 2, backend=backend)),
        (ValueError, "kernel_size", lambda: ops.max_pool2d(x, 11, backend=backend)),
        (ValueError, "kernel_size", lambda: ops.max_pool2d(x, 5, dilation=3, backend=backend)),
        (ValueError, "kernel_size", lambda: ops.avg_pool2d(x, (10, 2), backend=backend)),
        (ValueError, "kernel_size", lambda: ops.max_pool2d(x, 0, backend=backend)),
        (ValueError, "padding", lambda: ops.max_pool2d(x, 3, padding=-1, backend=backend)),
        (ValueError, "padding", lambda: ops.max_pool2d(x, 3, padding=2, backend=backend)),
        (ValueError, "padding", lambda: ops.avg_pool2d(x, (4, 2), padding=(2, 2), backend=backend)),
        (ValueError, "stride", lambda: ops.max_pool2d(x, 3, stride=0, backend=backend)),
        (ValueError, "stride", lambda: ops.avg_pool2d(x, 3, stride=(1, 0), backend=backend)),
        (ValueError, "dilation", lambda: ops.max_pool2d(x, 3, dilation=0, backend=backend)),
        (TypeError, "kernel_size", lambda: ops.max_pool2d(x, 2.5, backend=backend)),
        (ValueError, "divisor_override", lambda: ops.avg_pool2d(x, 3, divisor_override=0, backend=backend)),
        (ValueError, "output_size", lambda: ops.adaptive_avg_pool2d(x, (-1, 2), backend=backend)),
        (TypeError, "output_size", lambda: ops.adaptive_max_pool2d(x, "3", backend=backend)),
        (TypeError, "output_size", lambda: ops.adaptive_max_pool2d(x, (1, 2, 3), backend=backend)),
    ]
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    cases += [
        (TypeError, "indices", lambda: ops.max_unpool2d(y, idx.int(), 2, backend=backend)),
        (ValueError, "indices", lambda: ops.max_unpool2d(y, idx[..., :3], 2, backend=backend)),
        (ValueError, "indices", lambda: ops.max_unpool2d(y, idx + 100, 2, backend=backend)),
        (ValueError, "indices", lambda: ops.max_unpool2d(y, idx - 100, 2, backend=backend)),
        (ValueError, "output_size", lambda: ops.max_unpool2d(y, idx, 2, output_size=(12, 8), backend=backend)),
        (ValueError, "output_size", lambda: ops.max_unpool2d(y, idx, 2, output_size=(1, 8, 8), backend=backend)),
        (TypeError, "output_size", lambda: ops.max_unpool2d(y, idx, 2, output_size=8, backend=backend)),
    ]
    for error, name, call in cases:
        with pytest.raises(error, match=name):
            call()


def test_cpu_kernel_never_writes_out_of_range_indices():
    """Below the ops layer's check: the C++ scatter/gather skip (and report) indices outside the plane."""
    from fastcnn.contracts import kernels
    src = torch.ones(1, 1, 2, 2)
    bad = torch.tensor([[[[0, 3], [4, -1]]]])
    with pytest.raises(ValueError, match="indices"):
        kernels.pool_index_scatter["cpu"](src, bad, (2, 2), False)
    with pytest.raises(ValueError, match="indices"):
        kernels.pool_index_gather["cpu"](src, bad)
