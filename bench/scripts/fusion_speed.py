"""Speed of layer fusion on zoo networks (small size), in one process, alternating (so both sides see
the same load), median of runs: eval forward of the unfused model (get_model(fuse=False)) against
fastcnn.nn.optimize_for_inference(it), and a training step (forward + backward) of the unfused model
against the zoo's fused build (get_model(): fuse_activations, llnet's own fused layers).
Usage: python bench/scripts/fusion_speed.py [network ...] [--batch 16] [--reps 15] [--threads 1 (thread CPU time)]
       [--train-only]"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout this script lives in

import argparse
import statistics
import time

import torch

import fastcnn
from fastcnn import models


CLOCK = time.perf_counter


def _median_ms(fns, reps):
    times = {k: [] for k in fns}
    for f in fns.values():
        f()  # warm-up
    for _ in range(reps):
        for k, f in fns.items():
            t0 = CLOCK()
            f()
            times[k].append(CLOCK() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("networks", nargs="*", default=["alexnet", "segnet_basic", "dcgan_discriminator"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-only", action="store_true", help="only the training step")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    global CLOCK
    if a.threads == 1:  # this thread's CPU time: ignores other processes' load on a shared machine
        CLOCK = time.thread_time
    from fastcnn import _C
    print(f"ISA {_C.isa()}, {a.threads} threads, batch {a.batch}, median of {a.reps}")
    for name in a.networks:
        torch.manual_seed(0)
        model = models.get_model(name, size="small", fuse=False)
        zoo = models.get_model(name, size="small")
        zoo.load_state_dict(model.state_dict())
        x = model.example_input(a.batch)
        if not a.train_only:
            _eval(name, model, x, a.reps)
        train, train_fused = model.train(), zoo.train()

        def step(m):
            def run():
                out = m(x)
                first = next(iter(out.values())) if isinstance(out, dict) else out[0] if isinstance(out, tuple) else out
                first.float().square().mean().backward()
            return run
        t = _median_ms({"train": step(train), "fused": step(train_fused)}, a.reps)
        print(f"{name:22s} training step  unfused {t['train']:8.2f} ms  fused (get_model) {t['fused']:8.2f} ms"
              f"  x{t['train'] / t['fused']:.2f}  ({_fused_count(train_fused)} fused layers)", flush=True)


def _fused_count(model):
    from fastcnn.nn._base import Epilogue  # Conv2d, Linear, BatchNorm1d/2d

    return sum(isinstance(m, Epilogue) and m.activation is not None for m in model.modules())


def _eval(name, model, x, reps):
    plain, fused = model.eval(), fastcnn.nn.optimize_for_inference(model)

    def infer(m):
        def run():
            with torch.no_grad():
                m(x)
        return run
    t = _median_ms({"eval": infer(plain), "optimized": infer(fused)}, reps)
    print(f"{name:22s} eval forward   unfused {t['eval']:8.2f} ms  optimize_for_inference {t['optimized']:8.2f} ms"
          f"  x{t['eval'] / t['optimized']:.2f}  ({len(fused.fused_layers)} fusions)")


if __name__ == "__main__":
    main()
