"""Memory-bound triton kernels (fastcnn/kernels/triton/_stream.py launch shape): their launches, as the
workload records them, compile for sm_90 with 16-byte vector loads and stores (ld.global.v4 /
st.global.v4 in the PTX) for float32 on aligned tensors (tests/triton_aot.py "aligned" specs), and
the new launch shape computes the same results as before under the interpreter (the op tests in
test_activation*.py / test_norm*.py / test_dropout.py / test_loss.py / test_pool.py cover each op;
here one size that is not a multiple of the 4096-element program checks the tail mask directly).
Pooling reads its windows by gather, so only its contiguous stream is wide: the tensor it writes
(or, for the index scatter, the gradient and indices it reads), on NCHW-contiguous launches."""
from __future__ import annotations

import pytest
import torch

import triton_aot
import triton_launch_workload as workload
from helpers import assert_close

_BOTH, _STORES, _LOADS = ("ld_v4", "st_v4"), ("st_v4",), ("ld_v4",)
_POOL = "fastcnn.kernels.triton.pool"
# (module, kernel) -> the PTX counters that must be non-zero on an aligned float32 launch
STREAM_KERNELS = {
    ("fastcnn.kernels.triton.activation", "_forward_kernel"): _BOTH,
    ("fastcnn.kernels.triton.activation", "_backward_kernel"): _BOTH,
    ("fastcnn.kernels.triton.norm", "_channel_fma"): _BOTH,
    ("fastcnn.kernels.triton.dropout", "_masked_scale"): _BOTH,
    ("fastcnn.kernels.triton.loss", "_pointwise_loss"): _BOTH,
    ("fastcnn.kernels.triton.norm_groups", "_row_elementwise"): _BOTH,
    (_POOL, "_max_pool_fwd"): _STORES,
    (_POOL, "_avg_pool_fwd"): _STORES,
    (_POOL, "_avg_pool_bwd"): _STORES,
    (_POOL, "_adaptive_fwd"): _STORES,
    (_POOL, "_adaptive_avg_bwd"): _STORES,
    (_POOL, "_index_gather"): _STORES,
    (_POOL, "_index_scatter"): _LOADS,  # its writes are the scatter
}


def _contiguous_launch(spec):
    return spec["kwargs"].get("CONTIG", ["bool", True])[1] is True


@pytest.fixture(scope="module")
def report():
    def run():
        workload.activations(torch.float32)
        workload.normalisation(torch.float32)
        workload.dropout(torch.float32)
        workload.softmax_and_losses(torch.float32)
        workload.pooling(torch.float32)
    specs = [dict(s, aligned=True) for s in triton_aot.record_launches(run)
             if (s["module"], s["kernel"]) in STREAM_KERNELS and _contiguous_launch(s)]
    assert {(s["module"], s["kernel"]) for s in specs} == set(STREAM_KERNELS)
    return triton_aot.compile_specs(specs, 90, ones=None)


def test_stream_kernels_use_16_byte_accesses_on_sm90(report):
    assert not report["failed"], report["failed"][:2]
    compiled = report["compiled"]
    assert compiled and {c["kernel"] for c in compiled} == {k for _, k in STREAM_KERNELS}
    wide = {k: counters for (_, k), counters in STREAM_KERNELS.items()}
    for c in compiled:
        assert c["constexprs"]["BLOCK"] == "4096", c["key"]
        for counter in wide[c["kernel"]]:
            assert c[counter] > 0, f"{c['kernel']} {c['constexprs']}: no {counter}"


@pytest.mark.parametrize("kernel", ["_forward_kernel", "_max_pool_fwd"])
def test_unaligned_or_strided_launch_has_no_vector_accesses(kernel):
    """The check can fail: without the alignment specialisation the activation compiles to scalar
    loads (what a misaligned view gets at run time), and a channels_last pooling launch (strided
    output addresses) to scalar stores."""
    family = workload.activations if kernel == "_forward_kernel" else workload.pooling
    specs = [s for s in triton_aot.record_launches(lambda: family(torch.float32))
             if s["kernel"] == kernel and not (kernel == "_max_pool_fwd" and _contiguous_launch(s))][:1]
    if kernel == "_max_pool_fwd":
        specs = [dict(s, aligned=True) for s in specs]
    rep = triton_aot.compile_specs(specs, 90, ones=None)
    assert rep["compiled"] and rep["compiled"][0]["ld_v4"] == 0 and rep["compiled"][0]["st_v4"] == 0


@pytest.mark.parametrize("n", [1, 4095, 4096 * 2 + 17])
def test_stream_tail_is_masked(n):
    from fastcnn import ops
    x = torch.randn(n, dtype=torch.float64)
    assert_close(ops.elu(x, backend="triton"), torch.nn.functional.elu(x), name=f"elu n={n}")
