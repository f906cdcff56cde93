"""The eager op layer (csrc/torchops/, fastcnn/ops/_eager.py): the C++ ops give what the Python
Functions give on the same kernels (bit for bit), forward and backward, on odd shapes and layouts;
float64 gradcheck through them; the checks still run (a repeat of a configuration skips only checks
that depend on nothing else); a second derivative is still refused."""
from __future__ import annotations

import pytest
import torch

import fastcnn.ops as O
from fastcnn.ops import _eager
from helpers import run_with_grads as _run, assert_same_results as _assert_same

pytestmark = pytest.mark.skipif(_eager.EagerOp("activation").get() is None,
                                reason="fastcnn._C built without the eager op layer (no torch headers)")

DTYPES = [torch.float32, torch.float64]
ACTIVATIONS = {
    "relu": lambda x: O.relu(x), "leaky_relu": lambda x: O.leaky_relu(x, 0.2), "elu": lambda x: O.elu(x, 0.7),
    "sigmoid": O.sigmoid, "tanh": O.tanh, "softplus": lambda x: O.softplus(x, 2.0, 3.0),
    "step": lambda x: O.step(x, 0.5), "silu": O.silu, "gelu": O.gelu,
    "gelu_tanh": lambda x: O.gelu(x, approximate="tanh"), "hardswish": O.hardswish, "hardsigmoid": O.hardsigmoid,
}
LAYOUTS = {  # odd sizes; channels_last and a transposed (non-dense) view
    "contiguous": lambda t: t,
    "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
    "transposed": lambda t: t.transpose(1, 3),
}


def _run_repeated(fn, inputs):
    """_run's result for a configuration's repeat (public_op's lean plan), checked equal to its first
    call's (the op's body)."""
    first = _run(fn, inputs)
    repeat = _run(fn, inputs)
    _assert_same(repeat, first)
    return repeat


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("kind", list(ACTIVATIONS))
def test_activation_equals_the_python_path(kind, layout, dtype):
    fn = ACTIVATIONS[kind]
    base = torch.randn(2, 3, 5, 7, dtype=dtype, generator=torch.Generator().manual_seed(0)) * 3
    base[0, 0, 0, :3] = 0.0  # exact zeros (step, relu kinks)
    x = LAYOUTS[layout](base)
    fast = _run_repeated(fn, [x])
    assert fast[0].grad_fn.name() == "fastcnn::ActivationBackward"
    with _eager.python_path():
        python = _run(fn, [x])
        assert python[0].grad_fn.name() != "fastcnn::ActivationBackward"
    _assert_same(fast, python)
    assert fast[0].stride() == python[0].stride()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["2d", "3d", "no_bias", "transposed_weight", "1d"])
def test_linear_equals_the_python_path(case, dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn({"3d": (2, 3, 7), "1d": (7,)}.get(case, (5, 7)), dtype=dtype, generator=g)
    w = torch.randn(7, 3, dtype=dtype, generator=g).t() if case == "transposed_weight" else \
        torch.randn(3, 7, dtype=dtype, generator=g)
    b = None if case == "no_bias" else torch.randn(3, dtype=dtype, generator=g)
    fast = _run_repeated(O.linear, [x, w, b])
    assert fast[0].grad_fn.name() == "fastcnn::LinearBackward" or fast[0].grad_fn.next_functions[0][0].name() \
        == "fastcnn::LinearBackward"  # (through the view back to the input's leading dimensions)
    with _eager.python_path():
        python = _run(O.linear, [x, w, b])
    _assert_same(fast, python)


@pytest.mark.parametrize("call", ["positional", "keywords"])
def test_linear_repeat_takes_the_arguments_as_given(call):
    g = torch.Generator().manual_seed(6)
    x, w, b = (torch.randn(s, dtype=torch.float64, generator=g) for s in ((3, 5), (2, 5), (2,)))
    fn = {"positional": lambda x, w, b: O.linear(x, w, b),
          "keywords": lambda x, w, b: O.linear(input=x, bias=b, weight=w)}[call]
    fast = _run_repeated(fn, [x, w, b])
    assert fast[0].grad_fn.name() == "fastcnn::LinearBackward"
    with _eager.python_path():
        python = _run(fn, [x, w, b])
    _assert_same(fast, python)
    no_bias = _run_repeated(lambda x, w: O.linear(x, w), [x, w])  # bias left to the schema's default
    with _eager.python_path():
        _assert_same(no_bias, _run(lambda x, w: O.linear(x, w), [x, w]))


@pytest.mark.parametrize("module, call", [
    ("activation", lambda x: O.leaky_relu(x, 0.3)), ("activation", lambda x: O.gelu(x, approximate="tanh")),
    ("linear", lambda x: O.linear(x, x[:3])), ("pool", lambda x: O.max_pool2d(x.view(1, 1, 6, 5), 2)),
    ("loss", lambda x: O.cross_entropy(x, torch.tensor([0, 4, 1, 2, 3, 0]), label_smoothing=0.1)),
])
def test_a_repeat_calls_the_eager_op_without_the_body(module, call, monkeypatch):
    x = torch.randn(6, 5, requires_grad=True)
    first = call(x)
    import sys  # (fastcnn.ops re-exports functions under some of these modules' names)

    def body_ran(*args):
        raise AssertionError("the op's body ran on a repeat")
    monkeypatch.setattr(sys.modules[f"fastcnn.ops.{module}"], "runnable", body_ran)  # the bodies ask it
    repeat = call(x)
    assert torch.equal(first, repeat) and repeat.grad_fn.name().startswith("fastcnn::")


MATMUL_CASES = {  # (a, b) as built from odd shapes; b^T contiguous (1-D b, or b a transposed view)
    "2d@1d": lambda g, dt: (torch.randn(5, 7, dtype=dt, generator=g), torch.randn(7, dtype=dt, generator=g)),
    "1d@1d": lambda g, dt: (torch.randn(7, dtype=dt, generator=g), torch.randn(7, dtype=dt, generator=g)),
    "2d@2d^T": lambda g, dt: (torch.randn(5, 7, dtype=dt, generator=g), torch.randn(3, 7, dtype=dt, generator=g).t()),
    "1d@2d^T": lambda g, dt: (torch.randn(7, dtype=dt, generator=g), torch.randn(3, 7, dtype=dt, generator=g).t()),
    "strided a": lambda g, dt: (torch.randn(7, 5, dtype=dt, generator=g).t(), torch.randn(7, dtype=dt, generator=g)),
}


def _through_views(y):
    """The grad_fn names from y's down to the first non-view node."""
    names, fn = [], y.grad_fn
    while fn is not None:
        names.append(fn.name())
        if "View" not in fn.name():
            break
        fn = fn.next_functions[0][0]
    return names


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(MATMUL_CASES))
def test_matmul_equals_the_python_path(case, dtype):
    a, b = MATMUL_CASES[case](torch.Generator().manual_seed(7), dtype)
    fast = _run_repeated(O.matmul, [a, b])
    assert "fastcnn::LinearBackward" in _through_views(fast[0])
    with _eager.python_path():
        python = _run(O.matmul, [a, b])
        assert "fastcnn::LinearBackward" not in _through_views(python[0])
    _assert_same(fast, python)
    assert fast[0].shape == torch.matmul(a, b).shape


def test_matmul_gradcheck_and_plain_matrices_keep_the_function():
    g = torch.Generator().manual_seed(8)
    for case in ("2d@1d", "1d@2d^T"):
        a, b = (t.detach().requires_grad_() for t in MATMUL_CASES[case](g, torch.float64))
        assert torch.autograd.gradcheck(O.matmul, (a, b))
    a, b = torch.randn(4, 6, requires_grad=True), torch.randn(6, 3, requires_grad=True)
    assert _through_views(O.matmul(a, b))[-1] == "_MatmulBackward"  # b^T would be a copy: the Function reads b


def test_linear_gradients_only_where_asked():
    x, w = torch.randn(4, 6), torch.randn(5, 6, requires_grad=True)
    b = torch.randn(5)
    y = O.linear(x, w, b)
    assert y.grad_fn.name() == "fastcnn::LinearBackward"
    (gw,) = torch.autograd.grad(y.sum(), [w])
    with _eager.python_path():
        (expected,) = torch.autograd.grad(O.linear(x, w, b).sum(), [w])
    assert torch.equal(gw, expected)


@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_float64_through_the_eager_ops(bias):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 5, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, generator=g, requires_grad=True) if bias else None
    assert O.linear(x, w, b).grad_fn.name() == "fastcnn::LinearBackward"
    inputs = (x, w, b) if bias else (x, w)
    assert torch.autograd.gradcheck(lambda *a: O.tanh(O.linear(*a)), inputs)
    assert torch.autograd.gradcheck(lambda t: O.elu(t, 0.5), (x,))
    assert torch.autograd.gradcheck(O.gelu, (x,))


def test_no_grad_and_inference_mode_give_plain_tensors():
    x = torch.randn(3, 4, requires_grad=True)
    with torch.no_grad():
        y = O.relu(x)
    assert not y.requires_grad and y.grad_fn is None
    with torch.inference_mode():
        y = O.linear(torch.randn(2, 4), torch.randn(3, 4))
    assert y.is_inference()


@pytest.mark.parametrize("op", ["relu", "linear", "batch_norm", "matmul"])
def test_a_second_derivative_is_still_refused(op):
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 4, dtype=torch.float64)
    y = {"relu": lambda: O.relu(x), "linear": lambda: O.linear(x, w),
         "batch_norm": lambda: O.batch_norm(x, None, None, training=True), "matmul": lambda: O.matmul(x, w.t())}[op]()
    assert y.grad_fn.name().startswith("fastcnn::")
    gy = torch.randn(y.shape, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(y, x, gy, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        gx.sum().backward()


def test_large_tensors_take_the_eager_op_too():
    # their outputs come from the same pool as the Python path's (csrc/torchops/output_pool.h)
    x = torch.randn(3, 1 << 20, requires_grad=True)  # 12 MiB
    y = O.relu(x - 0.5)
    assert y.grad_fn.name() == "fastcnn::ActivationBackward"
    y.sum().backward()
    torch.testing.assert_close(x.grad, (x.detach() > 0.5).float())


def test_a_repeat_still_runs_checks_that_read_requires_grad():
    O.relu(torch.randn(6), inplace=True)  # passes: the input needs no gradient
    with pytest.raises(ValueError, match="inplace"):
        O.relu(torch.randn(6, requires_grad=True), inplace=True)  # same shapes and arguments
    O.elu(torch.randn(6), -1.0)
    with pytest.raises(ValueError, match="alpha"):
        O.elu(torch.randn(6, requires_grad=True), -1.0)


def test_a_repeat_still_rejects_bad_input():
    x, w = torch.randn(2, 8), torch.randn(4, 8)
    O.linear(x, w)
    O.relu(x)
    with pytest.raises(ValueError, match="weight"):
        O.linear(x, torch.randn(4, 7))
    with pytest.raises(TypeError, match="input"):
        O.relu(torch.arange(16).reshape(2, 8))


def test_a_repeat_follows_the_backend_setting(monkeypatch):
    x = torch.randn(2, 5, requires_grad=True)
    assert O.relu(x).grad_fn.name() == "fastcnn::ActivationBackward"
    monkeypatch.setenv("FASTCNN_BACKEND", "reference")
    assert O.relu(x).grad_fn.name() == "ReluBackward0"
    assert O.relu(x, backend="cpu").grad_fn.name() == "fastcnn::ActivationBackward"
    monkeypatch.delenv("FASTCNN_BACKEND")
    assert O.relu(x, backend="reference").grad_fn.name() == "ReluBackward0"
    with torch.autocast("cpu"):
        with pytest.raises(NotImplementedError, match="autocast"):
            O.relu(x)


POOLS = {  # (kernel_size, stride, padding, dilation, ceil_mode) on odd maps
    "2x2": (2, None, 0, 1, False), "3x3 s2 p1 ceil": (3, 2, 1, 1, True), "3x2 s1 dil2": ((3, 2), 1, 1, 2, False),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", list(LAYOUTS) + ["3d"])
@pytest.mark.parametrize("pool", list(POOLS))
def test_max_pool2d_equals_the_python_path(pool, layout, dtype):
    k, s, p, d, ceil = POOLS[pool]
    base = torch.randn(2, 3, 9, 7, dtype=dtype, generator=torch.Generator().manual_seed(3))
    base[0, 0, :2, :2] = 1.0  # a tie: the first index wins in both
    x = base[0] if layout == "3d" else LAYOUTS[layout](base)
    fn = lambda t: O.max_pool2d(t, k, s, p, d, ceil)  # noqa: E731
    fast = _run_repeated(fn, [x])
    names = {fast[0].grad_fn.name()} | {f.name() for f, _ in fast[0].grad_fn.next_functions if f is not None}
    assert "fastcnn::MaxPool2dBackward" in names
    with _eager.python_path():
        python = _run(fn, [x])
    _assert_same(fast, python)
    assert fast[0].stride() == python[0].stride() and fast[1][0].stride() == python[1][0].stride()


def test_max_pool2d_gradcheck_and_indices():
    x = torch.randn(2, 2, 7, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: O.max_pool2d(t, 3, 2, 1), (x,))
    y, idx = O.max_pool2d(x, 2, return_indices=True)  # indices asked for: the Python Function returns them
    assert torch.equal(idx, torch.nn.functional.max_pool2d(x, 2, return_indices=True)[1])


BN_SHAPES = {"2d": (6, 5), "3d": (3, 5, 7), "4d": (2, 5, 3, 7)}


def _bn_inputs(shape, dtype, affine):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(shape, dtype=dtype, generator=g) * 2 + 0.5
    C = shape[1]
    w = torch.rand(C, dtype=dtype, generator=g) + 0.5 if affine else None
    b = torch.randn(C, dtype=dtype, generator=g) if affine else None
    return x, w, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", list(BN_SHAPES) + ["channels_last"])
def test_batch_norm_equals_the_python_path(shape, affine, training, dtype):
    x, w, b = _bn_inputs(BN_SHAPES.get(shape, (2, 5, 3, 7)), dtype, affine)
    if shape == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    C = x.shape[1]
    results, stats = [], []
    for python in (False, True):
        rm = torch.linspace(-1, 1, C, dtype=dtype)
        rv = torch.linspace(0.5, 2, C, dtype=dtype)
        fn = lambda x, w, b: O.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3, eps=1e-3)  # noqa: E731
        if python:
            with _eager.python_path():
                results.append(_run(fn, [x, w, b]))
        else:
            results.append(_run(fn, [x, w, b]))
            assert "fastcnn::BatchNormBackward" in {results[0][0].grad_fn.name()} | {
                f.name() for f, _ in results[0][0].grad_fn.next_functions if f is not None}
        stats.append((rm, rv))
    _assert_same(*results)
    assert results[0][0].stride() == results[1][0].stride()
    for a, b_ in zip(*stats):  # running statistics updated alike (training) or left alone (eval)
        assert torch.equal(a, b_)
    if not training:
        assert torch.equal(stats[0][0], torch.linspace(-1, 1, C, dtype=dtype))


def test_batch_norm_without_running_statistics_and_gradcheck():
    x, w, b = _bn_inputs((3, 4, 5), torch.float64, True)
    fn = lambda x, w, b: O.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
    fast = _run(fn, [x, w, b])
    with _eager.python_path():
        python = _run(fn, [x, w, b])
    _assert_same(fast, python)
    inputs = [t.detach().requires_grad_() for t in (x, w, b)]
    assert torch.autograd.gradcheck(fn, inputs)
    y = fn(*inputs)
    assert y.grad_fn.name() == "fastcnn::BatchNormBackward"


def test_batch_norm_non_contiguous_buffers_keep_the_python_path():
    x, w, b = _bn_inputs((4, 3, 5), torch.float32, True)
    rm = torch.zeros(3, 2)[:, 0]  # strided running mean: updated in place through a copy by the Function
    rv = torch.ones(3)
    y = O.batch_norm(x.requires_grad_(), rm, rv, w, b, training=True)
    assert y.grad_fn.name() != "fastcnn::BatchNormBackward"
    assert torch.allclose(rm, 0.1 * x.detach().mean(dim=(0, 2)))


CE_CASES = {  # (logits shape, target shape)
    "unbatched": ((7,), ()), "2d": ((5, 7), (5,)), "4d": ((2, 7, 3, 5), (2, 3, 5)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extras", ["plain", "weighted_ignored_smoothed"])
@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy_equals_the_python_path(case, extras, reduction, dtype):
    g = torch.Generator().manual_seed(4)
    xs, ts = CE_CASES[case]
    x = torch.randn(xs, dtype=dtype, generator=g) * 3
    t = torch.randint(0, 7, ts, generator=g)
    kwargs = {"reduction": reduction}
    if extras != "plain":
        if t.dim():
            t.view(-1)[0] = 3  # an ignored target
        kwargs.update(weight=torch.rand(7, dtype=dtype, generator=g) + 0.5, ignore_index=3, label_smoothing=0.1)
    fn = lambda x: O.cross_entropy(x, t, **kwargs)  # noqa: E731
    fast = _run_repeated(fn, [x])
    assert fast[0].grad_fn.name() == "fastcnn::CrossEntropyBackward"
    with _eager.python_path():
        python = _run(fn, [x])
    _assert_same(fast, python)


def test_cross_entropy_gradcheck_and_bad_targets_on_every_call():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 6, 3, dtype=torch.float64, generator=g, requires_grad=True)
    t = torch.randint(0, 6, (4, 3), generator=g)
    w = torch.rand(6, dtype=torch.float64, generator=g) + 0.5
    assert torch.autograd.gradcheck(lambda x: O.cross_entropy(x, t, w, label_smoothing=0.2), (x,))
    assert torch.autograd.gradcheck(lambda x: O.cross_entropy(x, t, reduction="none"), (x,))
    for _ in range(2):  # the first call and a repeat of the configuration
        bad = t.clone()
        bad[1, 2] = 6
        with pytest.raises(ValueError, match=r"target: class indices must be in \[0, 6\) or equal ignore_index=-100; got 6"):
            O.cross_entropy(x, bad)
    assert O.cross_entropy(x, t).grad_fn.name() == "fastcnn::CrossEntropyBackward"
