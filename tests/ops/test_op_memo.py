"""The op layer remembers what its argument checks computed per configuration (fastcnn/ops/_op.py
ConfigMemo): a configuration seen before must never let a bad argument through."""
from __future__ import annotations

import pytest
import torch

import fastcnn.ops as O
from fastcnn.ops._op import ConfigMemo


def test_memo_key_keeps_bools_ints_floats_and_lists_apart():
    memo = ConfigMemo()
    x = torch.randn(1, 1, 4, 4)
    assert len({memo.key(x, 1), memo.key(x, True), memo.key(x, 1.0)}) == 3
    assert memo.key(x, (1, 1)) is not None
    for bad in ([1, 1], (1, True), (1, 1.0), object()):
        assert memo.key(x, bad) is None, bad
    assert memo.key(x, 1) != memo.key(x.double(), 1)
    assert memo.key(x, 1) != memo.key(x[0], 1)


def test_linear_and_batch_norm_reject_after_a_valid_call():
    x, w, b = torch.randn(2, 8), torch.randn(4, 8), torch.randn(4)
    O.linear(x, w, b)
    with pytest.raises(ValueError, match="bias"):
        O.linear(x, w, torch.randn(5))
    with pytest.raises(TypeError, match="bias"):
        O.linear(x, w, b.double())
    y, rm, rv = torch.randn(4, 3, 2, 2), torch.zeros(3), torch.ones(3)
    O.batch_norm(y, rm, rv, training=True)
    with pytest.raises(TypeError, match="training"):
        O.batch_norm(y, rm, rv, training=1)
    with pytest.raises(ValueError, match="input"):
        O.batch_norm(y[:1, :, :1, :1], rm, rv, training=True)


def test_matmul_and_normalize_reject_after_a_valid_call():
    u, mat = torch.randn(5), torch.randn(5, 7)
    for _ in range(2):  # a first call and a repeat of the configuration
        assert torch.allclose(O.matmul(u, mat), u @ mat)
        assert torch.allclose(O.normalize(mat, dim=0), torch.nn.functional.normalize(mat, dim=0))
    with pytest.raises(ValueError, match="b: expected 5 rows"):
        O.matmul(u, torch.randn(6, 7))
    with pytest.raises(TypeError, match="b"):
        O.matmul(u, mat.double())
    with pytest.raises(TypeError, match="dim"):
        O.normalize(mat, dim=True)
    with pytest.raises(ValueError, match="eps"):
        O.normalize(mat, dim=0, eps=-1.0)
    with pytest.raises(ValueError, match="dim"):
        O.normalize(mat, dim=2)


def test_conv2d_rejects_after_a_valid_call_of_the_same_shape():
    x, w = torch.randn(1, 2, 6, 6), torch.randn(3, 2, 3, 3)
    O.conv2d(x, w, stride=1, padding=1)
    with pytest.raises(TypeError, match="stride"):
        O.conv2d(x, w, stride=True, padding=1)
    with pytest.raises(TypeError, match="weight"):
        O.conv2d(x, w.double(), stride=1, padding=1)
    with pytest.raises(ValueError, match="bias"):
        O.conv2d(x, w, torch.randn(4), stride=1, padding=1)
    with pytest.raises(ValueError, match="padding"):
        O.conv2d(x, w, stride=1, padding=-1)


def test_max_pool2d_rejects_after_a_valid_call_of_the_same_shape():
    x = torch.randn(1, 2, 6, 6)
    O.max_pool2d(x, 2, ceil_mode=True)
    with pytest.raises(TypeError, match="ceil_mode"):
        O.max_pool2d(x, 2, ceil_mode=1)
    with pytest.raises(TypeError, match="kernel_size"):
        O.max_pool2d(x, True)
    with pytest.raises(ValueError, match="padding"):
        O.max_pool2d(x, 2, padding=2)
    O.avg_pool2d(x, 2)
    with pytest.raises(TypeError, match="input"):
        O.avg_pool2d(x.int(), 2)


def test_repeated_calls_give_the_same_result_as_the_first():
    x, w = torch.randn(2, 3, 7, 7), torch.randn(4, 3, 3, 3)
    first = O.conv2d(x, w, padding=1)
    assert torch.equal(O.conv2d(x, w, padding=1), first)
    pooled = O.max_pool2d(x, 3, 2, 1)
    assert torch.equal(O.max_pool2d(x, 3, 2, 1), pooled)
    assert pooled.shape == torch.nn.functional.max_pool2d(x, 3, 2, 1).shape


def test_memo_key_keeps_tensor_scalar_and_tuple_parts_apart():
    """The key is one flat tuple: a part's kind must never let two different calls collide."""
    memo = ConfigMemo()
    x = torch.randn(2, 3)
    assert memo.key(x, (2, 3)) != memo.key((2, 3), x)
    assert memo.key((2, 3)) != memo.key(2, 3) != memo.key(x)
    assert memo.key(torch.nn.Parameter(x)) == memo.key(x)  # a Parameter is keyed like its tensor
    assert memo.key(None, 0) != memo.key(0, None)


def test_cross_entropy_checks_target_values_on_every_call():
    logits, target = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    O.cross_entropy(logits, target)
    with pytest.raises(ValueError, match="target"):
        O.cross_entropy(logits, torch.tensor([0, 1, 2, 7]))  # same shape and dtype: values still checked
    with pytest.raises(TypeError, match="label_smoothing"):
        O.cross_entropy(logits, target, label_smoothing="0.1")


def test_once_differentiable_still_refuses_a_second_derivative():
    x = torch.randn(2, 1, 5, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    y = O.conv2d(x, w)
    gy = torch.randn(y.shape, dtype=torch.float64, requires_grad=True)  # so the backward's result needs a grad_fn
    (gx,) = torch.autograd.grad(y, x, gy, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        gx.sum().backward()


def test_checked_is_not_part_of_the_public_signature():
    import inspect

    for op in (O.conv2d, O.max_pool2d, O.avg_pool2d):
        params = inspect.signature(op).parameters
        assert "checked" not in params and params["backend"].default is None
    with pytest.raises(TypeError):
        O.conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 1, 1), checked=None)
