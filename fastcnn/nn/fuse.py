"""Folding an eval-mode BatchNorm into the convolution before it.

    y = bn(conv(x)) = gamma * (W*x + b - mean) / sqrt(var + eps) + beta
      = (W * s) * x + (b - mean) * s + beta,   s = gamma / sqrt(var + eps) per output channel.

fuse_conv_bn returns a fastcnn.nn.Conv2d when that module exists (fastcnn/nn/conv.py), else a
torch.nn.Conv2d with the same constructor arguments; both hold the folded weight and bias."""
from __future__ import annotations

import copy
from typing import Optional, Tuple

import torch

__all__ = ["fuse_conv_bn", "fuse_conv_bn_weights"]


def fuse_conv_bn_weights(conv_weight: torch.Tensor, conv_bias: Optional[torch.Tensor], running_mean: torch.Tensor,
                         running_var: torch.Tensor, eps: float, bn_weight: Optional[torch.Tensor],
                         bn_bias: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of the convolution equal to conv followed by the eval-mode batch norm, computed in float64."""
    K = conv_weight.shape[0]
    if running_mean is None or running_var is None:
        raise ValueError("bn: folding needs running statistics (track_running_stats=True)")
    if running_mean.shape != (K,):
        raise ValueError(f"bn: expected {K} channels (the conv's out_channels), got {running_mean.shape[0]}")
    f64 = dict(dtype=torch.float64)
    scale = torch.rsqrt(running_var.to(**f64) + eps)
    if bn_weight is not None:
        scale = scale * bn_weight.to(**f64)
    bias = conv_bias.to(**f64) if conv_bias is not None else torch.zeros(K, **f64, device=conv_weight.device)
    bias = (bias - running_mean.to(**f64)) * scale
    if bn_bias is not None:
        bias = bias + bn_bias.to(**f64)
    weight = conv_weight.to(**f64) * scale.reshape(-1, *([1] * (conv_weight.dim() - 1)))
    return weight.to(conv_weight.dtype), bias.to(conv_weight.dtype)


def _conv_class():
    try:
        from .conv import Conv2d  # fastcnn.nn.Conv2d (gemm family), when present
        return Conv2d
    except ImportError:
        return torch.nn.Conv2d


def fuse_conv_bn(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> torch.nn.Module:
    """A new Conv2d computing bn(conv(x)) for eval mode; conv and bn are left unchanged."""
    if not isinstance(conv, torch.nn.Conv2d):
        raise TypeError(f"conv: expected a torch.nn.Conv2d (or fastcnn.nn.Conv2d), got {type(conv).__name__}")
    if not isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
        raise TypeError(f"bn: expected a BatchNorm module, got {type(bn).__name__}")
    if getattr(conv, "activation", None) is not None:
        raise ValueError(f"conv: has a fused activation ({conv.activation!r}); bn(act(conv(x))) cannot be folded")
    if bn.training or conv.training:
        raise ValueError("bn: fusing is only valid in eval mode (call .eval() first); training uses batch statistics")
    weight, bias = fuse_conv_bn_weights(conv.weight.detach(), conv.bias.detach() if conv.bias is not None else None,
                                        bn.running_mean, bn.running_var, bn.eps,
                                        bn.weight.detach() if bn.weight is not None else None,
                                        bn.bias.detach() if bn.bias is not None else None)
    cls = _conv_class()
    fused = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                dilation=conv.dilation, groups=conv.groups, bias=True, padding_mode=conv.padding_mode,
                device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
    for name in ("backend", "algo"):  # keep fastcnn dispatch choices of the original conv
        if hasattr(conv, name) and hasattr(fused, name):
            setattr(fused, name, copy.copy(getattr(conv, name)))
    return fused.eval()
