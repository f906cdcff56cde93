"""What a run leaves in its folder: metrics.json, report.md and the PNG plots."""
from __future__ import annotations

import json
import os
import subprocess


def commit() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def metrics(task, result, run: dict, wall_seconds: float) -> dict:
    return {
        "network": task.name, "size": run["size"], "metric_name": task.metric_name, "metric": result.metric,
        "target": task.target, "target_text": task.target_text, "higher_is_better": task.higher_is_better,
        "reached": task.reached(result.metric), "steps": result.steps, "seconds": round(result.seconds, 3),
        "wall_seconds": round(wall_seconds, 3),
        "samples_per_s": round(result.samples / result.seconds, 2) if result.seconds > 0 else None,
        "steps_per_s": round((len(result.history) and result.samples / task.batch_size) / result.seconds, 3)
        if result.seconds > 0 else None,
        "time_to_target": None if result.time_to_target is None else round(result.time_to_target, 3),
        "steps_to_target": result.steps_to_target, "evaluations": [list(e) for e in result.evals],
        "backend": run["backend"], "threads": run["threads"], "seed": run["seed"], "batch_size": task.batch_size,
        "world_size": run["world_size"], "commit": commit(), "details": task.details,
    }


def write_metrics(out_dir: str, m: dict) -> None:
    path = os.path.join(out_dir, "metrics.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(m, f, indent=2, default=float)
    os.replace(tmp, path)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def write_report(out_dir: str, m: dict, images, command: str, compare=None) -> None:
    lines = [f"# fastcnn train {m['network']} ({m['size']})", "",
             f"Command: `{command}`", "",
             "| figure | value |", "|---|---|",
             f"| {m['metric_name']} | {_fmt(m['metric'])} |",
             f"| target | {_fmt(m['target'])} ({m['target_text']}) |",
             f"| reached | {m['reached']} |",
             f"| steps | {m['steps']} (batch {m['batch_size']}, {m['world_size']} process(es)) |",
             f"| training time | {_fmt(m['seconds'])} s (wall {_fmt(m['wall_seconds'])} s) |",
             f"| samples/s | {_fmt(m['samples_per_s'])} |",
             f"| time to target | {_fmt(m['time_to_target'])} s (step {_fmt(m['steps_to_target'])}) |",
             f"| backend / threads | {m['backend']} / {m['threads']} |",
             f"| commit | {m['commit']} |", ""]
    if m.get("details"):
        lines += ["Details:", ""] + [f"- {k}: {_fmt(v)}" for k, v in m["details"].items()] + [""]
    if compare:
        lines += ["## fastcnn vs torch (same recipe, seed, data, threads)", "",
                  "| implementation | metric | time to target (s) | steps/s | training s |", "|---|---|---|---|---|"]
        for row in compare:
            lines.append(f"| {row['impl']} | {_fmt(row.get('metric'))} | {_fmt(row.get('time_to_target'))} | "
                         f"{_fmt(row.get('steps_per_s'))} | {_fmt(row.get('seconds'))} |"
                         + (f" {row['note']}" if row.get("note") else ""))
        lines.append("")
    lines += [f"![{name}]({name})" for name in images]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
