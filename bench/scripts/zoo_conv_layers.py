"""Which conv passes of the zoo's small networks lose the most time against torch: runs one training
step of each network (small size, batch 16, as the networks suite) recording every conv pass fastcnn
runs (direction, shape, algorithm `auto` chose, how often per step), then times each distinct pass
with that algorithm's kernel next to torch's own piece (F.conv2d / aten.convolution_backward with one
output mask), alternating, median of --reps. Loss = calls per step x (fastcnn - torch), also as a
share of fastcnn's whole training step.
--threads 1 times thread CPU time (other processes' load inflates it least); --stat min|median.
Usage: python bench/scripts/zoo_conv_layers.py [net[,net...]] [--reps 5] [--threads 2] [--top 25]
Env BENCH_CHECKOUT=/path/to/checkout imports that checkout's fastcnn (before/after runs); default
the checkout this script lives in."""
import os
import sys
from pathlib import Path

sys.path.insert(0, os.environ.get("BENCH_CHECKOUT") or str(Path(__file__).resolve().parents[2]))

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import fastcnn.ops._conv_algo as algos
import fastcnn.ops.conv as conv_mod
from fastcnn import _C, models
from fastcnn.bench.suites import NETWORK_BATCH, _network_call, _no_dropout
from fastcnn.contracts import kernels

from conv_passes import timeit  # noqa: E402 (bench/scripts is this script's sys.path[0])

NETS = "segnet_basic,hardnet,srresnet,srgan_discriminator,stylegan_xl_discriminator,lenet,dcgan_discriminator," \
       "dcgan_generator,pspnet,r2d2,conv_autoencoder,pidnet_s,alexnet"
SHORT = {"conv2d_forward": "fwd", "conv2d_backward_input": "bwd_in", "conv2d_backward_weight": "bwd_w"}


def record_passes(step):
    """{(direction, algo, shape): [calls, args]} of one call of step()."""
    seen = {}
    real = conv_mod._run

    def spy(cfg, direction, algo, *args):
        key = (direction, algo, cfg.shape)
        if key not in seen:
            seen[key] = [0, [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args]]
        seen[key][0] += 1
        return real(cfg, direction, algo, *args)
    eager = conv_mod._eager_conv  # the eager op runs the same kernels from C++: route them past the spy
    conv_mod._run, conv_mod._eager_conv = spy, (lambda *args: None)
    try:
        step()
    finally:
        conv_mod._run, conv_mod._eager_conv = real, eager
    return seen


def torch_piece(direction, s, args, memory_format=torch.contiguous_format):
    """torch's own piece for this pass; memory_format=torch.channels_last times it on NHWC tensors
    (what a channels_last twin runs)."""
    x, w, gy = (t.contiguous(memory_format=memory_format) for t in (
        torch.randn(s.N, s.C, s.H, s.W), torch.randn(s.K, s.C // s.G, s.R, s.S), torch.randn(s.N, s.K, s.P, s.Q)))
    st, pd, dl = (s.sh, s.sw), (s.ph, s.pw), (s.dh, s.dw)
    if direction == "conv2d_forward":
        return lambda: F.conv2d(x, w, None, st, pd, dl, s.G)
    mask = [direction == "conv2d_backward_input", direction == "conv2d_backward_weight", False]
    return lambda: torch.ops.aten.convolution_backward(gy, x, w, None, st, pd, dl, False, [0, 0], s.G, mask)


CLOCK = time.perf_counter
STAT = statistics.median


def median_time(fn, reps):
    return STAT(timeit(fn, reps, CLOCK))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nets", nargs="?", default=NETS)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--stat", choices=("median", "min"), default="median")
    ap.add_argument("--cl", action="store_true", help="also time torch's piece on channels_last tensors")
    ap.add_argument("--algos", default="", help="also time these algorithms on each pass (e.g. direct,im2col)")
    a = ap.parse_args()
    global CLOCK, STAT
    if a.threads == 1:
        CLOCK = time.thread_time
    STAT = statistics.median if a.stat == "median" else min
    torch.set_num_threads(a.threads)
    print(f"fastcnn from {Path(conv_mod.__file__).parents[2]}, isa {_C.isa()}, {a.threads} thread(s), {a.stat}")
    rows = []
    for name in a.nets.split(","):
        torch.manual_seed(0)
        net = _no_dropout(models.get_model(name, size="small"))
        step = _network_call(net, net.example_input(NETWORK_BATCH), "train")
        passes = record_passes(step)
        step_t = median_time(step, a.reps)
        if a.cl:  # the twin's whole step, NCHW and channels_last (same weights and input)
            x = net.example_input(NETWORK_BATCH)
            twin_t = {}
            for fmt in (torch.contiguous_format, torch.channels_last):
                twin = _no_dropout(models.get_twin(name, size="small"))
                twin.load_state_dict(net.state_dict())
                tstep = _network_call(twin.to(memory_format=fmt), x.contiguous(memory_format=fmt), "train")
                tstep()
                twin_t[fmt] = median_time(tstep, a.reps)
            print(f"{name}: torch step NCHW {twin_t[torch.contiguous_format]*1e3:.1f} ms, "
                  f"channels_last {twin_t[torch.channels_last]*1e3:.1f} ms", flush=True)
        conv_f = conv_t = conv_cl = 0.0
        for (direction, algo, s), (calls, args) in passes.items():
            fn = kernels.CONV_PASSES[direction].algo(algo)["cpu"]
            tf = torch_piece(direction, s, args)
            tcl = torch_piece(direction, s, args, torch.channels_last) if a.cl else None
            ft, tt, ct = [], [], []
            for _ in range(a.reps):
                tt.append(median_time(tf, 1))
                ft.append(median_time(lambda: fn(*args), 1))
                if tcl is not None:
                    ct.append(median_time(tcl, 1))
            f, t = STAT(ft), STAT(tt)
            others = {"torch_cl": STAT(ct)} if ct else {}
            for al in a.algos.split(",") if a.algos else ():
                if al != algo and al in algos.candidates("cpu", direction, (s.sh, s.sw), (s.dh, s.dw), (s.R, s.S)):
                    fa = kernels.CONV_PASSES[direction].algo(al)["cpu"]
                    others[al] = STAT([median_time(lambda: fa(*args), 1) for _ in range(a.reps)])
            conv_f += calls * f
            conv_t += calls * t
            conv_cl += calls * others.get("torch_cl", 0.0)
            rows.append((calls * (f - t), name, SHORT[direction], algo, s, calls, f, t, calls * f / step_t, others))
        print(f"{name}: step {step_t*1e3:.1f} ms; conv passes fastcnn {conv_f*1e3:.1f} ms "
              f"({conv_f/step_t:.0%} of the step), torch's pieces {conv_t*1e3:.1f} ms"
              + (f", channels_last {conv_cl*1e3:.1f} ms" if a.cl else ""), flush=True)
    rows.sort(key=lambda r: -r[0])
    print("\nloss_ms  net  pass  algo  N C HxW -> K RxS s p d g  calls  fastcnn_ms torch_ms ratio  share_of_step [| other algo ms ratio]")
    for loss, name, d, algo, s, calls, f, t, share, others in rows[:a.top]:
        geo = f"{s.N} {s.C} {s.H}x{s.W} -> {s.K} {s.R}x{s.S} s{s.sh} p{s.ph} d{s.dh} g{s.G}"
        also = "".join(f" | {al} {v*1e3:.2f} {(v if al == 'torch_cl' else t)/(f if al == 'torch_cl' else v):.2f}x"
                       for al, v in others.items())  # torch_cl: its time / fastcnn's, as the torch column
        print(f"{loss*1e3:7.2f} {name} {d} {algo} {geo} x{calls} {f*1e3:.2f} {t*1e3:.2f} {t/f:.2f}x {share:.0%}{also}")


if __name__ == "__main__":
    main()
