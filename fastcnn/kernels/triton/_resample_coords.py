"""@triton.jit coordinate helpers of the resampling kernels: the Triton transcription of
fastcnn/kernels/cuda/resample_coords.cuh (torch's conventions). Axis kinds (chosen on the host by
fastcnn.kernels.triton.resample.axis_params):
  0 identity (out == in), 1 nearest with out == 2 * in (d >> 1), 2 nearest, 3 linear.
"""
import triton
import triton.language as tl

IDENTITY, NEAREST_DOUBLE, NEAREST, LINEAR = 0, 1, 2, 3


@triton.jit
def axis_taps(d, n_in, ratio, nscale, KIND: tl.constexpr, ALIGN: tl.constexpr):
    """(i0, i1, l0, l1) of output pixels d: value = l0 * x[i0] + l1 * x[i1]. `ratio` is a scalar of
    the data's dtype (linear), `nscale` an fp32 scalar (nearest; torch computes it in float)."""
    if KIND == 0:
        i0 = d
        l1 = tl.zeros(d.shape, ratio.dtype)
        i1 = i0
    elif KIND == 1:
        i0 = d // 2
        l1 = tl.zeros(d.shape, ratio.dtype)
        i1 = i0
    elif KIND == 2:
        i0 = tl.minimum(tl.floor(d.to(tl.float32) * nscale).to(tl.int64), n_in - 1)
        l1 = tl.zeros(d.shape, ratio.dtype)
        i1 = i0
    else:
        if ALIGN:
            src = ratio * d.to(ratio.dtype)
        else:
            src = tl.maximum(ratio * (d.to(ratio.dtype) + 0.5) - 0.5, 0.0)
        i0 = tl.minimum(tl.floor(src.to(tl.float32)).to(tl.int64), n_in - 1)  # torch: floorf
        l1 = tl.minimum(tl.maximum(src - i0.to(ratio.dtype), 0.0), 1.0)
        i1 = i0 + (i0 < n_in - 1).to(tl.int64)
    return i0, i1, 1.0 - l1, l1


@triton.jit
def axis_tap_weight(d, i, n_in, ratio, nscale, KIND: tl.constexpr, ALIGN: tl.constexpr):
    """Weight with which output pixel d reads input pixel i (0 if it does not)."""
    i0, i1, l0, l1 = axis_taps(d, n_in, ratio, nscale, KIND, ALIGN)
    return tl.where(i0 == i, l0, 0.0) + tl.where(i1 == i, l1, 0.0)


@triton.jit
def contributor_first(i, step, n_out):
    """First output pixel that may read input pixel i (see contributor_window in the .cuh); the
    caller loops over a host-computed window length and masks d >= n_out."""
    lo = (i.to(tl.float32) - 1.0) / step - 1.5
    return tl.maximum(lo, 0.0).to(tl.int64)


# grid_sample padding codes (resample_coords.cuh's GridPadding, fastcnn.ops.resample.GRID_PADDING).
PAD_ZEROS, PAD_BORDER, PAD_REFLECTION = 0, 1, 2


@triton.jit
def reflect_coordinate(x, twice_low, twice_high):
    """torch's reflect_coordinates_set_grad: x reflected into [twice_low / 2, twice_high / 2] and its
    derivative (+-1); the caller handles twice_low == twice_high (result 0, derivative 0)."""
    lo = twice_low / 2.0
    span = (twice_high - twice_low) / 2.0
    rel = x - lo
    sign = tl.where(rel < 0.0, -1.0, 1.0)
    a = tl.abs(rel)
    flips = tl.floor(a / span)
    extra = a - flips * span  # fmod(a, span) for a >= 0
    even = (flips - 2.0 * tl.floor(flips / 2.0)) == 0.0
    return tl.where(even, extra + lo, span - extra + lo), tl.where(even, sign, -sign)


@triton.jit
def round_half_even(v):
    """torch's nearbyint (round half to even), exact: v - floor(v) is."""
    f = tl.floor(v)
    d = v - f
    odd = (f - 2.0 * tl.floor(f / 2.0)) != 0.0
    return tl.where((d > 0.5) | ((d == 0.5) & odd), f + 1.0, f)


@triton.jit
def grid_source(g, size, ALIGN: tl.constexpr, PADDING: tl.constexpr):
    """Pixel coordinate of normalised grid coordinate g, and its derivative (0 where clipped)."""
    sz = tl.full([], size, g.dtype)  # not size.to(): a size of 1 arrives as a constexpr int
    if ALIGN:
        x = (g + 1.0) / 2.0 * (sz - 1.0)
        dx = tl.zeros(g.shape, g.dtype) + (sz - 1.0) / 2.0
    else:
        x = ((g + 1.0) * sz - 1.0) / 2.0
        dx = tl.zeros(g.shape, g.dtype) + sz / 2.0
    if PADDING == 2:
        if ALIGN:
            twice_low = tl.zeros(g.shape, g.dtype)
            twice_high = 2.0 * (sz - 1.0) + twice_low
        else:
            twice_low = tl.zeros(g.shape, g.dtype) - 1.0
            twice_high = 2.0 * sz - 1.0 + tl.zeros(g.shape, g.dtype)
        degenerate = twice_low == twice_high
        xr, dr = reflect_coordinate(x, twice_low, tl.where(degenerate, twice_low + 2.0, twice_high))
        x = tl.where(degenerate, 0.0, xr)
        dx = tl.where(degenerate, 0.0, dx * dr)
    if PADDING != 0:
        clipped = (x <= 0.0) | (x >= sz - 1.0)
        x = tl.minimum(tl.maximum(x, 0.0), sz - 1.0)
        dx = tl.where(clipped, 0.0, dx)
    return x, dx
