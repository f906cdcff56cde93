"""cuda kernels of the loss family (fastcnn/kernels/cuda/loss.cu). Signatures: fastcnn/ops/loss.py."""
from __future__ import annotations

import numpy as np
import torch

from ...contracts import kernels
from ._lib import cuda_kernel, i64, launch, ptr, suffix
from .norm import grid_for, opt_ptr
from .softmax import threads_for

_THREADS = 256


def _coefs(x, label_smoothing):
    return torch.tensor([1.0 - label_smoothing, label_smoothing / x.shape[1]], dtype=x.dtype, device=x.device)


@cuda_kernel(kernels.cross_entropy_forward)
def cross_entropy_forward(x, target, weight, ignore_index, label_smoothing):
    N, C, S = x.shape
    loss, wt, lse = (x.new_empty(N, S) for _ in range(3))
    if loss.numel():
        launch("loss", f"ce_forward_{suffix(x.dtype)}", (N * S,), (threads_for(C),),
               (ptr(x), ptr(target), opt_ptr(weight), ptr(loss), ptr(wt), ptr(lse), i64(C), i64(S), i64(ignore_index),
                ptr(_coefs(x, label_smoothing)), np.int32(label_smoothing > 0)))
    return loss, wt, lse


@cuda_kernel(kernels.cross_entropy_backward)
def cross_entropy_backward(x, target, weight, lse, ignore_index, label_smoothing, g):
    N, C, S = x.shape
    gx = torch.empty_like(x)
    if x.numel():
        launch("loss", f"ce_backward_{suffix(x.dtype)}", (N * S,), (threads_for(C),),
               (ptr(x), ptr(target), opt_ptr(weight), ptr(lse), ptr(g), i64(0 if g.numel() == 1 else 1), ptr(gx),
                i64(C), i64(S), i64(ignore_index), ptr(_coefs(x, label_smoothing)), np.int32(label_smoothing > 0)))
    return gx


@cuda_kernel(kernels.nll_loss_forward)
def nll_loss_forward(x, target, weight, ignore_index):
    N, C, S = x.shape
    out, wt = x.new_empty(N, S), x.new_empty(N, S)
    if out.numel():
        launch("loss", f"nll_forward_{suffix(x.dtype)}", grid_for(N * S), (_THREADS,),
               (ptr(x), ptr(target), opt_ptr(weight), ptr(out), ptr(wt), i64(N * S), i64(C), i64(S), i64(ignore_index)))
    return out, wt


@cuda_kernel(kernels.nll_loss_backward)
def nll_loss_backward(target, weight, ignore_index, g, shape):
    N, C, S = shape
    gx = g.new_empty(N, C, S)
    if gx.numel():
        launch("loss", f"nll_backward_{suffix(g.dtype)}", grid_for(gx.numel()), (_THREADS,),
               (ptr(target), opt_ptr(weight), ptr(g), i64(0 if g.numel() == 1 else 1), ptr(gx), i64(gx.numel()), i64(C),
                i64(S), i64(ignore_index)))
    return gx


@cuda_kernel(kernels.loss_sum)
def loss_sum(v):
    v = v.reshape(-1)
    while True:
        blocks = min(1024, max(1, (v.numel() + _THREADS - 1) // _THREADS))
        parts = torch.empty(blocks, dtype=torch.float64, device=v.device)
        launch("loss", f"partial_sums_{suffix(v.dtype)}", (blocks,), (_THREADS,), (ptr(v), ptr(parts), i64(v.numel())))
        if blocks == 1:
            return parts.reshape(())
        v = parts


def _pointwise(kind, x, y, weight, pos_weight, g, backward):
    out = torch.empty_like(x)
    if x.numel():
        launch("loss", f"pointwise_loss_{suffix(x.dtype)}", grid_for(x.numel()), (_THREADS,),
               (np.int32(kind), np.int32(backward), ptr(x), ptr(y), opt_ptr(weight), opt_ptr(pos_weight), opt_ptr(g),
                i64(0 if g is None or g.numel() == 1 else 1), ptr(out), i64(x.numel())))
    return out


@cuda_kernel(kernels.pointwise_loss_forward)
def pointwise_loss_forward(kind, x, y, weight, pos_weight):
    return _pointwise(kind, x, y, weight, pos_weight, None, False)


@cuda_kernel(kernels.pointwise_loss_backward)
def pointwise_loss_backward(kind, x, y, weight, pos_weight, g):
    return _pointwise(kind, x, y, weight, pos_weight, g, True)
