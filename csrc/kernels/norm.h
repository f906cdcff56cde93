// Normalisation kernels (batch_norm; later local_response_norm, normalize): the per-ISA table.
//
// Batch norm sees its input as x[N, C, S] (S = H*W, S = 1 for (N, C) input), contiguous. Kernels
// here do the passes over the data; the O(C) per-channel arithmetic (invstd, running-stat update,
// the backward's coefficients) is in csrc/host/norm.cpp.
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {

template <class T>
struct BatchNormFns {
  // Per channel: sum of x and of x*x about a shift (the channel's first element), in double:
  // mean = shift + s1/M, biased var = s2/M - (s1/M)^2, M = N*S. shift[C], s1[C], s2[C] out.
  void (*channel_moments)(const T* x, int64_t N, int64_t C, int64_t S, double* shift, double* s1, double* s2);
  // y = x * scale[c] + shift[c].
  void (*channel_affine)(const T* x, T* y, int64_t N, int64_t C, int64_t S, const T* scale, const T* shift);
  // Per channel: sum_gy[c] = sum gy, sum_gy_xmu[c] = sum gy * (x - mean[c]), in double.
  void (*grad_moments)(const T* gy, const T* x, const T* mean, int64_t N, int64_t C, int64_t S,
                       double* sum_gy, double* sum_gy_xmu);
  // gx = a[c] * gy + b[c] * (x - mean[c]) + k[c].
  void (*grad_affine)(const T* gy, const T* x, T* gx, int64_t N, int64_t C, int64_t S, const T* a, const T* b,
                      const T* mean, const T* k);
};

struct NormKernels {
  BatchNormFns<float> f32;
  BatchNormFns<double> f64;
};

template <class T>
inline const BatchNormFns<T>& pick(const NormKernels& k) {
  if constexpr (sizeof(T) == 4) return k.f32; else return k.f64;
}

}  // namespace fastcnn

FASTCNN_ISA_TABLE(NormKernels, norm_kernels)
