// fastcnn._C.norm: batch norm forward/backward on x[N, C, S]. The passes over the data are the ISA
// kernels (csrc/kernels/norm.cpp); the O(C) per-channel arithmetic is here, in double.
#include <cmath>
#include <vector>

#include "common/module.h"
#include "kernels/norm.h"

namespace fastcnn {
namespace {

// Optional per-channel vector (address 0 = absent -> `fallback`).
template <class T>
inline double at_or(const T* p, int64_t c, double fallback) { return p ? double(p[c]) : fallback; }

// Forward. Training: batch statistics, running buffers updated in place (unbiased variance, factor
// `momentum`) when given. Eval: the running statistics. Writes y, and mean[C], invstd[C] for backward.
void batch_norm_forward(int dtype, std::uintptr_t x, std::uintptr_t y, int64_t N, int64_t C, int64_t S,
                        std::uintptr_t weight, std::uintptr_t bias, std::uintptr_t running_mean,
                        std::uintptr_t running_var, bool training, double momentum, double eps,
                        std::uintptr_t mean_out, std::uintptr_t invstd_out) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    const auto& k = pick<T>(norm_kernels());
    T* w = as_ptr<T>(weight);
    T* b = as_ptr<T>(bias);
    T* rm = as_ptr<T>(running_mean);
    T* rv = as_ptr<T>(running_var);
    T* mean = as_ptr<T>(mean_out);
    T* invstd = as_ptr<T>(invstd_out);
    const double M = double(N) * double(S);
    std::vector<T> scale(C), shift(C);
    std::vector<double> pivot(C), s1(C), s2(C);
    if (training) k.channel_moments(as_ptr<const T>(x), N, C, S, pivot.data(), s1.data(), s2.data());
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
    k.channel_affine(as_ptr<const T>(x), as_ptr<T>(y), N, C, S, scale.data(), shift.data());
  });
}

// Backward. Training: gx = w*invstd*(gy - mean(gy) - xhat*mean(gy*xhat)); eval: gx = w*invstd*gy.
// grad_weight = sum(gy*xhat), grad_bias = sum(gy). Any output address may be 0 (not wanted).
void batch_norm_backward(int dtype, std::uintptr_t gy, std::uintptr_t x, std::uintptr_t gx, int64_t N, int64_t C,
                         int64_t S, std::uintptr_t weight, std::uintptr_t mean_in, std::uintptr_t invstd_in,
                         bool training, std::uintptr_t grad_weight, std::uintptr_t grad_bias) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    const auto& k = pick<T>(norm_kernels());
    const T* w = as_ptr<const T>(weight);
    const T* mean = as_ptr<const T>(mean_in);
    const T* invstd = as_ptr<const T>(invstd_in);
    T* gw = as_ptr<T>(grad_weight);
    T* gb = as_ptr<T>(grad_bias);
    const double M = double(N) * double(S);
    const bool need_sums = gw || gb || (gx && training);
    std::vector<double> sum_gy(C, 0.0), sum_gy_xmu(C, 0.0);
    if (need_sums) k.grad_moments(as_ptr<const T>(gy), as_ptr<const T>(x), mean, N, C, S, sum_gy.data(), sum_gy_xmu.data());
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
      k.grad_affine(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<T>(gx), N, C, S, a.data(), bcoef.data(), mean, kcoef.data());
    else
      k.channel_affine(as_ptr<const T>(gy), as_ptr<T>(gx), N, C, S, a.data(), kcoef.data());
  });
}

void normalize_forward(int dtype, std::uintptr_t x, std::uintptr_t y, std::uintptr_t norm, int64_t outer, int64_t D,
                       int64_t inner, double p, double eps) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick_lp<T>(norm_kernels()).normalize_forward(as_ptr<const T>(x), as_ptr<T>(y), as_ptr<T>(norm), outer, D, inner, p, eps);
  });
}

void normalize_backward(int dtype, std::uintptr_t gy, std::uintptr_t x, std::uintptr_t norm, std::uintptr_t gx,
                        int64_t outer, int64_t D, int64_t inner, double p, double eps) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick_lp<T>(norm_kernels()).normalize_backward(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<const T>(norm),
                                                  as_ptr<T>(gx), outer, D, inner, p, eps);
  });
}

void lrn_forward(int dtype, std::uintptr_t x, std::uintptr_t y, std::uintptr_t scale, int64_t N, int64_t C, int64_t S,
                 int64_t size, double alpha, double beta, double k) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    if (N == 0 || C == 0 || S == 0) return;  // empty: nothing to write (the kernels divide by these)
    pick_lp<T>(norm_kernels()).lrn_forward(as_ptr<const T>(x), as_ptr<T>(y), as_ptr<T>(scale), N, C, S, size, alpha,
                                           beta, k);
  });
}

void lrn_backward(int dtype, std::uintptr_t gy, std::uintptr_t x, std::uintptr_t scale, std::uintptr_t gx, int64_t N,
                  int64_t C, int64_t S, int64_t size, double alpha, double beta) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    if (N == 0 || C == 0 || S == 0) return;  // empty: nothing to write (the kernels divide by these)
    pick_lp<T>(norm_kernels()).lrn_backward(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<const T>(scale),
                                            as_ptr<T>(gx), N, C, S, size, alpha, beta);
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(norm) {
  using namespace fastcnn;
  m.def("batch_norm_forward", &batch_norm_forward, FASTCNN_NOGIL);
  m.def("batch_norm_backward", &batch_norm_backward, FASTCNN_NOGIL);
  m.def("normalize_forward", &normalize_forward, FASTCNN_NOGIL);
  m.def("normalize_backward", &normalize_backward, FASTCNN_NOGIL);
  m.def("lrn_forward", &lrn_forward, FASTCNN_NOGIL);
  m.def("lrn_backward", &lrn_backward, FASTCNN_NOGIL);
}
