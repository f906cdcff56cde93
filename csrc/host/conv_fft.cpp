// fastcnn._C.conv_fft: the tiled FFT convolution's entry points (csrc/kernels/conv_fft.cpp) through
// csrc/host/conv_calls.h (shared with the eager op, csrc/torchops/conv.cpp), the convolution as a
// ConvShape list (fastcnn/contracts/conv.py field order), addresses in, the active ISA's kernels called
// with the GIL released.
#include <pybind11/stl.h>

#include <vector>

#include "common/module.h"
#include "host/conv_calls.h"

namespace fastcnn {
namespace {

using Addr = std::uintptr_t;
using Sizes = std::vector<int64_t>;

// y[N,K,P,Q] = act(bias + correlation of x[N,C,H,W] with w[K,C/G,R,S]).
int forward(int dtype, const Sizes& shape, Addr x, Addr w, Addr bias, Addr y, int act, double act_param, int tile) {
  const ConvShape s = conv_shape_from_list(shape);
  return dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    return conv_calls::fft_forward(s, as_ptr<const T>(x), as_ptr<const T>(w), as_ptr<const T>(bias), as_ptr<T>(y), act,
                                   act_param, tile);
  });
}

// gx[N,C,H,W] of convolution `shape`: the correlation of gy with the flipped, channel-transposed w.
int backward_input(int dtype, const Sizes& shape, Addr gy, Addr w, Addr gx, int tile) {
  const ConvShape s = conv_shape_from_list(shape);
  return dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    return conv_calls::fft_backward_input(s, as_ptr<const T>(gy), as_ptr<const T>(w), as_ptr<T>(gx), tile);
  });
}

// gw[K,C/g,R,S] = correlation of x[N,C,H,W] with gy[N,K,P,Q], summed over the batch.
int weight_grad(int dtype, const Sizes& shape, Addr x, Addr gy, Addr gw, int tile) {
  const ConvShape s = conv_shape_from_list(shape);
  return dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    return conv_calls::fft_backward_weight(s, as_ptr<const T>(x), as_ptr<const T>(gy), as_ptr<T>(gw), tile);
  });
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
