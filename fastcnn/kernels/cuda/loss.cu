// CUDA kernels of the loss family (signatures: fastcnn/ops/loss.py; launchers:
// fastcnn/backends/cuda/loss.py). Class-index losses on x[N, C, S], target[N, S]: one block per
// (n, s) line for cross-entropy (block max / sum over C, then the fused softmax - onehot gradient);
// grid-stride element-wise kernels for nll; a two-stage block sum for the reductions.
#include "reduce.cuh"

using fastcnn_cuda::block_max;
using fastcnn_cuda::block_sum;

template <class T>
__device__ __forceinline__ T weight_of(const T* w, long long c) { return w ? w[c] : T(1); }

// coef = {1 - e, e / C} in T (so float64 stays float64).
template <class T>
__device__ void ce_forward(const T* x, const long long* t, const T* w, T* loss, T* wt, T* lse_out, long long C,
                           long long S, long long ignore_index, const T* coef, int smooth) {
  __shared__ T scratch[32];
  const long long i = blockIdx.x, n = i / S, s = i - n * S;
  const T* xl = x + n * C * S + s;
  T m = fastcnn_cuda::neg_inf<T>();
  for (long long c = threadIdx.x; c < C; c += blockDim.x) m = fmax(m, xl[c * S]);
  m = block_max(m, scratch);
  const T shift = m == fastcnn_cuda::neg_inf<T>() ? T(0) : m;
  T sum = 0, wx = 0, wsum = 0;
  for (long long c = threadIdx.x; c < C; c += blockDim.x) {
    const T xc = xl[c * S];
    sum += exp(xc - shift);
    if (smooth) {
      wx += weight_of(w, c) * (xc - shift);
      wsum += weight_of(w, c);
    }
  }
  sum = block_sum(sum, scratch);
  if (smooth) {
    wx = block_sum(wx, scratch);
    wsum = block_sum(wsum, scratch);
  }
  if (threadIdx.x == 0) {
    const T log_sum = ::log(sum);
    const long long target = t[i];
    if (target == ignore_index) {
      loss[i] = wt[i] = T(0);
    } else {
      wt[i] = weight_of(w, target);
      loss[i] = coef[0] * wt[i] * ((shift - xl[target * S]) + log_sum) + (smooth ? coef[1] * (wsum * log_sum - wx) : T(0));
    }
    lse_out[i] = shift + log_sum;
  }
}

template <class T>
__device__ void ce_backward(const T* x, const long long* t, const T* w, const T* lse, const T* g, long long g_stride,
                            T* gx, long long C, long long S, long long ignore_index, const T* coef, int smooth) {
  __shared__ T scratch[32];
  const long long i = blockIdx.x, n = i / S, s = i - n * S, base = n * C * S + s;
  const long long target = t[i];
  const bool valid = target != ignore_index;
  const T gi = g[i * g_stride];
  const T a = valid ? coef[0] * gi * weight_of(w, target) : T(0);
  const T b = valid ? coef[1] * gi : T(0);
  T wsum = 0;
  if (smooth) {
    for (long long c = threadIdx.x; c < C; c += blockDim.x) wsum += weight_of(w, c);
    wsum = block_sum(wsum, scratch);
  }
  for (long long c = threadIdx.x; c < C; c += blockDim.x) {
    const T p = exp(x[base + c * S] - lse[i]);
    T v = a * (p - (valid && c == target ? T(1) : T(0)));
    if (smooth) v += b * (wsum * p - weight_of(w, c));
    gx[base + c * S] = v;
  }
}

template <class T>
__device__ void nll_forward(const T* x, const long long* t, const T* w, T* out, T* wt, long long total, long long C,
                            long long S, long long ignore_index) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const long long target = t[i], n = i / S, s = i - n * S;
    const bool valid = target != ignore_index;
    wt[i] = valid ? weight_of(w, target) : T(0);
    out[i] = valid ? -wt[i] * x[(n * C + target) * S + s] : T(0);
  }
}

template <class T>
__device__ void nll_backward(const long long* t, const T* w, const T* g, long long g_stride, T* gx, long long total,
                             long long C, long long S, long long ignore_index) {
  // Every element of gx[N, C, S] written: -w[t] g at the target, 0 elsewhere.
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < total; k += stride) {
    const long long s = k % S, nc = k / S, c = nc % C, n = nc / C, i = n * S + s;
    const long long target = t[i];
    gx[k] = (target != ignore_index && c == target) ? -weight_of(w, target) * g[i * g_stride] : T(0);
  }
}

// Element-wise losses (kind 0 mse, 1 bce, 2 bce with logits; 3 / 4: the target gradient of bce / bce
// with logits, backward only; formulas in csrc/kernels/loss.cpp):
// forward: out = w * loss; backward: out = g * w * d loss / dx. w, pw, g may be null (g_stride 0:
// one shared g).
template <class T>
__device__ void pointwise_loss(int kind, int backward, const T* x, const T* y, const T* w, const T* pw, const T* g,
                               long long g_stride, T* out, long long n) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T xi = x[i], yi = y[i];
    const T scale = pw ? T(1) + (pw[i] - T(1)) * yi : T(1);
    T v;
    if (kind == 0) {
      v = backward ? T(2) * (xi - yi) : (xi - yi) * (xi - yi);
    } else if (kind == 1) {
      v = backward ? (xi - yi) / fmax((T(1) - xi) * xi, T(1e-12))
                   : -(yi * fmax(::log(xi), T(-100)) + (T(1) - yi) * fmax(::log(T(1) - xi), T(-100)));
    } else if (kind == 3) {
      v = ::log(T(1) - xi) - ::log(xi);
    } else if (kind == 4) {
      v = pw ? (pw[i] - T(1)) * (log1p(exp(-fabs(xi))) + fmax(-xi, T(0))) - xi : -xi;
    } else {
      v = backward ? (T(1) - yi) - scale / (T(1) + exp(xi))
                   : (T(1) - yi) * xi + scale * (log1p(exp(-fabs(xi))) + fmax(-xi, T(0)));
    }
    if (w) v *= w[i];
    if (backward) v *= g[i * g_stride];
    out[i] = v;
  }
}

// out[blockIdx.x] = sum of v over this block's grid-stride share, in double.
template <class T>
__device__ void partial_sums(const T* v, double* out, long long total) {
  __shared__ double scratch[32];
  double acc = 0;
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) acc += double(v[i]);
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = acc;
}

#define FASTCNN_LOSS_INSTANTIATE(T, SUF)                                                                           \
  extern "C" __global__ void ce_forward_##SUF(const T* x, const long long* t, const T* w, T* loss, T* wt, T* lse, \
                                             long long C, long long S, long long ignore_index, const T* coef,     \
                                             int smooth) {                                                        \
    ce_forward<T>(x, t, w, loss, wt, lse, C, S, ignore_index, coef, smooth);                                        \
  }                                                                                                                 \
  extern "C" __global__ void ce_backward_##SUF(const T* x, const long long* t, const T* w, const T* lse,          \
                                              const T* g, long long g_stride, T* gx, long long C, long long S,     \
                                              long long ignore_index, const T* coef, int smooth) {                 \
    ce_backward<T>(x, t, w, lse, g, g_stride, gx, C, S, ignore_index, coef, smooth);                               \
  }                                                                                                                 \
  extern "C" __global__ void nll_forward_##SUF(const T* x, const long long* t, const T* w, T* out, T* wt,          \
                                              long long total, long long C, long long S, long long ignore_index) { \
    nll_forward<T>(x, t, w, out, wt, total, C, S, ignore_index);                                                    \
  }                                                                                                                 \
  extern "C" __global__ void nll_backward_##SUF(const long long* t, const T* w, const T* g, long long g_stride,    \
                                               T* gx, long long total, long long C, long long S,                   \
                                               long long ignore_index) {                                            \
    nll_backward<T>(t, w, g, g_stride, gx, total, C, S, ignore_index);                                              \
  }                                                                                                                 \
  extern "C" __global__ void pointwise_loss_##SUF(int kind, int backward, const T* x, const T* y, const T* w,      \
                                                 const T* pw, const T* g, long long g_stride, T* out,             \
                                                 long long n) {                                                    \
    pointwise_loss<T>(kind, backward, x, y, w, pw, g, g_stride, out, n);                                            \
  }                                                                                                                 \
  extern "C" __global__ void partial_sums_##SUF(const T* v, double* out, long long total) {                        \
    partial_sums<T>(v, out, total);                                                                                 \
  }

FASTCNN_LOSS_INSTANTIATE(float, f32)
FASTCNN_LOSS_INSTANTIATE(double, f64)
