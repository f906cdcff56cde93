"""Padding: pad(input, pad, mode='constant'|'reflect'|'replicate'|'circular', value=None) on the two
spatial dimensions of a 4-D (N, C, H, W) input, contiguous or channels_last (kept).

Kernels called here (same signature on cpu and triton):
  pad2d_forward(x[P,H,W,K], top, bottom, left, right, mode, value) -> y[P,Ho,Wo,K]
  pad2d_backward(gy[P,Ho,Wo,K], H, W, top, bottom, left, right, mode) -> gx[P,H,W,K]
      the sum of gy over every output position that reads each source position (deterministic)
The [P, H, W, K] view is (N*C, H, W, 1) for NCHW storage and (N, H, W, C) for channels_last.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ._op import apply, once_differentiable, public_op
from ._shapes import owned_outputs

__all__ = ["pad"]

MODES = {"constant": 0, "reflect": 1, "replicate": 2, "circular": 3}


def _pads(pad):
    """(top, bottom, left, right) from torch's (left, right[, top, bottom])."""
    left, right = pad[0], pad[1]
    top, bottom = (pad[2], pad[3]) if len(pad) == 4 else (0, 0)
    return top, bottom, left, right


def _check_pad(input, pad, mode="constant", value=None):
    _checks.float_tensor(input, "input", 4)
    if not isinstance(pad, (tuple, list)) or len(pad) not in (2, 4) or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in pad):
        raise ValueError(f"pad: expected 2 or 4 ints (left, right[, top, bottom]) for the spatial dimensions, "
                         f"got {pad!r}")
    if mode != "constant" and len(pad) != 4:
        raise ValueError(f"pad: mode={mode!r} on a 4-D input takes 4 sizes (left, right, top, bottom), as torch, "
                         f"got {tuple(pad)}")
    if min(pad) < 0:
        raise ValueError(f"pad: expected sizes >= 0, got {tuple(pad)}")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {sorted(MODES)}, got {mode!r}")
    if value is not None:
        _checks.number(value, "value")
        if mode != "constant":
            raise ValueError(f"value: only mode='constant' takes a padding value, got mode={mode!r}")
    top, bottom, left, right = _pads(pad)
    H, W = input.shape[2:]
    for lo, hi, n, dim in ((top, bottom, H, "height"), (left, right, W, "width")):
        if mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(f"pad: reflect padding must be smaller than the input {dim} {n}, got {lo}, {hi}")
        if mode == "circular" and max(lo, hi) > n:
            raise ValueError(f"pad: circular padding must be at most the input {dim} {n}, got {lo}, {hi}")
        if mode == "replicate" and n == 0 and max(lo, hi) > 0:
            raise ValueError(f"pad: replicate padding of an empty {dim} has nothing to replicate")


def _planes(x: torch.Tensor):
    """(x in its dense layout, P, K, memory format) for the [P, H, W, K] view."""
    N, C = x.shape[:2]
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last) and C > 1:
        return x, N, C, torch.channels_last
    return x.contiguous(), N * C, 1, torch.contiguous_format


@owned_outputs
class _Pad2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, pads, mode, value, backend):
        xd, P, K, fmt = _planes(x)
        top, bottom, left, right = pads
        N, C, H, W = x.shape
        Ho, Wo = H + top + bottom, W + left + right
        if x.numel() or (P * Ho * Wo * K and mode == "constant"):
            view = xd.permute(0, 2, 3, 1) if K > 1 else xd.view(P, H, W, 1)  # [P, H, W, K] over the storage
            y4 = kernels.pad2d_forward[backend](view, top, bottom, left, right, MODES[mode], value)
            y = y4.permute(0, 3, 1, 2) if K > 1 else y4.view(N, C, Ho, Wo)
        else:
            y = x.new_empty((N, C, Ho, Wo)).contiguous(memory_format=fmt)
        ctx.args = (pads, mode, backend, x.shape)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        (top, bottom, left, right), mode, backend, shape = ctx.args
        N, C, H, W = shape
        if gy.numel() == 0 or N * C * H * W == 0:
            return gy.new_zeros(shape), None, None, None, None
        gyd, P, K, fmt = _planes(gy)
        view = gyd.permute(0, 2, 3, 1) if K > 1 else gyd.view(P, H + top + bottom, W + left + right, 1)
        g4 = kernels.pad2d_backward[backend](view, H, W, top, bottom, left, right, MODES[mode])
        return (g4.permute(0, 3, 1, 2) if K > 1 else g4.view(shape)), None, None, None, None


@public_op(reference=F.pad, check=_check_pad)
def pad(input, pad, mode="constant", value=None, *, backend):
    """torch.nn.functional.pad for 4-D input and 2-D spatial padding (left, right[, top, bottom]):
    constant (value, default 0), reflect (mirror without repeating the edge), replicate (the edge),
    circular (wrap around). The backward adds every padded copy back into its source."""
    return apply(_Pad2d, input, _pads(pad), mode, 0.0 if value is None else float(value), backend)
