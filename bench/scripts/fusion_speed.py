"""Speed of layer fusion on zoo networks (small size): eval forward of model.eval() against
fastcnn.nn.optimize_for_inference(model), and a training step (forward + backward) of the model
against fastcnn.nn.fuse_conv_activations(model); alternating, median of runs, 2 threads.
Usage: python bench/scripts/fusion_speed.py [network ...] [--batch 16] [--reps 15] [--threads 1 (thread CPU time)]"""
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
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    global CLOCK
    if a.threads == 1:  # this thread's CPU time: ignores other processes' load on a shared machine
        CLOCK = time.thread_time
    from fastcnn import _C
    print(f"ISA {_C.isa()}, {a.threads} threads, batch {a.batch}, median of {a.reps}")
    for name in a.networks:
        torch.manual_seed(0)
        model = models.get_model(name, size="small")
        x = model.example_input(a.batch)
        plain, fused = model.eval(), fastcnn.nn.optimize_for_inference(model)

        def infer(m):
            def run():
                with torch.no_grad():
                    m(x)
            return run
        t = _median_ms({"eval": infer(plain), "optimized": infer(fused)}, a.reps)
        print(f"{name:22s} eval forward   unfused {t['eval']:8.2f} ms  optimize_for_inference {t['optimized']:8.2f} ms"
              f"  x{t['eval'] / t['optimized']:.2f}  ({len(fused.fused_layers)} fusions)")
        train, train_fused = model.train(), fastcnn.nn.fuse_conv_activations(model.train())

        def step(m):
            def run():
                out = m(x)
                (out[0] if isinstance(out, tuple) else out).float().square().mean().backward()
            return run
        t = _median_ms({"train": step(train), "fused": step(train_fused)}, a.reps)
        print(f"{name:22s} training step  unfused {t['train']:8.2f} ms  fuse_conv_activations {t['fused']:8.2f} ms"
              f"  x{t['train'] / t['fused']:.2f}  ({len(train_fused.fused_layers)} fusions)", flush=True)


if __name__ == "__main__":
    main()
