// Activation functions and their derivatives on Vec<T> lanes and on scalars, shared by the
// activation kernels and by every fused epilogue (convolution bias + activation).
//
// Derivatives are written from the *output* y where that is possible (relu, leaky_relu with a
// positive slope, elu, sigmoid, tanh), so in-place forward passes and fused epilogues need not keep
// the input; softplus's derivative needs the input.
#pragma once
#include <cmath>
#include <limits>

#include "common/simd.h"

namespace fastcnn {

// Numbering shared with Python (fastcnn/ops/activation.py: ACT_KIND) and CUDA (activation_math.cuh).
enum class Act : int { identity = 0, relu = 1, leaky_relu = 2, elu = 3, sigmoid = 4, tanh = 5, softplus = 6, step = 7,
                       silu = 8, gelu = 9, gelu_tanh = 10, hardswish = 11, hardsigmoid = 12 };

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
// where an ulp is half as wide; 2.5 ulp below 0.5; tests/ops/test_activation_tanh.py). Rounding can
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

// erfc for float lanes: Numerical Recipes' erfcc, t exp(-z^2 + P(t)) with t = 1 / (1 + z/2), z = |x|
// (relative error below 1.2e-7 everywhere), reflected as 2 - erfc(|x|) for x < 0. Used as
// gelu(x) = x/2 erfc(-x/sqrt2), which keeps the negative tail's relative accuracy (1 + erf would
// cancel there).
inline Vec<float> erfc(Vec<float> x) {
  using V = Vec<float>;
  const V z = max(x, V::zero() - x);
  const V t = V::set1(1.0f) / fmadd(z, V::set1(0.5f), V::set1(1.0f));
  V p = V::set1(0.17087277f);
  p = fmadd(p, t, V::set1(-0.82215223f));
  p = fmadd(p, t, V::set1(1.48851587f));
  p = fmadd(p, t, V::set1(-1.13520398f));
  p = fmadd(p, t, V::set1(0.27886807f));
  p = fmadd(p, t, V::set1(-0.18628806f));
  p = fmadd(p, t, V::set1(0.09678418f));
  p = fmadd(p, t, V::set1(0.37409196f));
  p = fmadd(p, t, V::set1(1.00002368f));
  p = fmadd(p, t, V::set1(-1.26551223f));
  const V r = t * exp(p - z * z);
  return select(x < V::zero(), V::set1(2.0f) - r, r);
}

// double (the gradcheck dtype, not a speed target): the C library per lane.
inline Vec<double> erfc(Vec<double> x) {
  return simd::detail::per_lane(x, [](double v) { return std::erfc(v); });
}

// exp with exp(-inf) = 0 and exp(inf) = inf exactly (the float exp clamps its argument, which
// would turn torch's NaN of -inf * 0 in silu and gelu at -+inf into an infinity).
template <class T>
inline Vec<T> exp_exact_inf(Vec<T> x) {
  using V = Vec<T>;
  const V inf = V::set1(std::numeric_limits<T>::infinity());
  return select(x == V::zero() - inf, V::zero(), select(x == inf, inf, exp(x)));
}

template <class T>
inline Vec<T> silu_sigmoid(Vec<T> x) {
  return Vec<T>::set1(T(1)) / (Vec<T>::set1(T(1)) + exp_exact_inf<T>(Vec<T>::zero() - x));
}

// gelu's tanh approximation through sigmoids, which keep the tails accurate where 1 + tanh(u) and
// 1 - tanh(u)^2 would cancel: 0.5 (1 + tanh u) = sigmoid(2u), 0.5 (1 - tanh u) = sigmoid(-2u).
// Sets s_pos = sigmoid(2u), s_neg = sigmoid(-2u), from one exp of -2|u|.
template <class T>
inline void gelu_tanh_sigmoids(Vec<T> u, Vec<T>& s_pos, Vec<T>& s_neg) {
  using V = Vec<T>;
  const V e = exp_exact_inf<T>(V::set1(T(-2)) * max(u, V::zero() - u));
  const V big = V::set1(T(1)) / (V::set1(T(1)) + e), small = e * big;
  const auto positive = u >= V::zero();
  s_pos = select(positive, big, small);
  s_neg = select(positive, small, big);
}

constexpr double kSqrtHalf = 0.70710678118654752440;      // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;    // 1/sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;   // sqrt(2/pi), gelu's tanh approximation
constexpr double kGeluCubic = 0.044715;

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
    case Act::silu: return x * silu_sigmoid(x);
    case Act::gelu: return x * V::set1(T(0.5)) * erfc(x * V::set1(T(-kSqrtHalf)));
    case Act::gelu_tanh: {
      V s_pos, s_neg;
      gelu_tanh_sigmoids<T>(x * fmadd(x * x, V::set1(T(kSqrt2OverPi * kGeluCubic)), V::set1(T(kSqrt2OverPi))), s_pos, s_neg);
      return x * s_pos;
    }
    // min/max return their second operand on NaN (x86 order): the NaN of x + 3 is kept.
    case Act::hardswish: return x * min(V::set1(T(6)), max(V::zero(), x + V::set1(T(3)))) / V::set1(T(6));
    case Act::hardsigmoid: return min(V::set1(T(6)), max(V::zero(), x + V::set1(T(3)))) / V::set1(T(6));
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
    // The rest need the input (s = x).
    case Act::silu: {
      const V sg = silu_sigmoid(s);
      return gy * sg * fmadd(s, one - sg, one);
    }
    case Act::gelu:  // Phi(x) + x phi(x)
      return gy * fmadd(s * V::set1(T(kInvSqrt2Pi)), exp_exact_inf<T>(s * s * V::set1(T(-0.5))),
                        V::set1(T(0.5)) * erfc(s * V::set1(T(-kSqrtHalf))));
    case Act::gelu_tanh: {  // sigmoid(2u) + x 2 sigmoid(2u) sigmoid(-2u) du/dx
      const V s2 = s * s;
      V s_pos, s_neg;
      gelu_tanh_sigmoids<T>(s * fmadd(s2, V::set1(T(kSqrt2OverPi * kGeluCubic)), V::set1(T(kSqrt2OverPi))), s_pos, s_neg);
      const V du = fmadd(s2, V::set1(T(3 * kSqrt2OverPi * kGeluCubic)), V::set1(T(kSqrt2OverPi)));
      return gy * fmadd(V::set1(T(2)) * s * s_pos * s_neg, du, s_pos);
    }
    case Act::hardswish:  // torch's: 0 at x <= -3, x/3 + 1/2 below 3, else (from 3, and NaN) 1
      return select(V::set1(T(-3)) >= s, zero,
                    select(s < V::set1(T(3)), gy * fmadd(s, V::set1(T(1) / T(3)), V::set1(T(0.5))), gy));
    case Act::hardsigmoid:  // 1/6 strictly inside (-3, 3), else 0 (NaN too)
      return select(s > V::set1(T(-3)), select(s < V::set1(T(3)), gy / V::set1(T(6)), zero), zero);
    default: return gy;
  }
}

}  // namespace act
FASTCNN_ISA_INLINE_END
}  // namespace fastcnn
