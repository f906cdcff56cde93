// Tiled FFT convolution (stride 1, dilation 1): the table of per-ISA entry points and the tile-size
// plan shared by the kernels and the host bindings.
//
// Every entry computes a tiled *correlation* through the frequency domain:
//   forward:        y[n,k,p,q] = act(bias[k] + sum_{c in group(k), r, s} x[n,c,p-ph+r,q-pw+s] w[k,c,r,s])
//   backward input: the same on input_gradient_correlation(shape) (conv_shape.cuh): x := gy, w := the
//                   flipped, channel-transposed weight (flip_transpose), pad := R-1-ph (negative pads
//                   are fine: they only shift the tiles);
//   weight grad:    gw[k,c,r,s] = sum_{n,p,q} x[n,c,p-ph+r,q-pw+s] gy[n,k,p,q] (gy tiles act as kernels).
// The shapes are ConvShape records with stride 1 and dilation 1 (the host binding checks).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/isa.h"
#include "conv_shape.cuh"  // ConvShape (fastcnn/kernels/shared/)

namespace fastcnn {

constexpr int kFftMaxKernel = 32;  // largest transform is 32x32: kernels up to 32 taps per side

struct FftConvArgs {
  const void* x;     // [N, C, H, W] input of the correlation
  const void* w;     // [K, C/groups, R, S]; with flip_transpose: [C, K/groups, R, S] of the differentiated conv
  const void* bias;  // [K] or nullptr
  void* y;           // [N, K, P, Q]
  ConvShape shape;   // of the correlation computed
  bool flip_transpose;
  int act;           // fastcnn::Act
  double act_param;
  int tile;          // transform size 8, 16 or 32
};

struct FftWeightGradArgs {
  const void* x;   // [N, C, H, W]
  const void* gy;  // [N, K, P, Q]
  void* gw;        // [K, C/groups, R, S] (overwritten)
  ConvShape shape;
  int tile;
};

struct ConvFftKernels {
  void (*forward_f32)(const FftConvArgs&);
  void (*forward_f64)(const FftConvArgs&);
  void (*weight_grad_f32)(const FftWeightGradArgs&);
  void (*weight_grad_f64)(const FftWeightGradArgs&);
};

// Transform size for the correlation s (P x Q outputs per (n, k) from an R x S kernel): the
// size among 8/16/32 with the least modelled work (0 if the kernel is larger than 32 taps).
// Work = frequency-domain complex GEMM (8 flops per complex MAC, near peak) + the 2-D transforms of
// input, output and kernel tiles (~ T^2 log2 T butterflies each, about 4x less efficient per flop).
inline int fft_choose_tile(const ConvShape& s) {
  int best = 0;
  double best_cost = std::numeric_limits<double>::infinity();
  for (int T : {8, 16, 32}) {
    if (s.R > T || s.S > T) continue;
    const double tiles = double(s.N) * double((s.P + T - s.R) / (T - s.R + 1)) * double((s.Q + T - s.S) / (T - s.S + 1));
    const double freqs = double(T) * (T / 2 + 1);
    const double tf = double(T) * T * std::log2(double(T)) * 5.0 * 4.0;
    const double cost = tiles * freqs * double(s.C / s.G) * double(s.K) * 8.0 + tiles * double(s.C + s.K) * tf +
                        double(s.K) * double(s.C / s.G) * tf;
    if (cost < best_cost) best_cost = cost, best = T;
  }
  return best;
}

}  // namespace fastcnn

FASTCNN_ISA_TABLE(ConvFftKernels, conv_fft_kernels)
