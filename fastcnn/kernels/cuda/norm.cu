// CUDA kernels of the norm family (signatures: fastcnn/ops/norm.py; launchers:
// fastcnn/backends/cuda/norm.py). Batch norm on x[N, C, S]:
//   bn_forward_channel_*   one block per channel: shifted sums in double -> mean, invstd, running
//                          update, scale/shift;
//   bn_backward_channel_*  one block per channel: sum gy, sum gy*(x-mean) -> grad_weight, grad_bias
//                          and the coefficients of gx = a*gy + b*(x-mean) + k;
//   channel_fma_*          grid-stride element-wise out = p[c]*u + q[c]*(v - m[c]) + r[c].
// Optional pointers are null when absent. Index math in long long.
#include "reduce.cuh"

using fastcnn_cuda::block_sum;

template <class T>
__device__ void bn_forward_channel(const T* x, const T* w, const T* b, T* running_mean, T* running_var,
                                   T* mean_out, T* invstd_out, T* scale_out, T* shift_out, long long N, long long C,
                                   long long S, int training, double momentum, double eps) {
  __shared__ double scratch[32];
  const long long c = blockIdx.x;
  double mean, var;
  if (training) {
    const double pivot = double(x[c * S]);
    double s1 = 0, s2 = 0;
    const long long M = N * S;
    for (long long i = threadIdx.x; i < M; i += blockDim.x) {
      const long long n = i / S, s = i - n * S;
      const double d = double(x[(n * C + c) * S + s]) - pivot;
      s1 += d;
      s2 += d * d;
    }
    s1 = block_sum(s1, scratch);
    s2 = block_sum(s2, scratch);
    const double count = double(M), dm = s1 / count;
    mean = pivot + dm;
    var = s2 / count - dm * dm;
    var = var > 0 ? var : 0;
    if (threadIdx.x == 0 && running_mean) {
      running_mean[c] = T((1 - momentum) * double(running_mean[c]) + momentum * mean);
      running_var[c] = T((1 - momentum) * double(running_var[c]) + momentum * var * count / (count - 1));
    }
  } else {
    mean = double(running_mean[c]);
    var = double(running_var[c]);
  }
  if (threadIdx.x == 0) {
    const double is = 1.0 / sqrt(var + eps);
    const double sc = (w ? double(w[c]) : 1.0) * is;
    mean_out[c] = T(mean);
    invstd_out[c] = T(is);
    scale_out[c] = T(sc);
    shift_out[c] = T((b ? double(b[c]) : 0.0) - mean * sc);
  }
}

template <class T>
__device__ void bn_backward_channel(const T* gy, const T* x, const T* w, const T* mean_in, const T* invstd_in, T* gw,
                                    T* gb, T* a_out, T* b_out, T* k_out, long long N, long long C, long long S,
                                    int training) {
  __shared__ double scratch[32];
  const long long c = blockIdx.x, M = N * S;
  const double mean = double(mean_in[c]), is = double(invstd_in[c]);
  double s1 = 0, s2 = 0;
  for (long long i = threadIdx.x; i < M; i += blockDim.x) {
    const long long n = i / S, s = i - n * S, o = (n * C + c) * S + s;
    const double g = double(gy[o]);
    s1 += g;
    s2 += g * (double(x[o]) - mean);
  }
  s1 = block_sum(s1, scratch);
  s2 = block_sum(s2, scratch);
  if (threadIdx.x == 0) {
    if (gw) gw[c] = T(s2 * is);
    if (gb) gb[c] = T(s1);
    const double a = (w ? double(w[c]) : 1.0) * is;
    a_out[c] = T(a);
    b_out[c] = T(training ? -a * is * is * s2 / double(M) : 0.0);
    k_out[c] = T(training ? -a * s1 / double(M) : 0.0);
  }
}

template <class T>
__device__ void channel_fma(const T* u, const T* v, T* out, const T* p, const T* q, const T* m, const T* r,
                            long long total, long long C, long long S) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const long long c = (i / S) % C;
    T acc = p[c] * u[i] + r[c];
    if (v) acc += q[c] * (v[i] - m[c]);
    out[i] = acc;
  }
}

#define FASTCNN_NORM_INSTANTIATE(T, SUF)                                                                        \
  extern "C" __global__ void bn_forward_channel_##SUF(const T* x, const T* w, const T* b, T* rm, T* rv, T* mean,  \
                                                     T* invstd, T* scale, T* shift, long long N, long long C,    \
                                                     long long S, int training, double momentum, double eps) {   \
    bn_forward_channel<T>(x, w, b, rm, rv, mean, invstd, scale, shift, N, C, S, training, momentum, eps);        \
  }                                                                                                              \
  extern "C" __global__ void bn_backward_channel_##SUF(const T* gy, const T* x, const T* w, const T* mean,       \
                                                      const T* invstd, T* gw, T* gb, T* a, T* b, T* k,           \
                                                      long long N, long long C, long long S, int training) {     \
    bn_backward_channel<T>(gy, x, w, mean, invstd, gw, gb, a, b, k, N, C, S, training);                          \
  }                                                                                                              \
  extern "C" __global__ void channel_fma_##SUF(const T* u, const T* v, T* out, const T* p, const T* q,           \
                                              const T* m, const T* r, long long total, long long C,             \
                                              long long S) {                                                     \
    channel_fma<T>(u, v, out, p, q, m, r, total, C, S);                                                          \
  }

FASTCNN_NORM_INSTANTIATE(float, f32)
FASTCNN_NORM_INSTANTIATE(double, f64)
