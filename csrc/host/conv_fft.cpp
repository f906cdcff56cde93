// fastcnn._C.conv_fft: the tiled FFT convolution's entry points (csrc/kernels/conv_fft.cpp), the
// convolution as a ConvShape list (fastcnn/contracts/conv.py field order), addresses in, the active
// ISA's kernels called with the GIL released.
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "common/module.h"
#include "host/conv_shape.h"
#include "kernels/conv_fft.h"

namespace fastcnn {
namespace {

using Addr = std::uintptr_t;
using Sizes = std::vector<int64_t>;

// The transform size for correlation s: `tile` if given (non-zero), else the cost model's choice.
int resolve_tile(int tile, const ConvShape& s) {
  require_unit_stride_dilation(s, "fft");
  if (s.R > kFftMaxKernel || s.S > kFftMaxKernel)
    throw std::invalid_argument("weight: the fft convolution takes kernels up to " + std::to_string(kFftMaxKernel) +
                                "x" + std::to_string(kFftMaxKernel) + ", got " + std::to_string(s.R) + "x" +
                                std::to_string(s.S) + "; use algo='direct' or 'im2col'");
  if (tile == 0) tile = fft_choose_tile(s);
  if (tile != 8 && tile != 16 && tile != 32)
    throw std::invalid_argument("tile: fft transform size must be 8, 16 or 32, got " + std::to_string(tile));
  if (s.R > tile || s.S > tile)
    throw std::invalid_argument("weight: a " + std::to_string(s.R) + "x" + std::to_string(s.S) +
                                " kernel does not fit a " + std::to_string(tile) + "x" + std::to_string(tile) +
                                " fft tile");
  return tile;
}

int correlate(int dtype, const ConvShape& s, Addr x, Addr w, Addr bias, Addr y, bool flip_transpose, int act,
              double act_param, int tile) {
  FftConvArgs a{reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(w),
                bias ? reinterpret_cast<const void*>(bias) : nullptr, reinterpret_cast<void*>(y),
                s, flip_transpose, act, act_param, resolve_tile(tile, s)};
  const ConvFftKernels& k = conv_fft_kernels();
  if (static_cast<Dtype>(dtype) == Dtype::float64) k.forward_f64(a); else k.forward_f32(a);
  return a.tile;
}

// y[N,K,P,Q] = act(bias + correlation of x[N,C,H,W] with w[K,C/G,R,S]).
int forward(int dtype, const Sizes& shape, Addr x, Addr w, Addr bias, Addr y, int act, double act_param, int tile) {
  return correlate(dtype, conv_shape_from_list(shape), x, w, bias, y, false, act, act_param, tile);
}

// gx[N,C,H,W] of convolution `shape`: the correlation of gy with the flipped, channel-transposed w.
int backward_input(int dtype, const Sizes& shape, Addr gy, Addr w, Addr gx, int tile) {
  const ConvShape s = conv_shape_from_list(shape);
  require_unit_stride_dilation(s, "fft");
  return correlate(dtype, input_gradient_correlation(s), gy, w, 0, gx, true, 0, 0.0, tile);
}

// gw[K,C/g,R,S] = correlation of x[N,C,H,W] with gy[N,K,P,Q], summed over the batch.
int weight_grad(int dtype, const Sizes& shape, Addr x, Addr gy, Addr gw, int tile) {
  const ConvShape s = conv_shape_from_list(shape);
  FftWeightGradArgs a{reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(gy), reinterpret_cast<void*>(gw),
                      s, resolve_tile(tile, s)};
  const ConvFftKernels& k = conv_fft_kernels();
  if (static_cast<Dtype>(dtype) == Dtype::float64) k.weight_grad_f64(a); else k.weight_grad_f32(a);
  return a.tile;
}

int choose_tile(const Sizes& shape) { return fft_choose_tile(conv_shape_from_list(shape)); }

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(conv_fft) {
  using namespace fastcnn;
  m.def("forward", &forward, FASTCNN_NOGIL, "Tiled FFT correlation + bias + activation; returns the tile size used.");
  m.def("backward_input", &backward_input, FASTCNN_NOGIL, "Input gradient by tiled FFT; returns the tile size used.");
  m.def("weight_grad", &weight_grad, FASTCNN_NOGIL, "Weight gradient by tiled FFT; returns the tile size used.");
  m.def("choose_tile", &choose_tile, "Transform size the cost model picks for a ConvShape list (0: kernel too large).");
  m.attr("max_kernel") = kFftMaxKernel;
}
