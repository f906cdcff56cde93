// Winograd convolution F(4x4, 3x3) (Lavin & Gray 2016), 3x3 kernels, stride 1, dilation 1: the
// table of per-ISA entry points shared by the kernels and the host bindings.
//
// forward:        y[n,k,p,q] = act(bias[k] + sum_{c in group(k), r, s} x[n,c,p-ph+r,q-pw+s] w[k,c,r,s])
// backward input: the same on input_gradient_correlation(shape) (conv_shape.cuh): x := gy, w := the
//                 flipped, channel-transposed weight (flip_transpose), pad := 2-ph (negative pads
//                 only shift the tiles).
// backward weight: gw[k,c,r,s] = sum_{n,p,q} gy[n,k,p,q] x[n,c,p-ph+r,q-pw+s], per 4x4 gy tile
//                 the adjoint of the forward in g: G^T [sum_tiles (A gy_t A^T) . (B^T d_t B)] G.
#pragma once
#include <cstdint>

#include "common/isa.h"
#include "conv_shape.cuh"  // ConvShape (fastcnn/kernels/shared/)

namespace fastcnn {

struct WinogradConvArgs {
  const void* x;     // [N, C, H, W] input of the correlation
  const void* w;     // [K, C/groups, 3, 3]; with flip_transpose: [C, K/groups, 3, 3] of the differentiated conv
  const void* bias;  // [K] or nullptr
  void* y;           // [N, K, P, Q]
  ConvShape shape;   // of the correlation computed (R = S = 3, stride 1, dilation 1: the host binding checks)
  bool flip_transpose;
  int act;  // fastcnn::Act
  double act_param;
};

struct WinogradWeightArgs {
  const void* x;   // [N, C, H, W]
  const void* gy;  // [N, K, P, Q]
  void* gw;        // [K, C/groups, 3, 3]
  ConvShape shape;
};

struct ConvWinogradKernels {
  void (*forward_f32)(const WinogradConvArgs&);
  void (*forward_f64)(const WinogradConvArgs&);
  void (*backward_weight_f32)(const WinogradWeightArgs&);
  void (*backward_weight_f64)(const WinogradWeightArgs&);
};

}  // namespace fastcnn

FASTCNN_ISA_TABLE(ConvWinogradKernels, conv_winograd_kernels)
