"""The eager ops' output pool (csrc/torchops/output_pool.h): a dead output's block goes to the next
output of its size, a block something still refers to never does, results stay right, and the
limit, the release and resizing hold."""
import os
import subprocess
import sys
import threading

import pytest
import torch
from output_reuse import HOLDERS, assert_referenced_output_kept

import fastcnn
from fastcnn import ops
from fastcnn.ops._eager import EagerOp

pytestmark = pytest.mark.skipif(EagerOp("activation").get() is None, reason="built without the eager op layer")

MID = 600_000  # float32 elements: 2.4 MB, inside the pool's range (2 MiB up to the eager ops' 4 MiB)


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


@pytest.mark.parametrize("holder", HOLDERS)
def test_referenced_output_is_never_handed_out(holder):
    def nothing_pooled():
        assert free_bytes() == 0
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


def test_small_outputs_bypass_the_pool():
    y = ops.relu(torch.randn(1000))
    del y
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


def _pool_in_child(limit_mb: str) -> int:
    code = ("import torch, fastcnn, fastcnn._C; from fastcnn import ops\n"
            "ys = [ops.relu(torch.randn(600_000)) for _ in range(3)]\n"
            "del ys\n"
            "print(int(torch.ops.fastcnn_eager.output_pool_free_bytes()))\n")
    env = dict(os.environ, FASTCNN_OUTPUT_CACHE_MB=limit_mb)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_limit_caps_the_free_bytes_and_zero_turns_the_pool_off():
    assert _pool_in_child("0") == 0
    assert 0 < _pool_in_child("3") <= 3 << 20  # one 2.4 MB block fits the 3 MiB cap, two do not
    assert _pool_in_child("1024") >= 3 * 2_400_000
