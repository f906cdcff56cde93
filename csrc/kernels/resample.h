// Kernel table of the resampling family (interpolate, pixel_shuffle, grid_sample): raw pointers to
// contiguous NCHW data, sizes in int64. One table per ISA copy (csrc/kernels/resample.cpp).
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {

template <class T>
struct ResampleOps {
  // y[planes, P, Q] = interpolate(x[planes, H, W]); scale_h/w: the user's scale_factor or 0.
  void (*interpolate_forward)(const T* x, T* y, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                              bool nearest, bool align_corners, double scale_h, double scale_w);
  // gx[planes, H, W] = d interpolate / d x applied to gy[planes, P, Q] (gathers, no scatter).
  void (*interpolate_backward)(const T* gy, T* gx, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                               bool nearest, bool align_corners, double scale_h, double scale_w);
  // Between depth[N, C*r*r, H, W] and space[N, C, H*r, W*r]: to_space = pixel_shuffle, else the inverse.
  void (*pixel_shuffle)(const T* src, T* dst, int64_t N, int64_t C, int64_t H, int64_t W, int64_t r, bool to_space);
  // y[N, C, P, Q] = grid_sample(x[N, C, H, W], grid[N, P, Q, 2]), bilinear or nearest; padding:
  // resample::GridPadding (0 zeros, 1 border, 2 reflection).
  void (*grid_sample_forward)(const T* x, const T* grid, T* y, int64_t N, int64_t C, int64_t H, int64_t W,
                              int64_t P, int64_t Q, int padding, bool align_corners, bool nearest);
  // gx[N, C, H, W] (may be null) and ggrid[N, P, Q, 2] (may be null) from gy[N, C, P, Q].
  void (*grid_sample_backward)(const T* gy, const T* x, const T* grid, T* gx, T* ggrid, int64_t N, int64_t C,
                               int64_t H, int64_t W, int64_t P, int64_t Q, int padding, bool align_corners,
                               bool nearest);
};

struct ResampleKernels {
  ResampleOps<float> f32;
  ResampleOps<double> f64;
  template <class T>
  const ResampleOps<T>& ops() const {
    if constexpr (sizeof(T) == 4) return f32; else return f64;
  }
};

}  // namespace fastcnn

FASTCNN_ISA_TABLE(ResampleKernels, resample_kernels)
