// Macros shared by every CUDA kernel file and by the C++ code that includes the same headers.
//
// FASTCNN_HD marks math that runs on both sides: `__host__ __device__` when compiled by nvcc or
// NVRTC, nothing when a plain C++ compiler includes the header (the cpu tests exercise it there).
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FASTCNN_HD __host__ __device__ __forceinline__
#define FASTCNN_DEVICE __device__ __forceinline__
#else
// Plain C++ (the cpu tests; tests/cuda_host_shim.h runs the kernel source on host threads).
#define FASTCNN_HD inline
#define FASTCNN_DEVICE inline
#endif

// Host C++ needs <cmath> for cos/sin; NVRTC has no standard headers and provides them built in.
#if !defined(__CUDACC_RTC__)
#include <cmath>
#endif

namespace fastcnn {

// a / b and a % b for a >= 0, b > 0: one 32-bit hardware division when both fit (the usual case),
// 64-bit division otherwise, so flat indices stay exact past 2^31 without paying for it below.
FASTCNN_HD long long div_fast(long long a, long long b) {
  if (((a | b) >> 31) == 0) return static_cast<long long>(static_cast<unsigned>(a) / static_cast<unsigned>(b));
  return a / b;
}
FASTCNN_HD void divmod(long long a, long long b, long long& q, long long& r) {
  q = div_fast(a, b);
  r = a - q * b;
}

}  // namespace fastcnn
