// Activation functions and their derivatives on Vec<T> lanes and on scalars, shared by the
// activation kernels and by every fused epilogue (convolution bias + activation).
//
// Derivatives are written from the *output* y where that is possible (relu, leaky_relu with a
// positive slope, elu, sigmoid, tanh), so in-place forward passes and fused epilogues need not keep
// the input; softplus's derivative needs the input.
#pragma once
#include <cmath>

#include "common/simd.h"

namespace fastcnn {

// Numbering shared with Python (fastcnn/ops/activation.py: ACT_KIND) and CUDA (activation_math.cuh).
enum class Act : int { identity = 0, relu = 1, leaky_relu = 2, elu = 3, sigmoid = 4, tanh = 5, softplus = 6, step = 7 };

FASTCNN_ISA_INLINE_BEGIN
namespace act {
using simd::Vec;

template <class T>
inline Vec<T> expm1(Vec<T> x) {
  // Taylor series near 0 (where exp(x) - 1 cancels), exp(x) - 1 elsewhere; float-accurate only,
  // so double (the gradcheck dtype) uses the library per lane.
  using V = Vec<T>;
  if constexpr (sizeof(T) == 8) {
    alignas(64) T buf[V::N];
    x.store(buf);
    for (int i = 0; i < V::N; ++i) buf[i] = std::expm1(buf[i]);
    return V::load(buf);
  }
  V p = V::set1(T(1) / 5040);
  p = fmadd(p, x, V::set1(T(1) / 720));
  p = fmadd(p, x, V::set1(T(1) / 120));
  p = fmadd(p, x, V::set1(T(1) / 24));
  p = fmadd(p, x, V::set1(T(1) / 6));
  p = fmadd(p, x, V::set1(T(0.5)));
  p = fmadd(p * x, x, x);
  V big = exp(x) - V::set1(T(1));
  V ax = max(x, V::zero() - x);
  return select(ax < V::set1(T(0.25)), p, big);
}

// tanh for float lanes: one odd rational x P(x^2) / Q(x^2) (numerator degree 13, denominator 6)
// on x clamped to [-9, 9], one divide per lane. Coefficients from scripts/fit_tanh_rational.py
// (minimax relative error 7e-9 on [0, 9]; float32 tanh is +-1 from 9.01). Evaluated as
// x + x t P'(t) over Q(t) (P = 1 + t P') so small |x| keeps x exactly; within 5 ulp (near 1,
// where an ulp is half as wide; 2.5 ulp below 0.5; tests/test_activation_tanh.py). Rounding can
// carry the rational an ulp past 1, hence the clamp of the result; lanes at the input clamp are
// +-1 exactly (tanh(+-inf) = +-1). NaN fails every compare and min/max keep it (their order).
inline Vec<float> tanh(Vec<float> x) {
  using V = Vec<float>;
  const V lim = V::set1(9.0f), one = V::set1(1.0f);
  x = min(lim, max(V::zero() - lim, x));
  const V t = x * x;
  V p = V::set1(-8.488658588e-14f);
  p = fmadd(p, t, V::set1(5.277929829e-11f));
  p = fmadd(p, t, V::set1(-2.022519041e-08f));
  p = fmadd(p, t, V::set1(1.115430041e-05f));
  p = fmadd(p, t, V::set1(3.103955649e-03f));
  p = fmadd(p, t, V::set1(1.308400929e-01f));
  V q = V::set1(2.546144242e-04f);
  q = fmadd(q, t, V::set1(2.449517511e-02f));
  q = fmadd(q, t, V::set1(4.641733766e-01f));
  q = fmadd(q, t, one);
  const V y = min(one, max(V::zero() - one, fmadd(x * t, p, x) / q));
  return select(x == lim, one, select(x == V::zero() - lim, V::zero() - one, y));
}

// double (the gradcheck dtype, not a speed target): the C library per lane.
inline Vec<double> tanh(Vec<double> x) {
  return simd::detail::per_lane(x, [](double v) { return std::tanh(v); });
}

template <class T>
inline Vec<T> sigmoid(Vec<T> x) {
  using V = Vec<T>;
  return V::set1(T(1)) / (V::set1(T(1)) + exp(V::zero() - x));
}

template <class T>
inline Vec<T> softplus(Vec<T> x, T beta, T threshold) {
  // log1p(exp(beta x)) / beta, linear above threshold as torch; log1p per lane (softplus is rare).
  using V = Vec<T>;
  V z = x * V::set1(beta);
  V e = exp(min(V::set1(threshold), z));
  alignas(64) T buf[V::N];
  e.store(buf);
  for (int i = 0; i < V::N; ++i) buf[i] = std::log1p(buf[i]);
  V soft = V::load(buf) / V::set1(beta);
  return select(z > V::set1(threshold), x, soft);
}

// y = f(x).
template <class T>
inline Vec<T> forward(Act kind, Vec<T> x, T p0, T p1) {
  using V = Vec<T>;
  switch (kind) {
    case Act::relu: return max(V::zero(), x);  // NaN stays NaN, as in torch
    case Act::leaky_relu: return select(x > V::zero(), x, x * V::set1(p0));
    case Act::elu: return select(x > V::zero(), x, expm1(x) * V::set1(p0));
    case Act::sigmoid: return sigmoid(x);
    case Act::tanh: return tanh(x);
    case Act::softplus: return softplus(x, p0, p1);
    case Act::step: return select(x > V::zero(), V::set1(T(1)), select(x == V::zero(), V::set1(p0), V::zero()));
    default: return x;
  }
}

// dL/dx given dL/dy and the saved tensor s: the output y (from_output) or the input x.
template <class T>
inline Vec<T> backward(Act kind, Vec<T> gy, Vec<T> s, bool from_output, T p0, T p1) {
  using V = Vec<T>;
  const V one = V::set1(T(1)), zero = V::zero();
  switch (kind) {
    case Act::relu: return select(s > zero, gy, zero);
    case Act::leaky_relu: return select(s > zero, gy, gy * V::set1(p0));
    case Act::elu:
      return from_output ? select(s > zero, gy, gy * (s + V::set1(p0)))
                         : select(s > zero, gy, gy * V::set1(p0) * exp(s));
    case Act::sigmoid: {
      V y = from_output ? s : sigmoid(s);
      return gy * y * (one - y);
    }
    case Act::tanh: {
      V y = from_output ? s : tanh(s);
      return gy * (one - y * y);
    }
    case Act::softplus: {  // needs the input
      V z = s * V::set1(p0);
      return select(z > V::set1(p1), gy, gy * sigmoid(z));
    }
    case Act::step: return zero;
    default: return gy;
  }
}

}  // namespace act
FASTCNN_ISA_INLINE_END
}  // namespace fastcnn
