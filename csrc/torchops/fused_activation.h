// An eager op's fused activation (act: a fastcnn::Act code, 0 = none) where the kernel has no epilogue
// for it (linear, batch_norm: in place over the output, still in cache), and the gradient through it.
#pragma once
#include "kernels/activation.h"
#include "torchops/eager_op.h"

namespace fastcnn::eager {

template <class T>
void apply_fused_activation(T* y, int64_t n, int64_t act, double act_param) {
  if (act != 0) activation_kernels().get<T>().forward(static_cast<Act>(act), y, y, n, T(act_param), T(0));
}

// From the op's saved output y (conv2d, linear, batch_norm nodes): g = gy * act'(y), into an output from
// the pool; gy is laid out as y.
inline at::Tensor through_fused_activation(const at::Tensor& gy, const at::Tensor& y, int64_t act, double act_param) {
  at::Tensor g = empty_as(y);
  dispatch_float(y, [&](auto t) {
    using T = decltype(t);
    activation_kernels().get<T>().backward(static_cast<Act>(act), ptr<const T>(gy), ptr<const T>(y), ptr<T>(g),
                                           y.numel(), /*from_output=*/true, T(act_param), T(0));
  });
  return g;
}

}  // namespace fastcnn::eager
