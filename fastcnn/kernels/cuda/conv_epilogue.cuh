// Fused convolution epilogue: y = act(acc + bias). The activation numbering is the project's
// (csrc/common/activation_math.h enum Act; fastcnn/backends/cuda/conv.py ACT_KIND):
// 0 identity, 1 relu, 2 leaky_relu(p = slope), 3 elu(p = alpha), 4 sigmoid, 5 tanh.
// When the lead's activation_math.cuh lands, act_forward should become a call into it.
#pragma once
#include "common.cuh"

namespace fastcnn {
namespace epi {

FASTCNN_DEVICE float exp_(float x) { return expf(x); }
FASTCNN_DEVICE double exp_(double x) { return exp(x); }
FASTCNN_DEVICE float expm1_(float x) { return expm1f(x); }
FASTCNN_DEVICE double expm1_(double x) { return expm1(x); }
FASTCNN_DEVICE float tanh_(float x) { return tanhf(x); }
FASTCNN_DEVICE double tanh_(double x) { return tanh(x); }

template <class T>
FASTCNN_DEVICE T act_forward(int kind, T x, T p) {
  switch (kind) {
    case 1: return x > T(0) ? x : T(0);
    case 2: return x > T(0) ? x : x * p;
    case 3: return x > T(0) ? x : p * expm1_(x);
    case 4: return T(1) / (T(1) + exp_(-x));
    case 5: return tanh_(x);
    default: return x;
  }
}

// Bias (may be null) and activation applied to one accumulated output value of channel `k`.
template <class T>
FASTCNN_DEVICE T bias_act(T acc, const T* bias, long long k, int kind, T p) {
  if (bias != nullptr) acc += bias[k];
  return act_forward(kind, acc, p);
}

}  // namespace epi
}  // namespace fastcnn
