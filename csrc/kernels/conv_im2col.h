// im2col convolution on the cpu backend: column matrices + the GEMM engine (csrc/kernels/gemm.h).
//
// Layouts (all contiguous): x[N, C, H, W], w[K, C/g, R, S], y[N, K, P, Q], bias[K];
// cols of one image and group: [C/g * R * S, P * Q], row (c, r, s), column (p, q), the tap
// x[c, p*sh - ph + r*dh, q*sw - pw + s*dw] or 0 outside the input. ph/pw are the top/left
// padding; the bottom/right padding is whatever P, Q imply.
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {

struct ConvGeometry {
  int64_t N, C, H, W;  // input
  int64_t K, R, S;     // filters
  int64_t P, Q;        // output
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t cg() const { return C / groups; }
  int64_t kg() const { return K / groups; }
  int64_t col_rows() const { return cg() * R * S; }
  int64_t col_cols() const { return P * Q; }
  // 1x1, stride 1, no padding, same size out: the input plane already is the column matrix.
  bool is_pointwise() const { return R == 1 && S == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && P == H && Q == W; }
};

template <class T>
struct Im2colTable {
  // cols[n][c*R*S + r*S + s][p*Q + q] for all N images, all C channels (groups ignored: c over C).
  void (*im2col)(const ConvGeometry& g, const T* x, T* cols);
  // x = sum of cols scattered back (the adjoint of im2col); x is overwritten.
  void (*col2im)(const ConvGeometry& g, const T* cols, T* x);
  // out[k] = sum over n, l of t[n, k, l]; t is [N, K, L].
  void (*channel_sum)(const T* t, T* out, int64_t N, int64_t K, int64_t L);
  // y[n, k, l] = act(y[n, k, l] + bias[k]) in place; bias may be null; act numbering of Act.
  void (*bias_act)(T* y, const T* bias, int64_t N, int64_t K, int64_t L, int act, T p0, T p1);
  void (*forward)(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, int act, T p0, T p1);
  void (*backward_input)(const ConvGeometry& g, const T* gy, const T* w, T* gx);
  void (*backward_weight)(const ConvGeometry& g, const T* x, const T* gy, T* gw);
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
