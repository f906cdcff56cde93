// fastcnn._C.conv_fft: the tiled FFT convolution's entry points (csrc/kernels/conv_fft.cpp),
// addresses in, the active ISA's kernels called with the GIL released.
#include <stdexcept>
#include <string>

#include "common/module.h"
#include "kernels/conv_fft.h"

namespace fastcnn {
namespace {

using Addr = std::uintptr_t;

int resolve_tile(int tile, int64_t N, int64_t C, int64_t K, int64_t groups, int64_t R, int64_t S, int64_t P,
                 int64_t Q) {
  if (R > kFftMaxKernel || S > kFftMaxKernel)
    throw std::invalid_argument("weight: the fft convolution takes kernels up to " + std::to_string(kFftMaxKernel) +
                                "x" + std::to_string(kFftMaxKernel) + ", got " + std::to_string(R) + "x" +
                                std::to_string(S) + "; use algo='direct' or 'im2col'");
  if (tile == 0) tile = fft_choose_tile(N, C, K, groups, R, S, P, Q);
  if (tile != 8 && tile != 16 && tile != 32)
    throw std::invalid_argument("tile: fft transform size must be 8, 16 or 32, got " + std::to_string(tile));
  if (R > tile || S > tile)
    throw std::invalid_argument("weight: a " + std::to_string(R) + "x" + std::to_string(S) +
                                " kernel does not fit a " + std::to_string(tile) + "x" + std::to_string(tile) +
                                " fft tile");
  return tile;
}

// y[N,K,P,Q] = act(bias + correlation of x[N,C,H,W] with w); see conv_fft.h for flip_transpose.
int forward(int dtype, Addr x, Addr w, Addr bias, Addr y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
            int64_t R, int64_t S, int64_t P, int64_t Q, int64_t pad_h, int64_t pad_w, int64_t groups,
            bool flip_transpose, int act, double act_param, int tile) {
  FftConvArgs a{reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(w),
                bias ? reinterpret_cast<const void*>(bias) : nullptr, reinterpret_cast<void*>(y),
                N, C, H, W, K, R, S, P, Q, pad_h, pad_w, groups, flip_transpose, act, act_param,
                resolve_tile(tile, N, C, K, groups, R, S, P, Q)};
  const ConvFftKernels& k = conv_fft_kernels();
  if (static_cast<Dtype>(dtype) == Dtype::float64) k.forward_f64(a); else k.forward_f32(a);
  return a.tile;
}

// gw[K,C/g,R,S] = correlation of x[N,C,H,W] with gy[N,K,P,Q], summed over the batch.
int weight_grad(int dtype, Addr x, Addr gy, Addr gw, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                int64_t R, int64_t S, int64_t P, int64_t Q, int64_t pad_h, int64_t pad_w, int64_t groups, int tile) {
  FftWeightGradArgs a{reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(gy), reinterpret_cast<void*>(gw),
                      N, C, H, W, K, R, S, P, Q, pad_h, pad_w, groups,
                      resolve_tile(tile, N, C, K, groups, R, S, P, Q)};
  const ConvFftKernels& k = conv_fft_kernels();
  if (static_cast<Dtype>(dtype) == Dtype::float64) k.weight_grad_f64(a); else k.weight_grad_f32(a);
  return a.tile;
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(conv_fft) {
  using namespace fastcnn;
  m.def("forward", &forward, FASTCNN_NOGIL, "Tiled FFT correlation + bias + activation; returns the tile size used.");
  m.def("weight_grad", &weight_grad, FASTCNN_NOGIL, "Weight gradient by tiled FFT; returns the tile size used.");
  m.def("choose_tile", &fft_choose_tile, "Transform size the cost model picks (0: kernel too large).");
  m.attr("max_kernel") = kFftMaxKernel;
}
