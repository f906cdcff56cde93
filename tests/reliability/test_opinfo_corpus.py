"""PyTorch's own OpInfo sample inputs through every fastcnn op that mirrors one, float32 and float64,
forward and backward: each sample either matches torch (shape, values, NaN/inf placement, memory
format) or is rejected with a ValueError/TypeError/NotImplementedError naming an argument. Nothing
crashes. The cpu backend runs the whole corpus; triton (interpreter on CPU tensors, ~100x slower)
runs the first samples of each op by default and the whole corpus under `-m slow`."""
from __future__ import annotations

import pytest
import torch

from helpers import CPU_BACKENDS

pytest.importorskip("expecttest", reason="torch.testing._internal (OpInfo) imports expecttest: pip install expecttest")
import opinfo_harness as harness  # noqa: E402

OPS = harness.load_ops()
DTYPES = (torch.float32, torch.float64)
TRITON_QUICK_SAMPLES = 12  # per op and dtype in the default run


def _failures(results):
    return [f"{op}: {desc}: {o.detail}" for op, rows in results.items() for desc, o in rows
            if o.kind == "crash" and not _documented_difference(op, desc, o.detail)]


# Where torch disagrees with itself, fastcnn follows the exact value (docs/ops-activation.md): torch's
# float64 hardsigmoid backward multiplies by the float32 1/6 on some paths (these 1-D samples) and
# divides by 6 on others (tests/ops/test_activation_smooth.py compares with the latter).
_DOCUMENTED_DIFFERENCES = {("nn.functional.hardsigmoid", "float64", "grad 0")}


def _documented_difference(op, desc, detail):
    return any(op == name and dtype in desc and detail.startswith(what)
               for name, dtype, what in _DOCUMENTED_DIFFERENCES)


def _first(n):
    counts = {}

    def keep(op, sample):
        key = (harness.op_id(op), sample.input.dtype if isinstance(sample.input, torch.Tensor) else None)
        counts[key] = counts.get(key, 0) + 1
        return counts[key] <= n
    return keep


def _params(backend, slow_rest: bool):
    marks = [] if backend in CPU_BACKENDS else [pytest.mark.skip(reason=f"backend {backend} is not available here")]
    return [pytest.param(op, id=harness.op_id(op), marks=marks) for op in OPS]


@pytest.mark.parametrize("op", _params("cpu", False))
def test_cpu_corpus(op):
    results = harness.run_corpus([op], DTYPES, "cpu")
    bad = _failures(results)
    assert not bad, f"{len(bad)} samples crash or differ from torch:\n" + "\n".join(bad[:20])
    assert any(o.kind == "match" for rows in results.values() for _, o in rows) or harness.op_id(op) in _ALL_REJECTED, \
        f"{harness.op_id(op)}: no sample computed (all rejected): widen support or list it in _ALL_REJECTED"


@pytest.mark.parametrize("op", _params("triton", False))
def test_triton_corpus_quick(op):
    results = harness.run_corpus([op], DTYPES, "triton", sample_filter=_first(TRITON_QUICK_SAMPLES))
    bad = _failures(results)
    assert not bad, f"{len(bad)} samples crash or differ from torch:\n" + "\n".join(bad[:20])


@pytest.mark.slow
@pytest.mark.parametrize("op", _params("triton", True))
def test_triton_corpus_full(op):
    results = harness.run_corpus([op], DTYPES, "triton")
    bad = _failures(results)
    assert not bad, f"{len(bad)} samples crash or differ from torch:\n" + "\n".join(bad[:20])


# Ops whose every OpInfo sample is rejected today, with the documented reason (docs/reliability.md).
_ALL_REJECTED = {
    "nn.functional.interpolate.area": "mode 'area' not implemented",
    "nn.functional.interpolate.bicubic": "mode 'bicubic' not implemented",
    "nn.functional.interpolate.nearest-exact": "mode 'nearest-exact' not implemented",
    "nn.functional.interpolate.trilinear": "5-D input not implemented",
    "nn.functional.pad.replicate_negative": "negative padding (cropping) not implemented: ValueError naming pad",
}


def test_harness_catches_a_wrong_result(monkeypatch):
    """The corpus check can fail: a relu whose kernel is off by one ulp-scale amount is a 'crash'."""
    op = next(o for o in OPS if o.name == "nn.functional.relu")
    import fastcnn.ops as fops
    real = fops.relu
    monkeypatch.setattr(fops, "relu", lambda x, *a, backend=None, **k: real(x, *a, backend=backend, **k) * 1.001)
    results = harness.run_corpus([op], (torch.float64,), "cpu")
    assert _failures(results)


def test_harness_catches_a_raw_error(monkeypatch):
    """A RuntimeError (or a ValueError that names no argument) is a crash, not a rejection."""
    op = next(o for o in OPS if o.name == "nn.functional.relu")
    import fastcnn.ops as fops

    def broken(x, *a, backend=None, **k):
        raise ValueError("cannot reshape")
    monkeypatch.setattr(fops, "relu", broken)
    results = harness.run_corpus([op], (torch.float64,), "cpu")
    assert len(_failures(results)) == sum(len(rows) for rows in results.values())
