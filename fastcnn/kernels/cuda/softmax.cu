// CUDA softmax / log_softmax over D of x[outer, D, inner] (signatures: fastcnn/ops/softmax.py;
// launchers: fastcnn/backends/cuda/softmax.py). One block per (outer, inner) line: block-wide
// max, sum of exp, then the write; the backward reduces sum gy*y (or sum gy) and writes.
#include "reduce.cuh"

using fastcnn_cuda::block_max;
using fastcnn_cuda::block_sum;

template <class T>
__device__ void softmax_forward(const T* x, T* y, long long D, long long inner, int log) {
  __shared__ T scratch[32];
  const long long line = blockIdx.x, o = line / inner, i = line - o * inner;
  const T* xl = x + o * D * inner + i;
  T* yl = y + o * D * inner + i;
  T m = fastcnn_cuda::neg_inf<T>();
  for (long long d = threadIdx.x; d < D; d += blockDim.x) m = fmax(m, xl[d * inner]);
  m = block_max(m, scratch);
  const T shift = m == fastcnn_cuda::neg_inf<T>() ? T(0) : m;
  T s = 0;
  for (long long d = threadIdx.x; d < D; d += blockDim.x) s += exp(xl[d * inner] - shift);
  s = block_sum(s, scratch);
  const T lse = shift + ::log(s), inv = T(1) / s;
  for (long long d = threadIdx.x; d < D; d += blockDim.x)
    yl[d * inner] = log ? xl[d * inner] - lse : exp(xl[d * inner] - shift) * inv;
}

template <class T>
__device__ void softmax_backward(const T* gy, const T* y, T* gx, long long D, long long inner, int log) {
  __shared__ T scratch[32];
  const long long line = blockIdx.x, o = line / inner, i = line - o * inner, base = o * D * inner + i;
  T acc = 0;
  for (long long d = threadIdx.x; d < D; d += blockDim.x) {
    const long long k = base + d * inner;
    acc += log ? gy[k] : gy[k] * y[k];
  }
  acc = block_sum(acc, scratch);
  for (long long d = threadIdx.x; d < D; d += blockDim.x) {
    const long long k = base + d * inner;
    gx[k] = log ? gy[k] - exp(y[k]) * acc : y[k] * (gy[k] - acc);
  }
}

#define FASTCNN_SOFTMAX_INSTANTIATE(T, SUF)                                                                   \
  extern "C" __global__ void softmax_forward_##SUF(const T* x, T* y, long long D, long long inner, int log) {   \
    softmax_forward<T>(x, y, D, inner, log);                                                                 \
  }                                                                                                          \
  extern "C" __global__ void softmax_backward_##SUF(const T* gy, const T* y, T* gx, long long D, long long inner, \
                                                   int log) {                                                \
    softmax_backward<T>(gy, y, gx, D, inner, log);                                                           \
  }

FASTCNN_SOFTMAX_INSTANTIATE(float, f32)
FASTCNN_SOFTMAX_INSTANTIATE(double, f64)
