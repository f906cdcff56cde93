// Coordinate math of the resampling ops (interpolate, grid_sample), shared by the CUDA kernels
// (resample.cu) and the cpu kernels (csrc/kernels/resample.cpp), so the cpu tests exercise it.
//
// Everything here reproduces PyTorch's conventions exactly (aten/src/ATen/native/UpSample.h and
// GridSampler.h), including the float arithmetic of the nearest rule and the size == in / 2 * in
// shortcuts, so that results match torch bit for bit where torch's own arithmetic allows it.
// No standard-library includes under NVCC/NVRTC (NVRTC has none).
#pragma once

#include "common.cuh"

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
#include <cmath>
#endif

namespace fastcnn {
FASTCNN_ISA_INLINE_BEGIN  // distinct per cpu ISA copy (see common.cuh)
namespace resample {

// One spatial axis of interpolate: `in` input pixels resampled to `out` output pixels.
template <class T>
struct Axis {
  long long in, out;
  bool nearest;        // mode "nearest" (else "bilinear": linear along this axis)
  bool align_corners;  // linear only
  T ratio;             // linear: input pixels per output pixel (torch's area_pixel_compute_scale)
  float nscale;        // nearest: torch computes this scale in float for every dtype
};

// Two taps per output pixel: value = l0 * x[i0] + l1 * x[i1] (nearest: i1 = i0, l1 = 0).
template <class T>
struct Taps {
  long long i0, i1;
  T l0, l1;
};

// `scale` is the user's scale_factor for this axis, or <= 0 when the size was given (or
// recompute_scale_factor=True): torch then uses in / out instead of 1 / scale.
template <class T>
FASTCNN_HD Axis<T> make_axis(long long in, long long out, bool nearest, bool align_corners, double scale) {
  Axis<T> a;
  a.in = in;
  a.out = out;
  a.nearest = nearest;
  a.align_corners = align_corners;
  if (align_corners)
    a.ratio = out > 1 ? T(in - 1) / T(out - 1) : T(0);
  else
    a.ratio = scale > 0 ? T(1.0 / scale) : T(in) / T(out);
  a.nscale = scale > 0 ? float(1.0 / scale) : float(in) / float(out);
  return a;
}

// floor() as torch's guard_index_and_lambda computes it: floorf, i.e. through float even for double.
template <class T>
FASTCNN_HD long long torch_floor(T v) { return (long long)floorf(float(v)); }

template <class T>
FASTCNN_HD Taps<T> taps(const Axis<T>& a, long long d) {
  Taps<T> t;
  if (a.nearest) {
    long long s;
    if (a.out == a.in) s = d;                    // torch: copy
    else if (a.out == 2 * a.in) s = d >> 1;      // torch: exact halving, no float product
    else {
      s = (long long)floorf(float(d) * a.nscale);
      s = s < a.in - 1 ? s : a.in - 1;
    }
    t.i0 = t.i1 = s;
    t.l0 = T(1);
    t.l1 = T(0);
    return t;
  }
  if (a.out == a.in) {  // torch: copy, whatever the scale
    t.i0 = t.i1 = d;
    t.l0 = T(1);
    t.l1 = T(0);
    return t;
  }
  T src = a.align_corners ? a.ratio * T(d) : a.ratio * (T(d) + T(0.5)) - T(0.5);
  if (!a.align_corners && src < T(0)) src = T(0);
  long long i0 = torch_floor(src);
  i0 = i0 < a.in - 1 ? i0 : a.in - 1;
  T l1 = src - T(i0);
  l1 = l1 < T(0) ? T(0) : (l1 > T(1) ? T(1) : l1);
  t.i0 = i0;
  t.i1 = i0 + (i0 < a.in - 1 ? 1 : 0);
  t.l1 = l1;
  t.l0 = T(1) - l1;
  return t;
}

// Weight with which output pixel d reads input pixel i (0 if it does not).
template <class T>
FASTCNN_HD T tap_weight(const Axis<T>& a, long long d, long long i) {
  Taps<T> t = taps(a, d);
  T w = T(0);
  if (t.i0 == i) w += t.l0;
  if (t.i1 == i && !a.nearest) w += t.l1;
  return w;
}

// Output pixels [first, last] that may read input pixel i: a superset of the exact set (the taps
// recompute the exact weights), so backward passes can gather instead of scatter. With `step` input
// pixels per output pixel, output d reads i only if d lies in
//   linear, align_corners=False: ((i - 0.5) / step - 0.5, (i + 1.5) / step - 0.5]
//   linear, align_corners=True:  ((i - 1) / step, (i + 1) / step]
//   nearest:                     [i / step, (i + 1) / step)
// (torch's clamps at both ends only move pixels of the first and last input pixel, whose windows
// reach the ends of the output); [(i - 1) / step - 1.5, (i + 1.5) / step + 0.5] covers all three
// with at least 0.5 pixel to spare for rounding. Length <= 2.5 / step + 3.
template <class T>
FASTCNN_HD double window_step(const Axis<T>& a) {
  if (a.out == a.in) return 1.0;
  if (a.nearest) return a.out == 2 * a.in ? 0.5 : double(a.nscale);
  return double(a.ratio);
}

template <class T>
FASTCNN_HD void contributor_window(const Axis<T>& a, long long i, long long& first, long long& last) {
  const double step = window_step(a);
  if (step <= 0.0) {  // align_corners with one output pixel: everything maps to input 0
    first = 0;
    last = a.out - 1;
    return;
  }
  const double lo = (double(i) - 1.0) / step - 1.5, hi = (double(i) + 1.5) / step + 0.5;
  first = lo <= 0.0 ? 0 : (long long)lo;
  last = hi >= double(a.out - 1) ? a.out - 1 : (long long)hi + 1;
}

// floor / fmod by overload (NVRTC has no float overloads of floor and fmod).
FASTCNN_HD float floor_t(float v) { return floorf(v); }
FASTCNN_HD double floor_t(double v) { return floor(v); }
FASTCNN_HD float fmod_t(float a, float b) { return fmodf(a, b); }
FASTCNN_HD double fmod_t(double a, double b) { return fmod(a, b); }

// grid_sample padding modes (the integer the kernels receive).
enum GridPadding { kGridZeros = 0, kGridBorder = 1, kGridReflection = 2 };

// torch's reflect_coordinates_set_grad: reflects x into [twice_low / 2, twice_high / 2]; *dx receives
// d(result)/dx (+-1, or 0 for a one-pixel axis with align_corners).
template <class T>
FASTCNN_HD T reflect_coordinate(T x, long long twice_low, long long twice_high, T* dx) {
  if (twice_low == twice_high) { *dx = T(0); return T(0); }
  const T lo = T(twice_low) / T(2), span = T(twice_high - twice_low) / T(2);
  T in = x - lo, sign = T(1);
  if (in < T(0)) { sign = T(-1); in = -in; }
  const T extra = fmod_t(in, span);
  const long long flips = (long long)floor_t(in / span);
  if (flips % 2 == 0) { *dx = sign; return extra + lo; }
  *dx = -sign;
  return span - extra + lo;
}

// Round half to even (torch's nearbyint under the default rounding mode), exact: v - floor(v) is.
template <class T>
FASTCNN_HD T round_half_even(T v) {
  const T f = floor_t(v), d = v - f;
  return (d > T(0.5) || (d == T(0.5) && fmod_t(f, T(2)) != T(0))) ? f + T(1) : f;
}

// The taps of a grid point at pixel coordinate (ix, iy): bilinear reads the 2x2 block from (x0, y0)
// with fractions (fx, fy); nearest reads (x0, y0) alone (fx = fy = 0), rounded as torch's nearbyint.
template <class T>
struct GridCorner {
  T x0, y0, fx, fy;
};

template <class T>
FASTCNN_HD GridCorner<T> grid_corner(T ix, T iy, bool nearest) {
  GridCorner<T> c;
  c.x0 = nearest ? round_half_even(ix) : floor_t(ix);
  c.y0 = nearest ? round_half_even(iy) : floor_t(iy);
  c.fx = nearest ? T(0) : ix - c.x0;
  c.fy = nearest ? T(0) : iy - c.y0;
  return c;
}

// grid_sample: a normalised grid coordinate in [-1, 1] to a pixel coordinate, reflected for padding
// "reflection" and clipped for "border" and "reflection" (torch's compute_coordinates_set_grad);
// *dsrc receives d(pixel coordinate)/d(grid coordinate) (0 where clipped).
template <class T>
FASTCNN_HD T grid_source(T g, long long size, bool align_corners, int padding, T* dsrc) {
  T x, dx;
  if (align_corners) {
    x = (g + T(1)) / T(2) * T(size - 1);
    dx = T(size - 1) / T(2);
  } else {
    x = ((g + T(1)) * T(size) - T(1)) / T(2);
    dx = T(size) / T(2);
  }
  if (padding == kGridReflection) {
    T dr;
    x = align_corners ? reflect_coordinate(x, 0, 2 * (size - 1), &dr) : reflect_coordinate(x, -1, 2 * size - 1, &dr);
    dx *= dr;
  }
  if (padding != kGridZeros) {  // torch's clip_coordinates_set_grad
    if (x <= T(0)) { x = T(0); dx = T(0); }
    else if (x >= T(size - 1)) { x = T(size - 1); dx = T(0); }
  }
  *dsrc = dx;
  return x;
}

}  // namespace resample
FASTCNN_ISA_INLINE_END
}  // namespace fastcnn
