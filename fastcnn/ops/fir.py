"""upfirdn2d: upsample by zero insertion, pad, FIR-filter, downsample (StyleGAN2/3's resampling op).

    upfirdn2d(x[N,C,H,W], f[kh,kw] or f[k] (separable), up=1, down=1, padding=0, flip_filter=False, gain=1)

For each image and channel: insert up-1 zeros after every sample (length H*up), pad by padding
(x0, x1, y0, y1; negative crops), convolve with f (true convolution unless flip_filter; a 1-D f is applied
along x and then y), keep every down-th sample. f is scaled by gain (gain**0.5 per pass for a 1-D f), so
gain = up**2 keeps the signal's magnitude through an upsampling. Output size per axis:
(in * up + pad0 + pad1 - k) // down + 1.

It runs on fastcnn's convolution kernels (forward and backward are theirs): an upsampling pass is one
depthwise conv_transpose2d with stride `up` (the zeros are never multiplied), a downsampling pass one
depthwise conv2d with stride `down`; padding and cropping are parameter-free glue. backend='reference'
is the zero-insertion formulation in plain torch (NVIDIA's _upfirdn2d_ref), the ground truth of the tests.
"""
from __future__ import annotations

from typing import Tuple

import torch.nn.functional as F

from .. import _checks
from ._op import public_op
from .conv import conv2d, conv_transpose2d

__all__ = ["upfirdn2d"]


def _pair(value, name) -> Tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise ValueError(f"{name}: expected a positive int or a pair (x, y) of positive ints, got {value!r}")
    return int(value[0]), int(value[1])


def _padding(padding) -> Tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from an int, (px, py) or (x0, x1, y0, y1)."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        return (padding,) * 4
    if isinstance(padding, (tuple, list)) and all(isinstance(p, int) and not isinstance(p, bool) for p in padding):
        if len(padding) == 2:
            return padding[0], padding[0], padding[1], padding[1]
        if len(padding) == 4:
            return tuple(padding)
    raise ValueError(f"padding: expected an int, (px, py) or (x0, x1, y0, y1) of ints, got {padding!r}")


def _out_size(n, up, down, p0, p1, k):
    return (n * up + p0 + p1 - k) // down + 1


def _check_upfirdn2d(input, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    _checks.float_tensor(input, "input", 4)
    _checks.float_tensor(f, "f", (1, 2))
    _checks.same_dtype_device(input, "input", f, "f")
    upx, upy = _pair(up, "up")
    downx, downy = _pair(down, "down")
    x0, x1, y0, y1 = _padding(padding)
    _checks.number(gain, "gain")
    kh, kw = (f.shape[0], f.shape[0]) if f.dim() == 1 else tuple(f.shape)
    H, W = input.shape[2:]
    if min(_out_size(W, upx, downx, x0, x1, kw), _out_size(H, upy, downy, y0, y1, kh)) < 1:
        raise ValueError(f"padding: input {H}x{W} upsampled by {(upx, upy)} and padded by {(x0, x1, y0, y1)} "
                         f"is smaller than the {kh}x{kw} filter")


def upfirdn2d_reference(input, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Plain torch: zero insertion, pad, depthwise conv2d with the flipped filter, subsample."""
    upx, upy = _pair(up, "up")
    downx, downy = _pair(down, "down")
    x0, x1, y0, y1 = _padding(padding)
    N, C, H, W = input.shape
    x = input.reshape(N, C, H, 1, W, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1]).reshape(N, C, H * upy, W * upx)
    x = F.pad(x, [x0, x1, y0, y1])
    f = f * (gain ** (f.dim() / 2))
    if not flip_filter:
        f = f.flip(list(range(f.dim())))
    if f.dim() == 2:
        x = F.conv2d(x, f[None, None].repeat(C, 1, 1, 1), groups=C)
    else:
        x = F.conv2d(x, f[None, None, None].repeat(C, 1, 1, 1), groups=C)
        x = F.conv2d(x, f[None, None, :, None].repeat(C, 1, 1, 1), groups=C)
    return x[:, :, ::downy, ::downx]


def _crop_or_pad(x, x0, x1, y0, y1):
    """Pads (positive) or crops (negative) the last two dims; nothing when all are 0."""
    return F.pad(x, [x0, x1, y0, y1]) if (x0, x1, y0, y1) != (0, 0, 0, 0) else x


def _fir_pass(x, taps, up, down, pads, backend):
    """One upfirdn pass with a 2-D filter taps[kh, kw] (already scaled) and per-axis up/down/pads.
    taps is used as a true convolution kernel (the flip for correlation is done by the caller)."""
    (upx, upy), (downx, downy), (x0, x1, y0, y1) = up, down, pads
    C = x.shape[1]
    kh, kw = taps.shape
    weight = taps[None, None].expand(C, 1, kh, kw).contiguous()
    if (upx, upy) == (1, 1):
        # y[o] = sum_k xpad[o*down + k] * flip(taps)[k]: a strided depthwise correlation with the flip
        x = _crop_or_pad(x, x0, x1, y0, y1)
        return conv2d(x, weight.flip([2, 3]), None, (downy, downx), 0, 1, C, backend=backend)
    # conv_transpose2d(x, taps, stride=up) gives T[t] = sum_i x[i] taps[t - i*up] (length (n-1)*up + k);
    # the upfirdn output is T[o + k - 1 - pad0] for o < n*up + pad0 + pad1 - k + 1.
    t = conv_transpose2d(x, weight, None, (upy, upx), 0, 0, C, backend=backend)
    t = _crop_or_pad(t, x0 - (kw - 1), upx + x1 - kw, y0 - (kh - 1), upy + y1 - kh)
    if (downx, downy) != (1, 1):
        t = t[:, :, ::downy, ::downx]
    return t


@public_op(reference=upfirdn2d_reference, check=_check_upfirdn2d)
def upfirdn2d(input, f, up=1, down=1, padding=0, flip_filter=False, gain=1, *, backend):
    """Upsample (zero insertion), pad, FIR-filter with f and downsample; see the module docstring."""
    up, down, pads = _pair(up, "up"), _pair(down, "down"), _padding(padding)
    # taps: the true-convolution kernel (NVIDIA's convention: flip_filter=False convolves with f)
    taps = f.flip(list(range(f.dim()))) if flip_filter else f
    if f.dim() == 2:
        return _fir_pass(input, taps * gain, up, down, pads, backend)
    scale = gain ** 0.5  # a separable filter: along x, then along y
    x = _fir_pass(input, (taps * scale)[None, :], (up[0], 1), (down[0], 1), pads[:2] + (0, 0), backend)
    return _fir_pass(x, (taps * scale)[:, None], (1, up[1]), (1, down[1]), (0, 0) + pads[2:], backend)
