"""Huge-page advice for fresh cpu outputs: the output pool's blocks from 4 MiB
(csrc/torchops/output_pool.cpp) and fastcnn/backends/cpu/_lib.py fresh() (csrc/host/memory.cpp) for
outputs that do not come from the pool."""
import os
import subprocess
import sys

import pytest
import torch

import fastcnn
from fastcnn import _C, ops
from fastcnn.backends.cpu import _lib

THP_POLICY = "/sys/kernel/mm/transparent_hugepage/enabled"
HUGE = 2 << 20


def thp_policy():
    try:
        with open(THP_POLICY) as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return None


def smaps_fields(begin, end):
    """AnonHugePages (kB, summed) and the VmFlags of the mappings of this process overlapping [begin, end)."""
    total, flags, overlaps = 0, set(), False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(v, 16) for v in head.split("-"))
                overlaps = lo < end and begin < hi
            elif overlaps and head == "AnonHugePages:":
                total += int(line.split()[1])
            elif overlaps and head == "VmFlags:":
                flags.update(line.split()[1:])
    return total, flags


def test_advise_rejects_what_spans_no_huge_page():
    assert _C.memory.advise_huge_pages(0, 64 << 20) is False
    small = torch.empty(1024)
    assert _C.memory.advise_huge_pages(small.data_ptr(), small.numel() * 4) is False


def _pooled_output_flags(env=None):
    """Whether a fresh pooled output's first whole huge page carries the advice (VmFlags hg), and
    its AnonHugePages (kB); in a child process when env is given (the pool reads it once)."""
    code = ("import torch, fastcnn\n"
            "from fastcnn import _C\n"
            "from fastcnn.backends.cpu import _lib\n"
            "from test_memory import smaps_fields, HUGE\n"
            "fastcnn.empty_cache()\n"
            # 48 MB of a size nothing else asks for: a fresh block, not one from the pool
            "x = torch.randn((12 << 20) + 1024)\n"
            "y = _lib.empty_like(x)\n"
            "_C.activation.forward(1, x.data_ptr(), y.data_ptr(), x.numel(), 0.0, 0.0, _C.Dtype.float32)\n"
            "assert torch.equal(y, torch.relu(x))\n"
            "begin = (y.data_ptr() + HUGE - 1) & ~(HUGE - 1)\n"
            "kb, flags = smaps_fields(begin, begin + HUGE)\n"
            "print('hg' in flags, kb)\n")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **(env or {}), PYTHONPATH=os.pathsep.join(
        [os.path.dirname(__file__)] + sys.path)), capture_output=True, text=True, check=True)
    advised, kb = out.stdout.split()
    return advised == "True", int(kb)


@pytest.mark.skipif(thp_policy() not in ("madvise", "always"), reason="transparent huge pages off on this machine")
def test_fresh_pooled_output_is_backed_by_huge_pages_and_correct():
    advised, huge_kb = _pooled_output_flags()
    assert advised  # what fastcnn controls: the advice (MADV_HUGEPAGE) is on the output's pages
    if huge_kb < HUGE // 1024:  # what the kernel decides: late in a long run it sometimes backs
        pytest.skip("the advice is given (VmFlags hg), but the kernel backed this buffer with 4 KiB pages "
                    "(huge-page availability is its choice; seen after long test runs)")


def test_no_advice_when_huge_pages_are_off():
    # the 'hg' check above can fail: a fresh pooled output without the advice does not carry the flag
    assert _pooled_output_flags({"FASTCNN_HUGE_PAGES": "0"})[0] is False


@pytest.mark.skipif(thp_policy() not in ("madvise", "always"), reason="transparent huge pages off on this machine")
def test_unpooled_outputs_are_advised_by_fresh(monkeypatch):
    fastcnn.empty_cache()
    monkeypatch.setattr(_lib, "_pool_empty", lambda: None)  # an extension without the pool
    y = _lib.empty_like(torch.empty((12 << 20) + 2048))
    y.fill_(1.0)
    begin = (y.data_ptr() + HUGE - 1) & ~(HUGE - 1)
    assert "hg" in smaps_fields(begin, begin + HUGE)[1]


def test_fresh_leaves_small_tensors_and_values_alone():
    t = torch.arange(10.0)
    assert _lib.fresh(t) is t and torch.equal(t, torch.arange(10.0))
    big = ops.relu(torch.randn(3, 1 << 20) - 0.5, backend="cpu")  # 12 MB output through the public op
    assert big.shape == (3, 1 << 20) and bool((big >= 0).all())
    assert big.is_contiguous()


def test_huge_pages_can_be_turned_off(monkeypatch):
    calls = []
    monkeypatch.setattr(_lib, "_HUGE_PAGES", False)
    monkeypatch.setattr(_C.memory, "advise_huge_pages", lambda *a: calls.append(a))
    _lib.fresh(torch.empty(4 << 20))
    assert calls == []
    monkeypatch.setattr(_lib, "_HUGE_PAGES", True)
    _lib.fresh(torch.empty(4 << 20))
    assert len(calls) == 1
