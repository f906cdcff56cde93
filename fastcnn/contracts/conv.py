"""The convolution contract: one record of every size of a 2-D convolution.

`fastcnn.ops.conv2d` / `conv_transpose2d` build a ConvShape once per call (in the argument check,
remembered per configuration) and hand it down unchanged: the algorithm choice, every backend's
kernel and the C++ / CUDA side receive it. The field order is the one order everywhere:
fastcnn/kernels/shared/conv_shape.cuh (the one ConvShape struct of the cpu kernels in csrc/ and of the
CUDA kernels) and the flat list `list(shape)` every C++ convolution binding takes.

Kernel signatures (same name and signature on every backend; tensors contiguous NCHW, one dtype):
    conv2d_forward.<algo>(x[N,C,H,W], w[K,C/G,R,S], bias[K] | None, shape, activation, act_param) -> y[N,K,P,Q]
    conv2d_backward_input.<algo>(gy[N,K,P,Q], w, shape) -> gx[N,C,H,W]
    conv2d_backward_weight.<algo>(x, gy, shape) -> gw[K,C/G,R,S]
`shape` describes the forward convolution (for conv_transpose2d: the one it is the adjoint of).
ph/pw are the top/left padding; the bottom/right padding follows from P, Q.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple


class ConvShape(NamedTuple):
    N: int  # batch
    C: int  # input channels
    H: int
    W: int
    K: int  # output channels
    R: int  # kernel height, width
    S: int
    P: int  # output height, width
    Q: int
    sh: int  # stride
    sw: int
    ph: int  # top / left padding
    pw: int
    dh: int  # dilation
    dw: int
    G: int  # groups

    @classmethod
    def of(cls, x_shape, w_shape, stride, padding, dilation, groups, out_hw) -> "ConvShape":
        """The record of a convolution of an x_shape input with a w_shape [K, C/G, R, S] weight,
        checked for consistency (ValueError naming the argument): what a kernel called directly needs."""
        n, c, h, w = (int(v) for v in x_shape)
        k, cg, r, s = (int(v) for v in w_shape)
        shape = cls(n, c, h, w, k, r, s, *_pair(out_hw, "out_hw"), *_pair(stride, "stride"),
                    *_pair(padding, "padding"), *_pair(dilation, "dilation"), int(groups))
        if min(shape.sh, shape.sw, shape.dh, shape.dw, shape.G, r, s) < 1 or min(shape.ph, shape.pw, shape.P,
                                                                                   shape.Q) < 0:
            raise ValueError("stride, dilation, groups and kernel size must be >= 1; padding and out_hw >= 0")
        if c % shape.G or k % shape.G:
            raise ValueError(f"groups: {shape.G} must divide the input channels {c} and output channels {k}")
        if cg * shape.G != c:
            raise ValueError(f"weight: expected {c // shape.G} input channels per group, got {cg}")
        return shape

    def check(self, x_shape=None, w_shape=None, y_shape=None) -> "ConvShape":
        """ValueError unless the given tensor shapes are this convolution's input, weight and output
        (kernels that hand raw addresses to C++ call it: a wrong record would read out of bounds)."""
        for name, got, want in (("input", x_shape, self.x_shape), ("weight", w_shape, self.w_shape),
                                ("grad_output", y_shape, self.y_shape)):
            if got is not None and tuple(got) != want:
                raise ValueError(f"{name}: expected shape {want} for this convolution, got {tuple(got)}")
        return self

    def input_gradient_correlation(self) -> "ConvShape":
        """The stride-1 correlation that gives this convolution's input gradient: gy [N, K, P, Q] with
        the flipped, channel-transposed kernels, top/left padding (R-1)*dh - ph (negative: the reads
        start inside gy), output [N, C, H, W]. Valid for stride 1; the C++ twin is conv_shape.cuh's
        input_gradient_correlation."""
        return ConvShape(self.N, self.K, self.P, self.Q, self.C, self.R, self.S, self.H, self.W, 1, 1,
                         (self.R - 1) * self.dh - self.ph, (self.S - 1) * self.dw - self.pw, self.dh, self.dw, self.G)

    @property
    def stride(self) -> Tuple[int, int]:
        return self.sh, self.sw

    @property
    def padding(self) -> Tuple[int, int]:
        return self.ph, self.pw

    @property
    def dilation(self) -> Tuple[int, int]:
        return self.dh, self.dw

    @property
    def groups(self) -> int:
        return self.G

    @property
    def in_hw(self) -> Tuple[int, int]:
        return self.H, self.W

    @property
    def kernel_hw(self) -> Tuple[int, int]:
        return self.R, self.S

    @property
    def out_hw(self) -> Tuple[int, int]:
        return self.P, self.Q

    @property
    def Cg(self) -> int:
        return self.C // self.G

    @property
    def Kg(self) -> int:
        return self.K // self.G

    @property
    def x_shape(self) -> Tuple[int, int, int, int]:
        return self.N, self.C, self.H, self.W

    @property
    def w_shape(self) -> Tuple[int, int, int, int]:
        return self.K, self.C // self.G, self.R, self.S

    @property
    def y_shape(self) -> Tuple[int, int, int, int]:
        return self.N, self.K, self.P, self.Q


def why_not_applicable(algo: str, stride, dilation, kernel_hw=None) -> Optional[str]:
    """Why algorithm `algo` cannot run a convolution of this stride, dilation and kernel size, as a
    message naming the argument (None if it can; kernel_hw None: not checked). The one statement of
    the algorithms' limits: fft and winograd transform unit-stride, undilated tiles, winograd only
    3x3 kernels. The ops layer's algorithm choice and every backend's fft / winograd kernels ask it."""
    if algo == "winograd" and kernel_hw is not None and tuple(kernel_hw) != (3, 3):
        return (f"weight: algo='winograd' takes 3x3 kernels only, got {tuple(kernel_hw)}; "
                "use algo='direct', 'im2col', 'fft' or 'auto'")
    if algo in ("fft", "winograd"):
        for name, value in (("stride", stride), ("dilation", dilation)):
            if tuple(value) != (1, 1):
                return (f"{name}: algo='{algo}' takes {name} 1 only, got {tuple(value)}; "
                        "use algo='direct', 'im2col' or 'auto'")
    return None


def check_applicable(algo: str, shape: ConvShape, what: str) -> None:
    """ValueError with why_not_applicable's message (and `what`, the kernel) unless `algo` can run
    convolution `shape` (the fft and winograd kernels of every backend call it first)."""
    reason = why_not_applicable(algo, shape.stride, shape.dilation, shape.kernel_hw)
    if reason:
        raise ValueError(f"{reason} ({what})")


def check_winograd(kernel_hw, stride, dilation, what: str) -> None:
    """check_applicable for algo='winograd' from the separate sizes (`what`: the kernel)."""
    reason = why_not_applicable("winograd", stride, dilation, kernel_hw)
    if reason:
        raise ValueError(f"{reason} ({what})")


def _pair(value, name) -> Tuple[int, int]:
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a pair of ints, got {value!r}") from None
    return a, b
