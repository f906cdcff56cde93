"""The training loop: batches in a seed-determined order, one task.step per batch, checkpoints,
evaluations, a progress bar. Resuming restores everything the next step depends on (weights,
optimizer and scheduler state, RNG state; the data order is a function of seed and step)."""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import List, Optional

import torch
from torch.utils.data import DataLoader, DistributedSampler

from . import checkpoint
from .distributed import World


@dataclass
class LoopConfig:
    steps: int
    out_dir: str
    checkpoint_every: int = 100
    eval_every: int = 0                 # 0: ten evaluations per run
    resume: bool = False
    progress: bool = True
    stop_after: Optional[int] = None    # leave after this many steps of this process (as if killed)
    stop_at_target: bool = False        # time-to-accuracy runs may end once the target is met


@dataclass
class LoopResult:
    steps: int = 0
    seconds: float = 0.0                # training time only (no evaluation, no checkpoint writes)
    samples: int = 0
    metric: Optional[float] = None
    history: List[float] = field(default_factory=list)
    evals: List[tuple] = field(default_factory=list)   # (step, training seconds so far, metric)
    time_to_target: Optional[float] = None
    steps_to_target: Optional[int] = None
    stopped_early: bool = False


def saved_progress(res: LoopResult) -> dict:
    """What a checkpoint keeps of the run so far, so that --resume reports totals over both parts."""
    return {"seconds": res.seconds, "samples": res.samples, "evals": [list(e) for e in res.evals],
            "time_to_target": res.time_to_target, "steps_to_target": res.steps_to_target}


def restore_progress(res: LoopResult, saved: dict) -> None:
    res.seconds, res.samples = float(saved.get("seconds", 0.0)), int(saved.get("samples", 0))
    res.evals = [tuple(e) for e in saved.get("evals", [])]
    res.time_to_target, res.steps_to_target = saved.get("time_to_target"), saved.get("steps_to_target")


def checkpoint_path(out_dir: str) -> str:
    return os.path.join(out_dir, "checkpoint.pt")


def epoch_batches(n: int, global_batch: int, seed: int, epoch: int, world: World):
    """This process's index batches for `epoch` (DistributedSampler order; the last partial batch dropped)."""
    if global_batch % world.size:
        raise ValueError(f"batch_size: {global_batch} does not split evenly over {world.size} processes")
    local = global_batch // world.size
    sampler = DistributedSampler(range(n), num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    return [idx[i:i + local] for i in range(0, len(idx) - local + 1, local)]


def evaluate(task) -> float:
    """task.evaluate() in eval mode, without touching the training RNG stream."""
    task.train_mode(False)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        value = task.evaluate()
    task.train_mode(True)
    return float(value)


def run(task, cfg: LoopConfig, run_info: dict, world: World = World()) -> LoopResult:
    from tqdm import tqdm

    res = LoopResult()
    ckpt = checkpoint_path(cfg.out_dir)
    start = 0
    if cfg.resume and os.path.exists(ckpt):
        payload = checkpoint.load(ckpt, run_info)
        checkpoint.restore(task, payload, ckpt)
        start, res.history = payload["step"], list(payload["history"])
        restore_progress(res, payload.get("progress", {}))
    elif cfg.resume and world.main:
        print(f"fastcnn train: no checkpoint at {ckpt}; starting from step 0")
    n = len(task.train_set)
    per_epoch = n // task.batch_size
    if per_epoch == 0:
        raise ValueError(f"batch_size: {task.batch_size} is larger than the training set ({n} samples)")
    eval_every = cfg.eval_every or max(1, cfg.steps // 10)
    bar = tqdm(total=cfg.steps, initial=start, desc=task.name, disable=not (cfg.progress and world.main),
               dynamic_ncols=True, leave=True)
    task.train_mode(True)
    step, done_here, last_metric = start, 0, None

    def save():   # the current step's state, with the clocks so far
        checkpoint.save_atomic(checkpoint.task_state(task, step, res.history, run_info, saved_progress(res)), ckpt)

    while step < cfg.steps:
        epoch, first = divmod(step, per_epoch)
        plan = epoch_batches(n, task.batch_size, task.s.seed, epoch, world)[first:]
        # Its own generator: a DataLoader iterator otherwise draws its base seed from the global RNG,
        # and a resumed run (one more iterator) would then see other dropout masks than the whole run.
        loader = DataLoader(task.train_set, batch_sampler=plan, num_workers=0,
                            generator=torch.Generator().manual_seed(task.s.seed + epoch))
        for batch in loader:
            t0 = time.perf_counter()
            logs = task.step(task.to_device(batch), step)
            if task.s.device.startswith("cuda"):
                torch.cuda.synchronize()
            res.seconds += time.perf_counter() - t0
            res.samples += task.batch_size
            step += 1
            done_here += 1
            res.history.append(float(logs["loss"]))
            if world.main and (step % eval_every == 0 or step == cfg.steps):
                last_metric = evaluate(task)
                res.evals.append((step, res.seconds, last_metric))
                if res.time_to_target is None and task.reached(last_metric):
                    res.time_to_target, res.steps_to_target = res.seconds, step
            bar.update(1)
            bar.set_postfix(loss=f"{res.history[-1]:.4g}", **{task.metric_name: "-" if last_metric is None
                                                                  else f"{last_metric:.4g}"},
                            samples_s=f"{res.samples / max(res.seconds, 1e-9):.0f}", refresh=False)
            if world.main and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                save()
            if cfg.stop_after is not None and done_here >= cfg.stop_after:
                res.stopped_early = True
                break
            if cfg.stop_at_target and res.time_to_target is not None:
                res.stopped_early = True
                break
            if step >= cfg.steps:
                break
        if res.stopped_early:
            break
    bar.close()
    res.steps = step
    if res.stopped_early and world.main:
        save()
    if world.main:
        res.metric = last_metric if (res.evals and res.evals[-1][0] == step) else evaluate(task)
        if res.time_to_target is None and task.reached(res.metric):
            res.time_to_target, res.steps_to_target = res.seconds, step
    if not math.isfinite(res.history[-1] if res.history else 0.0):
        raise FloatingPointError(f"{task.name}: the loss became {res.history[-1]} at step {step}")
    return res
