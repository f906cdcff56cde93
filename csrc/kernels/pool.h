// The pooling family's kernel table (one copy per ISA, see common/isa.h).
//
// Every function takes raw pointers to tensors the Python side has checked and allocated, and the
// geometry in pool::Geom (N, C, H, W: input planes; P, Q: output planes; kernel, stride, padding,
// dilation for the fixed-window pools). `channels_last` says whether all tensors of the call are
// NHWC in memory (else contiguous NCHW). Index tensors are int64 and hold h * W + w within a plane,
// as torch's max_pool2d(return_indices=True).
#pragma once
#include <cstdint>

#include "common/isa.h"
#include "pool_geometry.cuh"

namespace fastcnn {

template <class T>
struct PoolFns {
  // x[N,C,H,W] -> y[N,C,P,Q] and, if idx is not null, the argmax of each window in idx[N,C,P,Q].
  void (*max_forward)(const T* x, T* y, int64_t* idx, const pool::Geom& g, bool channels_last);
  // divisor_override 0: torch's default divisor (window size, with or without the padding).
  void (*avg_forward)(const T* x, T* y, const pool::Geom& g, bool channels_last, bool count_include_pad,
                      int64_t divisor_override);
  // gy[N,C,P,Q] -> gx[N,C,H,W] (gx is fully written).
  void (*avg_backward)(const T* gy, T* gx, const pool::Geom& g, bool channels_last, bool count_include_pad,
                       int64_t divisor_override);
  // Adaptive windows (kernel/stride fields of g unused): x[N,C,H,W] -> y[N,C,P,Q] (+ idx).
  void (*adaptive_max_forward)(const T* x, T* y, int64_t* idx, const pool::Geom& g, bool channels_last);
  void (*adaptive_avg_forward)(const T* x, T* y, const pool::Geom& g, bool channels_last);
  void (*adaptive_avg_backward)(const T* gy, T* gx, const pool::Geom& g, bool channels_last);
  // out[N,C,H,W] = 0, then out[n,c,idx[n,c,p,q]] (+)= src[n,c,p,q]; indices outside [0, H*W) are
  // skipped and counted (the return value), so nothing is written out of bounds.
  int64_t (*index_scatter)(const T* src, const int64_t* idx, T* out, const pool::Geom& g, bool channels_last,
                           bool accumulate);
  // out[n,c,p,q] = src[n,c,idx[n,c,p,q]] for src[N,C,H,W]; out-of-range indices give 0 and are counted.
  int64_t (*index_gather)(const T* src, const int64_t* idx, T* out, const pool::Geom& g, bool channels_last);
};

struct PoolKernels {
  PoolFns<float> f32;
  PoolFns<double> f64;
};

}  // namespace fastcnn

FASTCNN_ISA_TABLE(PoolKernels, pool_kernels)
