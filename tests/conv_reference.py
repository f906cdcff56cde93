"""Convolution test cases and the float64 torch reference shared by the triton and cuda kernel tests
(tests/backends/triton/test_triton_conv.py, tests/backends/cuda/test_cuda_conv.py): the kernel interface's padding rule is top/left
padding given, the bottom/right padding implied by out_hw (negative: rows are cut off)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from hypothesis import strategies as st


@dataclass(frozen=True)
class Case:
    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1
    out_hw: Optional[Tuple[int, int]] = None  # default: as torch with symmetric padding

    def __post_init__(self):
        if self.out_hw is None:
            object.__setattr__(self, "out_hw", tuple(
                (size + 2 * p - d * (k - 1) - 1) // s + 1 for size, p, d, k, s in zip(
                    (self.H, self.W), self.padding, self.dilation, (self.R, self.S), self.stride)))

    @property
    def fft_ok(self):
        return self.stride == (1, 1) and self.dilation == (1, 1)

    def __str__(self):
        return self.name

    __repr__ = __str__


def reference_conv(x, w, bias, case: Case):
    """conv2d with top/left padding `padding` and the bottom/right padding implied by out_hw."""
    (P, Q), (ph, pw), (sh, sw), (dh, dw) = case.out_hw, case.padding, case.stride, case.dilation
    bottom = (P - 1) * sh + dh * (case.R - 1) + 1 - case.H - ph
    right = (Q - 1) * sw + dw * (case.S - 1) + 1 - case.W - pw
    return F.conv2d(F.pad(x, (pw, right, ph, bottom)), w, bias, case.stride, 0, case.dilation, case.groups)


# The fused activations in torch: f(y, act_param) (leaky_relu's slope, elu's alpha).
TORCH_ACTIVATIONS = {
    None: lambda y, a: y,
    "relu": lambda y, a: F.relu(y),
    "leaky_relu": lambda y, a: F.leaky_relu(y, a),
    "elu": lambda y, a: F.elu(y, a),
    "sigmoid": lambda y, a: torch.sigmoid(y),
    "tanh": lambda y, a: torch.tanh(y),
}


def conv_cases(name: str, max_per_group: int, max_size: int):
    """Hypothesis strategy: a random valid convolution geometry (1 to 3 groups of up to max_per_group
    channels, inputs up to max_size square, the kernel always fits once padded)."""
    @st.composite
    def cases(draw):
        groups = draw(st.sampled_from([1, 2, 3]))
        C, K = groups * draw(st.integers(1, max_per_group)), groups * draw(st.integers(1, max_per_group))
        R, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        H = draw(st.integers(max(1, dilation[0] * (R - 1) + 1 - 2 * padding[0]), max_size))
        W = draw(st.integers(max(1, dilation[1] * (S - 1) + 1 - 2 * padding[1]), max_size))
        return Case(name, draw(st.integers(1, 2)), C, H, W, K, R, S, stride, padding, dilation, groups)
    return cases()


def conv_kernel(backend: str, slot):
    """spelled_out(slot[backend], slot.name): a slot of fastcnn/contracts/kernels.py."""
    return spelled_out(slot[backend], slot.name)


def spelled_out(fn, name: str):
    """The convolution kernel `fn` registered as `name` (fastcnn/contracts/conv.py signature), called the way
    these tests spell a case out: the geometry's pieces, from which the ConvShape record is built
    (and checked) as fastcnn.ops builds it.
        conv2d_forward.*(x, w, bias, stride, padding, dilation, groups, out_hw, activation, act_param)
        conv2d_backward_input.*(gy, w, in_hw, stride, padding, dilation, groups)
        conv2d_backward_weight.*(x, gy, kernel_hw, stride, padding, dilation, groups)
    Keyword arguments (a pinned fft `tile=`) pass through."""
    from fastcnn.contracts.conv import ConvShape

    direction = name.split(".")[0]
    if direction == "conv2d_forward":
        def call(x, w, bias, stride, padding, dilation, groups, out_hw, activation=None, act_param=0.0, **kw):
            shape = ConvShape.of(x.shape, w.shape, stride, padding, dilation, groups, out_hw)
            return fn(x, w, bias, shape, activation, act_param, **kw)
    elif direction == "conv2d_backward_input":
        def call(gy, w, in_hw, stride, padding, dilation, groups, **kw):
            x_shape = (gy.shape[0], w.shape[1] * groups, *in_hw)
            return fn(gy, w, ConvShape.of(x_shape, w.shape, stride, padding, dilation, groups, gy.shape[2:]), **kw)
    elif direction == "conv2d_backward_weight":
        def call(x, gy, kernel_hw, stride, padding, dilation, groups, **kw):
            w_shape = (gy.shape[1], x.shape[1] // groups, *kernel_hw)
            return fn(x, gy, ConvShape.of(x.shape, w_shape, stride, padding, dilation, groups, gy.shape[2:]), **kw)
    else:
        return fn
    return call
