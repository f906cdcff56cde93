// Activation math for CUDA kernels and fused epilogues; kinds numbered as fastcnn.contracts.activation.ACT_KIND
// (and csrc/common/activation_math.h). Scalar __host__ __device__ code: the C++ tests call it too.
#pragma once
#include "common.cuh"

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
#include <cmath>
using std::exp;
using std::expm1;
using std::log1p;
using std::tanh;
using std::erfc;
#endif

namespace fastcnn_cuda {

enum ActKind { ACT_IDENTITY = 0, ACT_RELU = 1, ACT_LEAKY_RELU = 2, ACT_ELU = 3, ACT_SIGMOID = 4, ACT_TANH = 5,
               ACT_SOFTPLUS = 6, ACT_STEP = 7, ACT_SILU = 8, ACT_GELU = 9, ACT_GELU_TANH = 10, ACT_HARDSWISH = 11,
               ACT_HARDSIGMOID = 12 };

// gelu's tanh approximation, u = sqrt(2/pi) (x + 0.044715 x^3): sigmoid(2u) = 0.5 (1 + tanh u) and
// sigmoid(-2u), which do not cancel in the tails as 1 + tanh and 1 - tanh^2 would.
template <class T>
FASTCNN_HD void gelu_tanh_sigmoids(T x, T& s_pos, T& s_neg) {
  T u = x * (T(0.7978845608028654) + T(0.035677408136300125) * x * x);
  T e = exp(T(-2) * (u < T(0) ? -u : u));
  T big = T(1) / (T(1) + e), small = e * big;
  s_pos = u >= T(0) ? big : small;
  s_neg = u >= T(0) ? small : big;
}

template <class T>
FASTCNN_HD T relu6_shifted(T x) {  // min(max(x + 3, 0), 6), NaN kept
  T t = x + T(3);
  return t != t ? t : (t < T(0) ? T(0) : (t > T(6) ? T(6) : t));
}

template <class T>
FASTCNN_HD T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }

template <class T>
FASTCNN_HD T act_forward(int kind, T x, T p0, T p1) {
  switch (kind) {
    case ACT_RELU: return (x > T(0) || x != x) ? x : T(0);  // NaN stays NaN
    case ACT_LEAKY_RELU: return x > T(0) ? x : x * p0;
    case ACT_ELU: return x > T(0) ? x : p0 * expm1(x);
    case ACT_SIGMOID: return sigmoid(x);
    case ACT_TANH: return tanh(x);
    case ACT_SOFTPLUS: return x * p0 > p1 ? x : log1p(exp(x * p0)) / p0;
    case ACT_STEP: return x > T(0) ? T(1) : (x == T(0) ? p0 : T(0));
    case ACT_SILU: return x * sigmoid(x);
    case ACT_GELU: return T(0.5) * x * erfc(-x * T(0.7071067811865476));
    case ACT_GELU_TANH: { T sp, sn; gelu_tanh_sigmoids(x, sp, sn); return x * sp; }
    case ACT_HARDSWISH: return x * relu6_shifted(x) / T(6);
    case ACT_HARDSIGMOID: return relu6_shifted(x) / T(6);
    default: return x;
  }
}

// dL/dx from dL/dy and the saved output (from_output) or input s.
template <class T>
FASTCNN_HD T act_backward(int kind, T gy, T s, bool from_output, T p0, T p1) {
  switch (kind) {
    case ACT_RELU: return s > T(0) ? gy : T(0);
    case ACT_LEAKY_RELU: return s > T(0) ? gy : gy * p0;
    case ACT_ELU: return s > T(0) ? gy : (from_output ? gy * (s + p0) : gy * p0 * exp(s));
    case ACT_SIGMOID: { T y = from_output ? s : sigmoid(s); return gy * y * (T(1) - y); }
    case ACT_TANH: { T y = from_output ? s : tanh(s); return gy * (T(1) - y * y); }
    case ACT_SOFTPLUS: return s * p0 > p1 ? gy : gy * sigmoid(s * p0);
    case ACT_STEP: return T(0);
    case ACT_SILU: { T sg = sigmoid(s); return gy * sg * (T(1) + s * (T(1) - sg)); }
    case ACT_GELU:
      return gy * (T(0.5) * erfc(-s * T(0.7071067811865476)) + s * T(0.3989422804014327) * exp(T(-0.5) * s * s));
    case ACT_GELU_TANH: {
      T sp, sn;
      gelu_tanh_sigmoids(s, sp, sn);
      return gy * (sp + T(2) * s * sp * sn * (T(0.7978845608028654) + T(0.10703222440890037) * s * s));
    }
    case ACT_HARDSWISH: return s <= T(-3) ? T(0) : (s < T(3) ? gy * (s / T(3) + T(0.5)) : gy);  // NaN: gy, as torch
    case ACT_HARDSIGMOID: return (s > T(-3) && s < T(3)) ? gy / T(6) : T(0);
    default: return gy;
  }
}

}  // namespace fastcnn_cuda
