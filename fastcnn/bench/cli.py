"""`fastcnn bench [--quick] [--suite ops|layers|networks] [--backend ...] [--filter ...] [--out DIR]`."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from . import report
from .harness import run_case
from .machine import describe


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="the quick subset (under 3 minutes on 2 cores)")
    p.add_argument("--suite", action="append", choices=["ops", "layers", "networks", "overhead"],
                   help="suite(s) to run (default: ops, layers, networks; 'overhead': the per-call cost of "
                        "an op on a tiny tensor)")
    p.add_argument("--backend", action="append", help="fastcnn backend(s) to time (default: cpu on CPU; "
                   "cuda and triton on a GPU; the Triton interpreter is never timed)")
    p.add_argument("--filter", action="append", default=None,
                   help="only cases whose name or family contains this text (repeat: any of them)")
    p.add_argument("--mode", action="append", choices=["forward", "train"], help="default: both")
    p.add_argument("--compile", action="store_true", help="add torch.compile baselines (slow to compile)")
    p.add_argument("--budget", type=float, default=None, help="seconds of timing per case and mode")
    p.add_argument("--out", default="bench/results", help="folder for results.json, report.md and plots")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="start no new case after this many seconds; the report says which were left out "
                        "(a bounded run on a lent GPU still writes its results)")


def default_backends():
    if torch.cuda.is_available():
        from fastcnn._registry import available_backends

        info = available_backends()
        return [b for b in ("cuda", "triton") if info[b]["available"]]
    return ["cpu"]


def select_cases(args):
    from .suites import CASES

    suites = set(args.suite or ["ops", "layers", "networks"])
    chosen = [c for c in CASES if c.suite in suites and (c.quick or not args.quick)]
    if args.filter:
        texts = [f.lower() for f in args.filter]
        chosen = [c for c in chosen if any(f in c.name.lower() or f in c.family.lower() for f in texts)]
    return chosen


def _progress(iterable, total):
    try:
        from tqdm import tqdm

        return tqdm(iterable, total=total, unit="case", file=sys.stderr, dynamic_ncols=True)
    except ImportError:
        return iterable


def run(args) -> int:
    backends = args.backend or default_backends()
    cases = select_cases(args)
    if not cases:
        print("fastcnn bench: no case matches", file=sys.stderr)
        return 2
    budget = args.budget or (0.4 if args.quick else 1.5)
    if args.quick and args.max_seconds is None and torch.cuda.is_available() and "cpu" not in backends:
        args.max_seconds = 150  # a GPU --quick run stops starting cases in time to end under 3 minutes
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # the GPU baseline is cuDNN with its own autotuning
    print(f"fastcnn bench: probing the machine ...", file=sys.stderr)
    machine = describe(probe=True)
    print(f"  {machine['cpu']}, {machine['threads']} threads, ISA {machine['isa']}: FMA peak "
          f"{machine['peak_gflops']} GFLOP/s, copy {machine['copy_gbs']} GB/s", file=sys.stderr)
    work = [(c, m) for c in cases for m in c.modes if not args.mode or m in args.mode]
    results = []
    started = time.time()
    bar = _progress(work, len(work))
    left_out = []
    for case, mode in bar:
        if args.max_seconds is not None and time.time() - started > args.max_seconds:
            left_out.append(f"{case.name} {mode}")
            continue
        if hasattr(bar, "set_description"):
            bar.set_description(f"{case.name[:40]} {mode}")
        try:
            fast, base = case.build(mode, backends)
            if args.compile and "torch.compile" not in base:
                source = case.compile_source(mode) if case.compile_source else base["torch"]
                base["torch.compile"] = _compiled_baseline(source)
        except Exception as e:  # the op does not exist yet, or cannot run this case
            from .harness import Result

            r = Result(case.suite, case.name, mode, 0.0, 0.0)
            r.errors["setup"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            results.append(r)
            continue
        results.append(run_case(case.suite, case.name, mode, fast, base, reference=case.reference,
                                flops=case.flops(mode), nbytes=case.nbytes(mode), rtol=case.rtol, budget_s=budget,
                                measure_memory=case.memory))
    settings = {"quick": args.quick, "backends": backends, "suites": sorted(set(c.suite for c in cases)),
                "filter": args.filter, "budget_s": budget, "seconds": round(time.time() - started, 1),
                "left_out": left_out}
    print(report.table(results, machine))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report.to_json(results, machine, settings), indent=1, default=str))
    report.write_markdown(out / "report.md", results, machine, settings)
    plots = report.write_plots(out, results, machine)
    print(f"\nwrote {out / 'results.json'}, {out / 'report.md'}" + "".join(f", {p}" for p in plots))
    return 0


def _compiled_baseline(torch_call):
    # Every case's call shares the code object of its builder's closure: without a reset Dynamo
    # recompiles it per case until its cache limit (8) and then runs the rest eagerly, uncompiled.
    torch._dynamo.reset()
    return torch.compile(torch_call)
