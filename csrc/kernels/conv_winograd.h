// Winograd convolution F(m x m, 3x3), m = 4 or 6 (Lavin & Gray 2016), 3x3 kernels, stride 1, dilation 1:
// the table of per-ISA entry points shared by the kernels and the host bindings, and the choice of m.
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
  int tile;  // output tile m: 4 or 6 (conv_calls.h winograd_resolve_tile)
};

struct WinogradWeightArgs {
  const void* x;   // [N, C, H, W]
  const void* gy;  // [N, K, P, Q]
  void* gw;        // [K, C/groups, 3, 3]
  ConvShape shape;
};

// The way a forward / backward-input correlation is computed (conv_winograd.cpp): fused per-thread
// blocks, few tiles (every tile in one GEMM, chunks over kernels and channels) or chunks of tiles.
// Only speed depends on it; tests and the docs' measurements read it.
enum class WinogradPath : int { fused = 0, few_tiles = 1, chunked = 2 };
struct WinogradPlan {
  WinogradPath path;
  int64_t kernels_per_chunk, channels_per_chunk;  // few_tiles: per group; otherwise K/g and C/g
};

struct ConvWinogradKernels {
  void (*forward_f32)(const WinogradConvArgs&);
  void (*forward_f64)(const WinogradConvArgs&);
  void (*backward_weight_f32)(const WinogradWeightArgs&);
  void (*backward_weight_f64)(const WinogradWeightArgs&);
  WinogradPlan (*plan)(const ConvShape& s, int elem_size, int tile);  // of the correlation s
};

// Bytes of transformed tiles and filters one chunk of the chunked and few-tiles paths holds (default
// 8 MiB, near a core's share of L3). The tests shrink it so that small layers run every chunk loop.
int64_t winograd_chunk_bytes();
void set_winograd_chunk_bytes(int64_t bytes);  // bytes <= 0: the default

// The output tile of the forward / backward-input correlation s (elements of `elem_size` bytes) when the
// caller does not pin one: F(6x6) only where it measured faster than F(4x4) (docs/algo-winograd.md
// "F(6x6,3x3)", 1 thread, both orders of the two runs): float32 with at most 64 channels per group each
// side (F(6x6)'s fused blocks; its chunked path lost on every layer: PSPNet 1024->128, AlexNet
// 256->384), outputs that 6x6 tiles cover without cropping (a cropped row/column costs its whole tile:
// HardNet's 16x16 lost 15-25%, PIDNet's 64x64 up to 17%), and on AVX-512 at least 64Ki output pixels in
// the batch (SRResNet 16x96x96 won 6-9%; SegNet's 4x90x120 and smaller maps tied or lost). With AVX2
// F(6x6) won SRResNet and SegNet by 5-27%. The generic copy was not measured: F(4x4).
inline int winograd_choose_tile(const ConvShape& s, int elem_size, Isa isa) {
  if (elem_size != 4 || isa == Isa::generic) return 4;
  if (s.C / s.G > 64 || s.K / s.G > 64 || s.P % 6 != 0 || s.Q % 6 != 0) return 4;
  if (isa == Isa::avx512 && s.N * s.P * s.Q < (int64_t(1) << 16)) return 4;
  return 6;
}

}  // namespace fastcnn

FASTCNN_ISA_TABLE(ConvWinogradKernels, conv_winograd_kernels)
