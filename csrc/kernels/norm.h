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

// normalize over D of x[outer, D, inner] (see csrc/kernels/norm_lp.cpp) and local response norm
// over the channels of x[N, C, S].
template <class T>
struct LpNormFns {
  // y = x / max(||x||_p, eps) along D; norm[outer*inner] = ||x||_p.
  void (*normalize_forward)(const T* x, T* y, T* norm, int64_t outer, int64_t D, int64_t inner, double p, double eps);
  // gx = gy / d - [n > eps] (sum_D gy x) / d^2 * dn/dx, d = max(n, eps), dn/dx = sign(x)|x|^(p-1) / n^(p-1).
  void (*normalize_backward)(const T* gy, const T* x, const T* norm, T* gx, int64_t outer, int64_t D, int64_t inner,
                             double p, double eps);
  // torch's local_response_norm: s_c = k + alpha/size * sum_{c' in [c - size/2, c + (size-1)/2]} x_c'^2
  // (zero padded), y = x * s^-beta; scale_out[N, C, S] = s (kept for backward).
  void (*lrn_forward)(const T* x, T* y, T* scale_out, int64_t N, int64_t C, int64_t S, int64_t size, double alpha,
                      double beta, double k);
  // gx_j = gy_j s_j^-beta - 2 alpha beta / size * x_j * sum_{c: j in window(c)} gy_c x_c s_c^(-beta-1).
  void (*lrn_backward)(const T* gy, const T* x, const T* scale, T* gx, int64_t N, int64_t C, int64_t S, int64_t size,
                       double alpha, double beta);
};

struct NormKernels {
  BatchNormFns<float> f32;
  BatchNormFns<double> f64;
  LpNormFns<float> lp32;
  LpNormFns<double> lp64;
};

template <class T>
inline const LpNormFns<T>& pick_lp(const NormKernels& k) {
  if constexpr (sizeof(T) == 4) return k.lp32; else return k.lp64;
}

namespace avx512 { LpNormFns<float> lp_norm_fns_f32(); LpNormFns<double> lp_norm_fns_f64(); }
namespace avx2 { LpNormFns<float> lp_norm_fns_f32(); LpNormFns<double> lp_norm_fns_f64(); }
namespace generic { LpNormFns<float> lp_norm_fns_f32(); LpNormFns<double> lp_norm_fns_f64(); }

template <class T>
inline const BatchNormFns<T>& pick(const NormKernels& k) {
  if constexpr (sizeof(T) == 4) return k.f32; else return k.f64;
}

}  // namespace fastcnn

FASTCNN_ISA_TABLE(NormKernels, norm_kernels)
