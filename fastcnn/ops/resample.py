"""Resampling ops: interpolate (nearest, bilinear; nearest and linear on 3-D inputs), pixel_shuffle / pixel_unshuffle, unfold / fold,
grid_sample (bilinear, nearest; zeros, border and reflection padding). Same names, arguments and defaults as
torch.nn.functional, plus the keyword `backend=`.

Kernels called here (same signature on 'cpu', 'triton', 'cuda'; contiguous NCHW, float32/float64):
  interpolate_forward(x[N,C,H,W], out_hw:(P,Q), nearest:bool, align_corners:bool, scales:(sh,sw))
      -> y[N,C,P,Q]; scales: the user's scale_factor per axis, 0.0 where the size was given (torch
      then uses in/out instead of 1/scale; see fastcnn/kernels/shared/resample_coords.cuh)
  interpolate_backward(gy[N,C,P,Q], in_hw:(H,W), nearest, align_corners, scales) -> gx[N,C,H,W]
  pixel_shuffle(x, factor:int, to_space:bool) -> y
      to_space: [N,C*r*r,H,W] -> [N,C,H*r,W*r] (pixel_shuffle); else the inverse (pixel_unshuffle)
  grid_sample_forward(x[N,C,H,W], grid[N,P,Q,2], padding:int, align_corners:bool, nearest:bool)
      -> y[N,C,P,Q]; padding: 0 zeros, 1 border, 2 reflection (GRID_PADDING)
  grid_sample_backward(gy, x, grid, padding, align_corners, nearest, need_input:bool, need_grid:bool)
      -> (gx[N,C,H,W] or None, ggrid[N,P,Q,2] or None; nearest: ggrid is zero)
  im2col(x[N,C,H,W], kernel_hw, stride, padding, dilation, out_hw) -> cols[N,C*R*S,P*Q]
  col2im(cols, in_hw, kernel_hw, stride, padding, dilation, out_hw) -> x[N,C,H,W]
      (the convolution's kernels, owned by the gemm family; unfold/fold only call them)
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .. import _checks
from ..contracts import kernels
from ._op import apply, public_op
from ._shapes import leading_merged, owned_outputs, follows_channels_last

__all__ = ["interpolate", "pixel_shuffle", "pixel_unshuffle", "unfold", "fold", "grid_sample"]

_TORCH_ONLY_INTERP_MODES = ("bicubic", "trilinear", "area", "nearest-exact")
# fastcnn's modes by input rank (torch's names): 3-D (N, C, L) runs the 2-D kernels on (N, C, 1, L).
_INTERP_MODES = {3: ("nearest", "linear"), 4: ("nearest", "bilinear")}


# ----------------------------------------------------------------------------------------------
# interpolate

def _positive_numbers(value, name, n):
    """n positive finite numbers from one number or a sequence of n (one per spatial axis)."""
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name}: expected a number or {n} numbers for a {n + 2}-D input, got {value!r}")
        vals = tuple(_checks.number(v, name) for v in value)
    else:
        vals = (_checks.number(value, name),) * n
    if not all(v > 0 and math.isfinite(v) for v in vals):
        raise ValueError(f"{name}: expected positive finite values, got {value!r}")
    return vals


def _sizes(value, n):
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"size: expected an int or {n} ints for a {n + 2}-D input, got {value!r}")
        vals = tuple(value)
    else:
        vals = (value,) * n
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"size: expected ints, got {value!r}")
        if v < 1:
            raise ValueError(f"size: expected positive sizes, got {value!r}")
    return vals


def _interp_plan(input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias):
    """(out_hw, scales, nearest, align_corners) exactly as torch.nn.functional.interpolate derives them,
    for the 4-D kernels (a 3-D input's length is the width of a height-1 image)."""
    _checks.float_tensor(input, "input", ndims=(3, 4))
    if not isinstance(mode, str):
        raise TypeError(f"mode: expected a string, got {type(mode).__name__}")
    modes = _INTERP_MODES[input.dim()]
    if mode in _TORCH_ONLY_INTERP_MODES:
        raise NotImplementedError(f"mode: fastcnn interpolate supports {modes} on a {input.dim()}-D input, "
                                  f"got {mode!r}; use backend='reference'")
    if mode not in modes:
        raise ValueError(f"mode: expected one of {modes} for a {input.dim()}-D input, got {mode!r}")
    if antialias:
        raise NotImplementedError("antialias: fastcnn interpolate has no antialiased kernels; use backend='reference'")
    nearest = mode == "nearest"
    if nearest and align_corners is not None:
        raise ValueError(f"align_corners: can only be set with mode={modes[1]!r}, not 'nearest'")
    if align_corners is not None and not isinstance(align_corners, bool):
        raise TypeError(f"align_corners: expected a bool or None, got {align_corners!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("size, scale_factor: expected exactly one of them, got "
                         + ("both" if size is not None else "neither"))
    spatial = tuple(input.shape[2:])
    n = len(spatial)
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor: not meaningful with an explicit size")
        out = _sizes(size, n)
        scales = (0.0,) * n
    else:
        factors = _positive_numbers(scale_factor, "scale_factor", n)
        out = tuple(math.floor(float(d) * s) for d, s in zip(spatial, factors))
        if min(out) < 1:
            raise ValueError(f"scale_factor: {scale_factor!r} makes an empty output from input size {spatial}")
        scales = (0.0,) * n if recompute_scale_factor else factors
    if min(spatial) < 1:
        raise ValueError(f"input: expected non-empty spatial size, got {tuple(input.shape)}")
    if n == 1:  # height 1 -> 1 (scale 0.0: in/out = 1) is the identity for both modes
        out, scales = (1,) + out, (0.0,) + scales
    return out, scales, nearest, bool(align_corners)


def _check_interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                       recompute_scale_factor=None, antialias=False):
    _interp_plan(input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias)


def _like_input_format(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Output in the input's memory format (channels_last in, channels_last out, as torch)."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return y.contiguous(memory_format=torch.channels_last)
    return y


class _Interpolate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, backend, out_hw, nearest, align_corners, scales):
        ctx.cfg = (backend, tuple(x.shape[2:]), nearest, align_corners, scales)
        y = kernels.interpolate_forward[backend](x.contiguous(), out_hw, nearest, align_corners, scales)
        return _like_input_format(y, x)

    @staticmethod
    def backward(ctx, gy):
        backend, in_hw, nearest, align_corners, scales = ctx.cfg
        gx = kernels.interpolate_backward[backend](gy.contiguous(), in_hw, nearest, align_corners, scales)
        return gx, None, None, None, None, None


@public_op(reference=F.interpolate, check=_check_interpolate)
@follows_channels_last
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False, *, backend):
    out_hw, scales, nearest, align = _interp_plan(input, size, scale_factor, mode, align_corners,
                                                  recompute_scale_factor, antialias)
    if input.dim() == 3:  # (N, C, L) as a height-1 image
        return apply(_Interpolate, input.unsqueeze(2), backend, out_hw, nearest, align, scales).squeeze(2)
    return apply(_Interpolate, input, backend, out_hw, nearest, align, scales)


# ----------------------------------------------------------------------------------------------
# pixel_shuffle / pixel_unshuffle

def _factor(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return value


def _check_pixel_shuffle(input, upscale_factor):
    _checks.float_tensor(input, "input")
    r = _factor(upscale_factor, "upscale_factor")
    if input.dim() < 3:
        raise ValueError(f"input: expected at least 3 dims (*, C, H, W), got shape {tuple(input.shape)}")
    if input.shape[-3] % (r * r):
        raise ValueError(f"upscale_factor: input channels {input.shape[-3]} are not divisible by "
                         f"upscale_factor**2 = {r * r}")


def _check_pixel_unshuffle(input, downscale_factor):
    _checks.float_tensor(input, "input")
    r = _factor(downscale_factor, "downscale_factor")
    if input.dim() < 3:
        raise ValueError(f"input: expected at least 3 dims (*, C, H, W), got shape {tuple(input.shape)}")
    if input.shape[-2] % r or input.shape[-1] % r:
        raise ValueError(f"downscale_factor: input height and width {tuple(input.shape[-2:])} are not "
                         f"divisible by downscale_factor = {r}")


@owned_outputs
class _PixelShuffle(torch.autograd.Function):
    """to_space=True: pixel_shuffle; False: pixel_unshuffle. The backward is the other direction
    of the same permutation kernel."""

    @staticmethod
    def forward(ctx, x, backend, factor, to_space):
        ctx.cfg = (backend, factor, to_space, x.shape)
        return _permute(backend, x, factor, to_space)

    @staticmethod
    def backward(ctx, gy):
        backend, factor, to_space, x_shape = ctx.cfg
        return _permute(backend, gy, factor, not to_space).reshape(x_shape), None, None, None


def _permute(backend, x, factor, to_space):
    lead = x.shape[:-3]
    x4 = leading_merged(x.contiguous(), 3)
    y = kernels.pixel_shuffle[backend](x4, factor, to_space)
    return y.reshape(tuple(lead) + tuple(y.shape[1:]))


@public_op(reference=F.pixel_shuffle, check=_check_pixel_shuffle)
@follows_channels_last
def pixel_shuffle(input, upscale_factor, *, backend):
    return apply(_PixelShuffle, input, backend, upscale_factor, True)


@public_op(reference=F.pixel_unshuffle, check=_check_pixel_unshuffle)
@follows_channels_last
def pixel_unshuffle(input, downscale_factor, *, backend):
    return apply(_PixelShuffle, input, backend, downscale_factor, False)


# ----------------------------------------------------------------------------------------------
# unfold / fold (im2col / col2im)

def _conv_geometry(kernel_size, dilation, padding, stride):
    return (_checks.pair(kernel_size, "kernel_size", minimum=1), _checks.pair(dilation, "dilation", minimum=1),
            _checks.pair(padding, "padding", minimum=0), _checks.pair(stride, "stride", minimum=1))


def _blocks(in_hw, k, d, p, s, what):
    out = []
    for n, kk, dd, pp, ss, axis in zip(in_hw, k, d, p, s, ("height", "width")):
        span = dd * (kk - 1) + 1
        if n + 2 * pp < span:
            raise ValueError(f"kernel_size: dilated kernel {axis} {span} is larger than the padded {what} "
                             f"{axis} {n + 2 * pp}")
        out.append((n + 2 * pp - span) // ss + 1)
    return tuple(out)


def _check_unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    _checks.float_tensor(input, "input", ndims=(3, 4))
    k, d, p, s = _conv_geometry(kernel_size, dilation, padding, stride)
    _blocks(input.shape[-2:], k, d, p, s, "input")


def _check_fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    _checks.float_tensor(input, "input", ndims=(2, 3))
    out_hw = _checks.pair(output_size, "output_size", minimum=1)
    k, d, p, s = _conv_geometry(kernel_size, dilation, padding, stride)
    rs = k[0] * k[1]
    if input.shape[-2] % rs:
        raise ValueError(f"input: dimension -2 ({input.shape[-2]}) must be divisible by the kernel area "
                         f"kernel_size[0]*kernel_size[1] = {rs}")
    blocks = _blocks(out_hw, k, d, p, s, "output_size")
    if input.shape[-1] != blocks[0] * blocks[1]:
        raise ValueError(f"input: expected {blocks[0] * blocks[1]} blocks ({blocks[0]}x{blocks[1]}) in the last "
                         f"dimension for output_size={output_size!r}, got {input.shape[-1]}")


class _Unfold(torch.autograd.Function):
    """to_cols=True: unfold (im2col), backward col2im; False: fold (col2im), backward im2col."""

    @staticmethod
    def forward(ctx, x, backend, to_cols, img_hw, k, s, p, d, blocks_hw):
        ctx.cfg = (backend, to_cols, img_hw, k, s, p, d, blocks_hw)
        return _im2col_or_col2im(backend, x, to_cols, img_hw, k, s, p, d, blocks_hw)

    @staticmethod
    def backward(ctx, g):
        backend, to_cols, img_hw, k, s, p, d, blocks_hw = ctx.cfg
        return (_im2col_or_col2im(backend, g, not to_cols, img_hw, k, s, p, d, blocks_hw),
                None, None, None, None, None, None, None, None)


def _im2col_or_col2im(backend, t, to_cols, img_hw, k, s, p, d, blocks_hw):
    t = t.contiguous()
    if to_cols:
        return kernels.im2col[backend](t, k, s, p, d, blocks_hw)
    return kernels.col2im[backend](t, img_hw, k, s, p, d, blocks_hw)


@public_op(reference=F.unfold, check=_check_unfold)
def unfold(input, kernel_size, dilation=1, padding=0, stride=1, *, backend):
    k, d, p, s = _conv_geometry(kernel_size, dilation, padding, stride)
    batched = input.dim() == 4
    x = input if batched else input.unsqueeze(0)
    img_hw = tuple(x.shape[2:])
    cols = apply(_Unfold, x, backend, True, img_hw, k, s, p, d, _blocks(img_hw, k, d, p, s, "input"))
    return cols if batched else cols.squeeze(0)


@public_op(reference=F.fold, check=_check_fold)
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1, *, backend):
    k, d, p, s = _conv_geometry(kernel_size, dilation, padding, stride)
    img_hw = _checks.pair(output_size, "output_size", minimum=1)
    batched = input.dim() == 3
    cols = input if batched else input.unsqueeze(0)
    y = apply(_Unfold, cols, backend, False, img_hw, k, s, p, d, _blocks(img_hw, k, d, p, s, "output_size"))
    return y if batched else y.squeeze(0)


# ----------------------------------------------------------------------------------------------
# grid_sample

# Kernel codes of padding_mode (resample_coords.cuh's GridPadding).
GRID_PADDING = {"zeros": 0, "border": 1, "reflection": 2}
GRID_MODES = ("bilinear", "nearest")


def _grid_plan(input, grid, mode, padding_mode, align_corners) -> Tuple[int, bool, bool]:
    _checks.float_tensor(input, "input", ndims=4)
    _checks.float_tensor(grid, "grid", ndims=4)
    _checks.same_dtype_device(input, "input", grid, "grid")
    if grid.shape[0] != input.shape[0] or grid.shape[3] != 2:
        raise ValueError(f"grid: expected shape (N={input.shape[0]}, H_out, W_out, 2) for input of shape "
                         f"{tuple(input.shape)}, got {tuple(grid.shape)}")
    if min(input.shape[2:]) < 1:
        raise ValueError(f"input: expected non-empty spatial size, got {tuple(input.shape)}")
    for name, value in (("mode", mode), ("padding_mode", padding_mode)):
        if not isinstance(value, str):
            raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
    if mode == "bicubic":
        raise NotImplementedError(f"mode: fastcnn grid_sample supports {GRID_MODES}, got {mode!r}; "
                                  "use backend='reference'")
    if mode not in GRID_MODES:
        raise ValueError(f"mode: expected one of {GRID_MODES}, got {mode!r}")
    if padding_mode not in GRID_PADDING:
        raise ValueError(f"padding_mode: expected one of {tuple(GRID_PADDING)}, got {padding_mode!r}")
    if align_corners is not None and not isinstance(align_corners, bool):
        raise TypeError(f"align_corners: expected a bool or None, got {align_corners!r}")
    return GRID_PADDING[padding_mode], bool(align_corners), mode == "nearest"


def _check_grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    _grid_plan(input, grid, mode, padding_mode, align_corners)


class _GridSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, grid, backend, padding, align_corners, nearest):
        x, grid = x.contiguous(), grid.contiguous()
        ctx.save_for_backward(x, grid)
        ctx.cfg = (backend, padding, align_corners, nearest)
        return kernels.grid_sample_forward[backend](x, grid, padding, align_corners, nearest)

    @staticmethod
    def backward(ctx, gy):
        x, grid = ctx.saved_tensors
        backend, padding, align_corners, nearest = ctx.cfg
        gx, ggrid = kernels.grid_sample_backward[backend](gy.contiguous(), x, grid, padding, align_corners, nearest,
                                                          ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return gx, ggrid, None, None, None, None


def _grid_sample_reference(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    return F.grid_sample(input, grid, mode, padding_mode, bool(align_corners))


@public_op(reference=_grid_sample_reference, check=_check_grid_sample)
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners: Optional[bool] = None, *,
                backend):
    """align_corners=None means False (torch's default, without torch's warning)."""
    padding, align, nearest = _grid_plan(input, grid, mode, padding_mode, align_corners)
    return apply(_GridSample, input, grid, backend, padding, align, nearest)
