"""The benchmark cases as pytest-benchmark tests, so runs can be saved and compared between commits:

    pytest bench/ --benchmark-only                       # all cases (FASTCNN_BENCH_QUICK=1: quick set)
    pytest bench/ --benchmark-only --benchmark-autosave  # then: pytest-benchmark compare
Each case and mode is one group; within it, fastcnn's contenders and the torch baselines."""
import os

import pytest

from fastcnn.bench.cli import default_backends
from fastcnn.bench.harness import relative_error
from fastcnn.bench.suites import CASES

QUICK = os.environ.get("FASTCNN_BENCH_QUICK") == "1"
PARAMS = [pytest.param(c, m, id=f"{c.suite}:{c.name}:{m}") for c in CASES if c.quick or not QUICK for m in c.modes]


@pytest.mark.parametrize("side", ["fastcnn", "torch"])
@pytest.mark.parametrize("case,mode", PARAMS)
def test_case(benchmark, case, mode, side):
    try:
        fast, base = case.build(mode, default_backends())
    except NotImplementedError as e:
        pytest.skip(str(e))
    benchmark.group = f"{case.name} [{mode}]"
    if side == "torch":
        benchmark(base["torch"])
        return
    name = next(iter(fast))
    try:
        result = fast[name]()
    except NotImplementedError as e:
        pytest.skip(str(e))
    # A fast wrong kernel must not score: check against the baseline before timing.
    assert relative_error(result, base[case.reference]()) <= case.rtol, f"{name} disagrees with torch"
    benchmark(fast[name])
