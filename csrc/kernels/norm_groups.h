// Normalisation over groups of a row view, shared by group_norm, layer_norm and instance_norm.
//
// The input is x[R, L] (contiguous): R = outer * G rows, each normalised by its own mean and
// biased variance. The affine parameters are indexed per element: element l of row r uses
// w[k], b[k] with k = ((r % G) * L + l) / S, i.e. the row's G-block of the parameter vector, each
// entry covering S consecutive elements:
//   group_norm    x[N, C, HW] -> R = N*G, L = (C/G)*HW, S = HW   (k = channel)
//   instance_norm x[N, C, HW] -> R = N*C, L = HW, G = C, S = HW  (k = channel)
//   layer_norm    x[M, D]     -> R = M,   L = D,  G = 1, S = 1   (k = position in the row)
// The O(R) arithmetic (rstd, running statistics) is in csrc/host/norm_groups.cpp, in double.
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {

template <class T>
struct GroupRowFns {
  // Per row: mean[r] and biased var[r] in double (sums about the row's first element; NaN and inf
  // propagate).
  void (*row_moments)(const T* x, int64_t R, int64_t L, double* mean, double* var);
  // y = (x - mean[r]) * rstd[r] * w[k] + b[k]; w, b may be null (1 and 0).
  void (*row_affine)(const T* x, T* y, int64_t R, int64_t L, int64_t G, int64_t S, const T* mean, const T* rstd,
                     const T* w, const T* b);
  // gx = rstd (g - mean_l(g) - xhat mean_l(g xhat)), g = w[k] gy, xhat = (x - mean) rstd.
  void (*row_backward)(const T* gy, const T* x, T* gx, int64_t R, int64_t L, int64_t G, int64_t S, const T* mean,
                       const T* rstd, const T* w);
  // gw[k] = sum over the rows and elements using k of gy * xhat; gb[k] = sum of gy. Either may be null.
  void (*param_grads)(const T* gy, const T* x, int64_t R, int64_t L, int64_t G, int64_t S, const T* mean,
                      const T* rstd, T* gw, T* gb);
};

struct GroupNormKernels {
  GroupRowFns<float> f32;
  GroupRowFns<double> f64;
};

template <class T>
inline const GroupRowFns<T>& pick(const GroupNormKernels& k) {
  if constexpr (sizeof(T) == 4) return k.f32; else return k.f64;
}

}  // namespace fastcnn

FASTCNN_ISA_TABLE(GroupNormKernels, group_norm_kernels)
