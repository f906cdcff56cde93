// CUDA activation kernels: element-wise forward/backward, PReLU, Maxout. Layouts as in
// fastcnn/kernels/triton/activation.py: flat dense storage, or (outer, C, inner) rows.
#include "activation_math.cuh"

using namespace fastcnn_cuda;

template <class T>
__device__ void forward(int kind, const T* x, T* y, long long n, T p0, T p1) {
  FASTCNN_GRID_LOOP(i, n) y[i] = act_forward(kind, x[i], p0, p1);
}

template <class T>
__device__ void backward(int kind, const T* gy, const T* s, T* gx, long long n, int from_output, T p0, T p1) {
  FASTCNN_GRID_LOOP(i, n) gx[i] = act_backward(kind, gy[i], s[i], from_output != 0, p0, p1);
}

template <class T>
__device__ void prelu_forward(const T* x, const T* w, T* y, long long C, long long inner, long long nw, long long n) {
  FASTCNN_GRID_LOOP(i, n) {
    const T v = x[i];
    const T slope = w[((i / inner) % C) % nw];
    y[i] = v > T(0) ? v : slope * v;
  }
}

// gx element-wise; gw[c] by one block per channel reducing over (outer, inner) in shared memory
// (deterministic, no atomics). Launch with grid = C (or 1 when nw == 1) and blockDim = 256.
template <class T>
__device__ void prelu_backward(const T* gy, const T* x, const T* w, T* gx, T* gw, long long outer, long long C,
                               long long inner, long long nw) {
  __shared__ T partial[256];
  const long long c = blockIdx.x;  // channel, or 0 for a shared slope
  const long long rows = nw == 1 ? outer * C : outer;
  T acc = T(0);
  for (long long r = 0; r < rows; ++r) {
    const long long row = nw == 1 ? r : r * C + c;
    const T slope = w[nw == 1 ? 0 : c];
    for (long long i = threadIdx.x; i < inner; i += blockDim.x) {
      const long long k = row * inner + i;
      const T v = x[k], g = gy[k];
      gx[k] = v > T(0) ? g : slope * g;
      if (!(v > T(0))) acc += v * g;
    }
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if ((int)threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) gw[c] = partial[0];
}

// Forward (gy == nullptr): y = max over each group of k rows, NaN first, first maximum kept.
// Backward: gy routed to that choice, zeros elsewhere. n = outer * cout * inner.
template <class T>
__device__ void maxout(const T* x, T* y, const T* gy, T* gx, long long cout, long long k, long long inner, long long n,
                       int backward_pass) {
  FASTCNN_GRID_LOOP(i, n) {
    const long long row = i / inner, col = i % inner;
    const T* base = x + row * k * inner + col;
    T best = base[0];
    long long arg = 0;
    for (long long p = 1; p < k; ++p) {
      const T v = base[p * inner];
      const bool take = v > best || (v != v && best == best);
      if (take) { best = v; arg = p; }
    }
    if (backward_pass) {
      for (long long p = 0; p < k; ++p) gx[row * k * inner + p * inner + col] = p == arg ? gy[i] : T(0);
    } else {
      y[i] = best;
    }
  }
}

#define FASTCNN_INSTANTIATE(T, S)                                                                              \
  extern "C" __global__ void activation_forward_##S(int kind, const T* x, T* y, long long n, T p0, T p1) {     \
    forward<T>(kind, x, y, n, p0, p1);                                                                         \
  }                                                                                                            \
  extern "C" __global__ void activation_backward_##S(int kind, const T* gy, const T* s, T* gx, long long n,    \
                                                     int from_output, T p0, T p1) {                            \
    backward<T>(kind, gy, s, gx, n, from_output, p0, p1);                                                      \
  }                                                                                                            \
  extern "C" __global__ void prelu_forward_##S(const T* x, const T* w, T* y, long long C, long long inner,      \
                                               long long nw, long long n) {                                    \
    prelu_forward<T>(x, w, y, C, inner, nw, n);                                                                \
  }                                                                                                            \
  extern "C" __global__ void prelu_backward_##S(const T* gy, const T* x, const T* w, T* gx, T* gw,             \
                                                long long outer, long long C, long long inner, long long nw) { \
    prelu_backward<T>(gy, x, w, gx, gw, outer, C, inner, nw);                                                  \
  }                                                                                                            \
  extern "C" __global__ void maxout_##S(const T* x, T* y, const T* gy, T* gx, long long cout, long long k,      \
                                        long long inner, long long n, int backward_pass) {                     \
    maxout<T>(x, y, gy, gx, cout, k, inner, n, backward_pass);                                                 \
  }

FASTCNN_INSTANTIATE(float, f32)
FASTCNN_INSTANTIATE(double, f64)
