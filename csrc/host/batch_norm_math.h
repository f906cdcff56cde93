// Batch norm on x[N, C, S] for one dtype: the passes over the data are the ISA kernels
// (csrc/kernels/norm.cpp); the O(C) per-channel arithmetic is here, in double. Shared by the pybind11
// binding (csrc/host/norm.cpp) and the eager op (csrc/torchops/batch_norm.cpp), so both compute alike.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/norm.h"

namespace fastcnn::batch_norm {

// Optional per-channel vector (nullptr = absent -> `fallback`).
template <class T>
inline double at_or(const T* p, int64_t c, double fallback) { return p ? double(p[c]) : fallback; }

// Forward. Training: batch statistics, running buffers updated in place (unbiased variance, factor
// `momentum`) when given. Eval: the running statistics. Writes y, and mean[C], invstd[C] for backward.
template <class T>
void forward(const T* x, T* y, int64_t N, int64_t C, int64_t S, const T* w, const T* b, T* rm, T* rv,
             bool training, double momentum, double eps, T* mean, T* invstd) {
  const auto& k = pick<T>(norm_kernels());
  const double M = double(N) * double(S);
  std::vector<T> scale(C), shift(C);
  std::vector<double> pivot(C), s1(C), s2(C);
  if (training) k.channel_moments(x, N, C, S, pivot.data(), s1.data(), s2.data());
  for (int64_t c = 0; c < C; ++c) {
    double mu, var;
    if (training) {
      const double d = s1[c] / M;
      mu = pivot[c] + d;
      var = s2[c] / M - d * d;
      if (var < 0) var = 0;  // rounding; a NaN (an inf or NaN in the channel) stays NaN, as torch's
      if (rm) rm[c] = T((1 - momentum) * double(rm[c]) + momentum * mu);
      if (rv) rv[c] = T((1 - momentum) * double(rv[c]) + momentum * var * M / (M - 1));
    } else {
      mu = double(rm[c]);
      var = double(rv[c]);
    }
    const double is = 1.0 / std::sqrt(var + eps);
    const double sc = at_or(w, c, 1.0) * is;
    mean[c] = T(mu);
    invstd[c] = T(is);
    scale[c] = T(sc);
    shift[c] = T(at_or(b, c, 0.0) - mu * sc);
  }
  k.channel_affine(x, y, N, C, S, scale.data(), shift.data());
}

// Backward. Training: gx = w*invstd*(gy - mean(gy) - xhat*mean(gy*xhat)); eval: gx = w*invstd*gy.
// grad_weight = sum(gy*xhat), grad_bias = sum(gy). Any output may be nullptr (not wanted).
template <class T>
void backward(const T* gy, const T* x, T* gx, int64_t N, int64_t C, int64_t S, const T* w, const T* mean,
              const T* invstd, bool training, T* gw, T* gb) {
  const auto& k = pick<T>(norm_kernels());
  const double M = double(N) * double(S);
  const bool need_sums = gw || gb || (gx && training);
  std::vector<double> sum_gy(C, 0.0), sum_gy_xmu(C, 0.0);
  if (need_sums) k.grad_moments(gy, x, mean, N, C, S, sum_gy.data(), sum_gy_xmu.data());
  std::vector<T> a(C), bcoef(C), kcoef(C);
  for (int64_t c = 0; c < C; ++c) {
    const double is = double(invstd[c]);
    if (gw) gw[c] = T(sum_gy_xmu[c] * is);
    if (gb) gb[c] = T(sum_gy[c]);
    const double ac = at_or(w, c, 1.0) * is;
    a[c] = T(ac);
    if (training) {
      const double bc = -ac * is * is * sum_gy_xmu[c] / M;
      bcoef[c] = T(bc);
      kcoef[c] = T(-ac * sum_gy[c] / M);
    } else {
      kcoef[c] = T(0);
    }
  }
  if (!gx) return;
  if (training)
    k.grad_affine(gy, x, gx, N, C, S, a.data(), bcoef.data(), mean, kcoef.data());
  else
    k.channel_affine(gy, gx, N, C, S, a.data(), kcoef.data());
}

}  // namespace fastcnn::batch_norm
