"""Trained networks that another recipe measures with (the VAE's and DCGAN's samples are judged by
the project's own LeNet; the DCGAN is compared with the VAE): loaded from REFERENCE_DIR/<name>/ if
a finished run is there, else trained there first with that network's own recipe."""
from __future__ import annotations

import json
import os
from dataclasses import replace

import torch

from . import checkpoint, loop


def trained(name: str, settings, any_steps: bool = False):
    """The Task of network `name` with trained weights (fastcnn layers, small size, settings.seed);
    task.steps_done says how many steps it had. any_steps: a finished run shorter than the recipe's
    default (e.g. one sized to this machine, or a quick smoke run) is used as it is."""
    from ..models import FAST
    from .recipes import RECIPES

    folder = os.path.join(settings.reference_dir or "runs", name)
    ref_settings = replace(settings, lib=FAST, size="small", batch_size=None, steps=None, dropout=None, options={})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        task = RECIPES[name](ref_settings)
        run = {"network": name, "size": "small", "seed": settings.seed, "batch_size": task.batch_size,
               "world_size": 1, "options": {}}
        ckpt = loop.checkpoint_path(folder)
        done = os.path.exists(os.path.join(folder, "metrics.json")) and os.path.exists(ckpt)
        if done:   # any finished run of that network, size and seed will do (e.g. one from the CLI)
            payload = checkpoint.load(ckpt, {k: run[k] for k in ("network", "size", "seed")})
            if any_steps or payload["step"] >= task.steps:
                checkpoint.restore(task, payload, ckpt)
                task.steps_done = payload["step"]
                task.train_mode(False)
                return task
        os.makedirs(folder, exist_ok=True)
        print(f"fastcnn train: training the reference {name} in {folder} first")
        with torch.enable_grad():   # asked for from inside an evaluation (no_grad) of the run that needs it
            res = loop.run(task, loop.LoopConfig(steps=task.steps, out_dir=folder, resume=True), run)
        from . import report
        report.write_metrics(folder, report.metrics(task, res, dict(run, backend="cpu", threads=torch.get_num_threads()),
                                                    res.seconds))
    task.steps_done = res.steps
    task.train_mode(False)
    return task
