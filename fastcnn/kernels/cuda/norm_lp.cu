// CUDA normalize (L_p over one dim) and local_response_norm (over channels); signatures:
// fastcnn/ops/norm.py; launchers: fastcnn/backends/cuda/norm.py. Arithmetic in double.
//   normalize_forward_* / normalize_backward_*  x[outer, D, inner]. inner == 1: one block per row
//       (grid-stride over rows), threads stride D, block reduction; inner > 1: one thread per
//       (outer, inner) line stepping through D (neighbouring threads read neighbouring addresses).
//       Forward: n = (sum |x|^p)^(1/p), y = x / max(n, eps). Backward:
//       gx = gy / max(n, eps) - [n > eps] (gy . x) / n^2 / n^(p-1) * sign(x)|x|^(p-1).
//   lrn_forward_* / lrn_backward_*  x[N, C, S]: one thread per (n, pixel) walks the channels with a
//       sliding window (one add, one subtract per channel), window [c - before, c + after] cut at 0, C:
//       scale_c = k + a sum x^2 (a = alpha/size), y_c = x_c scale_c^-beta;
//       gx_j = gy_j scale_j^-beta + f x_j sum_{c in [j - after, j + before]} gy_c x_c scale_c^(-beta-1)
//       (f = -2 alpha beta / size).
// Index math in long long.
#include "common.cuh"
#include "reduce.cuh"

using fastcnn_cuda::block_sum;

// |a|^p for a >= 0 (p = 1 and 2 without pow).
__device__ __forceinline__ double lp_power(double a, double p) { return p == 2.0 ? a * a : (p == 1.0 ? a : pow(a, p)); }

// s^(1/p) for s >= 0.
__device__ __forceinline__ double lp_root(double s, double p) {
  return p == 2.0 ? sqrt(s) : (p == 1.0 ? s : pow(s, 1.0 / p));
}

// sign(a) |a|^(p-1), 0 at a == 0.
__device__ __forceinline__ double lp_grad_term(double a, double p) {
  if (p == 2.0) return a;
  const double sign = a > 0 ? 1.0 : (a < 0 ? -1.0 : 0.0);
  return p == 1.0 || a == 0 ? sign : sign * pow(fabs(a), p - 1.0);
}

// The D values of one normalize line start at base and step `stride`; this thread takes d = d0, d0 + step, ...
struct LpLine {
  long long index, base, stride, d0, step;
};

// inner == 1: block r takes rows r, r + gridDim.x, ... (the loop is uniform across the block, so
// every thread reaches block_sum); inner > 1: thread i takes line i alone.
template <class Body>
__device__ __forceinline__ void for_lp_lines(long long outer, long long D, long long inner, Body body) {
  if (inner == 1) {
    for (long long r = blockIdx.x; r < outer; r += gridDim.x) body(LpLine{r, r * D, 1, threadIdx.x, blockDim.x}, true);
    return;
  }
  FASTCNN_GRID_LOOP(i, outer * inner) {
    const long long o = i / inner;
    body(LpLine{i, o * D * inner + (i - o * inner), inner, 0, 1}, false);
  }
}

template <class T>
__device__ void normalize_forward(const T* x, T* y, T* norm, long long outer, long long D, long long inner, double p,
                                  double eps) {
  __shared__ double scratch[32];
  for_lp_lines(outer, D, inner, [&](const LpLine& l, bool whole_block) {
    double s = 0;
    for (long long d = l.d0; d < D; d += l.step) s += lp_power(fabs(double(x[l.base + d * l.stride])), p);
    if (whole_block) s = block_sum(s, scratch);
    const double n = lp_root(s, p), inv = 1.0 / (n > eps ? n : eps);
    if (l.d0 == 0) norm[l.index] = T(n);
    for (long long d = l.d0; d < D; d += l.step) {
      const long long o = l.base + d * l.stride;
      y[o] = T(double(x[o]) * inv);
    }
  });
}

template <class T>
__device__ void normalize_backward(const T* gy, const T* x, const T* norm, T* gx, long long outer, long long D,
                                   long long inner, double p, double eps) {
  __shared__ double scratch[32];
  for_lp_lines(outer, D, inner, [&](const LpLine& l, bool whole_block) {
    double dot = 0;
    for (long long d = l.d0; d < D; d += l.step) {
      const long long o = l.base + d * l.stride;
      dot += double(gy[o]) * double(x[o]);
    }
    if (whole_block) dot = block_sum(dot, scratch);
    const double n = double(norm[l.index]), inv = 1.0 / (n > eps ? n : eps);
    const double coef = n > eps ? -dot / (n * n) / (p == 1.0 ? 1.0 : (p == 2.0 ? n : pow(n, p - 1.0))) : 0.0;
    for (long long d = l.d0; d < D; d += l.step) {
      const long long o = l.base + d * l.stride;
      gx[o] = T(double(gy[o]) * inv + coef * lp_grad_term(double(x[o]), p));
    }
  });
}

template <class T>
__device__ __forceinline__ double square_at(const T* x, long long base, long long c, long long C, long long S) {
  if (c < 0 || c >= C) return 0.0;
  const double v = double(x[base + c * S]);
  return v * v;
}

template <class T>
__device__ void lrn_forward(const T* x, T* y, T* scale, long long N, long long C, long long S, long long before,
                            long long after, double a, double beta, double k) {
  FASTCNN_GRID_LOOP(i, N * S) {
    const long long n = i / S, base = n * C * S + (i - n * S);
    double window = 0;  // sum of squares over [c - before, c + after] within [0, C)
    for (long long c = 0; c < after && c < C; ++c) window += square_at(x, base, c, C, S);
    for (long long c = 0; c < C; ++c) {
      window += square_at(x, base, c + after, C, S) - square_at(x, base, c - before - 1, C, S);
      const double sc = k + a * window;
      const long long o = base + c * S;
      scale[o] = T(sc);
      y[o] = T(double(x[o]) * pow(sc, -beta));
    }
  }
}

// gy_c x_c scale_c^(-beta-1), 0 outside [0, C).
template <class T>
__device__ __forceinline__ double lrn_t_at(const T* gy, const T* x, const T* scale, long long base, long long c,
                                           long long C, long long S, double beta) {
  if (c < 0 || c >= C) return 0.0;
  const long long o = base + c * S;
  return double(gy[o]) * double(x[o]) * pow(double(scale[o]), -beta - 1.0);
}

template <class T>
__device__ void lrn_backward(const T* gy, const T* x, const T* scale, T* gx, long long N, long long C, long long S,
                             long long before, long long after, double f, double beta) {
  FASTCNN_GRID_LOOP(i, N * S) {
    const long long n = i / S, base = n * C * S + (i - n * S);
    double window = 0;  // sum of t_c over [j - after, j + before] within [0, C)
    for (long long c = 0; c < before && c < C; ++c) window += lrn_t_at(gy, x, scale, base, c, C, S, beta);
    for (long long j = 0; j < C; ++j) {
      window += lrn_t_at(gy, x, scale, base, j + before, C, S, beta) -
                lrn_t_at(gy, x, scale, base, j - after - 1, C, S, beta);
      const long long o = base + j * S;
      gx[o] = T(double(gy[o]) * pow(double(scale[o]), -beta) + f * double(x[o]) * window);
    }
  }
}

#define FASTCNN_NORM_LP_INSTANTIATE(T, SUF)                                                                     \
  extern "C" __global__ void normalize_forward_##SUF(const T* x, T* y, T* norm, long long outer, long long D,    \
                                                    long long inner, double p, double eps) {                    \
    normalize_forward<T>(x, y, norm, outer, D, inner, p, eps);                                                   \
  }                                                                                                              \
  extern "C" __global__ void normalize_backward_##SUF(const T* gy, const T* x, const T* norm, T* gx,            \
                                                     long long outer, long long D, long long inner, double p,    \
                                                     double eps) {                                               \
    normalize_backward<T>(gy, x, norm, gx, outer, D, inner, p, eps);                                             \
  }                                                                                                              \
  extern "C" __global__ void lrn_forward_##SUF(const T* x, T* y, T* scale, long long N, long long C, long long S, \
                                              long long before, long long after, double a, double beta,          \
                                              double k) {                                                        \
    lrn_forward<T>(x, y, scale, N, C, S, before, after, a, beta, k);                                             \
  }                                                                                                              \
  extern "C" __global__ void lrn_backward_##SUF(const T* gy, const T* x, const T* scale, T* gx, long long N,     \
                                               long long C, long long S, long long before, long long after,      \
                                               double f, double beta) {                                          \
    lrn_backward<T>(gy, x, scale, gx, N, C, S, before, after, f, beta);                                          \
  }

FASTCNN_NORM_LP_INSTANTIATE(float, f32)
FASTCNN_NORM_LP_INSTANTIATE(double, f64)
