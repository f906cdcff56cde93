"""fastcnn.ops.batch_norm / fastcnn.nn.BatchNorm1d/2d with a fused `activation=` (the same contract as
conv2d's and linear's): forward, running statistics and backward against float64 torch (F.batch_norm
then the activation) on odd shapes (2-D, 3-D, 4-D, channels_last), training and eval, every fused
activation, every backend; float64 gradcheck; the eager op (one C++ node) bit for bit equal to the
Python Function; bad `activation` / `activation_param` rejected naming the argument."""
import pytest
import torch
import torch.nn.functional as F

import fastcnn
from fastcnn import ops
from fastcnn.contracts import kernels
from fastcnn.contracts.activation import FUSED_ACTIVATIONS
from fastcnn.ops import _eager
from helpers import CPU_BACKENDS, assert_close, assert_same_results, gradcheck, rms, run_with_grads

BACKENDS = [pytest.param(b, id=b) for b in CPU_BACKENDS if kernels.batch_norm_forward.offered_by(b)]
CASES = [(a, None) for a in sorted(FUSED_ACTIVATIONS)] + [("leaky_relu", 0.3), ("elu", 0.5)]
TORCH = {"relu": lambda y, p: torch.relu(y), "sigmoid": lambda y, p: torch.sigmoid(y),
         "tanh": lambda y, p: torch.tanh(y), "leaky_relu": lambda y, p: F.leaky_relu(y, p),
         "elu": lambda y, p: F.elu(y, p)}
SHAPES = [(5, 3), (2, 4, 7), (3, 2, 5, 3), "channels_last"]


def _input(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    if shape == "channels_last":
        return (torch.randn(2, 5, 3, 4, generator=g, dtype=dtype) * 2 + 0.5).contiguous(
            memory_format=torch.channels_last)
    return torch.randn(*shape, generator=g, dtype=dtype) * 2 + 0.5


def _params(C, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(C, generator=g, dtype=dtype) + 0.5, torch.randn(C, generator=g, dtype=dtype),
            torch.randn(C, generator=g, dtype=dtype) * 0.1, torch.rand(C, generator=g, dtype=dtype) + 0.5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation, param", CASES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_matches_torch(backend, activation, param, shape, training):
    x = _input(shape)
    C = x.shape[1]
    w, b, rm, rv = _params(C)
    p = FUSED_ACTIVATIONS[activation] if param is None else param
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    rm_t, rv_t = rm.clone(), rv.clone()
    expected = TORCH[activation](F.batch_norm(leaves[0], rm_t, rv_t, leaves[1], leaves[2], training, 0.1, 1e-5), p)
    gy = torch.randn(expected.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expected_grads = torch.autograd.grad(expected, leaves, gy)
    per_channel = x.numel() // C
    for dtype in (torch.float32, torch.float64):
        lx, lw, lb = (t.detach().to(dtype).requires_grad_() for t in (x, w, b))
        rm_f, rv_f = rm.to(dtype), rv.to(dtype)
        y = ops.batch_norm(lx, rm_f, rv_f, lw, lb, training, 0.1, 1e-5, activation=activation, activation_param=param,
                           backend=backend)
        assert y.stride() == expected.stride()  # the input's memory format
        assert_close(y, expected, reduction=per_channel, name=f"{dtype} y")
        assert_close(rm_f, rm_t, reduction=per_channel, name="running_mean")
        assert_close(rv_f, rv_t, reduction=per_channel, name="running_var")
        grads = torch.autograd.grad(y, (lx, lw, lb), gy.to(dtype))
        # batch statistics' gradients sum per_channel products (twice: through the mean and the variance)
        for name, got, want in zip("xwb", grads, expected_grads):
            scale = rms(want) + rms(gy) * (rms(x) + 1)
            assert_close(got, want, reduction=2 * per_channel, scale=scale, name=f"{dtype} grad {name}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation, param", [("relu", None), ("leaky_relu", 0.3), ("elu", 0.5), ("sigmoid", None),
                                               ("tanh", None)])
@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_gradcheck(backend, activation, param, training):
    x = _input((3, 2, 2, 3), seed=3).requires_grad_()
    w, b, rm, rv = _params(2, seed=4)
    w.requires_grad_(), b.requires_grad_()
    gradcheck(lambda *t: ops.batch_norm(t[0], None if training else rm, None if training else rv, t[1], t[2], training,
                                        activation=activation, activation_param=param, backend=backend), (x, w, b))


@pytest.mark.skipif(_eager.EagerOp("batch_norm").get() is None, reason="fastcnn._C built without the eager op layer")
@pytest.mark.parametrize("activation, param", CASES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eager_fused_batch_norm_is_one_node_equal_to_the_python_path(activation, param, shape, dtype):
    x = _input(shape, dtype=dtype)
    w, b, rm, rv = _params(x.shape[1], dtype=dtype)
    buffers = {}

    def fn(x, w, b):
        buffers["rm"], buffers["rv"] = rm.clone(), rv.clone()
        return ops.batch_norm(x, buffers["rm"], buffers["rv"], w, b, True, activation=activation,
                              activation_param=param)
    fast = run_with_grads(fn, [x, w, b])
    fast_buffers = dict(buffers)
    names, todo = [], [fast[0].grad_fn]
    while todo:
        node = todo.pop()
        if node is not None:
            names.append(node.name())
            todo += [n for n, _ in node.next_functions]
    assert "fastcnn::BatchNormBackward" in names and not [n for n in names if "Activation" in n], names
    with _eager.python_path():
        python = run_with_grads(fn, [x, w, b])
    assert_same_results(fast, python)
    assert all(torch.equal(fast_buffers[k], buffers[k]) for k in buffers)


@pytest.mark.parametrize("bad, match", [
    (dict(activation="gelu"), "activation: expected None or one of"),
    (dict(activation="leaky_relu", activation_param=-0.1), "activation_param: a fused leaky_relu needs"),
    (dict(activation="relu", activation_param="0.1"), "activation_param: expected a number"),
])
@pytest.mark.parametrize("backend", ["reference"] + [p.values[0] for p in BACKENDS])
def test_bad_activation_is_rejected_naming_the_argument(bad, match, backend):
    x = _input((4, 3))
    with pytest.raises((ValueError, TypeError), match=match):
        ops.batch_norm(x, None, None, training=True, backend=backend, **bad)
    with pytest.raises((ValueError, TypeError), match=match):
        fastcnn.nn.BatchNorm1d(3, **bad)


def test_nn_batch_norm_with_activation_keeps_torch_keys():
    torch.manual_seed(5)
    layer = fastcnn.nn.BatchNorm2d(3, activation="leaky_relu", activation_param=0.2).double()
    plain = torch.nn.BatchNorm2d(3).double()
    plain.load_state_dict(layer.state_dict())
    assert "activation='leaky_relu'" in repr(layer)
    x = _input((2, 3, 4, 5))
    assert_close(layer(x), F.leaky_relu(plain(x), 0.2), reduction=40)
    assert_close(layer.running_var, plain.running_var, reduction=40)
    assert int(layer.num_batches_tracked) == int(plain.num_batches_tracked) == 1
