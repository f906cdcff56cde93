"""cpu kernels of the norm family (fastcnn._C.norm, csrc/host/norm.cpp). Signatures: fastcnn/ops/norm.py."""
from __future__ import annotations

import torch

from fastcnn import _C

from ...contracts import kernels
from ...contracts.norm import around_sizes
from ._lib import addr, cpu_kernel, dtype_code, empty_like, new_empty


def _opt(t):
    return addr(t) if t is not None else 0


@cpu_kernel(kernels.batch_norm_forward)
def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    N, C, S = x.shape
    y = empty_like(x)
    mean = new_empty(x, C)
    invstd = new_empty(x, C)
    _C.norm.batch_norm_forward(dtype_code(x), addr(x), addr(y), N, C, S, _opt(weight), _opt(bias),
                               _opt(running_mean), _opt(running_var), bool(training), float(momentum),
                               float(eps), addr(mean), addr(invstd))
    return y, mean, invstd


@cpu_kernel(kernels.batch_norm_backward)
def batch_norm_backward(gy, x, weight, mean, invstd, training, need_input, need_weight, need_bias):
    N, C, S = x.shape
    gx = empty_like(x) if need_input else None
    gw = new_empty(x, C) if need_weight else None
    gb = new_empty(x, C) if need_bias else None
    _C.norm.batch_norm_backward(dtype_code(x), addr(gy), addr(x), _opt(gx), N, C, S, _opt(weight), addr(mean),
                                addr(invstd), bool(training), _opt(gw), _opt(gb))
    return gx, gw, gb


@cpu_kernel(kernels.normalize_forward)
def normalize_forward(x, p, eps):
    outer, D, inner = x.shape
    y = empty_like(x)
    norm = new_empty(x, outer, inner)
    _C.norm.normalize_forward(dtype_code(x), addr(x), addr(y), addr(norm), outer, D, inner, float(p), float(eps))
    return y, norm


@cpu_kernel(kernels.normalize_backward)
def normalize_backward(gy, x, norm, p, eps):
    outer, D, inner = x.shape
    gx = empty_like(x)
    _C.norm.normalize_backward(dtype_code(x), addr(gy), addr(x), addr(norm), addr(gx), outer, D, inner, float(p),
                               float(eps))
    return gx


@cpu_kernel(kernels.local_response_norm_forward)
def local_response_norm_forward(x, size, alpha, beta, k):
    N, C, S = x.shape
    y, scale = empty_like(x), empty_like(x)
    _C.norm.lrn_forward(dtype_code(x), addr(x), addr(y), addr(scale), N, C, S, int(size), float(alpha), float(beta),
                        float(k))
    return y, scale


@cpu_kernel(kernels.local_response_norm_backward)
def local_response_norm_backward(gy, x, scale, size, alpha, beta):
    N, C, S = x.shape
    gx = empty_like(x)
    _C.norm.lrn_backward(dtype_code(x), addr(gy), addr(x), addr(scale), addr(gx), N, C, S, int(size), float(alpha),
                         float(beta))
    return gx


@cpu_kernel(kernels.spectral_norm_forward)
def spectral_norm_forward(w, dim, u, v, n_power_iterations, eps):
    y, u_used, v_used = empty_like(w), torch.empty_like(u), torch.empty_like(v)
    sigma = torch.empty((), dtype=torch.float64)
    _C.spectral_norm.forward(dtype_code(w), addr(w), addr(y), addr(u), addr(v), addr(u_used), addr(v_used),
                             sigma.data_ptr(), *around_sizes(w.shape, dim), int(n_power_iterations), float(eps))
    return y, u_used, v_used, sigma


@cpu_kernel(kernels.spectral_norm_backward)
def spectral_norm_backward(gy, y, dim, u, v, sigma):
    gw = empty_like(y)
    _C.spectral_norm.backward(dtype_code(y), addr(gy), addr(y), addr(u), addr(v), sigma.data_ptr(), addr(gw),
                              *around_sizes(y.shape, dim))
    return gw
