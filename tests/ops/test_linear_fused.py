"""fastcnn.ops.linear / fastcnn.nn.Linear with a fused `activation=`: forward and backward against
float64 torch (F.linear then the activation) on odd shapes, every fused activation, every backend
with a GEMM; float64 gradcheck; the eager op (one C++ node for the layer) bit for bit equal to the
Python Function on the same kernels; bad `activation` / `activation_param` rejected naming the argument."""
import pytest
import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import ops
from fastcnn.contracts import kernels
from fastcnn.contracts.activation import FUSED_ACTIVATIONS
from fastcnn.ops import _eager
from helpers import CPU_BACKENDS, assert_close, assert_same_results, gradcheck, rms, run_with_grads

GEMM_BACKENDS = [pytest.param(b, id=b) for b in CPU_BACKENDS if kernels.gemm.offered_by(b)]
# (activation, activation_param): every fused kind with torch's default, and a non-default parameter
CASES = [(a, None) for a in sorted(FUSED_ACTIVATIONS)] + [("leaky_relu", 0.3), ("elu", 0.5), ("leaky_relu", 0)]
TORCH = {"relu": lambda y, p: torch.relu(y), "sigmoid": lambda y, p: torch.sigmoid(y),
         "tanh": lambda y, p: torch.tanh(y), "leaky_relu": lambda y, p: F.leaky_relu(y, p),
         "elu": lambda y, p: F.elu(y, p)}
SHAPES = [((1, 7), 5), ((3, 1), 4), ((13, 9), 1), ((2, 3, 11), 6), ((7,), 3)]  # (input shape, out features)


def _torch_linear(x, w, b, activation, param):
    param = FUSED_ACTIVATIONS[activation] if param is None else param
    return TORCH[activation](F.linear(x, w, b), param)


def _operands(shape, out, bias, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(*shape, generator=g, dtype=dtype) * 2).requires_grad_()
    w = torch.randn(out, shape[-1], generator=g, dtype=dtype).requires_grad_()
    b = torch.randn(out, generator=g, dtype=dtype).requires_grad_() if bias else None
    return x, w, b


@pytest.mark.parametrize("backend", GEMM_BACKENDS)
@pytest.mark.parametrize("activation, param", CASES)
@pytest.mark.parametrize("shape, out", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_matches_torch(backend, activation, param, shape, out, bias):
    x, w, b = _operands(shape, out, bias)
    inputs = [t for t in (x, w, b) if t is not None]
    expected = _torch_linear(x, w, b, activation, param)
    gy = torch.randn(expected.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected_grads = torch.autograd.grad(expected, inputs, gy)
    K, M = shape[-1], x.numel() // shape[-1]
    # Each gradient sums products of gy * f'(y) (|f'| <= 1 for these parameters) and x or w: its
    # rounding follows the same sums on absolute values (the scale), over the products it sums plus
    # the K whose rounding reaches f'(y) through the output.
    g2, x2 = gy.reshape(M, out).abs(), x.detach().reshape(M, K).abs()
    scales = [rms(g2 @ w.detach().abs()), rms(g2.t() @ x2), rms(g2.sum(0))]
    for dtype in (torch.float32, torch.float64):
        leaves = [t.detach().to(dtype).requires_grad_() for t in inputs]
        lx, lw, lb = leaves + [None] * (3 - len(leaves))
        for _ in range(2):  # the first call and a repeat (the op's lean plan)
            y = ops.linear(lx, lw, lb, activation=activation, activation_param=param, backend=backend)
            assert_close(y, expected, reduction=K, name=f"{dtype} y")
            grads = torch.autograd.grad(y, leaves, gy.to(dtype))
            for name, got, want, n, scale in zip("xwb", grads, expected_grads, (out, M, M), scales):
                assert_close(got, want, reduction=n + K, scale=scale, name=f"{dtype} grad {name}")


@pytest.mark.parametrize("backend", GEMM_BACKENDS)
@pytest.mark.parametrize("activation, param", [("relu", None), ("leaky_relu", 0.3), ("elu", 0.5), ("sigmoid", None),
                                               ("tanh", None)])
def test_fused_linear_gradcheck(backend, activation, param):
    x, w, b = _operands((4, 5), 3, True, seed=2)
    gradcheck(lambda *t: ops.linear(*t, activation=activation, activation_param=param, backend=backend), (x, w, b))


@pytest.mark.skipif(_eager.EagerOp("linear").get() is None, reason="fastcnn._C built without the eager op layer")
@pytest.mark.parametrize("activation, param", CASES)
@pytest.mark.parametrize("shape, out", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eager_fused_linear_is_one_node_equal_to_the_python_path(activation, param, shape, out, dtype):
    x, w, b = (t.detach() for t in _operands(shape, out, True, dtype))

    def fn(*t):
        return ops.linear(*t, activation=activation, activation_param=param)
    first = run_with_grads(fn, [x, w, b])
    fast = run_with_grads(fn, [x, w, b])  # the repeat: the lean plan
    assert_same_results(fast, first)
    node = fast[0].grad_fn if len(shape) == 2 else fast[0].grad_fn.next_functions[0][0]  # (through the view)
    assert node.name() == "fastcnn::LinearBackward"  # the activation inside it: no node of its own
    with _eager.python_path():
        python = run_with_grads(fn, [x, w, b])
    assert_same_results(fast, python)


def test_the_fused_activation_is_not_a_node_of_its_own():
    x, w, b = _operands((6, 5), 4, True)
    y = ops.linear(x, w, b, activation="tanh")
    seen, todo = [], [y.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None:
            seen.append(node.name())
            todo += [n for n, _ in node.next_functions]
    assert not [n for n in seen if "Tanh" in n or "Activation" in n], seen


@pytest.mark.parametrize("bad, match", [
    (dict(activation="gelu"), "activation: expected None or one of"),
    (dict(activation=1), "activation: expected None or one of"),
    (dict(activation="leaky_relu", activation_param=-0.1), "activation_param: a fused leaky_relu needs"),
    (dict(activation="elu", activation_param=-1.0), "activation_param: a fused elu needs"),
    (dict(activation="relu", activation_param="0.1"), "activation_param: expected a number"),
    (dict(activation="relu", activation_param=True), "activation_param: expected a number"),
])
@pytest.mark.parametrize("backend", ["reference"] + [p.values[0] for p in GEMM_BACKENDS])
def test_bad_activation_is_rejected_naming_the_argument(bad, match, backend):
    x, w, b = (t.detach() for t in _operands((3, 4), 2, True))
    with pytest.raises((ValueError, TypeError), match=match):
        ops.linear(x, w, b, backend=backend, **bad)
    with pytest.raises((ValueError, TypeError), match=match):
        fastcnn.nn.Linear(4, 2, **bad)


@pytest.mark.parametrize("activation, param", CASES)
def test_nn_linear_with_activation(activation, param):
    torch.manual_seed(3)
    layer = fastcnn.nn.Linear(9, 5, activation=activation, activation_param=param).double()
    assert f"activation={activation!r}" in repr(layer)
    x = torch.randn(3, 2, 9, dtype=torch.float64)
    assert_close(layer(x), _torch_linear(x, layer.weight, layer.bias, activation, param), reduction=9)
    plain = torch.nn.Linear(9, 5).double()
    plain.load_state_dict(layer.state_dict())  # the keys are torch's
    assert list(plain.state_dict()) == list(layer.state_dict())
