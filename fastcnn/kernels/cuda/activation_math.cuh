// Activation math for CUDA kernels and fused epilogues; kinds numbered as fastcnn.ops.activation.ACT_KIND
// (and csrc/common/activation_math.h). Scalar __host__ __device__ code: the C++ tests call it too.
#pragma once
#include "common.cuh"

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
#include <cmath>
using std::exp;
using std::expm1;
using std::log1p;
using std::tanh;
#endif

namespace fastcnn_cuda {

enum ActKind { ACT_IDENTITY = 0, ACT_RELU = 1, ACT_LEAKY_RELU = 2, ACT_ELU = 3, ACT_SIGMOID = 4, ACT_TANH = 5,
               ACT_SOFTPLUS = 6, ACT_STEP = 7 };

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
    default: return gy;
  }
}

}  // namespace fastcnn_cuda
