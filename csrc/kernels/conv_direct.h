// Direct convolution on a channel-blocked layout (cpu backend): the kernel table and the shape
// record shared by the host binding (csrc/host/conv_direct.cpp) and the three ISA copies of
// csrc/kernels/conv_direct.cpp.
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {

// One convolution, NCHW: x[N][C][H][W] (*) w[K][C/groups][R][S] -> y[N][K][P][Q].
// (ph, pw) is the top/left padding; the bottom/right padding is implied by (P, Q).
// Field order of fastcnn/contracts/conv.py ConvShape (and conv_im2col.h, conv_geometry.cuh).
struct ConvShape {
  int64_t N, C, H, W;
  int64_t K, R, S;
  int64_t P, Q;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t groups;
};

template <class T>
struct ConvDirectFns {
  // y = act(conv(x, w) + bias); bias may be null; act is a fastcnn::Act code, act_param its slope/alpha.
  void (*forward)(const ConvShape&, const T* x, const T* w, const T* bias, T* y, int act, T act_param);
  // gx[N][C][H][W] = conv_transpose(gy[N][K][P][Q], w).
  void (*backward_input)(const ConvShape&, const T* gy, const T* w, T* gx);
  // gw[K][C/groups][R][S] = correlation of x and gy.
  void (*backward_weight)(const ConvShape&, const T* x, const T* gy, T* gw);
};

struct ConvDirectKernels {
  ConvDirectFns<float> f32;
  ConvDirectFns<double> f64;
};

}  // namespace fastcnn

FASTCNN_ISA_TABLE(ConvDirectKernels, conv_direct_kernels)
