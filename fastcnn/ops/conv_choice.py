"""`conv_plan`: which algorithm each pass of a convolution would run, without running it.

The plan comes from the same code that conv2d / conv_transpose2d call (fastcnn/ops/conv.py
`_pass_algo`): the per-pass heuristic of fastcnn/ops/_conv_algo.py, or, with the autotuner on, the
tuned winner (timed now on random tensors of the given shapes when not cached yet). What the plan
cannot foresee: a Winograd/FFT pass whose result holds a NaN/inf is recomputed with direct/im2col
(a data-dependent fallback: conv.py `_nonfinite_fallback`, applied by `_pass` and by the eager op).
The choice actually made on each call is logged on logger "fastcnn.conv" (DEBUG; env
FASTCNN_CONV_LOG=1 prints each distinct choice once).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import torch

from .._registry import resolve_backend
from . import _conv_algo as algos
from .conv import ConvConfig, _check_conv2d, _checked_transpose_geometry, _groups, _pass_algo, _run

__all__ = ["conv_plan", "ConvPlan"]


class ConvPlan(NamedTuple):
    """The algorithm of each pass, and the registered kernel it calls (`kernels`, same order).
    For conv_transpose2d the passes are those of the transposed op: its forward runs the
    conv2d_backward_input kernel, its backward-input the conv2d_forward kernel."""
    forward: str
    backward_input: str
    backward_weight: str
    kernels: Tuple[str, str, str]


def _shape(value, name):
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a sequence of ints, got {value!r}") from None
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(f"{name}: expected 4 non-negative sizes [N, C, H, W] / [K, C/groups, R, S], got {shape}")
    return shape


def conv_plan(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, *, transposed: bool = False,
              output_padding=0, algo: str = "auto", backend: Optional[str] = None,
              dtype: torch.dtype = torch.float32, device="cpu") -> ConvPlan:
    """The algorithms conv2d(x, w, ...) (transposed=False) or conv_transpose2d(x, w, ...)
    (transposed=True; w [in, out/groups, R, S]) would run for x of shape x_shape and w of shape
    w_shape, with the same arguments (padding 'same' / 'valid' as in conv2d)."""
    x_shape, w_shape = _shape(x_shape, "x_shape"), _shape(w_shape, "w_shape")
    groups = _groups(groups)
    x_meta, w_meta = (torch.empty(s, dtype=dtype, device="meta") for s in (x_shape, w_shape))
    w = torch.empty(w_shape, dtype=dtype, device=device)  # no data: only its shape, dtype and device are read
    backend = resolve_backend(backend, [w])
    if backend == "reference":
        raise ValueError("backend: 'reference' runs torch's convolution, there is no algorithm to plan")
    if transposed:  # the forward convolution this is the adjoint of
        _, shape = _checked_transpose_geometry(x_meta, w_meta, None, stride, padding, output_padding, groups, dilation)
        order = ("conv2d_backward_input", "conv2d_forward", "conv2d_backward_weight")
    else:
        shape = _check_conv2d(x_meta, w_meta, None, stride, padding, dilation, groups).shape
        order = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight")
    algos.check_explicit(algo, backend, order[0], shape.stride, shape.dilation, shape.kernel_hw)
    cfg = ConvConfig(shape, None, 0.0, backend, algo)
    N = shape.N
    chosen = tuple(_pass_algo(cfg, d, N, w, _timer(cfg, d, N, w)) for d in order)
    return ConvPlan(*chosen, kernels=tuple(algos.kernel_slot(d, a).name for d, a in zip(order, chosen)))


def _timer(cfg: ConvConfig, direction: str, N: int, w):
    """run(algo) for the autotuner: the pass on random tensors of the planned shapes (made on first use)."""
    made = {}

    def run(algo):
        if not made:
            shape = cfg.shape
            wr = torch.randn(w.shape, dtype=w.dtype, device=w.device)
            x = torch.randn(shape.x_shape, dtype=w.dtype, device=w.device)
            gy = torch.randn(shape.y_shape, dtype=w.dtype, device=w.device)
            made["args"] = {
                "conv2d_forward": (x, wr, None, shape, None, 0.0),
                "conv2d_backward_input": (gy, wr, shape),
                "conv2d_backward_weight": (x, gy, shape),
            }[direction]
        return _run(cfg, direction, algo, *made["args"])
    return run
