"""Pooling on the zoo's PSPNet / SegNet shapes, fastcnn against torch: adaptive average pooling of
the pyramid (9x9 -> 1, 2, 3, 6; 13x13 -> 6) and SegNet's max_unpool2d, forward and forward +
backward ("train"), median of 40, ms, 2 threads (docs/ops-pool.md, "PSPNet / SegNet shapes").
Usage: python bench/scripts/pool_shapes.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's fastcnn

import time

import fastcnn
import torch
import torch.nn.functional as F

torch.set_num_threads(2)


def bench(f, reps=40):
    """Median wall time of f() in ms, after one warm-up call."""
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2] * 1e3


for shape, sizes in (((16,512,9,9),(1,2,3,6)), ((16,256,13,13),(6,))):
    x=torch.randn(shape, requires_grad=True)
    for s in sizes:
        r=[]
        for fn in (F.adaptive_avg_pool2d, fastcnn.ops.adaptive_avg_pool2d):
            y=fn(x,s); gy=torch.randn_like(y)
            r += [bench(lambda: fn(x.detach(), s)), bench(lambda: torch.autograd.grad(fn(x,s), x, gy))]
        print(f"adaptive_avg {list(shape)} -> {s}: torch fwd {r[0]:.3f} train {r[1]:.3f} | fastcnn fwd {r[2]:.3f} train {r[3]:.3f}")
for shape in ((16,16,48,64),(16,16,24,32)):
    x=torch.randn(shape); r=[]
    for mp, mu in ((F.max_pool2d, F.max_unpool2d), (fastcnn.ops.max_pool2d, fastcnn.ops.max_unpool2d)):
        y, i = mp(x, 2, 2, return_indices=True); yr = y.detach().requires_grad_()
        gu = torch.randn_like(mu(yr, i, 2, 2))
        r += [bench(lambda: mu(yr.detach(), i, 2, 2)), bench(lambda: torch.autograd.grad(mu(yr, i, 2, 2), yr, gu))]
    print(f"max_unpool2d 2x2 -> {list(shape)}: torch fwd {r[0]:.3f} train {r[1]:.3f} | fastcnn fwd {r[2]:.3f} train {r[3]:.3f}")
