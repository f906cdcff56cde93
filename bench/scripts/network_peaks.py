"""Peak memory of one training step (or forward) of zoo networks, fastcnn against its torch twin,
repeated and alternated (issue #18): the networks suite's "peak MB" is one reading of each, and
with glibc's dynamic mmap threshold that reading varies by +-15% from call to call.

    .venv/bin/python bench/scripts/network_peaks.py dcgan_generator pspnet pidnet_s [--reps 5] [--forward]

For readings that repeat to +-0.2 MB, fix the threshold: MALLOC_MMAP_THRESHOLD_=131072 (glibc then
maps every block >= 128 KiB on its own and unmaps it on free, instead of raising the threshold after
each large free and serving later blocks from the heap, whose freed pages stay resident).
FASTCNN_OUTPUT_CACHE_MB=0 turns off the cpu output pool (csrc/torchops/output_pool.h).
"""
import sys
from pathlib import Path

# Run as a script, Python puts bench/scripts/ on the path, not the checkout: import the fastcnn of
# the checkout this script lives in.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse

import torch

from fastcnn import models
from fastcnn.bench import suites
from fastcnn.bench.memory import peak_bytes


def calls(name, batch, forward):
    torch.manual_seed(0)
    net = suites._no_dropout(models.get_model(name, size="small"))
    twin = suites._no_dropout(models.get_twin(name, size="small"))
    twin.load_state_dict(net.state_dict())
    x = net.example_input(batch)
    if forward:  # with the graph: what the backward will need, plus the forward's temporaries
        return {m: (lambda model=model: suites._network_loss(model.train()(x))) for m, model in
                (("fastcnn", net), ("torch", twin))}
    return {"fastcnn": suites._network_call(net, x, "train"), "torch": suites._network_call(twin, x, "train")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("networks", nargs="+")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=suites.NETWORK_BATCH)
    ap.add_argument("--forward", action="store_true", help="the forward (with its graph) instead of a training step")
    args = ap.parse_args()
    for name in args.networks:
        fns = calls(name, args.batch, args.forward)
        for _ in range(3):  # warm: plans, workspaces, caches
            for fn in fns.values():
                fn()
        peaks = {k: [] for k in fns}
        for _ in range(args.reps):  # alternated
            for k, fn in fns.items():
                peaks[k].append(peak_bytes(fn) / 2 ** 20)
        for k, v in peaks.items():
            print(f"{name:20s} {k:8s} peak MB " + " ".join(f"{p:6.1f}" for p in v) + f"   median {sorted(v)[len(v) // 2]:.1f}")


if __name__ == "__main__":
    main()
