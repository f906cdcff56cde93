"""One training step of zoo networks (the networks suite's step, small size, batch 16) with 1 thread
(--threads N: N),
fastcnn against its torch twin, as the median over --rounds of each side and torch / fastcnn.

By default the sides alternate step by step and each step is timed by this thread's CPU time: on a
shared machine other processes' load inflates thread CPU time far less than the suite's 2-thread wall
time. `--consecutive` instead runs each side's steps back to back (as a user trains: a step reuses what
the previous step of the same library freed) and `--clock wall` times them by the wall clock (page
faults on a VM stall the vCPU beyond what thread CPU time counts); minor page faults per step are printed.

    flock /tmp/fastcnn-cpu.lock python bench/scripts/net_step_cpu.py segnet_basic,alexnet --rounds 15
    python bench/scripts/net_step_cpu.py srgan_discriminator --consecutive --clock wall --rounds 30

Env BENCH_CHECKOUT=/path/to/checkout imports that checkout's fastcnn (before/after runs)."""
import os
import sys
from pathlib import Path

sys.path.insert(0, os.environ.get("BENCH_CHECKOUT") or str(Path(__file__).resolve().parents[2]))

import argparse
import resource
import statistics
import time

import torch

from fastcnn import models
from fastcnn.bench.suites import NETWORK_BATCH, _network_call, _no_dropout


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("networks", help="comma-separated zoo names")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--consecutive", action="store_true", help="each side's steps back to back, not alternated")
    ap.add_argument("--clock", choices=("thread", "wall"), default="thread")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    clock = time.thread_time if a.clock == "thread" else time.perf_counter
    import fastcnn
    order = "consecutive" if a.consecutive else "alternated"
    print(f"fastcnn from {Path(fastcnn.__file__).parent.parent}, {a.threads} thread(s), {a.clock} clock, {order}, "
          f"median of {a.rounds}")
    for name in a.networks.split(","):
        torch.manual_seed(0)
        net = _no_dropout(models.get_model(name, size="small"))
        twin = _no_dropout(models.get_twin(name, size="small"))
        twin.load_state_dict(net.state_dict())
        x = net.example_input(NETWORK_BATCH)
        steps = {"fastcnn": _network_call(net, x, "train"), "torch": _network_call(twin, x, "train")}
        for step in steps.values():  # warm-up: first calls plan, pack and fault in their memory
            for _ in range(3):
                step()
        times = {side: [] for side in steps}
        faults = dict.fromkeys(steps, 0)

        def timed(side):
            f0, t0 = _faults(), clock()
            steps[side]()
            times[side].append(clock() - t0)
            faults[side] += _faults() - f0

        if a.consecutive:
            for side in steps:
                for _ in range(a.rounds):
                    timed(side)
        else:
            for _ in range(a.rounds):
                for side in steps:
                    timed(side)
        f, t = (statistics.median(times[s]) * 1e3 for s in ("fastcnn", "torch"))
        print(f"{name:28s} fastcnn {f:8.2f} ms ({faults['fastcnn'] / a.rounds:6.0f} faults)  "
              f"torch {t:8.2f} ms ({faults['torch'] / a.rounds:6.0f} faults)  {t / f:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
