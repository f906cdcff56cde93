// Fused convolution epilogue: y = act(acc + bias[k]), with the project's activation math
// (activation_math.cuh; kinds numbered as fastcnn.contracts.activation.ACT_KIND).
#pragma once
#include "activation_math.cuh"
#include "common.cuh"

namespace fastcnn {
namespace epi {

// Bias (may be null) and activation applied to one accumulated output value of channel `k`.
template <class T>
FASTCNN_DEVICE T bias_act(T acc, const T* bias, long long k, int kind, T p) {
  if (bias != nullptr) acc += bias[k];
  return fastcnn_cuda::act_forward(kind, acc, p, T(0));
}

}  // namespace epi
}  // namespace fastcnn
