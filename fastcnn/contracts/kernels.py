"""The kernel table: every kernel a backend may provide, declared once, with its signature.

An op reaches its kernel through a slot of this table, `kernels.<slot>[backend](...)`, and every
backend registers its implementation with the same object, `@cpu_kernel(kernels.<slot>)` (likewise
`@cuda_kernel`, `@triton_kernel`); KernelSlot (fastcnn/_registry.py) does the lookup. So "find
references" on a slot lists the op that calls it and each backend's kernel. A backend need not
provide every slot (`slot.offered_by(backend)`); one it provides has exactly this signature.

Conventions (docs/DEVELOPING.md): tensors arrive checked, contiguous (NCHW, or channels_last where
the op says so) and float32/float64; a kernel returns new tensors, or writes `out=` when given.
The convolution slots take the ConvShape record of fastcnn/contracts/conv.py; one slot per pass and
algorithm, `conv2d_forward.direct`, ..., and `conv2d_forward.algo(name)` for a name chosen at run
time (fastcnn/ops/_conv_algo.py).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from .._registry import KernelSlot


# ------------------------------------------------------------------------------------ activation
activation_forward = KernelSlot("activation_forward", "(x, kind, p0=0.0, p1=0.0, out=None) -> y")
activation_backward = KernelSlot(
    "activation_backward", "(gy, saved, kind, p0=0.0, p1=0.0, from_output=True) -> gx  # saved: y or x")
prelu_forward = KernelSlot("prelu_forward", "(x[N,C,S], weight[C] | [1]) -> y")
prelu_backward = KernelSlot("prelu_backward", "(gy, x, weight) -> (gx, gweight)")
maxout_forward = KernelSlot("maxout_forward", "(x[N,C,S], pool_size) -> y[N,C/pool_size,S]")
maxout_backward = KernelSlot("maxout_backward", "(gy, x, pool_size) -> gx")

# ---------------------------------------------------------------------------------- convolution
CONV_ALGOS: Tuple[str, ...] = ("direct", "im2col", "fft", "winograd", "implicit_gemm")


class ConvPass:
    """One pass of the convolution with a slot per algorithm (`conv2d_forward.direct`, ...);
    `algo(name)` for an algorithm chosen at run time. Slot names are '<pass>.<algo>'."""

    def __init__(self, name: str, signature: str):
        self.name = name
        slot = lambda algo: KernelSlot(f"{name}.{algo}", signature)  # noqa: E731
        self.direct, self.im2col, self.fft, self.winograd, self.implicit_gemm = (slot(a) for a in CONV_ALGOS)
        self._by_algo = {s.name.rsplit(".", 1)[1]: s for s in (
            self.direct, self.im2col, self.fft, self.winograd, self.implicit_gemm)}

    def algo(self, name: str) -> KernelSlot:
        slot = self._by_algo.get(name)
        if slot is None:
            raise ValueError(f"algo: expected one of {CONV_ALGOS}, got {name!r}")
        return slot

    def slots(self) -> List[KernelSlot]:
        return list(self._by_algo.values())

    def __repr__(self) -> str:
        return f"ConvPass({self.name!r}: {', '.join(self._by_algo)})"


conv2d_forward = ConvPass(
    "conv2d_forward", "(x[N,C,H,W], w[K,C/G,R,S], bias[K] | None, shape: ConvShape, activation=None, act_param=0.0)"
    " -> y[N,K,P,Q]  # activation: a fusable name of contracts.activation, applied after the bias")
conv2d_backward_input = ConvPass("conv2d_backward_input", "(gy[N,K,P,Q], w, shape: ConvShape) -> gx[N,C,H,W]")
conv2d_backward_weight = ConvPass("conv2d_backward_weight", "(x, gy, shape: ConvShape) -> gw[K,C/G,R,S]")
CONV_PASSES: Dict[str, ConvPass] = {p.name: p for p in (conv2d_forward, conv2d_backward_input, conv2d_backward_weight)}

channel_sum = KernelSlot("channel_sum", "(t[N,C,H,W]) -> s[C]  # the bias gradient")
channel_bias_act = KernelSlot("channel_bias_act", "(y[N,C,H,W], bias[C], activation=None, act_param=0.0) -> None"
                                                  "  # in place: y = act(y + bias)")
im2col = KernelSlot("im2col", "(x[N,C,H,W], kernel_hw, stride, padding, dilation, out_hw) -> cols[N,C*R*S,P*Q]")
col2im = KernelSlot("col2im", "(cols[N,C*R*S,P*Q], in_hw, kernel_hw, stride, padding, dilation, out_hw) -> x")

# ----------------------------------------------------------------------------------------- gemm
gemm = KernelSlot("gemm", "(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None)"
                          " -> alpha*op(a)@op(b) + beta*out  # 2-D, or 3-D batched")

# ----------------------------------------------------------------------------------------- pool
max_pool2d_forward = KernelSlot(
    "max_pool2d_forward", "(x, kernel_size, stride, padding, dilation, out_hw, with_indices) -> (y, indices | None)")
avg_pool2d_forward = KernelSlot(
    "avg_pool2d_forward", "(x, kernel_size, stride, padding, out_hw, count_include_pad, divisor_override) -> y")
avg_pool2d_backward = KernelSlot(
    "avg_pool2d_backward", "(gy, in_hw, kernel_size, stride, padding, count_include_pad, divisor_override) -> gx")
adaptive_avg_pool2d_forward = KernelSlot("adaptive_avg_pool2d_forward", "(x, out_hw) -> y")
adaptive_avg_pool2d_backward = KernelSlot("adaptive_avg_pool2d_backward", "(gy, in_hw) -> gx")
adaptive_max_pool2d_forward = KernelSlot("adaptive_max_pool2d_forward", "(x, out_hw) -> (y, indices)")
pool_index_scatter = KernelSlot(
    "pool_index_scatter", "(src, indices, out_hw, accumulate) -> out  # out[.., indices] (+)= src: max-pool backward")
pool_index_gather = KernelSlot("pool_index_gather", "(src, indices) -> src[.., indices]")

# ----------------------------------------------------------------------------------------- norm
batch_norm_forward = KernelSlot(
    "batch_norm_forward",
    "(x[N,C,S], weight, bias, running_mean, running_var, training, momentum, eps) -> (y, mean, invstd)")
batch_norm_backward = KernelSlot(
    "batch_norm_backward",
    "(gy, x, weight, mean, invstd, training, need_input, need_weight, need_bias) -> (gx, gweight, gbias)")
group_rows_forward = KernelSlot(
    "group_rows_forward", "(x, groups, span, weight, bias, eps, running_mean, running_var, momentum) -> (y, mean, rstd)"
                          "  # group/layer/instance norm")
group_rows_backward = KernelSlot(
    "group_rows_backward",
    "(gy, x, groups, span, weight, mean, rstd, need_input, need_weight, need_bias) -> (gx, gweight, gbias)")
local_response_norm_forward = KernelSlot(
    "local_response_norm_forward", "(x[N,C,S], size, alpha, beta, k) -> (y, scale)")
local_response_norm_backward = KernelSlot(
    "local_response_norm_backward", "(gy, x, scale, size, alpha, beta) -> gx")
normalize_forward = KernelSlot("normalize_forward", "(x[outer,D,inner], p, eps) -> (y, norm)  # F.normalize")
normalize_backward = KernelSlot("normalize_backward", "(gy, x, norm, p, eps) -> gx")
spectral_norm_forward = KernelSlot(
    "spectral_norm_forward",
    "(w, dim, u[w.shape[dim]], v[rest], n_power_iterations, eps) -> (y = w / sigma, u_used, v_used, "
    "sigma float64 0-D)  # u, v updated in place")
spectral_norm_backward = KernelSlot("spectral_norm_backward", "(gy, y, dim, u_used, v_used, sigma) -> gw")

# ----------------------------------------------------------------------------------------- loss
cross_entropy_forward = KernelSlot(
    "cross_entropy_forward",
    "(x[N,C,S], target, weight, ignore_index, label_smoothing) -> (loss, weight_of_target, lse)")
cross_entropy_backward = KernelSlot(
    "cross_entropy_backward", "(x, target, weight, lse, ignore_index, label_smoothing, g) -> gx")
soft_cross_entropy_forward = KernelSlot(
    "soft_cross_entropy_forward", "(x, target_probs, weight, label_smoothing) -> (loss, lse)")
soft_cross_entropy_backward = KernelSlot(
    "soft_cross_entropy_backward",
    "(x, target_probs, weight, lse, label_smoothing, g, need_input, need_target) -> (gx, gtarget)")
nll_loss_forward = KernelSlot("nll_loss_forward", "(x, target, weight, ignore_index) -> (loss, weight_of_target)")
nll_loss_backward = KernelSlot("nll_loss_backward", "(target, weight, ignore_index, g, shape) -> gx")
pointwise_loss_forward = KernelSlot("pointwise_loss_forward", "(kind, x, y, weight, pos_weight) -> loss")
pointwise_loss_sum = KernelSlot(
    "pointwise_loss_sum", "(kind, x, y, weight, pos_weight) -> float64 0-D sum  # no loss tensor written")
pointwise_loss_backward = KernelSlot("pointwise_loss_backward", "(kind, x, y, weight, pos_weight, g) -> gx")
loss_sum = KernelSlot("loss_sum", "(v) -> float64 0-D sum")

# -------------------------------------------------------------------------------------- softmax
softmax_forward = KernelSlot("softmax_forward", "(x[outer,D,inner], log) -> y")
softmax_backward = KernelSlot("softmax_backward", "(gy, y, log) -> gx")

# -------------------------------------------------------------------------------------- dropout
dropout_masked_scale = KernelSlot(
    "dropout_masked_scale", "(x, keep, group, scale, out=None) -> x * keep * scale  # a keep flag per group")

# ------------------------------------------------------------------------------------------ pad
pad2d_forward = KernelSlot(
    "pad2d_forward", "(x, top, bottom, left, right, mode, value) -> y  # mode: int code (ops/pad.py MODES)")
pad2d_backward = KernelSlot("pad2d_backward", "(gy, H, W, top, bottom, left, right, mode) -> gx")

# ------------------------------------------------------------------------------------- resample
interpolate_forward = KernelSlot("interpolate_forward", "(x, out_hw, nearest, align_corners, scales) -> y")
interpolate_backward = KernelSlot("interpolate_backward", "(gy, in_hw, nearest, align_corners, scales) -> gx")
pixel_shuffle = KernelSlot("pixel_shuffle", "(x, factor, to_space) -> y  # unshuffle when not to_space")
grid_sample_forward = KernelSlot("grid_sample_forward", "(x, grid, padding, align_corners, nearest) -> y")
grid_sample_backward = KernelSlot(
    "grid_sample_backward", "(gy, x, grid, padding, align_corners, nearest, need_input, need_grid) -> (gx, ggrid)")


def declared() -> Dict[str, KernelSlot]:
    """Name -> slot of every kernel in this table (the conv passes contribute one per algorithm)."""
    out: Dict[str, KernelSlot] = {}
    for value in globals().values():
        for slot in value.slots() if isinstance(value, ConvPass) else [value]:
            if isinstance(slot, KernelSlot):
                out[slot.name] = slot
    return out
