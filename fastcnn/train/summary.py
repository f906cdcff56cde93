"""`python -m fastcnn.train.summary DIR...`: one Markdown row per run folder (its metrics.json), with the
--compare figures where the run has them: the table in docs/training.md and the README."""
from __future__ import annotations

import json
import os
import sys


def _f(v, digits=3):
    if v is None:
        return "-"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def rows(folders):
    out = ["| network | metric | reached | target | steps | training s | fastcnn time to target (s) | "
           "torch eager (s) | torch.compile (s) | ratio eager/fastcnn |", "|---" * 10 + "|"]
    for folder in folders:
        path = os.path.join(folder, "metrics.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            m = json.load(f)
        cmp = {r["impl"]: r for r in m.get("compare") or []}
        eager, comp = cmp.get("torch eager", {}), cmp.get("torch.compile", {})
        ratio = eager.get("fastcnn_speedup_to_target")
        out.append(f"| {m['network']} | {m['metric_name']} {_f(m['metric'], 4)} | {'yes' if m['reached'] else 'NO'} | "
                   f"{_f(m['target'], 4)} | {m['steps']} | {_f(m['seconds'])} | {_f(m.get('time_to_target'))} | "
                   f"{_f(eager.get('time_to_target'))} | {_f(comp.get('time_to_target'))} | {_f(ratio)} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(rows(sys.argv[1:]))
