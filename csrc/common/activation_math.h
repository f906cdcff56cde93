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

template <class T>
inline Vec<T> tanh(Vec<T> x) {
  // Cephes tanhf: odd polynomial for |x| < 0.625, 1 - 2 / (exp(2|x|) + 1) with the sign beyond.
  using V = Vec<T>;
  V ax = max(x, V::zero() - x);
  V z = x * x;
  V p = V::set1(T(-5.70498872745e-3));
  p = fmadd(p, z, V::set1(T(2.06390887954e-2)));
  p = fmadd(p, z, V::set1(T(-5.37397155531e-2)));
  p = fmadd(p, z, V::set1(T(1.33314422036e-1)));
  p = fmadd(p, z, V::set1(T(-3.33332819422e-1)));
  V small = fmadd(p * z, x, x);
  V big = V::set1(T(1)) - V::set1(T(2)) / (exp(ax + ax) + V::set1(T(1)));
  big = select(x < V::zero(), V::zero() - big, big);
  if constexpr (sizeof(T) == 8) {
    // The polynomial is float-accurate only; double uses the library per lane.
    alignas(64) T buf[V::N];
    x.store(buf);
    for (int i = 0; i < V::N; ++i) buf[i] = std::tanh(buf[i]);
    return V::load(buf);
  }
  return select(ax < V::set1(T(0.625)), small, big);
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
}  // namespace fastcnn
