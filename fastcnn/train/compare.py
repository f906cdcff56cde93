"""--compare: the same recipe (seed, data order, threads, steps) on the network's torch twin, eager and
under torch.compile; time to the target metric and steps/s for each, DAWNBench style (training time
only: evaluations and checkpoint writes are not counted)."""
from __future__ import annotations

import os
from dataclasses import replace

import torch

from . import loop


def _row(impl: str, res, batch_size: int, note: str = "") -> dict:
    steps_done = len(res.history) if res.history else res.steps
    return {"impl": impl, "metric": res.metric, "time_to_target": res.time_to_target,
            "steps_to_target": res.steps_to_target, "seconds": round(res.seconds, 3),
            "steps_per_s": round(res.samples / batch_size / res.seconds, 3) if res.seconds > 0 else None,
            "steps": steps_done, "note": note}


def _twin_run(recipe, settings, cfg, out_dir, compile_twin: bool):
    from ..models import TORCH

    torch.manual_seed(settings.seed)
    task = recipe(replace(settings, lib=TORCH))
    if compile_twin:
        for k, net in task.nets.items():
            if any(p.requires_grad for p in net.parameters()):
                task.fwd[k] = torch.compile(net)
    os.makedirs(out_dir, exist_ok=True)
    twin_cfg = replace(cfg, out_dir=out_dir, resume=False, stop_after=None, checkpoint_every=10 ** 9)
    run = {"network": task.name, "twin": "compiled" if compile_twin else "eager"}
    return task, loop.run(task, twin_cfg, run)


def compare_runs(recipe, settings, cfg, fast_result, threads) -> list:
    rows = [_row("fastcnn", fast_result, settings.batch_size or recipe.batch_size)]
    for impl, compiled in (("torch eager", False), ("torch.compile", True)):
        out = os.path.join(cfg.out_dir, "compare-" + impl.replace(" ", "-").replace(".", "-"))
        try:
            task, res = _twin_run(recipe, settings, cfg, out, compiled)
            rows.append(_row(impl, res, task.batch_size))
        except Exception as e:  # torch.compile needs a C++ toolchain; report why it did not run
            if not compiled:
                raise
            rows.append({"impl": impl, "note": f"did not run: {type(e).__name__}: {str(e).splitlines()[0][:200]}"})
    fast = rows[0].get("time_to_target")
    for row in rows[1:]:
        t = row.get("time_to_target")
        row["fastcnn_speedup_to_target"] = round(t / fast, 3) if t and fast else None
    return rows
