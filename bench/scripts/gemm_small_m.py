"""The raw GEMMs of the zoo's small linear networks at batch 16 (issue #18): for every Linear layer
of llnet, mlp and vae (size='small'), fastcnn._C.gemm against torch on preallocated outputs:
forward y = x w^T (NT, torch.mm), input gradient gy w (NN), weight gradient gy^T x (TN) and the
bias gradient gy^T ones (TN with N = 1; torch: sum over the batch). Min of 7 x 200 calls, in us.

    .venv/bin/python bench/scripts/gemm_small_m.py [--threads 1 2] [--isa avx2] [--batch 16]
"""
import sys
from pathlib import Path

# Run as a script, Python puts bench/scripts/ on the path, not the checkout: import the fastcnn of
# the checkout this script lives in (not whichever one an editable install points at).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import time

import torch

from fastcnn import _C, models
from fastcnn.backends.cpu._lib import dtype_code


def best_us(f, reps=200, rounds=7):
    for _ in range(20):
        f()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        best = min(best, (time.perf_counter() - t) / reps)
    return best * 1e6


def layer_shapes():
    shapes = set()
    for name in ("llnet", "mlp", "vae"):
        for m in models.get_model(name, size="small").modules():
            if isinstance(m, torch.nn.Linear):
                shapes.add((m.in_features, m.out_features))
    return sorted(shapes)


def cases(M, K, N):
    """(name, fastcnn call, torch call) of one layer in -> out = K -> N at batch M."""
    x, w, gy = torch.randn(M, K), torch.randn(N, K), torch.randn(M, N)
    y, gx, gw, gb, ones = torch.empty(M, N), torch.empty(M, K), torch.empty(N, K), torch.empty(N), torch.ones(M)
    g, d = _C.gemm.gemm, dtype_code(x)
    p = lambda t: t.data_ptr()  # noqa: E731
    return [
        ("NT y", lambda: g(False, True, M, N, K, 1.0, p(x), K, p(w), K, 0.0, p(y), N, d),
         lambda: torch.mm(x, w.t(), out=y)),
        ("NN gx", lambda: g(False, False, M, K, N, 1.0, p(gy), N, p(w), K, 0.0, p(gx), K, d),
         lambda: torch.mm(gy, w, out=gx)),
        ("TN gw", lambda: g(True, False, N, K, M, 1.0, p(gy), N, p(x), K, 0.0, p(gw), K, d),
         lambda: torch.mm(gy.t(), x, out=gw)),
        ("TN gb", lambda: g(True, False, N, 1, M, 1.0, p(gy), N, p(ones), 1, 0.0, p(gb), 1, d),
         lambda: torch.sum(gy, 0, out=gb)),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--isa", default=None, help="an ISA copy (fastcnn._C.set_isa); default: the best")
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    if args.isa:
        _C.set_isa(args.isa)
    print(f"isa {_C.isa()}, batch {args.batch}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        _C.set_num_threads(threads)
        total_f = total_t = 0.0
        for K, N in layer_shapes():
            for name, fast, ref in cases(args.batch, K, N):
                f, t = best_us(fast), best_us(ref)
                total_f, total_t = total_f + f, total_t + t
                print(f"threads {threads} {K:4d}->{N:<4d} {name:6s} fastcnn {f:7.2f} us  torch {t:7.2f} us  "
                      f"torch/fastcnn {t / f:5.2f}")
        print(f"threads {threads} total fastcnn {total_f:.1f} us  torch {total_t:.1f} us  "
              f"torch/fastcnn {total_t / total_f:.2f}")


if __name__ == "__main__":
    main()
