"""Huge-page advice for fresh cpu outputs (csrc/host/memory.cpp, fastcnn/backends/cpu/_lib.py)."""

import pytest
import torch

from fastcnn import _C, ops
from fastcnn.backends.cpu import _lib
from fastcnn.backends.cpu._output_cache import OutputCache

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


@pytest.mark.skipif(thp_policy() not in ("madvise", "always"), reason="transparent huge pages off on this machine")
def test_fresh_output_is_backed_by_huge_pages_and_correct(monkeypatch):
    # a freshly allocated output, not one from the output cache (whose idle buffers the kernel may
    # have split back into small pages since)
    monkeypatch.setattr(_lib, "CACHE", OutputCache(0))
    # 48 MB: above glibc's largest mmap threshold (32 MiB), so a fresh mapping, never heap memory
    # that an earlier test already paged in (advice does not re-back resident pages)
    x = torch.randn(12 << 20)
    y = _lib.empty_like(x)
    _C.activation.forward(1, x.data_ptr(), y.data_ptr(), x.numel(), 0.0, 0.0, _C.Dtype.float32)
    assert torch.equal(y, torch.relu(x))
    begin = (y.data_ptr() + HUGE - 1) & ~(HUGE - 1)
    huge_kb, flags = smaps_fields(begin, begin + HUGE)
    assert "hg" in flags  # what fastcnn controls: the advice (MADV_HUGEPAGE) is on the output's pages
    if huge_kb < HUGE // 1024:  # what the kernel decides: late in a long run it sometimes backs
        pytest.skip("the advice is given (VmFlags hg), but the kernel backed this buffer with 4 KiB pages "
                    "(huge-page availability is its choice; seen after long test runs)")


def test_no_advice_when_huge_pages_are_off(monkeypatch):
    # the 'hg' check above can fail: a fresh output without the advice does not carry the flag
    monkeypatch.setattr(_lib, "CACHE", OutputCache(0))
    monkeypatch.setattr(_lib, "_HUGE_PAGES", False)
    y = _lib.empty_like(torch.empty(12 << 20))
    y.fill_(1.0)
    begin = (y.data_ptr() + HUGE - 1) & ~(HUGE - 1)
    assert "hg" not in smaps_fields(begin, begin + HUGE)[1]


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
