"""Activation math as @triton.jit helpers, shared by the activation kernels and fused epilogues.
KIND numbers match fastcnn.contracts.activation.ACT_KIND (and csrc/common/activation_math.h)."""
import triton
import triton.language as tl


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _tanh(x):
    # tanh(x) = sign(x) * (1 - e) / (1 + e) with e = exp(-2|x|): no overflow, no cancellation for
    # large |x|; small |x| uses the odd series to keep relative accuracy.
    ax = tl.abs(x)
    e = tl.exp(-2.0 * ax)
    big = (1.0 - e) / (1.0 + e)
    z = x * x
    small = ax * (1.0 + z * (-1.0 / 3.0 + z * (2.0 / 15.0 + z * (-17.0 / 315.0 + z * (62.0 / 2835.0)))))
    t = tl.where(ax < 0.0625, small, big)
    return tl.where(x < 0, -t, t)


@triton.jit
def _expm1(x):
    # Kahan's expm1: (u - 1) * x / log(u) with u = exp(x) cancels the rounding of u, accurate to a
    # few ulp in float32 and float64 alike, where exp(x) - 1 loses all digits near 0.
    u = tl.exp(x)
    um1 = u - 1.0
    log_u = tl.where(u == 1.0, 1.0, tl.log(u))  # the u == 1 lane is replaced below: avoid 0/0
    return tl.where(u == 1.0, x, tl.where(um1 == -1.0, -1.0, um1 * x / log_u))


@triton.jit
def _log1p(t):
    # log(1 + t) for t >= 0 without losing t's digits when 1 + t rounds (softplus far below 0):
    # log(w) * t / (w - 1) with w = 1 + t cancels the rounding of w (Goldberg), t itself when w == 1.
    w = 1.0 + t
    return tl.where(w == 1.0, t, tl.log(w) * t / tl.where(w == 1.0, 1.0, w - 1.0))


@triton.jit
def _gelu_tanh_parts(x):
    """(sigmoid(2u), sigmoid(-2u), du/dx) for gelu's tanh approximation, u = sqrt(2/pi) (x + 0.044715 x^3):
    0.5 (1 + tanh u) and 0.5 (1 - tanh u) as sigmoids, which do not cancel in the tails."""
    x2 = x * x
    u = x * (0.7978845608028654 + 0.035677408136300125 * x2)
    e = tl.exp(-2.0 * tl.abs(u))
    big = 1.0 / (1.0 + e)
    small = e * big
    return tl.where(u >= 0, big, small), tl.where(u >= 0, small, big), 0.7978845608028654 + 0.10703222440890037 * x2


@triton.jit
def act_forward(x, KIND: tl.constexpr, p0, p1):
    if KIND == 1:
        y = tl.maximum(x, 0.0, propagate_nan=tl.PropagateNan.ALL)
    elif KIND == 2:
        y = tl.where(x > 0, x, x * p0)
    elif KIND == 3:
        y = tl.where(x > 0, x, p0 * _expm1(x))
    elif KIND == 4:
        y = _sigmoid(x)
    elif KIND == 5:
        y = _tanh(x)
    elif KIND == 6:
        z = x * p0
        # log1p(exp(z)) = max(z, 0) + log(1 + exp(-|z|)), linear above the threshold like torch
        soft = (tl.maximum(z, 0.0) + _log1p(tl.exp(-tl.abs(z)))) / p0
        y = tl.where(z > p1, x, soft)
    elif KIND == 7:
        y = tl.where(x > 0, 1.0, tl.where(x == 0, p0, 0.0)) + 0.0 * x
    elif KIND == 8:
        y = x * _sigmoid(x)
    elif KIND == 9:
        y = 0.5 * x * (1.0 + tl.erf(x * 0.7071067811865476))
    elif KIND == 10:
        s_pos, s_neg, du = _gelu_tanh_parts(x)
        y = x * s_pos
    elif KIND == 11:
        y = x * tl.minimum(tl.maximum(x + 3.0, 0.0, propagate_nan=tl.PropagateNan.ALL), 6.0,
                           propagate_nan=tl.PropagateNan.ALL) / 6.0
    elif KIND == 12:
        y = tl.minimum(tl.maximum(x + 3.0, 0.0, propagate_nan=tl.PropagateNan.ALL), 6.0,
                       propagate_nan=tl.PropagateNan.ALL) / 6.0
    else:
        y = x
    return y


@triton.jit
def act_backward(gy, s, KIND: tl.constexpr, FROM_OUTPUT: tl.constexpr, p0, p1):
    """dL/dx from dL/dy and the saved output (FROM_OUTPUT) or input s."""
    if KIND == 1:
        g = tl.where(s > 0, gy, 0.0)
    elif KIND == 2:
        g = tl.where(s > 0, gy, gy * p0)
    elif KIND == 3:
        if FROM_OUTPUT:
            g = tl.where(s > 0, gy, gy * (s + p0))
        else:
            g = tl.where(s > 0, gy, gy * p0 * tl.exp(s))
    elif KIND == 4:
        if FROM_OUTPUT:
            y = s
        else:
            y = _sigmoid(s)
        g = gy * y * (1.0 - y)
    elif KIND == 5:
        if FROM_OUTPUT:
            y = s
        else:
            y = _tanh(s)
        g = gy * (1.0 - y * y)
    elif KIND == 6:
        z = s * p0
        g = tl.where(z > p1, gy, gy * _sigmoid(z))
    elif KIND == 7:
        g = gy * 0.0
    elif KIND == 8:  # from here on s is the input
        sg = _sigmoid(s)
        g = gy * sg * (1.0 + s * (1.0 - sg))
    elif KIND == 9:  # Phi(x) + x phi(x)
        g = gy * (0.5 * (1.0 + tl.erf(s * 0.7071067811865476)) + s * 0.3989422804014327 * tl.exp(-0.5 * s * s))
    elif KIND == 10:
        s_pos, s_neg, du = _gelu_tanh_parts(s)
        g = gy * (s_pos + 2.0 * s * s_pos * s_neg * du)
    elif KIND == 11:  # torch's: 0 at x <= -3, x/3 + 1/2 below 3, else (from 3, and NaN) 1
        g = tl.where(s <= -3.0, 0.0, tl.where(s < 3.0, gy * (s / 3.0 + 0.5), gy))
    elif KIND == 12:
        g = tl.where((s > -3.0) & (s < 3.0), gy / 6.0, 0.0)
    else:
        g = gy
    return g
