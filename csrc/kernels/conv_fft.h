// Tiled FFT convolution (stride 1, dilation 1): the table of per-ISA entry points and the tile-size
// plan shared by the kernels and the host bindings.
//
// Every entry computes a tiled *correlation* through the frequency domain:
//   forward:        y[n,k,p,q] = act(bias[k] + sum_{c in group(k), r, s} x[n,c,p-pad_h+r,q-pad_w+s] w[k,c,r,s])
//   backward input: the same with x := gy, w := the flipped, channel-transposed weight (flip_transpose)
//                   and pad := R-1-pad_h (negative pads are fine: they only shift the tiles);
//   weight grad:    gw[k,c,r,s] = sum_{n,p,q} x[n,c,p-pad_h+r,q-pad_w+s] gy[n,k,p,q] (gy tiles act as kernels).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/isa.h"

namespace fastcnn {

constexpr int kFftMaxKernel = 32;  // largest transform is 32x32: kernels up to 32 taps per side

struct FftConvArgs {
  const void* x;     // [N, C, H, W] input of the correlation
  const void* w;     // [K, C/groups, R, S]; with flip_transpose: [C, K/groups, R, S] of the differentiated conv
  const void* bias;  // [K] or nullptr
  void* y;           // [N, K, P, Q]
  int64_t N, C, H, W, K, R, S, P, Q, pad_h, pad_w, groups;
  bool flip_transpose;
  int act;           // fastcnn::Act
  double act_param;
  int tile;          // transform size 8, 16 or 32
};

struct FftWeightGradArgs {
  const void* x;   // [N, C, H, W]
  const void* gy;  // [N, K, P, Q]
  void* gw;        // [K, C/groups, R, S] (overwritten)
  int64_t N, C, H, W, K, R, S, P, Q, pad_h, pad_w, groups;
  int tile;
};

struct ConvFftKernels {
  void (*forward_f32)(const FftConvArgs&);
  void (*forward_f64)(const FftConvArgs&);
  void (*weight_grad_f32)(const FftWeightGradArgs&);
  void (*weight_grad_f64)(const FftWeightGradArgs&);
};

// Transform size for a correlation producing P x Q outputs per (n, k) from a R x S kernel: the
// size among 8/16/32 with the least modelled work (0 if the kernel is larger than 32 taps).
// Work = frequency-domain complex GEMM (8 flops per complex MAC, near peak) + the 2-D transforms of
// input, output and kernel tiles (~ T^2 log2 T butterflies each, about 4x less efficient per flop).
inline int fft_choose_tile(int64_t N, int64_t C, int64_t K, int64_t groups, int64_t R, int64_t S, int64_t P,
                           int64_t Q) {
  int best = 0;
  double best_cost = std::numeric_limits<double>::infinity();
  for (int T : {8, 16, 32}) {
    if (R > T || S > T) continue;
    const double tiles = double(N) * double((P + T - R) / (T - R + 1)) * double((Q + T - S) / (T - S + 1));
    const double freqs = double(T) * (T / 2 + 1);
    const double tf = double(T) * T * std::log2(double(T)) * 5.0 * 4.0;
    const double cost = tiles * freqs * double(C / groups) * double(K) * 8.0 + tiles * double(C + K) * tf +
                        double(K) * double(C / groups) * tf;
    if (cost < best_cost) best_cost = cost, best = T;
  }
  return best;
}

}  // namespace fastcnn

FASTCNN_ISA_TABLE(ConvFftKernels, conv_fft_kernels)
