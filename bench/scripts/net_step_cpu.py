"""One training step of zoo networks (the networks suite's step, small size, batch 16) timed by this
thread's CPU time with 1 thread, fastcnn against its torch twin alternated step by step: on a shared
machine other processes' load inflates thread CPU time far less than the suite's 2-thread wall time.
Prints the median over --rounds of each side and torch / fastcnn.

    flock /tmp/fastcnn-cpu.lock python bench/scripts/net_step_cpu.py segnet_basic,alexnet --rounds 15

Env BENCH_CHECKOUT=/path/to/checkout imports that checkout's fastcnn (before/after runs)."""
import os
import sys
from pathlib import Path

sys.path.insert(0, os.environ.get("BENCH_CHECKOUT") or str(Path(__file__).resolve().parents[2]))

import argparse
import statistics
import time

import torch

from fastcnn import models
from fastcnn.bench.suites import NETWORK_BATCH, _network_call, _no_dropout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("networks", help="comma-separated zoo names")
    ap.add_argument("--rounds", type=int, default=15)
    a = ap.parse_args()
    torch.set_num_threads(1)
    import fastcnn
    print(f"fastcnn from {Path(fastcnn.__file__).parent.parent}, 1 thread, thread CPU time, median of {a.rounds}")
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
        for _ in range(a.rounds):
            for side, step in steps.items():
                t0 = time.thread_time()
                step()
                times[side].append(time.thread_time() - t0)
        f, t = (statistics.median(times[s]) * 1e3 for s in ("fastcnn", "torch"))
        print(f"{name:28s} fastcnn {f:8.2f} ms  torch {t:8.2f} ms  {t / f:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
