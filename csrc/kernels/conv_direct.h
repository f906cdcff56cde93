// Direct convolution on a channel-blocked layout (cpu backend): the kernel table shared by the host
// binding (csrc/host/conv_direct.cpp) and the three ISA copies of csrc/kernels/conv_direct.cpp.
#pragma once
#include <cstdint>

#include "common/isa.h"
#include "conv_shape.cuh"  // ConvShape (fastcnn/kernels/shared/)

namespace fastcnn {

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
