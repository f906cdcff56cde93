"""Ahead-of-time compilation of the Triton kernels the launchers really launch, without a GPU.

1. `record_launches(workload)` runs a workload on CPU tensors (Triton interpreter) with
   InterpretedFunction.run wrapped: every launch is recorded as (module, kernel, arguments described
   by type/dtype/value, launch options). Nothing is hand-listed: the signatures and constexpr
   combinations are the ones the launchers chose.
2. `compile_specs(specs, arch)` runs `python tests/triton_aot.py SPECS.json ARCH` in a fresh process
   with TRITON_INTERPRET=0, where every @triton.jit function is a compiling JITFunction, and calls
   `triton.compile(ASTSource(fn, signature, constexprs), target=GPUTarget("cuda", ARCH, 32))` once
   per unique (kernel, signature, constexprs, options), and once more with every integer argument
   1 (the runtime makes those constexprs: a one-row image, a batch of 1). A separate process keeps the interpreter
   (which patches triton.language while it runs) and the compiler apart whatever ran before.
   A `triton.autotune`d kernel runs one config under the interpreter; here each recorded launch is
   compiled once per config the GPU copy could time for it (its early_config_prune applied to the
   recorded dtypes and flags, sizes taken as large), so every shipped config is compiled (the
   all-ones variant: the first).
   Every compiled launch reports its PTX's tensor-core instructions (mma.sync / wgmma.mma_async
   counts); a spec with "resources": true also reports registers and spill bytes (the cubin's
   stack frame + local memory from the bundled cuobjdump -res-usage: what the driver reports as
   local memory, of which triton's n_spills is a quarter; n_spills itself needs a GPU to load the
   binary).
   A spec with "aligned": true is compiled the way the runtime specialises a launch on 16-byte
   aligned tensors whose integer arguments are multiples of 16 (tt.divisibility 16 on every pointer
   and integer: a large tensor from torch's allocator), which is what lets triton emit 16-byte
   vector loads; every report counts them ("ld_v4", "st_v4": ld/st.global ... .v4 in the PTX).
   `FASTCNN_AOT_TRITON_PATH` puts another triton first on that process's path (the oldest supported
   triton, scripts/triton-min.sh).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
_INTERP_SUFFIX = "__interpreted"
_DTYPES = {"float32": "fp32", "float64": "fp64", "float16": "fp16", "bfloat16": "bf16", "uint8": "u8",
           "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "bool": "i1"}


def _describe(value):
    """A launch argument as JSON: what the compiler needs to know (tensor dtype, scalar kind and
    value: ints equal to 1 are specialised, large ints need i64, constexprs are values)."""
    import triton.language as tl

    if isinstance(value, torch.Tensor):
        return ["ptr", str(value.dtype).replace("torch.", "")]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["float", value]
    if value is None:
        return ["none"]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, tl.dtype):
        return ["tl.dtype", value.name]
    raise TypeError(f"launch argument of type {type(value).__name__} is not described for AOT compilation")


def record_launches(workload) -> list:
    """Runs workload() with every interpreted launch recorded; returns the unique launch specs
    [{"module", "kernel", "args", "kwargs"}], in first-launch order."""
    from triton.runtime.interpreter import InterpretedFunction

    seen, specs = set(), []
    original = InterpretedFunction.run

    def run(self, *args, grid, warmup, **kwargs):
        module = self.fn.__module__
        if module.endswith(_INTERP_SUFFIX):
            module = module[: -len(_INTERP_SUFFIX)]
        spec = {"module": module, "kernel": self.fn.__name__, "args": [_describe(a) for a in args],
                "kwargs": {k: _describe(v) for k, v in sorted(kwargs.items())}}
        key = json.dumps(spec, sort_keys=True)
        if key not in seen:
            seen.add(key)
            specs.append(spec)
        return original(self, *args, grid=grid, warmup=warmup, **kwargs)

    InterpretedFunction.run = run
    try:
        workload()
    finally:
        InterpretedFunction.run = original
    return specs


def with_bfloat16(specs: list, kernels) -> list:
    """specs plus, for every launch of `kernels` with float16 tensors, the same launch in bfloat16:
    the interpreter's tl.dot cannot multiply bfloat16, so the workload records float16 and the
    bfloat16 variant (same code path in the launcher) is derived here."""
    out = list(specs)
    for spec in specs:
        if spec["kernel"] in kernels and any(a == ["ptr", "float16"] for a in spec["args"]):
            out.append(dict(spec, args=[["ptr", "bfloat16"] if a == ["ptr", "float16"] else a for a in spec["args"]]))
    return out


def compile_specs(specs: list, arch: int, timeout: float = 600, triton_path: str = None, ones=(0, 1)) -> dict:
    """Compiles every spec for sm_<arch> in a fresh process, and the all-integers-1 variant of every
    ones[1]-th spec from ones[0] (front-end errors do not depend on the arch, so two processes can
    share that work; None: none); returns its JSON report
    {"triton": version, "compiled": [{"kernel", "key", "cubin_bytes"}], "failed": [{"kernel", "key", "error"}]}."""
    import tempfile

    env = dict(os.environ, TRITON_INTERPRET="0", PYTHONPATH=os.pathsep.join(
        p for p in (triton_path or os.environ.get("FASTCNN_AOT_TRITON_PATH"), str(ROOT), os.environ.get("PYTHONPATH"))
        if p))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "specs.json"
        path.write_text(json.dumps(specs))
        out = Path(tmp) / "report.json"
        share = "none" if ones is None else f"{ones[0]}/{ones[1]}"
        proc = subprocess.run([sys.executable, __file__, str(path), str(arch), str(out), share], env=env,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"AOT compile process failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        return json.loads(out.read_text())


# ------------------------------------------------------------------------- the compiling process

def _value(desc):
    import triton.language as tl

    kind = desc[0]
    if kind == "none":
        return None
    if kind == "tl.dtype":
        return getattr(tl, desc[1]) if hasattr(tl, desc[1]) else tl.dtype(desc[1])
    return desc[1]


def _runtime_type(value, specialize: bool) -> str:
    """The type this triton's launcher gives a Python scalar ('i32', 'i64', 'fp32', 'u1', or
    'constexpr' for an int 1)."""
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend

    return native_specialize_impl(BaseBackend, value, False, specialize, True)[0]


def _signature(fn, spec, ones=False):
    """(signature, constexprs, options) for triton.compile, the way the runtime specialises a launch.
    ones=True: every integer argument is 1, which the runtime turns into a constexpr (a batch, a
    channel count or a height of 1): a kernel that calls a tensor method on an int argument
    (`size.to(...)`) compiles for sizes > 1 only."""
    names = fn.arg_names
    bound = dict(zip(names, spec["args"]))
    options = {}
    for k, v in spec["kwargs"].items():
        if k in names:
            bound[k] = v
        else:
            options[k] = _value(v)
    signature, constexprs = {}, {}
    for p in fn.params:
        desc = bound.get(p.name)
        if desc is None:
            import inspect

            if p.default is inspect.Parameter.empty:
                raise TypeError(f"{fn.__name__}: argument {p.name} was not passed and has no default")
            desc = _describe(p.default)
        if p.is_constexpr or desc[0] in ("none", "str", "tl.dtype"):
            signature[p.name] = "constexpr"
            constexprs[p.name] = _value(desc)
            continue
        kind = desc[0]
        if kind == "ptr":
            signature[p.name] = "*" + _DTYPES[desc[1]]
        elif p.annotation_type:
            signature[p.name] = p.annotation_type
        elif kind in ("int", "bool", "float"):
            value = 1 if ones and kind == "int" else desc[1]
            ty = _runtime_type(value, specialize=not p.do_not_specialize)
            if ty == "constexpr":  # the runtime turns an int 1 into a constexpr
                signature[p.name] = "constexpr"
                constexprs[p.name] = value
            else:
                signature[p.name] = ty  # an unannotated Python float is fp32, a bool u1
        else:
            raise TypeError(f"{fn.__name__}.{p.name}: cannot type {desc}")
    return signature, constexprs, options


def _named_value(desc):
    """A recorded argument as the autotuner's pruner sees it: tensors by dtype, scalars by value."""
    from types import SimpleNamespace

    if desc[0] == "ptr":
        return SimpleNamespace(dtype=getattr(torch, desc[1]))
    return _value(desc)


def _expand_configs(attr, spec, ones):
    """(JITFunction, spec, config label) for each compile of a recorded launch: one for a plain
    @triton.jit kernel; one per config the autotuner could time for its dtypes and flags (the first
    only for ones)."""
    from triton.runtime.autotuner import Autotuner

    if not isinstance(attr, Autotuner):
        return [(attr, spec, None)]
    # the pruner sees every integer as large: the configs it could pick for this signature at any
    # problem size (it also drops tiles wider than a small recorded matrix, which a larger one takes)
    named = {name: (1 << 12 if desc[0] == "int" else _named_value(desc))
             for name, desc in zip(attr.arg_names, spec["args"])}
    named.update({k: _value(v) for k, v in spec["kwargs"].items()})
    configs = attr.early_config_prune(attr.configs, named) if attr.early_config_prune else attr.configs
    out = []
    for config in configs[:1] if ones else configs:
        kwargs = dict(spec["kwargs"])
        kwargs.update({k: _describe(v) for k, v in config.all_kwargs().items()})
        out.append((attr.fn, dict(spec, kwargs=kwargs), str(config)))
    return out


def _resources(binary):
    """(registers, spill bytes) of a compiled kernel: cuobjdump -res-usage's REG and STACK + LOCAL."""
    import re
    import tempfile

    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(binary.asm["cubin"])
        f.flush()
        text = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(REG|STACK|LOCAL):(\d+)", text))
    return int(fields["REG"]), int(fields["STACK"]) + int(fields["LOCAL"])


_VEC4_LOAD = re.compile(r"\bld\.global(?:\.\w+)*\.v4\.")
_VEC4_STORE = re.compile(r"\bst\.global(?:\.\w+)*\.v4\.")


def _aligned_attrs(fn, signature):
    """tt.divisibility 16 on every pointer and integer parameter (by position among fn.params)."""
    return {(i,): [["tt.divisibility", 16]] for i, p in enumerate(fn.params)
            if signature[p.name].startswith("*") or signature[p.name] in ("i32", "i64")}


def _compile_all(specs_path, arch, out_path, ones_share="0/1"):
    import importlib
    import time
    import traceback

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    specs = json.loads(Path(specs_path).read_text())
    report = {"triton": triton.__version__, "arch": arch, "compiled": [], "failed": [], "seconds": 0.0}
    start = time.time()
    done = set()
    # every launch as recorded, and (this process's share of) the same launches with all integers 1
    variants = [(spec, False) for spec in specs]
    if ones_share != "none":
        first, step = (int(v) for v in ones_share.split("/"))
        variants += [(spec, True) for spec in specs[first::step]]
    for recorded, ones in variants:
        attr = getattr(importlib.import_module(recorded["module"]), recorded["kernel"])
        for fn, spec, config in _expand_configs(attr, recorded, ones):
            assert isinstance(fn, JITFunction), f"{spec['module']}.{spec['kernel']} is not a compiling JITFunction"
            signature, constexprs, options = _signature(fn, spec, ones)
            attrs = _aligned_attrs(fn, signature) if spec.get("aligned") else None
            key = json.dumps([spec["module"], spec["kernel"], signature, {k: repr(v) for k, v in constexprs.items()},
                              {k: repr(v) for k, v in options.items()}], sort_keys=True)
            if key in done:
                continue
            done.add(key)
            try:
                binary = triton.compile(ASTSource(fn, signature, constexprs, attrs), target=GPUTarget("cuda", arch, 32),
                                        options=options)
                ptx = binary.asm["ptx"]
                entry = {"kernel": spec["kernel"], "key": key, "cubin_bytes": len(binary.asm["cubin"]),
                         "config": config, "ones": ones, "signature": signature,
                         "constexprs": {k: repr(v) for k, v in constexprs.items()},
                         "mma_sync": ptx.count("mma.sync"), "wgmma": ptx.count("wgmma.mma_async"),
                         "fma": ptx.count("fma.rn"), "probe": bool(spec.get("probe")),
                         "ld_v4": len(_VEC4_LOAD.findall(ptx)), "st_v4": len(_VEC4_STORE.findall(ptx))}
                if spec.get("resources") and not ones:
                    entry["registers"], entry["spill_bytes"] = _resources(binary)
                report["compiled"].append(entry)
            except Exception as e:  # every failure is reported, the run goes on
                report["failed"].append({"kernel": spec["kernel"], "key": key,
                                         "error": "".join(traceback.format_exception_only(type(e), e))[-2000:]})
    report["seconds"] = time.time() - start
    Path(out_path).write_text(json.dumps(report))


if __name__ == "__main__":
    _compile_all(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "0/1")
