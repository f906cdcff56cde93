"""cuda kernels of the norm family (fastcnn/kernels/cuda/norm.cu). Signatures: fastcnn/ops/norm.py."""
from __future__ import annotations

import numpy as np
import torch

from . import _lib  # _lib.launch, looked up at call time: tests swap in the host emulation
from ...contracts import kernels
from ...contracts.norm import lrn_window
from ._lib import cuda_kernel, i64, ptr, suffix

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
        _lib.launch("norm", f"channel_fma_{suffix(u.dtype)}", grid_for(u.numel()), (_THREADS,),
               (ptr(u), opt_ptr(v), ptr(out), ptr(p), opt_ptr(q), opt_ptr(m), ptr(r), i64(u.numel()), i64(C), i64(S)))
    return out


@cuda_kernel(kernels.batch_norm_forward)
def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    N, C, S = x.shape
    mean, invstd, scale, shift = (x.new_empty(C) for _ in range(4))
    _lib.launch("norm", f"bn_forward_channel_{suffix(x.dtype)}", (C,), (_THREADS,),
           (ptr(x), opt_ptr(weight), opt_ptr(bias), opt_ptr(running_mean), opt_ptr(running_var), ptr(mean),
            ptr(invstd), ptr(scale), ptr(shift), i64(N), i64(C), i64(S), np.int32(bool(training)),
            np.float64(momentum), np.float64(eps)))
    return channel_fma(x, None, scale, None, None, shift), mean, invstd


@cuda_kernel(kernels.batch_norm_backward)
def batch_norm_backward(gy, x, weight, mean, invstd, training, need_input, need_weight, need_bias):
    N, C, S = x.shape
    gw = x.new_empty(C) if need_weight else None
    gb = x.new_empty(C) if need_bias else None
    a, b, k = (x.new_empty(C) for _ in range(3))
    _lib.launch("norm", f"bn_backward_channel_{suffix(x.dtype)}", (C,), (_THREADS,),
           (ptr(gy), ptr(x), opt_ptr(weight), ptr(mean), ptr(invstd), opt_ptr(gw), opt_ptr(gb), ptr(a), ptr(b),
            ptr(k), i64(N), i64(C), i64(S), np.int32(bool(training))))
    gx = channel_fma(gy, x if training else None, a, b, mean, k) if need_input else None
    return gx, gw, gb


# normalize and local_response_norm: fastcnn/kernels/cuda/norm_lp.cu.

def _line_grid(outer: int, inner: int):
    """inner == 1: a block per row (grid-stride over rows); else a thread per (outer, inner) line."""
    return (max(1, min(_MAX_BLOCKS, outer)),) if inner == 1 else grid_for(outer * inner)


@cuda_kernel(kernels.normalize_forward)
def normalize_forward(x, p, eps):
    outer, D, inner = x.shape
    y = torch.empty_like(x)
    norm = x.new_empty(outer, inner)
    if norm.numel():
        _lib.launch("norm_lp", f"normalize_forward_{suffix(x.dtype)}", _line_grid(outer, inner), (_THREADS,),
               (ptr(x), ptr(y), ptr(norm), i64(outer), i64(D), i64(inner), np.float64(p), np.float64(eps)))
    return y, norm


@cuda_kernel(kernels.normalize_backward)
def normalize_backward(gy, x, norm, p, eps):
    outer, D, inner = x.shape
    gx = torch.empty_like(x)
    if x.numel():
        _lib.launch("norm_lp", f"normalize_backward_{suffix(x.dtype)}", _line_grid(outer, inner), (_THREADS,),
               (ptr(gy), ptr(x), ptr(norm), ptr(gx), i64(outer), i64(D), i64(inner), np.float64(p), np.float64(eps)))
    return gx


@cuda_kernel(kernels.local_response_norm_forward)
def local_response_norm_forward(x, size, alpha, beta, k):
    N, C, S = x.shape
    y, scale = torch.empty_like(x), torch.empty_like(x)
    if x.numel():
        before, after = lrn_window(size)
        _lib.launch("norm_lp", f"lrn_forward_{suffix(x.dtype)}", grid_for(N * S), (_THREADS,),
               (ptr(x), ptr(y), ptr(scale), i64(N), i64(C), i64(S), i64(before), i64(after),
                np.float64(alpha / size), np.float64(beta), np.float64(k)))
    return y, scale


@cuda_kernel(kernels.local_response_norm_backward)
def local_response_norm_backward(gy, x, scale, size, alpha, beta):
    N, C, S = x.shape
    gx = torch.empty_like(x)
    if x.numel():
        before, after = lrn_window(size)
        _lib.launch("norm_lp", f"lrn_backward_{suffix(x.dtype)}", grid_for(N * S), (_THREADS,),
               (ptr(gy), ptr(x), ptr(scale), ptr(gx), i64(N), i64(C), i64(S), i64(before), i64(after),
                np.float64(-2.0 * alpha * beta / size), np.float64(beta)))
    return gx
