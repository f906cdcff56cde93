"""The cpu ops' output pool (csrc/torchops/output_pool.h), shared by the eager ops and the Python
kernel path: a dead output's block goes to the next output of its size, a block something still
refers to never does, results stay right, and the limit (oldest freed blocks evicted first), the
release and resizing hold."""
import contextlib
import os
import subprocess
import sys
import threading
from typing import Callable, Optional

import numpy as np
import pytest
import torch

import fastcnn
from fastcnn import ops
from fastcnn.backends.cpu import _lib
from fastcnn.ops import _eager
from fastcnn.ops._eager import EagerOp

pytestmark = pytest.mark.skipif(EagerOp("activation").get() is None, reason="built without the eager op layer")

MID = 600_000  # float32 elements: 2.4 MB, just above the pool's 2 MiB threshold
BIG = 2 << 20  # float32 elements: 8 MiB, a huge-page advised block

HOLDERS = ["tensor", "view", "numpy", "autograd"]


def assert_referenced_output_kept(holder: str, numel: int, tanh: Callable, relu: Callable,
                                  after_drop: Optional[Callable[[], None]] = None) -> None:
    """tanh(x)'s output, still held by `holder` (one of HOLDERS) after its tensor is dropped, is not
    the buffer of a later relu output of the same size, and still holds its values; after_drop runs
    its own checks right after the drop."""
    x = torch.randn(numel, requires_grad=holder == "autograd")
    y = tanh(x)
    kept = {"tensor": lambda: y, "view": lambda: y[10:20], "numpy": lambda: y.detach().numpy(),
            "autograd": lambda: y.sum()}[holder]()  # tanh saves its output for backward
    expected = torch.tanh(x.detach())
    ptr = y.data_ptr()
    if holder != "tensor":
        del y
    if after_drop is not None:
        after_drop()
    other = relu(torch.randn(numel))
    assert other.data_ptr() != ptr
    if holder == "view":
        torch.testing.assert_close(kept, expected[10:20])
    elif holder == "numpy":
        np.testing.assert_allclose(kept, expected.numpy(), rtol=1e-6)
    elif holder == "autograd":
        kept.backward()
        torch.testing.assert_close(x.grad, 1 - expected ** 2)


def free_bytes() -> int:
    return int(torch.ops.fastcnn_eager.output_pool_free_bytes())


@pytest.fixture(autouse=True)
def empty_pool():
    fastcnn.empty_cache()
    yield
    fastcnn.empty_cache()


def test_dead_output_is_reused_and_results_are_right():
    x = torch.randn(MID)
    y = ops.relu(x)
    ptr = y.data_ptr()
    del y
    assert free_bytes() >= MID * 4
    z = ops.sigmoid(x)  # same size: takes the freed block, and writes every element of it
    assert z.data_ptr() == ptr and free_bytes() == 0
    torch.testing.assert_close(z, torch.sigmoid(x))


@pytest.mark.parametrize("path", ["eager", "python"])
@pytest.mark.parametrize("holder", HOLDERS)
def test_referenced_output_is_never_handed_out(holder, path):
    def nothing_pooled():
        assert free_bytes() == 0
    with _eager.python_path() if path == "python" else contextlib.nullcontext():
        assert_referenced_output_kept(holder, MID, ops.tanh, ops.relu, after_drop=nothing_pooled)


def test_backward_outputs_come_from_the_pool_and_stay_right():
    x = torch.randn(8, 16, 64, 64, requires_grad=True)  # 2 MiB
    w = torch.randn(16, 16, 3, 3, requires_grad=True)
    expected = torch.autograd.grad(torch.nn.functional.conv2d(x, w, padding=1).relu().square().sum(), (x, w))
    for _ in range(3):  # later steps run on blocks the earlier ones gave back
        got = torch.autograd.grad(ops.relu(ops.conv2d(x, w, padding=1)).square().sum(), (x, w))
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-3)
    del got
    assert free_bytes() > 0


def test_large_outputs_take_the_eager_op_and_the_pool():
    x = torch.randn(BIG, requires_grad=True)
    y = ops.relu(x)
    assert y.grad_fn.name() == "fastcnn::ActivationBackward"
    ptr = y.data_ptr()
    del y
    z = ops.relu(x.detach() - 1.0)
    assert z.data_ptr() == ptr
    torch.testing.assert_close(z, torch.relu(x.detach() - 1.0))


def test_python_kernel_path_outputs_come_from_the_same_pool():
    x = torch.randn(BIG)
    with _eager.python_path():
        y = ops.relu(x)
        ptr = y.data_ptr()
        del y
        z = ops.sigmoid(x)
    assert z.data_ptr() == ptr
    torch.testing.assert_close(z, torch.sigmoid(x))
    del z
    w = ops.tanh(x)  # an eager op takes the block the Python path gave back
    assert w.data_ptr() == ptr


def test_layout_and_dtype_of_pooled_outputs():
    x = torch.randn(4, 64, 64, 64, dtype=torch.float64).to(memory_format=torch.channels_last)  # 8 MiB
    y = _lib.empty_like(x)
    assert y.dtype == torch.float64 and y.is_contiguous(memory_format=torch.channels_last)
    ptr = y.data_ptr()
    del y
    z = _lib.empty((2 << 20,), torch.float32)  # the same 8 MiB, another dtype and shape
    assert z.shape == (2 << 20,) and z.is_contiguous() and z.data_ptr() == ptr


def test_small_outputs_bypass_the_pool():
    y = ops.relu(torch.randn(1000))
    z = _lib.empty((1000,), torch.float32)
    del y, z
    assert free_bytes() == 0


def test_pooled_output_can_be_resized_and_keeps_its_data():
    x = torch.randn(MID)
    y = ops.relu(x)
    y.resize_(2 * MID)  # grows through the pool's allocator, copying the old data
    torch.testing.assert_close(y[:MID], x.relu())
    y.resize_(10)
    torch.testing.assert_close(y, x[:10].relu())


def test_outputs_freed_on_other_threads_come_back_safely():
    x = torch.randn(MID)
    expected = x.relu()
    errors = []

    def work():
        try:
            for _ in range(50):
                torch.testing.assert_close(ops.relu(x), expected)
        except Exception as e:  # re-raised below: a thread's failure must fail the test
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert 0 < free_bytes() <= 4 * MID * 4 + 4 * 4096  # at most one block per thread's last output


def test_empty_cache_releases_the_pool():
    y = ops.relu(torch.randn(MID))
    del y
    assert free_bytes() > 0
    fastcnn.empty_cache()
    assert free_bytes() == 0


def _pool_in_child(limit_mb: str, code: str) -> int:
    code = ("import torch, fastcnn, fastcnn._C; from fastcnn import ops\n" + code +
            "print(int(torch.ops.fastcnn_eager.output_pool_free_bytes()))\n")
    env = dict(os.environ, FASTCNN_OUTPUT_CACHE_MB=limit_mb)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


THREE_FREED = "ys = [ops.relu(torch.randn(600_000)) for _ in range(3)]\ndel ys\n"


def test_limit_caps_the_free_bytes_and_zero_turns_the_pool_off():
    assert _pool_in_child("0", THREE_FREED) == 0
    assert 0 < _pool_in_child("3", THREE_FREED) <= 3 << 20  # one 2.4 MB block fits the 3 MiB cap, two do not
    assert _pool_in_child("1024", THREE_FREED) >= 3 * 2_400_000


def _pages(nbytes: int) -> int:
    return -(-nbytes // 4096) * 4096


def test_over_the_limit_the_block_freed_longest_ago_goes_first():
    # a 2.4 MB block of an old shape, then two 2.8 MB blocks of a new one under a 6 MiB cap: the old
    # block makes room for the second new one (a pool that dropped the newcomer would keep 2.4 + 2.8)
    code = ("old = ops.relu(torch.randn(600_000))\ndel old\n"
            "new = [ops.relu(torch.randn(700_000)) for _ in range(2)]\ndel new\n")
    assert _pool_in_child("6", code) == 2 * _pages(700_000 * 4)
