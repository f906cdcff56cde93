// im2col convolution on the cpu backend: column matrices + the GEMM engine (csrc/kernels/gemm.h).
//
// Layouts (all contiguous): x[N, C, H, W], w[K, C/g, R, S], y[N, K, P, Q], bias[K];
// cols of one image and group: [C/g * R * S, P * Q], row (c, r, s), column (p, q), the tap
// x[c, p*sh - ph + r*dh, q*sw - pw + s*dw] or 0 outside the input. ph/pw are the top/left
// padding; the bottom/right padding is whatever P, Q imply.
#pragma once
#include <cstdint>

#include "common/isa.h"
#include "conv_shape.cuh"  // ConvShape (fastcnn/kernels/shared/)

namespace fastcnn {

FASTCNN_ISA_INLINE_BEGIN  // distinct per cpu ISA copy (see csrc/common/isa.h)
inline int64_t cg(const ConvShape& g) { return g.C / g.G; }
inline int64_t kg(const ConvShape& g) { return g.K / g.G; }
inline int64_t col_rows(const ConvShape& g) { return cg(g) * g.R * g.S; }
inline int64_t col_cols(const ConvShape& g) { return g.P * g.Q; }
// 1x1, stride 1, no padding, same size out: the input plane already is the column matrix.
inline bool is_pointwise(const ConvShape& g) {
  return g.R == 1 && g.S == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && g.P == g.H && g.Q == g.W;
}
// One output pixel whose kernel covers the whole unpadded input (HardNet's 8x8 layer on 8x8 maps):
// the column matrix of image n is x[n] itself, so each pass is one GEMM over the batch.
inline bool covers_image(const ConvShape& g) {
  return g.G == 1 && g.P == 1 && g.Q == 1 && g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 && g.R == g.H &&
         g.S == g.W;
}
FASTCNN_ISA_INLINE_END

template <class T>
struct Im2colTable {
  // cols[n][c*R*S + r*S + s][p*Q + q] for all N images, all C channels (groups ignored: c over C).
  void (*im2col)(const ConvShape& g, const T* x, T* cols);
  // x = sum of cols scattered back (the adjoint of im2col); x is overwritten.
  void (*col2im)(const ConvShape& g, const T* cols, T* x);
  // out[k] = sum over n, l of t[n, k, l]; t is [N, K, L].
  void (*channel_sum)(const T* t, T* out, int64_t N, int64_t K, int64_t L);
  // y[n, k, l] = act(y[n, k, l] + bias[k]) in place; bias may be null; act numbering of Act.
  void (*bias_act)(T* y, const T* bias, int64_t N, int64_t K, int64_t L, int act, T p0, T p1);
  void (*forward)(const ConvShape& g, const T* x, const T* w, const T* bias, T* y, int act, T p0, T p1);
  void (*backward_input)(const ConvShape& g, const T* gy, const T* w, T* gx);
  void (*backward_weight)(const ConvShape& g, const T* x, const T* gy, T* gw);
};

struct ConvIm2colKernels {
  Im2colTable<float> f32;
  Im2colTable<double> f64;
  template <class T>
  const Im2colTable<T>& get() const {
    if constexpr (sizeof(T) == 4) return f32; else return f64;
  }
};

}  // namespace fastcnn

FASTCNN_ISA_TABLE(ConvIm2colKernels, conv_im2col_kernels)
