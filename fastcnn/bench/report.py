"""Benchmark output: the terminal table, the JSON file, the Markdown report and the PNG plots."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import List, Optional

from .harness import Result

SCHEMA_VERSION = 1
BASELINE_ORDER = ("torch", "torch_cl", "nnpack", "torch.compile")


def _fmt_time(t: Optional[float]) -> str:
    if t is None:
        return "-"
    return f"{t * 1e3:.3f} ms" if t < 1 else f"{t:.2f} s"


def _fmt_ratio(r: Optional[float]) -> str:
    return "-" if r is None else f"{r:.2f}x"


def paired_fastcnn(result: Result, baseline: str) -> Optional[str]:
    """The fastcnn contender a baseline is compared with: for channels_last baselines the fastest
    fastcnn run on the same channels_last input, else the fastest fastcnn contender overall."""
    pool = [f for f in result.fastcnn if f in result.timings and f not in result.wrong]
    if baseline == "torch_cl":
        cl = [f for f in pool if f.endswith(",cl]")]
        pool = cl or pool
    else:
        pool = [f for f in pool if not f.endswith(",cl]")] or pool
    return min(pool, key=lambda f: result.timings[f].median) if pool else None


def rows(results: List[Result], machine: dict) -> List[dict]:
    out = []
    for r in results:
        best = paired_fastcnn(r, "torch")
        row = {"suite": r.suite, "case": r.case, "mode": r.mode, "best": best,
               "best_time": r.timings[best].median if best else None}
        for b in BASELINE_ORDER:
            f = paired_fastcnn(r, b)
            row[f"vs {b}"] = r.ratio(f, b) if f and b in r.timings else None
        if r.flops and best:
            row["GFLOP/s"] = r.gflops(best)
            row["% peak"] = 100 * r.gflops(best) / machine["peak_gflops"] if machine.get("peak_gflops") else None
        if r.bytes and best:
            row["GB/s"] = r.gbs(best)
            row["% copy bw"] = 100 * r.gbs(best) / machine["copy_gbs"] if machine.get("copy_gbs") else None
        if r.peak_bytes:  # resident-set rise of one call (fastcnn/bench/memory.py), MiB
            peak = r.peak_bytes.get(best) if best else None
            row["peak MB"] = peak / 2 ** 20 if peak is not None else None
            row["torch peak MB"] = r.peak_bytes["torch"] / 2 ** 20 if "torch" in r.peak_bytes else None
        gpu = machine.get("gpu_peaks")
        if gpu and row.get("GFLOP/s"):  # GPU runs: against the tensor-core peak, not the CPU probe
            row["% TF32 peak"] = 100 * row["GFLOP/s"] / (1000 * gpu["tf32_tflops"])
        if gpu and row.get("GB/s"):
            row["% HBM"] = 100 * row["GB/s"] / gpu["hbm_gbs"]
        row["first call s"] = r.first_call_s.get(best) if best else None  # compile / autotune, not timed
        row["notes"] = "; ".join([f"{k} WRONG (rel err {v:.1e})" for k, v in r.wrong.items()] +
                                 [f"{k}: {v}" for k, v in r.errors.items()])
        out.append(row)
    return out


def table(results: List[Result], machine: dict) -> str:
    cols = ["case", "mode", "best", "best_time"] + [f"vs {b}" for b in BASELINE_ORDER] + \
        ["GFLOP/s", "% TF32 peak", "GB/s", "% HBM", "first call s", "peak MB", "torch peak MB"]
    data = rows(results, machine)
    present = [c for c in cols if any(d.get(c) is not None for d in data)]

    def cell(d, c):
        v = d.get(c)
        if c == "best_time":
            return _fmt_time(v)
        if c.startswith("vs "):
            return _fmt_ratio(v)
        if isinstance(v, float):
            return f"{v:.1f}"
        return "-" if v is None else str(v)
    widths = {c: max(len(c), *(len(cell(d, c)) for d in data)) if data else len(c) for c in present}
    lines = ["  ".join(c.ljust(widths[c]) for c in present), "  ".join("-" * widths[c] for c in present)]
    for d in data:
        lines.append("  ".join(cell(d, c).ljust(widths[c]) for c in present))
        if d["notes"]:
            lines.append("    note: " + d["notes"])
    return "\n".join(lines)


def to_json(results: List[Result], machine: dict, settings: dict) -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "machine": machine,
        "settings": settings,
        "conventions": {
            "ratio": "baseline median time / fastcnn median time (above 1: fastcnn faster)",
            "GFLOP/s": "nominal: 2*N*K*(C/groups)*R*S*P*Q per convolution, 2*M*N*K per matmul; training = 3x",
            "GB/s": "bytes read + bytes written by the op / median time",
            "peak MB": "how far the resident set rose during one call (VmHWM after a reset), MiB",
        },
        "results": [dataclasses.asdict(r) for r in results],
        "summary": rows(results, machine),
    }


def write_markdown(path: Path, results: List[Result], machine: dict, settings: dict) -> None:
    m = machine
    lines = [f"# fastcnn benchmark report", "",
             f"- date: {m.get('date')}; commit: {m.get('commit')}; device: {m.get('device')}",
             f"- CPU: {m.get('cpu')} ({m.get('cores')} cores), {m.get('threads')} threads, ISA in use: {m.get('isa')}",
             f"- measured peak: {m.get('peak_gflops')} GFLOP/s fp32 FMA; copy bandwidth {m.get('copy_gbs')} GB/s",
             *([f"- GPU datasheet peaks ({m['gpu_peaks']['matched']}, fastcnn/bench/gpu_peaks.py): TF32 "
                f"{m['gpu_peaks']['tf32_tflops']} / BF16 {m['gpu_peaks']['bf16_tflops']} TFLOP/s dense, "
                f"HBM {m['gpu_peaks']['hbm_gbs']} GB/s"] if m.get("gpu_peaks") else []),
             f"- torch {m.get('torch')}, triton {m.get('triton')}, python {m.get('python')}",
             f"- settings: {json.dumps(settings)}", "",
             "Ratio = baseline time / fastcnn time (above 1: fastcnn faster); median of alternated runs. "
             "GFLOP/s are nominal (2*N*K*(C/g)*R*S*P*Q per convolution; training counts 3x).", "",
             "```", table(results, machine), "```", ""]
    slow_first = [(r.case, r.mode, name, t) for r in results for name, t in r.first_call_s.items() if t > 0.5]
    if slow_first:  # kernel compilation at first use (Triton JIT, NVRTC), kept out of the timings above
        lines += ["First calls over 0.5 s (compilation / autotuning, not in the timings):", ""]
        lines += [f"- {case} {mode} {name}: {t:.1f} s" for case, mode, name, t in slow_first] + [""]
    lines += ["![speedup](speedup.png)", "", "![gflops](gflops.png)", ""]
    path.write_text("\n".join(lines))


def write_plots(out_dir: Path, results: List[Result], machine: dict) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    data = [d for d in rows(results, machine) if d.get("vs torch")]
    if data:
        fig, ax = plt.subplots(figsize=(10, max(3, 0.32 * len(data) + 1)))
        labels = [f"{d['case']} ({d['mode']})" for d in data]
        ratios = [d["vs torch"] for d in data]
        colors = ["tab:green" if r >= 1 else "tab:red" for r in ratios]
        ax.barh(range(len(data)), ratios, color=colors)
        ax.axvline(1.0, color="black", lw=1)
        ax.set_yticks(range(len(data)), labels, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("speedup over torch eager (torch time / fastcnn time, log scale)")
        ax.set_title(f"fastcnn vs torch eager — {machine.get('cpu')}, {machine.get('threads')} threads")
        ax.invert_yaxis()
        fig.tight_layout()
        p = out_dir / "speedup.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    flop_rows = [r for r in results if r.flops and r.timings]
    if flop_rows:
        fig, ax = plt.subplots(figsize=(10, max(3, 0.32 * len(flop_rows) + 1)))
        labels = [f"{r.case} ({r.mode})" for r in flop_rows]
        names = sorted({n for r in flop_rows for n in r.timings if n.startswith("fastcnn") or n == "torch"})
        height = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            vals = [r.gflops(name) if name not in r.wrong else None for r in flop_rows]
            ax.barh([k + i * height for k in range(len(flop_rows))], [v or 0 for v in vals], height=height,
                    label=name)
        if machine.get("peak_gflops"):
            ax.axvline(machine["peak_gflops"], color="black", ls="--", lw=1, label="measured FMA peak")
        ax.set_yticks([k + 0.4 for k in range(len(flop_rows))], labels, fontsize=7)
        ax.set_xlabel("GFLOP/s (nominal)")
        ax.legend(fontsize=7)
        ax.invert_yaxis()
        fig.tight_layout()
        p = out_dir / "gflops.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def finite_or_none(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None
