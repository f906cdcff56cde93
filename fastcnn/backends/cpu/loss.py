"""cpu kernels of the loss family (fastcnn._C.loss). Signatures: fastcnn/ops/loss.py."""
from __future__ import annotations

import torch

from fastcnn import _C

from ...contracts import kernels
from ._lib import addr, cpu_kernel, dtype_code, empty_like, new_empty


def _opt(t):
    return addr(t) if t is not None else 0


@cpu_kernel(kernels.cross_entropy_forward)
def cross_entropy_forward(x, target, weight, ignore_index, label_smoothing):
    N, C, S = x.shape
    loss, wt, lse = (new_empty(x, N, S) for _ in range(3))
    _C.loss.cross_entropy_forward(dtype_code(x), addr(x), addr(target), _opt(weight), N, C, S, int(ignore_index),
                                  float(label_smoothing), addr(loss), addr(wt), addr(lse))
    return loss, wt, lse


@cpu_kernel(kernels.cross_entropy_backward)
def cross_entropy_backward(x, target, weight, lse, ignore_index, label_smoothing, g):
    N, C, S = x.shape
    gx = empty_like(x)
    _C.loss.cross_entropy_backward(dtype_code(x), addr(x), addr(target), _opt(weight), addr(lse), N, C, S,
                                   int(ignore_index), float(label_smoothing), addr(g), 0 if g.numel() == 1 else 1,
                                   addr(gx))
    return gx


@cpu_kernel(kernels.soft_cross_entropy_forward)
def soft_cross_entropy_forward(x, target, weight, label_smoothing):
    N, C, S = x.shape
    loss, lse = new_empty(x, N, S), new_empty(x, N, S)
    _C.loss.soft_cross_entropy_forward(dtype_code(x), addr(x), addr(target), _opt(weight), N, C, S,
                                       float(label_smoothing), addr(loss), addr(lse))
    return loss, lse


@cpu_kernel(kernels.soft_cross_entropy_backward)
def soft_cross_entropy_backward(x, target, weight, lse, label_smoothing, g, need_input, need_target):
    N, C, S = x.shape
    gx = empty_like(x) if need_input else None
    gt = empty_like(x) if need_target else None
    _C.loss.soft_cross_entropy_backward(dtype_code(x), addr(x), addr(target), _opt(weight), addr(lse), N, C, S,
                                        float(label_smoothing), addr(g), 0 if g.numel() == 1 else 1, _opt(gx),
                                        _opt(gt))
    return gx, gt


@cpu_kernel(kernels.nll_loss_forward)
def nll_loss_forward(x, target, weight, ignore_index):
    N, C, S = x.shape
    out, wt = new_empty(x, N, S), new_empty(x, N, S)
    _C.loss.nll_loss_forward(dtype_code(x), addr(x), addr(target), _opt(weight), N, C, S, int(ignore_index),
                             addr(out), addr(wt))
    return out, wt


@cpu_kernel(kernels.nll_loss_backward)
def nll_loss_backward(target, weight, ignore_index, g, shape):
    N, C, S = shape
    gx = new_empty(g, N, C, S)
    _C.loss.nll_loss_backward(dtype_code(g), addr(target), _opt(weight), N, C, S, int(ignore_index), addr(g),
                              0 if g.numel() == 1 else 1, addr(gx))
    return gx


@cpu_kernel(kernels.loss_sum)
def loss_sum(v):
    return torch.tensor(_C.loss.sum(dtype_code(v), addr(v), v.numel()), dtype=torch.float64, device=v.device)


@cpu_kernel(kernels.pointwise_loss_forward)
def pointwise_loss_forward(kind, x, y, weight, pos_weight):
    out = empty_like(x)
    _C.loss.pointwise_loss_forward(dtype_code(x), int(kind), addr(x), addr(y), _opt(weight), _opt(pos_weight),
                                   x.numel(), addr(out))
    return out


@cpu_kernel(kernels.pointwise_loss_sum)
def pointwise_loss_sum(kind, x, y, weight, pos_weight):
    return torch.tensor(_C.loss.pointwise_loss_sum(dtype_code(x), int(kind), addr(x), addr(y), _opt(weight),
                                                   _opt(pos_weight), x.numel()), dtype=torch.float64, device=x.device)


@cpu_kernel(kernels.pointwise_loss_backward)
def pointwise_loss_backward(kind, x, y, weight, pos_weight, g):
    gx = empty_like(x)
    _C.loss.pointwise_loss_backward(dtype_code(x), int(kind), addr(x), addr(y), _opt(weight), _opt(pos_weight),
                                    addr(g), 0 if g.numel() == 1 else 1, x.numel(), addr(gx))
    return gx
