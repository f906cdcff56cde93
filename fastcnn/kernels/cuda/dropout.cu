// CUDA dropout mask * scale (signatures: fastcnn/ops/dropout.py; launcher: fastcnn/backends/cuda/dropout.py).
// y[i] = keep[i / group] ? x[i] * scale : 0, grid-stride, index math in long long.
template <class T>
__device__ void masked_scale(const T* x, const unsigned char* keep, long long n, long long group, T scale, T* y) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = keep[i / group] ? x[i] * scale : T(0);
}

extern "C" __global__ void masked_scale_f32(const float* x, const unsigned char* keep, long long n, long long group,
                                            float scale, float* y) {
  masked_scale<float>(x, keep, n, group, scale, y);
}
extern "C" __global__ void masked_scale_f64(const double* x, const unsigned char* keep, long long n, long long group,
                                            double scale, double* y) {
  masked_scale<double>(x, keep, n, group, scale, y);
}
