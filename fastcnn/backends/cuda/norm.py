"""cuda kernels of the norm family (fastcnn/kernels/cuda/norm.cu). Signatures: fastcnn/ops/norm.py."""
from __future__ import annotations

import numpy as np
import torch

from ._lib import cuda_kernel, i64, launch, ptr, suffix

_THREADS = 256
_MAX_BLOCKS = 65535


def opt_ptr(t):
    """Device address, or a null pointer for an absent optional tensor."""
    return ptr(t) if t is not None else np.uint64(0)


def grid_for(total: int):
    return (max(1, min(_MAX_BLOCKS, (total + _THREADS - 1) // _THREADS)),)


def channel_fma(u, v, p, q, m, r):
    """out = p[c]*u + q[c]*(v - m[c]) + r[c] over u[N, C, S] (v may be None)."""
    N, C, S = u.shape
    out = torch.empty_like(u)
    if u.numel():
        launch("norm", f"channel_fma_{suffix(u.dtype)}", grid_for(u.numel()), (_THREADS,),
               (ptr(u), opt_ptr(v), ptr(out), ptr(p), opt_ptr(q), opt_ptr(m), ptr(r), i64(u.numel()), i64(C), i64(S)))
    return out


@cuda_kernel()
def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    N, C, S = x.shape
    mean, invstd, scale, shift = (x.new_empty(C) for _ in range(4))
    launch("norm", f"bn_forward_channel_{suffix(x.dtype)}", (C,), (_THREADS,),
           (ptr(x), opt_ptr(weight), opt_ptr(bias), opt_ptr(running_mean), opt_ptr(running_var), ptr(mean),
            ptr(invstd), ptr(scale), ptr(shift), i64(N), i64(C), i64(S), np.int32(bool(training)),
            np.float64(momentum), np.float64(eps)))
    return channel_fma(x, None, scale, None, None, shift), mean, invstd


@cuda_kernel()
def batch_norm_backward(gy, x, weight, mean, invstd, training, need_input, need_weight, need_bias):
    N, C, S = x.shape
    gw = x.new_empty(C) if need_weight else None
    gb = x.new_empty(C) if need_bias else None
    a, b, k = (x.new_empty(C) for _ in range(3))
    launch("norm", f"bn_backward_channel_{suffix(x.dtype)}", (C,), (_THREADS,),
           (ptr(gy), ptr(x), opt_ptr(weight), ptr(mean), ptr(invstd), opt_ptr(gw), opt_ptr(gb), ptr(a), ptr(b),
            ptr(k), i64(N), i64(C), i64(S), np.int32(bool(training))))
    gx = channel_fma(gy, x if training else None, a, b, mean, k) if need_input else None
    return gx, gw, gb
