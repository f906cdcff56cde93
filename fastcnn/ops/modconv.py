"""modulated_conv2d: StyleGAN2/3's style-modulated, demodulated convolution.

    modulated_conv2d(x[N,I,H,W], weight[O,I,kh,kw], styles[N,I], demodulate=True, padding=0, input_gain=None)

Each sample n convolves with its own weight w_n[o,i] = weight[o,i] * styles[n,i] (then, if demodulate,
scaled by 1/sqrt(sum_{i,k} w_n[o,i,k]^2 + 1e-8) so every output channel has unit expected variance;
input_gain[I] or [N,I] scales the input channels). As in the reference (NVIDIA stylegan3, modulated_conv2d),
the weight and the styles are first normalised by their rms when demodulating (fp16 range; no effect on
the result), and all N convolutions run as ONE grouped convolution with groups = N over the input viewed
as [1, N*I, H, W]. The weight arithmetic is parameter-free glue on [N,O,I,kh,kw]; the convolution is
fastcnn's conv2d (forward and backward kernels), backend='reference' is torch's.
"""
from __future__ import annotations

import torch.nn.functional as F

from .. import _checks
from ._op import public_op
from .conv import conv2d

__all__ = ["modulated_conv2d"]


def _check_modulated_conv2d(input, weight, styles, demodulate=True, padding=0, input_gain=None):
    _checks.float_tensor(input, "input", 4)
    _checks.float_tensor(weight, "weight", 4)
    _checks.float_tensor(styles, "styles", 2)
    for t, name in ((weight, "weight"), (styles, "styles")):
        _checks.same_dtype_device(input, "input", t, name)
    N, I = input.shape[:2]
    if weight.shape[1] != I:
        raise ValueError(f"weight: expected {I} input channels in dim 1 (input's channels), got shape "
                         f"{tuple(weight.shape)}")
    if tuple(styles.shape) != (N, I):
        raise ValueError(f"styles: expected shape {(N, I)} (batch, input channels), got {tuple(styles.shape)}")
    if input_gain is not None:
        _checks.float_tensor(input_gain, "input_gain")
        if input_gain.numel() not in (1, I, N * I):
            raise ValueError(f"input_gain: expected a scalar, [{I}] or [{N}, {I}] values, got shape "
                             f"{tuple(input_gain.shape)}")


def modulated_weight(weight, styles, demodulate=True, input_gain=None):
    """The per-sample weights [N, O, I, kh, kw] (glue shared by the kernel and reference paths)."""
    N, I = styles.shape
    if demodulate:  # pre-normalise (the reference's fp16 safeguard; cancels out below)
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.reshape(N, 1, I, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    if input_gain is not None:
        w = w * input_gain.expand(N, I).reshape(N, 1, I, 1, 1)
    return w


def _grouped(conv, input, weight, styles, demodulate, padding, input_gain, **kw):
    N, I, H, W = input.shape
    w = modulated_weight(weight, styles, demodulate, input_gain)
    y = conv(input.reshape(1, N * I, H, W), w.reshape(-1, I, *weight.shape[2:]), None, 1, padding, 1, N, **kw)
    return y.reshape(N, -1, *y.shape[2:])


def modulated_conv2d_reference(input, weight, styles, demodulate=True, padding=0, input_gain=None):
    return _grouped(F.conv2d, input, weight, styles, demodulate, padding, input_gain)


@public_op(reference=modulated_conv2d_reference, check=_check_modulated_conv2d)
def modulated_conv2d(input, weight, styles, demodulate=True, padding=0, input_gain=None, *, backend):
    """Style-modulated (and demodulated) convolution as one grouped fastcnn conv2d; see the module docstring."""
    return _grouped(conv2d, input, weight, styles, demodulate, padding, input_gain, backend=backend)
