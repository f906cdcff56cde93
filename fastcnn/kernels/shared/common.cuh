// Shared by every .cu file and by C++ code that includes the __host__ __device__ headers.
// No standard-library includes: NVRTC (which compiles these at run time through cupy) has none.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FASTCNN_HD __host__ __device__ __forceinline__
#define FASTCNN_DEVICE __device__ __forceinline__
#define FASTCNN_ISA_INLINE_BEGIN
#define FASTCNN_ISA_INLINE_END
#else
#define FASTCNN_HD inline
#define FASTCNN_DEVICE inline
#include "isa_inline.cuh"  // the cpu ISA copies' inline namespace (shared with csrc/common/isa.h)
#endif

// Grid-stride loop over [0, n) with 64-bit indices.
#define FASTCNN_GRID_LOOP(i, n)                                                              \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);              \
       i += (long long)blockDim.x * gridDim.x)
