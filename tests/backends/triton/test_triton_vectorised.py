"""Memory-bound triton kernels (fastcnn/kernels/triton/_stream.py launch shape): their launches, as the
workload records them, compile for sm_90 with 16-byte vector loads and stores (ld.global.v4 /
st.global.v4 in the PTX) for float32 on aligned tensors (tests/triton_aot.py "aligned" specs), and
the new launch shape computes the same results as before under the interpreter (the op tests in
test_activation*.py / test_norm.py / test_dropout.py cover each op; here one size that is not a
multiple of the 4096-element program checks the tail mask directly)."""
from __future__ import annotations

import pytest
import torch

import triton_aot
import triton_launch_workload as workload
from helpers import assert_close

STREAM_KERNELS = {
    ("fastcnn.kernels.triton.activation", "_forward_kernel"),
    ("fastcnn.kernels.triton.activation", "_backward_kernel"),
    ("fastcnn.kernels.triton.norm", "_channel_fma"),
    ("fastcnn.kernels.triton.dropout", "_masked_scale"),
}


@pytest.fixture(scope="module")
def report():
    def run():
        workload.activations(torch.float32)
        workload.normalisation(torch.float32)
        workload.dropout(torch.float32)
    specs = [dict(s, aligned=True) for s in triton_aot.record_launches(run)
             if (s["module"], s["kernel"]) in STREAM_KERNELS]
    assert {(s["module"], s["kernel"]) for s in specs} == STREAM_KERNELS
    return triton_aot.compile_specs(specs, 90, ones=None)


def test_stream_kernels_use_16_byte_loads_on_sm90(report):
    assert not report["failed"], report["failed"][:2]
    compiled = report["compiled"]
    assert compiled and {c["kernel"] for c in compiled} == {k for _, k in STREAM_KERNELS}
    for c in compiled:
        assert c["constexprs"]["BLOCK"] == "4096", c["key"]
        assert c["ld_v4"] > 0 and c["st_v4"] > 0, f"{c['kernel']} {c['constexprs']}: scalar loads/stores"


def test_unaligned_launch_has_no_vector_loads():
    """The check can fail: without the alignment specialisation the same kernel compiles to scalar
    loads (what a misaligned view gets at run time)."""
    specs = [s for s in triton_aot.record_launches(lambda: workload.activations(torch.float32))
             if s["kernel"] == "_forward_kernel"][:1]
    rep = triton_aot.compile_specs(specs, 90, ones=None)
    assert rep["compiled"] and rep["compiled"][0]["ld_v4"] == 0


@pytest.mark.parametrize("n", [1, 4095, 4096 * 2 + 17])
def test_stream_tail_is_masked(n):
    from fastcnn import ops
    x = torch.randn(n, dtype=torch.float64)
    assert_close(ops.elu(x, backend="triton"), torch.nn.functional.elu(x), name=f"elu n={n}")
