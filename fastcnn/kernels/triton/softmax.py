"""Triton softmax / log_softmax over D of x[outer, D, inner]. Signatures: fastcnn/ops/softmax.py.

One program per (outer index, block of BLOCK_I inner positions) walks D in tiles of BLOCK_D:
forward with an online max/sum (one read to reduce, one to write), backward with one reduction
tile loop and one write loop."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastcnn.backends.triton._lib import triton_kernel
from fastcnn.contracts import kernels

from ._reduce import block_sum, online_logsumexp, reduction_program

_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}


def tiles(D: int, inner: int):
    """(BLOCK_D, BLOCK_I): rows (inner == 1) take long D tiles, NCHW-style inputs blocks of pixels."""
    block_i = 1 if inner == 1 else min(64, triton.next_power_of_2(inner))
    block_d = min(triton.next_power_of_2(D), max(1, 4096 // block_i), 1024)
    return block_d, block_i


@triton.jit
def _softmax_forward(x_ptr, y_ptr, D, inner, LOG: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr,
                     BLOCK_I: tl.constexpr):
    """x, y: [outer, D, inner]; grid (outer, cdiv(inner, BLOCK_I))."""
    _, base, i, imask = reduction_program(D, inner, BLOCK_I)
    m_safe, s = online_logsumexp(x_ptr, base, D, inner, i, imask, ACC, BLOCK_D)
    s = tl.where(imask, s, 1.0)  # padded inner lanes (never stored)
    lse = m_safe + tl.log(s)
    inv = 1.0 / s
    for d0 in range(0, D, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        mask = (d < D)[:, None] & imask[None, :]
        offs = base + d[:, None] * inner + i[None, :]
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        if LOG:
            y = x - lse[None, :]
        else:
            y = tl.exp(x - m_safe[None, :]) * inv[None, :]
        tl.store(y_ptr + offs, y, mask=mask)


@triton.jit
def _softmax_backward(gy_ptr, y_ptr, gx_ptr, D, inner, LOG: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr,
                      BLOCK_I: tl.constexpr):
    """gy, y, gx: [outer, D, inner]; grid (outer, cdiv(inner, BLOCK_I))."""
    _, base, i, imask = reduction_program(D, inner, BLOCK_I)
    acc = tl.full([BLOCK_I], 0.0, dtype=ACC)
    for d0 in range(0, D, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        mask = (d < D)[:, None] & imask[None, :]
        offs = base + d[:, None] * inner + i[None, :]
        g = tl.load(gy_ptr + offs, mask=mask, other=0.0).to(ACC)
        if LOG:
            acc += block_sum(g, 0)
        else:
            acc += block_sum(g * tl.load(y_ptr + offs, mask=mask, other=0.0).to(ACC), 0)
    for d0 in range(0, D, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        mask = (d < D)[:, None] & imask[None, :]
        offs = base + d[:, None] * inner + i[None, :]
        g = tl.load(gy_ptr + offs, mask=mask, other=0.0).to(ACC)
        y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(ACC)
        if LOG:
            gx = g - tl.exp(y) * acc[None, :]
        else:
            gx = y * (g - acc[None, :])
        tl.store(gx_ptr + offs, gx, mask=mask)


def _grid(x):
    outer, D, inner = x.shape
    block_d, block_i = tiles(D, inner)
    return (outer, triton.cdiv(inner, block_i)), block_d, block_i


@triton_kernel(kernels.softmax_forward)
def softmax_forward(x, log):
    y = torch.empty_like(x)
    if x.numel():
        grid, bd, bi = _grid(x)
        _softmax_forward[grid](x, y, x.shape[1], x.shape[2], LOG=bool(log), ACC=_ACC[x.dtype], BLOCK_D=bd, BLOCK_I=bi)
    return y


@triton_kernel(kernels.softmax_backward)
def softmax_backward(gy, y, log):
    gx = torch.empty_like(y)
    if y.numel():
        grid, bd, bi = _grid(y)
        _softmax_backward[grid](gy, y, gx, y.shape[1], y.shape[2], LOG=bool(log), ACC=_ACC[y.dtype], BLOCK_D=bd,
                                BLOCK_I=bi)
    return gx
