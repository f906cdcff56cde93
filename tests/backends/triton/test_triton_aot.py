"""Every Triton kernel the launchers launch compiles for the GPU (sm_90 and sm_80), no GPU needed.

The launches are recorded from tests/triton_launch_workload.py (every registered triton kernel,
forward and backward, float32 and float64) under the interpreter, and each unique (kernel,
signature, constexprs, launch options) is compiled with triton.compile for a CUDA target in a fresh
process (tests/triton_aot.py). FASTCNN_AOT_TRITON_PATH=<dir> compiles with another triton (the
oldest supported one, installed by scripts/triton-min.sh) instead of the installed one.
"""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
import torch

import triton_aot
import triton_launch_workload
from fastcnn import _registry
from fastcnn.contracts import kernels

pytest.importorskip("triton.backends.nvidia.compiler", reason="triton's NVIDIA backend is not installed")

KERNEL_DIR = Path(__file__).resolve().parents[3] / "fastcnn" / "kernels" / "triton"


@pytest.fixture(scope="module")
def recorded():
    """(launch specs, names of the registered triton kernels the workload called)."""
    kernels.gemm["triton"]  # loads the backend: every launcher registered
    called = set()
    originals = {name: slot.impls["triton"] for name, slot in _registry.registered("triton").items()}

    def spy(name, fn):
        def call(*args, **kwargs):
            called.add(name)
            return fn(*args, **kwargs)
        return call

    try:
        for name, fn in originals.items():
            _registry.registered("triton")[name].impls["triton"] = spy(name, fn)
        specs = triton_aot.record_launches(triton_launch_workload.run_all)
    finally:
        for name, fn in originals.items():
            _registry.registered("triton")[name].impls["triton"] = fn
    return specs, called


def _launched_in_source():
    """@triton.jit kernels launched somewhere in fastcnn/kernels/triton (`name[grid](` or `launch(name,`)."""
    names = set()
    for path in KERNEL_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        jit = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)
               and any("jit" in ast.unparse(d) for d in f.decorator_list)}
        src = path.read_text()
        names |= {n for n in jit if re.search(rf"\b{n}\[", src)}
        names |= set(re.findall(r"\blaunch\((\w+),", src)) & jit
    # conv_direct passes its kernel through a variable: every kernel defined in a module that calls launch()
    for path in KERNEL_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        if "launch(kernel," in path.read_text():
            names |= {f.name for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.endswith("_kernel")
                      and any("jit" in ast.unparse(d) for d in f.decorator_list)}
    return names


def test_workload_calls_every_launcher_and_kernel(recorded):
    specs, called = recorded
    registered = set(_registry.registered("triton"))
    assert registered - called == set(), f"triton kernels the AOT workload never calls: {sorted(registered - called)}"
    launched = {s["kernel"] for s in specs}
    missing = _launched_in_source() - launched
    assert not missing, f"@triton.jit kernels launched in fastcnn/kernels/triton but not by the workload: {sorted(missing)}"
    dtypes = {tuple(a[1] for a in s["args"] if a[0] == "ptr") for s in specs}
    assert any("float64" in d for d in dtypes) and any("float32" in d for d in dtypes)


def test_float_arguments_are_float64(recorded):
    """A plain Python float reaches a compiled kernel as float32 (the interpreter hides it): kernels
    taking a float that matters in float64 annotate it tl.float64. The resampling scales are float32
    on purpose (torch computes nearest-neighbour source indices in float)."""
    import importlib

    float32_on_purpose = {("_interpolate_fwd", "nscale_h"), ("_interpolate_fwd", "nscale_w"),
                          ("_interpolate_bwd", "nscale_h"), ("_interpolate_bwd", "nscale_w"),
                          ("_interpolate_bwd", "step_h"), ("_interpolate_bwd", "step_w")}
    bad = set()
    for spec in recorded[0]:
        module = importlib.import_module(spec["module"])
        fn = getattr(module, spec["kernel"])
        params = list(inspect.signature(fn.fn).parameters.values())
        bound = dict(zip([p.name for p in params], spec["args"]))
        bound.update(spec["kwargs"])
        for p in params:
            desc = bound.get(p.name)
            if desc and desc[0] == "float" and p.annotation is inspect.Parameter.empty \
                    and (spec["kernel"], p.name) not in float32_on_purpose:
                bad.add((spec["module"], spec["kernel"], p.name))
    assert not bad, f"float arguments passed as float32 on the GPU: {sorted(bad)}"


NO_FMA_KERNELS = ("_interpolate_fwd", "_interpolate_bwd")
IMPLICIT_GEMM = ("igemm_forward_kernel", "igemm_backward_input_kernel", "igemm_backward_weight_kernel")


@pytest.fixture(scope="module")
def reports(recorded):
    """sm_90 and sm_80, one compiling process each, side by side (CI has two cores); the variants
    with every integer 1 are split between them (their errors are front-end errors, arch-independent).
    The implicit-GEMM launches get their bfloat16 twins and report registers and spills."""
    from concurrent.futures import ThreadPoolExecutor

    specs = [dict(s, resources=True) if s["kernel"] in IMPLICIT_GEMM else s
             for s in triton_aot.with_bfloat16(recorded[0], IMPLICIT_GEMM)]
    # the float64 interpolation launches once more with FMA contraction allowed (see test_interpolation_without_fma)
    specs += [dict(s, probe=True, kwargs=dict(s["kwargs"], enable_fp_fusion=["bool", True])) for s in recorded[0]
              if s["kernel"] in NO_FMA_KERNELS and ["ptr", "float64"] in s["args"]]
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda job: triton_aot.compile_specs(specs, job[0], ones=job[1]),
                             ((90, (0, 2)), (80, (1, 2)))))


def test_every_launched_kernel_compiles(recorded, reports):
    for report in reports:
        failures = [f"{f['kernel']}: {f['error'].strip()[-600:]}" for f in report["failed"]]
        assert not failures, (f"{len(failures)} of {len(failures) + len(report['compiled'])} launches do not compile "
                              f"for sm_{report['arch']} with triton {report['triton']}:\n" + "\n\n".join(failures[:5]))
        assert report["compiled"] and all(c["cubin_bytes"] > 0 for c in report["compiled"])
        assert {c["kernel"] for c in report["compiled"]} == {s["kernel"] for s in recorded[0]}


def test_interpolation_without_fma(reports):
    """Issue #14: bilinear interpolation's index and blend math compile without FMA contraction (as
    torch and the interpreter round them); the same float64 launches with fusion allowed do contain
    fma.rn, so the check can tell."""
    for report in reports:
        entries = [c for c in report["compiled"] if c["kernel"] in NO_FMA_KERNELS and not c["ones"]]
        shipped = [c for c in entries if not c["probe"]]
        probes = [c for c in entries if c["probe"]]
        assert shipped and probes
        assert all(c["fma"] == 0 for c in shipped), [c["key"] for c in shipped if c["fma"]][:2]
        assert any(c["fma"] > 0 for c in probes)


def _operand_dtype(entry):
    sig = entry["signature"]
    return sig.get("x_ptr", sig.get("gy_ptr"))


def test_implicit_gemm_uses_tensor_cores_without_spills(reports):
    """Every shipped autotune config of the implicit-GEMM convolution, every pass: float32 with TF32,
    float16 and bfloat16 compile to tensor-core instructions (mma.sync on sm_80; on sm_90
    wgmma.mma_async for 64-row tiles, mma.sync for 32-row ones), and no config spills registers (stack frame + local memory 0 bytes in the
    cubin, i.e. triton's n_spills == 0). float64 and IEEE float32 run on FMA units: only no spills.
    FASTCNN_AOT_EVIDENCE=<file> writes the per-launch table (docs/backend-triton.md quotes it)."""
    import json
    import os

    evidence = []
    for report in reports:
        entries = [c for c in report["compiled"] if c["kernel"] in IMPLICIT_GEMM and not c["ones"]]
        assert {c["kernel"] for c in entries} == set(IMPLICIT_GEMM)
        assert {_operand_dtype(c) for c in entries} >= {"*fp32", "*fp64", "*fp16", "*bf16"}
        for c in entries:
            tensor_cores = _operand_dtype(c) in ("*fp16", "*bf16") or (
                _operand_dtype(c) == "*fp32" and c["constexprs"]["PRECISION"] == repr("tf32"))
            row = dict(arch=report["arch"], triton=report["triton"], kernel=c["kernel"], dtype=_operand_dtype(c),
                       precision=c["constexprs"]["PRECISION"], config=c["config"], mma_sync=c["mma_sync"],
                       wgmma=c["wgmma"], registers=c["registers"], spill_bytes=c["spill_bytes"],
                       block_m=int(c["constexprs"]["BLOCK_M"]),
                       tensor_cores=tensor_cores)
            evidence.append(row)
    if os.environ.get("FASTCNN_AOT_EVIDENCE"):
        with open(os.environ["FASTCNN_AOT_EVIDENCE"], "w") as f:
            json.dump(evidence, f, indent=1)
    no_mma = [r for r in evidence if r["tensor_cores"] and r["mma_sync"] + r["wgmma"] == 0]
    assert not no_mma, f"tensor-core launches without mma/wgmma in the PTX: {no_mma[:3]}"
    # Hopper's warpgroup MMA takes 64-row tiles; 32-row tiles stay on mma.sync (tensor cores too)
    hopper = [r for r in evidence if r["tensor_cores"] and r["arch"] == 90 and r["block_m"] >= 64]
    assert hopper and all(r["wgmma"] > 0 for r in hopper), "sm_90 tensor-core launches without wgmma"
    spills = [r for r in evidence if r["spill_bytes"] != 0]
    if os.environ.get("FASTCNN_AOT_TRITON_PATH"):
        # the oldest supported triton (scripts/triton-min.sh) must compile every launch with tensor
        # cores; the tiles are chosen spill-free for the installed one (triton 3.6 spills 40 bytes
        # in the IEEE float32 forward on sm_90: docs/backend-triton.md), so spills are reported only
        print(f"implicit-GEMM compiles that spill with triton {reports[0]['triton']}: {spills}")
        return
    assert not spills, f"{len(spills)} of {len(evidence)} implicit-GEMM compiles spill: {spills[:3]}"


def test_interpreted_launches_leave_triton_language_unpatched(recorded):
    """The interpreter patches triton.language while a kernel runs and triton 3.6-3.9 do not always
    undo it (a @jit helper called as a device function); a later compile in the same process then
    fails ("Did you forget to add @triton.jit?"). After the whole workload, nothing is left patched,
    and a kernel compiles in this very process."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from fastcnn.backends.triton._lib import LANGUAGE_GUARD

    assert LANGUAGE_GUARD.dirty() == []
    # the unrestored path itself: a @jit helper called outside a kernel patches the language ...
    from fastcnn.backends.triton._lib import _import_interpreted
    helpers = _import_interpreted("fastcnn.kernels.triton.activation")
    from triton.runtime.interpreter import _patch_lang
    _patch_lang(helpers._forward_kernel.fn)
    assert LANGUAGE_GUARD.dirty(), "expected the interpreter's patch to be visible"
    # ... and the next interpreted launch puts it back
    ops_x = torch.randn(5, dtype=torch.float64)
    kernels.activation_forward["triton"](ops_x, "relu")
    assert LANGUAGE_GUARD.dirty() == []
    # a compiling @triton.jit function, compiled here after all the interpreted launches
    knobs = triton.knobs
    previous = knobs.runtime.interpret
    knobs.runtime.interpret = False
    try:
        @triton.jit
        def copy_kernel(src, dst, n, BLOCK: triton.language.constexpr):
            i = triton.language.arange(0, BLOCK)
            triton.language.store(dst + i, triton.language.load(src + i, mask=i < n), mask=i < n)
    finally:
        knobs.runtime.interpret = previous
    binary = triton.compile(ASTSource(copy_kernel, {"src": "*fp64", "dst": "*fp64", "n": "i32", "BLOCK": "constexpr"},
                                      {"BLOCK": 64}), target=GPUTarget("cuda", 90, 32))
    assert len(binary.asm["cubin"]) > 0
