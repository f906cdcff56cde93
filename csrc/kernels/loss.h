// Loss kernels: the per-ISA table. Class-index losses see logits x[N, C, S] (S = 1 for (N, C)) and
// target t[N, S] (int64, checked in range or == ignore_index by the caller); w[C] optional (null).
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {

template <class T>
struct LossFns {
  // Per element i = (n, s), with e = label_smoothing, lse = log sum_c exp x[n,c,s]:
  //   loss[i] = (1 - e) * w[t] * (lse - x[n,t,s]) + e / C * sum_c w[c] * (lse - x[n,c,s]),
  //   wt[i] = w[t] (the 'mean' denominator), lse_out[i] = lse;  loss = wt = 0 where t == ignore_index.
  void (*cross_entropy_forward)(const T* x, const int64_t* t, const T* w, int64_t N, int64_t C, int64_t S,
                                int64_t ignore_index, double smoothing, T* loss, T* wt, T* lse_out);
  // d loss[i] / dx, scaled by g[i * g_stride] (g_stride 0: one value for all), fused in one pass:
  //   gx[n,c,s] = a_i * (p_c - [c == t]) + b_i * (W p_c - w[c]),  p = exp(x - lse), W = sum_c w[c],
  //   a_i = (1 - e) * g_i * w[t], b_i = e / C * g_i  (0 for ignored i).
  void (*cross_entropy_backward)(const T* x, const int64_t* t, const T* w, const T* lse, int64_t N, int64_t C,
                                 int64_t S, int64_t ignore_index, double smoothing, const T* g, int64_t g_stride,
                                 T* gx);
  // Class-probability targets t[N, C, S] (x's dtype), e = label_smoothing, t' = (1 - e) t + e / C:
  //   loss[i] = sum_c w[c] t'[n,c,s] (lse - x[n,c,s]), lse_out[i] = lse.
  void (*soft_cross_entropy_forward)(const T* x, const T* t, const T* w, int64_t N, int64_t C, int64_t S,
                                     double smoothing, T* loss, T* lse_out);
  // Scaled by g_i = g[i * g_stride]: gx[n,c,s] = g_i (p_c A_i - w[c] t'_c), A_i = sum_c w[c] t'_c,
  // p = exp(x - lse);  gt[n,c,s] = g_i (1 - e) w[c] (lse - x[n,c,s]). gx or gt may be null (not needed).
  void (*soft_cross_entropy_backward)(const T* x, const T* t, const T* w, const T* lse, int64_t N, int64_t C,
                                      int64_t S, double smoothing, const T* g, int64_t g_stride, T* gx, T* gt);
  // nll on log-probabilities x: out[i] = -w[t] * x[n,t,s], wt[i] = w[t] (both 0 where t == ignore_index).
  void (*nll_forward)(const T* x, const int64_t* t, const T* w, int64_t N, int64_t C, int64_t S,
                      int64_t ignore_index, T* out, T* wt);
  // gx = 0 except gx[n,t,s] = -w[t] * g[i * g_stride].
  void (*nll_backward)(const int64_t* t, const T* w, int64_t N, int64_t C, int64_t S, int64_t ignore_index,
                       const T* g, int64_t g_stride, T* gx);
  // Element-wise losses (kind: 0 mse, 1 binary_cross_entropy, 2 binary_cross_entropy_with_logits) on
  // n elements; w (weight) and pw (pos_weight, logits only) are null or already broadcast to n.
  void (*pointwise_forward)(int kind, const T* x, const T* y, const T* w, const T* pw, int64_t n, T* out);
  // gx = g[i * g_stride] * d loss[i] / d x[i].
  void (*pointwise_backward)(int kind, const T* x, const T* y, const T* w, const T* pw, const T* g, int64_t g_stride,
                             int64_t n, T* gx);
  // Sum of pointwise_forward's n values in double, without storing them.
  double (*pointwise_sum)(int kind, const T* x, const T* y, const T* w, const T* pw, int64_t n);
  // Sum of v[0..n) in double (the 'mean'/'sum' reductions of every loss).
  double (*sum)(const T* v, int64_t n);
};

struct LossKernels {
  LossFns<float> f32;
  LossFns<double> f64;
};

template <class T>
inline const LossFns<T>& pick(const LossKernels& k) {
  if constexpr (sizeof(T) == 4) return k.f32; else return k.f64;
}

}  // namespace fastcnn

FASTCNN_ISA_TABLE(LossKernels, loss_kernels)
