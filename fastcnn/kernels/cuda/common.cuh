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
// Everything inline or templated that a kernel file includes (SIMD types, activation math, shared
// coordinate math) sits in an inline namespace named after the ISA copy being compiled: the three
// copies then have different mangled names, so the linker cannot fold, say, the AVX-512 copy of
// an inline function into the AVX2 kernels (the one-definition rule across ISA copies). Source
// code still writes fastcnn::simd::Vec, fastcnn::act::forward, ...
#ifndef FASTCNN_ISA_INLINE_BEGIN
#define FASTCNN_ISA_CAT2(a, b) a##b
#define FASTCNN_ISA_CAT(a, b) FASTCNN_ISA_CAT2(a, b)
#ifdef FASTCNN_ISA
#define FASTCNN_ISA_INLINE_BEGIN inline namespace FASTCNN_ISA_CAT(isa_, FASTCNN_ISA) {
#else
#define FASTCNN_ISA_INLINE_BEGIN inline namespace isa_host {
#endif
#define FASTCNN_ISA_INLINE_END }
#endif
#endif

// Grid-stride loop over [0, n) with 64-bit indices.
#define FASTCNN_GRID_LOOP(i, n)                                                              \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);              \
       i += (long long)blockDim.x * gridDim.x)
