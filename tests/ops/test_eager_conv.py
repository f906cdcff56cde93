"""The eager conv op (csrc/torchops/conv.cpp, fastcnn/ops/conv.py _eager_conv): conv2d and
conv_transpose2d on the cpu backend give what the Functions _Conv2d / _ConvTranspose2d give on the same
kernels (bit for bit), forward and every gradient, for each algorithm each pass can run, on odd shapes;
float64 gradcheck through the op; the per-pass choice and the non-finite fallback are the Python path's;
the calls the op does not serve (large tensors, autotuner, choice log, replaced kernels, degenerate
shapes) keep the Function."""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

import fastcnn.ops as O
from fastcnn.ops import _conv_algo, _eager
from fastcnn.ops import conv as conv_module
from helpers import assert_same_results, run_with_grads

pytestmark = pytest.mark.skipif(conv_module._CONV.get() is None,
                                reason="fastcnn._C built without the eager op layer (no torch headers)")

DTYPES = [torch.float32, torch.float64]
FWD, BWD_IN, BWD_W = _conv_algo.DIRECTIONS
EAGER, TRANSPOSE_EAGER = "fastcnn::Conv2dBackward", "fastcnn::ConvTranspose2dBackward"

# name -> (N, C, H, W, K, R, S, stride, padding, dilation, groups, bias, activation): odd maps, each
# fused activation, batch 1, no bias, groups 2, stride 2, dilation 2, padding 0 / 1 / 2
CONV_CASES = {
    "3x3 p1 relu": (2, 3, 9, 7, 4, 3, 3, 1, 1, 1, 1, True, "relu"),
    "3x3 p0 batch1 no-bias": (1, 4, 7, 9, 6, 3, 3, 1, 0, 1, 1, False, None),
    "3x3 p2 g2 leaky_relu": (2, 4, 7, 5, 6, 3, 3, 1, 2, 1, 2, True, "leaky_relu"),
    "5x3 p1 elu": (2, 3, 9, 11, 5, 5, 3, 1, 1, 1, 1, True, "elu"),
    "3x3 s2 p1 sigmoid": (2, 3, 9, 7, 4, 3, 3, 2, 1, 1, 1, True, "sigmoid"),
    "3x3 d2 p2 tanh batch1": (1, 3, 11, 9, 4, 3, 3, 1, 2, 2, 1, True, "tanh"),
    "1x1 s2 g2 no-bias": (2, 4, 5, 7, 6, 1, 1, 2, 0, 1, 2, False, None),
}


def _algos(R, S, stride, dilation):
    """Every algorithm the cpu backend has for all three passes of this geometry."""
    return _conv_algo.candidates("cpu", FWD, (stride, stride), (dilation, dilation), (R, S))


def _params(cases):
    return [pytest.param(name, algo, id=f"{name}-{algo}") for name, c in cases.items()
            for algo in _algos(c[5], c[6], c[7], c[9])]


def _conv_inputs(case, dtype, seed=0):
    N, C, H, W, K, R, S, _, _, _, G, bias, _ = case
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, H, W, dtype=dtype, generator=g)
    w = torch.randn(K, C // G, R, S, dtype=dtype, generator=g) * 0.5
    b = torch.randn(K, dtype=dtype, generator=g) if bias else None
    return x, w, b


def _conv_fn(case, algo):
    stride, padding, dilation, groups, activation = case[7], case[8], case[9], case[10], case[12]
    param = 0.2 if activation in ("leaky_relu", "elu") else None
    return lambda x, w, b: O.conv2d(x, w, b, stride, padding, dilation, groups, algo=algo, activation=activation,
                                    activation_param=param, backend="cpu")


def _nodes(y):
    """The names of y's grad_fn and of the nodes it feeds (a channels_last result: the relayout's input)."""
    return {y.grad_fn.name()} | {f.name() for f, _ in y.grad_fn.next_functions if f is not None}


def _eager_and_python(fn, inputs, name):
    """run_with_grads of fn by the eager op (checked to be taken) and by the Python path."""
    fast = run_with_grads(fn, inputs)
    assert name in _nodes(fast[0])
    with _eager.python_path():
        python = run_with_grads(fn, inputs)
    assert name not in _nodes(python[0])
    return fast, python


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case, algo", _params(CONV_CASES))
def test_conv2d_equals_the_python_path(case, algo, dtype):
    c = CONV_CASES[case]
    assert_same_results(*_eager_and_python(_conv_fn(c, algo), _conv_inputs(c, dtype), EAGER))


# name -> (N, Cin, H, W, Cout, R, S, stride, padding, output_padding, dilation, groups, bias)
TRANSPOSE_CASES = {
    "4x4 s2 p1 (DCGAN)": (2, 4, 5, 5, 3, 4, 4, 2, 1, 0, 1, 1, True),
    "3x3 s1 p1 batch1": (1, 3, 7, 5, 4, 3, 3, 1, 1, 0, 1, 1, False),
    "3x3 s2 p0 op1 g2": (2, 4, 5, 7, 6, 3, 3, 2, 0, 1, 1, 2, True),
    "3x3 d2 p2": (2, 3, 7, 9, 2, 3, 3, 1, 2, 0, 2, 1, True),
}


def _transpose_params():
    return [pytest.param(name, algo, id=f"{name}-{algo}") for name, c in TRANSPOSE_CASES.items()
            for algo in _algos(c[5], c[6], c[7], c[10])]


def _transpose_inputs(case, dtype, seed=1):
    N, Cin, H, W, Cout, R, S, _, _, _, _, G, bias = case
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, Cin, H, W, dtype=dtype, generator=g)
    w = torch.randn(Cin, Cout // G, R, S, dtype=dtype, generator=g) * 0.5
    b = torch.randn(Cout, dtype=dtype, generator=g) if bias else None
    return x, w, b


def _transpose_fn(case, algo):
    stride, padding, output_padding, dilation, groups = case[7:12]
    return lambda x, w, b: O.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation, algo=algo,
                                              backend="cpu")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case, algo", _transpose_params())
def test_conv_transpose2d_equals_the_python_path(case, algo, dtype):
    c = TRANSPOSE_CASES[case]
    assert_same_results(*_eager_and_python(_transpose_fn(c, algo), _transpose_inputs(c, dtype), TRANSPOSE_EAGER))


@pytest.mark.parametrize("transposed", [False, True])
def test_each_pass_runs_its_own_algorithm(monkeypatch, transposed):
    # Three different algorithms for the three passes: a pass mixed up in C++ would give other bits
    # (float32: winograd, fft and im2col round differently).
    choice = {FWD: "winograd", BWD_IN: "fft", BWD_W: "im2col"}
    monkeypatch.setattr(_conv_algo, "heuristic", lambda options, layer, direction: choice[direction])
    g = torch.Generator().manual_seed(4)
    if transposed:
        inputs = [torch.randn(2, 5, 9, 7, generator=g), torch.randn(5, 4, 3, 3, generator=g), torch.randn(4, generator=g)]
        fn, name = lambda x, w, b: O.conv_transpose2d(x, w, b, padding=1), TRANSPOSE_EAGER
    else:
        inputs = [torch.randn(2, 4, 9, 7, generator=g), torch.randn(5, 4, 3, 3, generator=g), torch.randn(5, generator=g)]
        fn, name = lambda x, w, b: O.conv2d(x, w, b, padding=1, activation="tanh"), EAGER
    fast, python = _eager_and_python(fn, inputs, name)
    assert_same_results(fast, python)
    with _eager.python_path():  # and the choice mattered: direct everywhere gives other bits
        monkeypatch.setattr(_conv_algo, "heuristic", lambda options, layer, direction: "direct")
        direct = run_with_grads(fn, inputs)
    assert not all(torch.equal(a, b) for a, b in zip([fast[0]] + fast[1], [direct[0]] + direct[1]))


@pytest.mark.parametrize("case", ["3x3 p1 relu", "3x3 p2 g2 leaky_relu", "3x3 s2 p1 sigmoid", "3x3 d2 p2 tanh batch1"])
def test_gradcheck_float64_through_the_eager_op(case):
    c = CONV_CASES[case]
    algos = _algos(c[5], c[6], c[7], c[9])
    for algo in ("direct", "winograd") if "winograd" in algos else ("direct", "im2col"):
        fn = _conv_fn(c, algo)
        inputs = [t.requires_grad_() if t is not None else None for t in _conv_inputs(c, torch.float64)]
        assert fn(*inputs).grad_fn.name() == EAGER
        assert torch.autograd.gradcheck(lambda x, w, b=None: fn(x, w, b), [t for t in inputs if t is not None])


@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
def test_gradcheck_float64_through_the_eager_transpose(case):
    c = TRANSPOSE_CASES[case]
    fn = _transpose_fn(c, "auto")
    inputs = [t.requires_grad_() if t is not None else None for t in _transpose_inputs(c, torch.float64)]
    assert fn(*inputs).grad_fn.name() == TRANSPOSE_EAGER
    assert torch.autograd.gradcheck(lambda x, w, b=None: fn(x, w, b), [t for t in inputs if t is not None])


def test_auto_takes_the_eager_op_and_follows_the_heuristic():
    # algo='auto' in the usual cases (LeNet's 5x5, a 1x1, a DCGAN transpose) without any setting
    x, w = torch.randn(2, 1, 28, 28), torch.randn(6, 1, 5, 5, requires_grad=True)
    assert O.conv2d(x, w, padding=2).grad_fn.name() == EAGER
    assert O.conv2d(torch.randn(1, 8, 3, 5), torch.randn(4, 8, 1, 1, requires_grad=True)).grad_fn.name() == EAGER
    y = O.conv_transpose2d(torch.randn(2, 8, 4, 4), torch.randn(8, 4, 4, 4, requires_grad=True), None, 2, 1)
    assert y.grad_fn.name() == TRANSPOSE_EAGER and y.shape == (2, 4, 8, 8)


def test_gradients_only_where_asked_and_layouts():
    g = torch.Generator().manual_seed(5)
    x, w, b = torch.randn(2, 3, 7, 9, generator=g), torch.randn(4, 3, 3, 3, generator=g), torch.randn(4, generator=g)
    for wants in ([w], [x], [b], [x, b]):
        leaves = [t.detach().requires_grad_(any(t is u for u in wants)) for t in (x, w, b)]
        y = O.conv2d(*leaves, padding=1, activation="relu")
        assert y.grad_fn.name() == EAGER
        got = torch.autograd.grad(y.sum(), [t for t in leaves if t.requires_grad])
        with _eager.python_path():
            expected = torch.autograd.grad(O.conv2d(*leaves, padding=1, activation="relu").sum(),
                                           [t for t in leaves if t.requires_grad])
        assert all(torch.equal(a, e) for a, e in zip(got, expected))
    # channels_last input: a channels_last result and gradient, as on the Python path
    xc = x.contiguous(memory_format=torch.channels_last)
    fast, python = _eager_and_python(lambda x, w, b: O.conv2d(x, w, b, padding=1), [xc, w, b], EAGER)
    assert_same_results(fast, python)
    assert fast[0].is_contiguous(memory_format=torch.channels_last) and fast[0].stride() == python[0].stride()
    # unbatched input
    fast, python = _eager_and_python(lambda x, w, b: O.conv2d(x, w, b, stride=2), [x[0], w, b], EAGER)
    assert_same_results(fast, python)
    assert fast[0].shape == (4, 3, 4)


def test_no_grad_and_inference_mode_give_plain_tensors():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3, requires_grad=True)
    with torch.no_grad():
        y = O.conv2d(x, w)
    assert y.grad_fn is None and not y.requires_grad
    with torch.inference_mode():
        y = O.conv_transpose2d(x, torch.randn(2, 3, 3, 3))
    assert y.is_inference()
    with _eager.python_path(), torch.no_grad():
        assert torch.equal(O.conv2d(x, w), O.conv2d(x, w))
    # a configuration planned in inference mode (its plan tensor an inference tensor) serves training after
    x2, w2 = torch.randn(1, 2, 7, 5), torch.randn(3, 2, 3, 3, requires_grad=True)
    with torch.inference_mode():
        O.conv2d(x2, w2, padding=1)
    y = O.conv2d(x2, w2, padding=1)
    assert y.grad_fn.name() == EAGER
    y.sum().backward()
    assert w2.grad.shape == w2.shape


@pytest.mark.parametrize("transposed", [False, True])
def test_a_second_derivative_is_refused(transposed):
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    y = O.conv_transpose2d(x, w) if transposed else O.conv2d(x, w.transpose(0, 1).contiguous(), activation="elu")
    assert y.grad_fn.name() == (TRANSPOSE_EAGER if transposed else EAGER)
    gy = torch.randn(y.shape, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(y, x, gy, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        gx.sum().backward()


@pytest.mark.parametrize("transposed", [False, True])
def test_retain_graph_and_a_second_backward(transposed):
    x = torch.randn(2, 3, 6, 5, requires_grad=True)
    w = torch.randn(3, 3, 3, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    y = O.conv_transpose2d(x, w, b, 2) if transposed else O.conv2d(x, w, b, activation="sigmoid")
    gy = torch.randn_like(y)
    y.backward(gy, retain_graph=True)
    first = [t.grad.clone() for t in (x, w, b)]
    y.backward(gy)  # the saved tensors were kept: the same gradients again, accumulated
    for t, g in zip((x, w, b), first):
        assert torch.equal(t.grad, 2 * g)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward(gy)  # released after a backward without retain_graph


def _poisoned(t, value=float("nan")):
    t = t.clone()
    t[0, 1, 4, 3] = value
    return t


@pytest.mark.parametrize("algo", ["winograd", "fft"])
@pytest.mark.parametrize("transposed", [False, True])
def test_non_finite_results_fall_back_as_on_the_python_path(algo, transposed):
    # A NaN spreads over a whole tile in a tile transform; the passes that do not recompute such tiles
    # in the kernel (all but fft's forward and backward-input) are run again with direct: the eager
    # op gives the Python path's NaNs, and those of direct (torch's blast radius), in every pass.
    g = torch.Generator().manual_seed(6)
    x = _poisoned(torch.randn(2, 4, 11, 9, generator=g))
    w, b = torch.randn(4, 4, 3, 3, generator=g), torch.randn(4, generator=g)
    fn = (lambda x, w, b: O.conv_transpose2d(x, w, b, padding=1, algo=algo)) if transposed else \
        (lambda x, w, b: O.conv2d(x, w, b, padding=1, algo=algo))
    fast = run_with_grads(fn, [x, w, b])
    assert fast[0].grad_fn.name() == (TRANSPOSE_EAGER if transposed else EAGER)
    with _eager.python_path():
        python = run_with_grads(fn, [x, w, b])
    direct_fn = (lambda x, w, b: O.conv_transpose2d(x, w, b, padding=1, algo="direct")) if transposed else \
        (lambda x, w, b: O.conv2d(x, w, b, padding=1, algo="direct"))
    direct = run_with_grads(direct_fn, [x, w, b])
    for got, want, ref in zip([fast[0]] + fast[1], [python[0]] + python[1], [direct[0]] + direct[1]):
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(torch.isnan(got), torch.isnan(ref))
    assert torch.isnan(fast[0]).any()


def test_large_tensors_take_the_eager_op_too():
    # their outputs come from the same pool as the Python path's (csrc/torchops/output_pool.h)
    x = torch.randn(1, 1, 1024, 1025)  # 4 MiB and more
    w = torch.randn(1, 1, 1, 1, requires_grad=True)
    y = O.conv2d(x, w)
    assert y.grad_fn.name() == EAGER
    torch.testing.assert_close(y, torch.nn.functional.conv2d(x, w))


def test_the_autotuner_and_the_choice_log_keep_the_python_path(monkeypatch, caplog):
    x, w = torch.randn(1, 2, 6, 5), torch.randn(3, 2, 3, 3, requires_grad=True)
    assert O.conv2d(x, w).grad_fn.name() == EAGER
    with caplog.at_level(logging.DEBUG, logger="fastcnn.conv"):  # each pass's record, as it runs
        y = O.conv2d(x, w)
        y.sum().backward()
    assert y.grad_fn.name() == "_Conv2dBackward"
    assert [r.conv_direction for r in caplog.records] == [FWD, BWD_W]
    monkeypatch.setitem(_conv_algo._state, "enabled", True)  # the autotuner on (its timing stubbed out)
    monkeypatch.setattr(_conv_algo, "tuned", lambda key, options, run: options[0])
    assert O.conv2d(x, w).grad_fn.name() == "_Conv2dBackward"


def test_replaced_kernels_and_degenerate_shapes_keep_the_python_path(monkeypatch):
    x, w = torch.randn(2, 3, 7, 7), torch.randn(4, 3, 3, 3, requires_grad=True)
    assert O.conv2d(x, w, algo="im2col").grad_fn.name() == EAGER
    slot = _conv_algo.kernel_slot(BWD_W, "im2col")  # one pass's kernel replaced after the plan was made
    calls = []
    inner = slot.impls["cpu"]
    monkeypatch.setitem(slot.impls, "cpu", lambda *a: calls.append(1) or inner(*a))
    y = O.conv2d(x, w, algo="im2col")
    assert y.grad_fn.name() == "_Conv2dBackward"
    y.sum().backward()
    assert calls == [1]
    monkeypatch.undo()
    assert O.conv2d(x, w, algo="im2col").grad_fn.name() == EAGER
    for xe, we in ((x[:0], w), (x[:, :0], w[:, :0])):  # no batch, no input channels
        we = we.detach().requires_grad_()
        y = O.conv2d(xe, we)
        assert y.grad_fn.name() == "_Conv2dBackward"
        assert y.shape == F.conv2d(xe, we.detach()).shape


def test_a_repeat_still_rejects_bad_input():
    x, w = torch.randn(1, 4, 5, 5), torch.randn(2, 4, 3, 3)
    O.conv2d(x, w)
    O.conv_transpose2d(x, w.transpose(0, 1))
    with pytest.raises(ValueError, match="weight"):
        O.conv2d(x, torch.randn(2, 3, 3, 3))
    with pytest.raises(ValueError, match="weight"):
        O.conv_transpose2d(x, torch.randn(3, 2, 3, 3))
    with pytest.raises(ValueError, match="algo"):
        O.conv_transpose2d(x, w.transpose(0, 1), algo="bogus")


def test_the_op_refuses_tensors_that_do_not_match_its_plan():
    op = conv_module._CONV.get()
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    shape = [1, 2, 5, 5, 3, 3, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1]

    def plan(*codes):  # the passes' algorithms, their fallbacks, activation, transposed
        return torch.tensor(shape + list(codes), dtype=torch.int64)
    assert op(x, w, None, plan(0, 0, 0, -1, -1, -1, 0, 0), 0.0).shape == (1, 3, 3, 3)
    with pytest.raises(ValueError, match="input: expected a contiguous tensor of shape"):
        op(torch.randn(1, 2, 5, 6), w, None, plan(0, 0, 0, -1, -1, -1, 0, 0), 0.0)
    with pytest.raises(ValueError, match="weight"):
        op(x, w.transpose(2, 3), None, plan(0, 0, 0, -1, -1, -1, 0, 0), 0.0)
    with pytest.raises(ValueError, match="plan: algos"):
        op(x, w, None, plan(0, 0, 7, -1, -1, -1, 0, 0), 0.0)
    with pytest.raises(ValueError, match="plan: expected"):
        op(x, w, None, plan(0, 0, 0, -1, -1, -1, 0), 0.0)
    with pytest.raises(ValueError, match="plan: conv_transpose2d fuses no activation"):
        op(torch.randn(1, 3, 3, 3), w, None, plan(0, 0, 0, -1, -1, -1, 1, 1), 0.0)
    shape[5:9] = [2, 2, 4, 4]
    with pytest.raises(ValueError, match="winograd convolution takes 3x3"):
        op(x, torch.randn(3, 2, 2, 2), None, plan(3, 0, 0, -1, -1, -1, 0, 0), 0.0)
