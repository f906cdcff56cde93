"""Timing: warm-up, then every contender of a case called in turn in the same process (so drift and
noise hit all alike), median of the repeats with min and max; ratio = baseline time / fastcnn time
(above 1: fastcnn faster). After timing, each fastcnn result is checked again against the baseline's,
so a fast wrong kernel scores nothing."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch


@dataclass
class Timing:
    median: float
    min: float
    max: float
    runs: int


@dataclass
class Result:
    suite: str
    case: str
    mode: str  # "forward" or "train" (forward + backward)
    flops: float
    bytes: float
    timings: Dict[str, Timing] = field(default_factory=dict)  # contender -> timing
    fastcnn: List[str] = field(default_factory=list)  # which contenders are fastcnn's
    baselines: List[str] = field(default_factory=list)
    errors: Dict[str, str] = field(default_factory=dict)  # contender -> why it has no timing
    wrong: Dict[str, float] = field(default_factory=dict)  # fastcnn contender -> relative error found
    # contender -> seconds of its first call (kernel compilation: Triton JIT, NVRTC; cuDNN's algorithm
    # search), reported apart and never part of the timings
    first_call_s: Dict[str, float] = field(default_factory=dict)
    # contender -> bytes the resident set rose by during one call (fastcnn/bench/memory.py), for the
    # cases that ask for it (whole networks)
    peak_bytes: Dict[str, int] = field(default_factory=dict)

    def ratio(self, fast: str, baseline: str) -> Optional[float]:
        """baseline time / fastcnn time, None where either is missing or fastcnn's result was wrong."""
        if fast in self.wrong or fast not in self.timings or baseline not in self.timings:
            return None
        return self.timings[baseline].median / self.timings[fast].median

    def best_fastcnn(self) -> Optional[str]:
        ok = [f for f in self.fastcnn if f in self.timings and f not in self.wrong]
        return min(ok, key=lambda f: self.timings[f].median) if ok else None

    def gflops(self, contender: str) -> Optional[float]:
        t = self.timings.get(contender)
        return self.flops / t.median / 1e9 if t and self.flops else None

    def gbs(self, contender: str) -> Optional[float]:
        t = self.timings.get(contender)
        return self.bytes / t.median / 1e9 if t and self.bytes else None


def _flatten(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return []


def relative_error(actual, expected) -> float:
    """max |a - e| / max |e| over all tensors of a result (inf on a shape mismatch)."""
    a_list, e_list = _flatten(actual), _flatten(expected)
    if len(a_list) != len(e_list):
        return float("inf")
    worst = 0.0
    for a, e in zip(a_list, e_list):
        if a.shape != e.shape:
            return float("inf")
        if e.numel() == 0:
            continue
        a64, e64 = a.detach().double().cpu(), e.detach().double().cpu()
        if not torch.isfinite(a64).all() and not torch.equal(torch.isfinite(a64), torch.isfinite(e64)):
            return float("inf")
        scale = e64[torch.isfinite(e64)].abs().max().item() if torch.isfinite(e64).any() else 1.0
        diff = (a64 - e64)[torch.isfinite(e64)].abs().max().item() if torch.isfinite(e64).any() else 0.0
        worst = max(worst, diff / (scale + 1e-30))
    return worst


class _Clock:
    """perf_counter on the CPU; CUDA events on the current stream when a GPU is present (so GPU
    time is measured, not launch time)."""

    def __init__(self):
        self.cuda = torch.cuda.is_available()

    def wall(self, fn) -> float:
        """Wall-clock seconds of one call until the GPU has finished it (compilation included)."""
        if self.cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    def time(self, fn) -> float:
        if not self.cuda:
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


def time_contenders(contenders: Dict[str, Callable], *, budget_s: float = 1.0, min_runs: int = 3,
                    max_runs: int = 50, warmup: int = 1) -> Dict[str, Timing]:
    """Times each callable: warm-up calls, then rounds in which every contender runs once in turn.
    The number of rounds fits the budget from the slowest contender's warm-up time."""
    clock = _Clock()
    slowest = 0.0
    for fn in contenders.values():
        for _ in range(warmup):
            slowest = max(slowest, clock.time(fn))
    rounds = int(max(min_runs, min(max_runs, budget_s / max(slowest * len(contenders), 1e-6))))
    samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(clock.time(fn))
    return {name: Timing(statistics.median(s), min(s), max(s), len(s)) for name, s in samples.items()}


def run_case(suite: str, case: str, mode: str, fastcnn: Dict[str, Callable], baselines: Dict[str, Callable], *,
             reference: str, flops: float = 0.0, nbytes: float = 0.0, rtol: float = 1e-4,
             budget_s: float = 1.0, measure_memory: bool = False) -> Result:
    """Times the fastcnn contenders against the baselines, then re-checks every fastcnn result
    against the `reference` baseline's result (relative error above rtol marks it wrong), then,
    with measure_memory, each contender's peak memory of one more call."""
    result = Result(suite, case, mode, flops, nbytes, fastcnn=list(fastcnn), baselines=list(baselines))
    runnable = {}
    clock = _Clock()
    for name, fn in {**fastcnn, **baselines}.items():
        try:
            result.first_call_s[name] = clock.wall(fn)  # compile / autotune happens here, not in the timings
            runnable[name] = fn
        except Exception as e:  # a contender that cannot run this case is reported, not fatal
            result.errors[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
    result.timings = time_contenders(runnable, budget_s=budget_s) if runnable else {}
    if reference in runnable:
        expected = runnable[reference]()
        for name in fastcnn:
            if name in runnable:
                err = relative_error(runnable[name](), expected)
                if not err <= rtol:
                    result.wrong[name] = err
    if measure_memory:
        from .memory import peak_bytes

        for name, fn in runnable.items():
            peak = peak_bytes(fn)
            if peak is not None:
                result.peak_bytes[name] = peak
    return result
