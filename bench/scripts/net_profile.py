"""One training step of zoo networks, fastcnn against its torch twin, op by op (docs/performance.md,
"2026-12-05, outside the convolutions"): the bench's step (fastcnn/bench/suites.py _network_call),
wall time per step, minor page faults per step, and torch.profiler's self CPU time per op per step.

    flock /tmp/fastcnn-cpu.lock python bench/scripts/net_profile.py dcgan_generator,segnet_basic \
        --threads 2 --steps 3 --top 14

Run one network per process where a figure matters: after a profiler session, later networks in the
same process were seen to run slower on both sides (vae: aten::exp 6.4 ms per step).
"""
from __future__ import annotations

import argparse
import collections
import resource
import time

import torch

from fastcnn import models
from fastcnn.bench.suites import _network_call, _no_dropout


def _step_figures(step, seconds):
    for _ in range(3):
        step()
    n, faults0, t0 = 0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return (time.perf_counter() - t0) / n * 1e3, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / n


def _self_times(step, steps):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    table = collections.defaultdict(lambda: [0.0, 0.0])
    for e in prof.key_averages():
        table[e.key][0] += e.self_cpu_time_total / steps
        table[e.key][1] += e.count / steps
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("networks", help="comma-separated zoo names")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="profiled steps (averaged)")
    ap.add_argument("--top", type=int, default=14, help="ops listed per side")
    ap.add_argument("--seconds", type=float, default=0.4, help="timing loop per side")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--cl", action="store_true", help="torch side in channels_last (twin and input)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.networks.split(","):
        torch.manual_seed(0)
        net = _no_dropout(models.get_model(name, size="small"))
        twin = _no_dropout(models.get_twin(name, size="small"))
        twin.load_state_dict(net.state_dict())
        x = net.example_input(args.batch)
        fmt = torch.channels_last if args.cl else torch.contiguous_format
        twin = twin.to(memory_format=fmt)
        sides = {}
        for side, model in (("fastcnn", net), ("torch", twin)):
            step = _network_call(model, x.contiguous(memory_format=fmt) if side == "torch" else x, "train")
            sides[side] = (*_step_figures(step, args.seconds), _self_times(step, args.steps))
        sides["torch" + "_cl" * args.cl] = sides.pop("torch")
        (fm, ff, _), (tm, tf, _) = sides.values()
        print(f"=== {name} ({args.threads} threads): fastcnn {fm:.3f} ms ({ff:.0f} faults/step), "
              f"torch {tm:.3f} ms ({tf:.0f} faults/step), ratio {tm / fm:.2f}x")
        for side, (_, _, table) in sides.items():
            print(f"  -- {side}: self CPU us per step, calls per step")
            for key, (us, calls) in sorted(table.items(), key=lambda kv: -kv[1][0])[:args.top]:
                print(f"     {us:9.1f}  {calls:5.1f}  {key[:70]}")


if __name__ == "__main__":
    main()
