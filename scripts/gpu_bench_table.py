"""Markdown table of a `fastcnn bench` run on a GPU, in the shape of issue 15's first table, for the
README: `python scripts/gpu_bench_table.py OUT/bench/results.json > OUT/README-table.md`.

Per case and mode: the fastest fastcnn contender, its median time, torch's, the ratio (torch /
fastcnn), its first call (compilation / autotuning, kept out of the timings), TFLOP/s against the GPU's
dense TF32 peak and GB/s against its HBM bandwidth (datasheet table: fastcnn/bench/gpu_peaks.py)."""
from __future__ import annotations

import json
import sys


def _ms(v):
    return "-" if v is None else f"{1e3 * v:.3f} ms"


def _num(v, fmt="{:.1f}"):
    return "-" if v is None else fmt.format(v)


def table(data: dict) -> str:
    m = data["machine"]
    peaks = m.get("gpu_peaks")
    head = [f"{m.get('device')} (torch {m.get('torch')}, triton {m.get('triton')}, commit {m.get('commit')}, "
            f"{m.get('date')}); fp32 inputs, TF32 as torch's flags say; median of alternated runs.",
            f"Peaks ({'fastcnn/bench/gpu_peaks.py: ' + peaks['matched'] if peaks else 'GPU not in the peak table'}): "
            + (f"TF32 {peaks['tf32_tflops']} / BF16 {peaks['bf16_tflops']} TFLOP/s dense, HBM {peaks['hbm_gbs']} GB/s"
               if peaks else "-"), "",
            "| case | mode | fastcnn (fastest) | fastcnn | torch | ratio | first call | TFLOP/s (% TF32 peak) | GB/s (% HBM) |",
            "|---|---|---|---|---|---|---|---|---|"]
    lines = []
    for row, res in zip(data["summary"], data["results"]):
        torch_t = res.get("timings", {}).get("torch", {}) or {}
        tflops = row.get("GFLOP/s") / 1000 if row.get("GFLOP/s") else None
        flops_cell = "-" if tflops is None else f"{tflops:.2f} ({_num(row.get('% TF32 peak'))}%)"
        gbs_cell = "-" if row.get("GB/s") is None else f"{row['GB/s']:.0f} ({_num(row.get('% HBM'))}%)"
        first = row.get("first call s")
        lines.append(f"| {row['case']} | {row['mode']} | {row.get('best') or '-'} | {_ms(row.get('best_time'))} | "
                     f"{_ms(torch_t.get('median'))} | {_num(row.get('vs torch'), '{:.2f}x')} | "
                     f"{'-' if first is None else f'{first:.2f} s'} | {flops_cell} | {gbs_cell} |"
                     + (f" {row['notes']}" if row.get("notes") else ""))
    left = data.get("settings", {}).get("left_out") or []
    tail = [f"", f"Not run (time budget): {', '.join(left)}"] if left else []
    return "\n".join(head + lines + tail) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table(json.loads(open(sys.argv[1]).read())))
