"""How much faster a recipe's training step runs on fastcnn than on its torch twin (shared by the
experiments' speed column)."""
from __future__ import annotations

from typing import Dict, Optional

import torch


def step_times(name: str, seed: int, steps: int = 10, warmup: int = 2, rounds: int = 3,
               reference_dir: Optional[str] = None) -> Dict[str, float]:
    """Seconds per training step of the recipe `name` on fastcnn and on its eager torch twin
    ({"fastcnn": s, "torch": s}), each on one batch of the recipe (same seed, weights and batch; after
    `warmup` steps). The short form of `fastcnn train NAME --compare` (which also trains a torch.compile
    twin, minutes per network here). `reference_dir`: where recipes that build on another run (srgan,
    vae, dcgan) find it (trained there first if missing).

    The two libraries are timed in `rounds` alternating rounds of `steps` steps and each keeps its
    fastest round, so a burst of load from other processes during one round does not decide the ratio."""
    import time

    from torch.utils.data import default_collate

    from ..models import FAST, TORCH
    from ..train.recipes import RECIPES
    from ..train.task import Settings

    if steps < 1 or rounds < 1:
        raise ValueError(f"steps and rounds must be positive, got steps={steps}, rounds={rounds}")
    runs = {}
    with torch.random.fork_rng(devices=[]):
        for lib in (FAST, TORCH):
            torch.manual_seed(seed)
            task = RECIPES[name](Settings(seed=seed, lib=lib, reference_dir=reference_dir))
            batch = task.to_device(default_collate([task.train_set[i] for i in range(task.batch_size)]))
            task.train_mode(True)
            for s in range(warmup):
                task.step(batch, s)
            runs[lib.name] = (task, batch)
        seconds = {lib: float("inf") for lib in runs}
        done = {lib: warmup for lib in runs}
        for _ in range(rounds):
            for lib, (task, batch) in runs.items():
                t0 = time.perf_counter()
                for _ in range(steps):
                    task.step(batch, done[lib])
                    done[lib] += 1
                seconds[lib] = min(seconds[lib], (time.perf_counter() - t0) / steps)
    return seconds


def step_speedup(name: str, seed: int, steps: int = 10, warmup: int = 2, rounds: int = 3) -> float:
    """The torch twin's (eager) training-step time over fastcnn's (step_times): above 1, fastcnn is faster."""
    seconds = step_times(name, seed, steps, warmup, rounds)
    return seconds["torch"] / seconds["fastcnn"]
