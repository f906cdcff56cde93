"""The benchmark harness's machine probes (csrc/kernels/probe.cpp) on small sizes: the copy is exact
(tails of every vector width) and the FMA loop reports work done. Small enough for the sanitizer run
(scripts/sanitize.sh), which must reach every kernel file."""
from __future__ import annotations

import pytest
import torch

from helpers import CPU_BACKENDS

pytestmark = pytest.mark.skipif("cpu" not in CPU_BACKENDS, reason="the cpu backend is not built here")


@pytest.mark.parametrize("n", [0, 1, 15, 17, 1000, 4099])
def test_probe_copy_is_exact(n):
    from fastcnn import _C

    src = torch.randn(n)
    dst = torch.full((n + 1,), 7.0)  # one sentinel past the end must stay untouched
    _C.probe.copy(src.data_ptr(), dst.data_ptr(), n)
    assert torch.equal(dst[:n], src) and float(dst[n]) == 7.0


def test_probe_fma_loop_counts_flops():
    from fastcnn import _C

    assert _C.probe.fma_loop(10) > 0
