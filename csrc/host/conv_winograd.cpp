// fastcnn._C.conv_winograd: the Winograd F(4x4,3x3) / F(6x6,3x3) convolution's entry points
// (csrc/kernels/conv_winograd.cpp) through csrc/host/conv_calls.h (shared with the eager op,
// csrc/torchops/conv.cpp), the convolution as a ConvShape list (fastcnn/contracts/conv.py field
// order), addresses in, the active ISA's kernel called with the GIL released.
#include <pybind11/stl.h>

#include <atomic>
#include <string>
#include <tuple>
#include <vector>

#include "common/module.h"
#include "host/conv_calls.h"

namespace fastcnn {
namespace {

using Addr = std::uintptr_t;
using Sizes = std::vector<int64_t>;

// y[N,K,P,Q] = act(bias + correlation of x[N,C,H,W] with 3x3 kernels w); see conv_winograd.h.
// tile: the output tile (4, 6; 0: the measured choice); returns the one used.
int forward(int dtype, const Sizes& shape, Addr x, Addr w, Addr bias, Addr y, int act, double act_param, int tile) {
  const ConvShape s = conv_shape_from_list(shape);
  return dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    return conv_calls::winograd_forward(s, as_ptr<const T>(x), as_ptr<const T>(w), as_ptr<const T>(bias), as_ptr<T>(y),
                                        act, act_param, tile);
  });
}

// gx[N,C,H,W] of convolution `shape`: the correlation of gy with the flipped, channel-transposed w.
int backward_input(int dtype, const Sizes& shape, Addr gy, Addr w, Addr gx, int tile) {
  const ConvShape s = conv_shape_from_list(shape);
  return dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    return conv_calls::winograd_backward_input(s, as_ptr<const T>(gy), as_ptr<const T>(w), as_ptr<T>(gx), tile);
  });
}

// The output tile the forward of correlation `shape` runs with when none is pinned (active ISA).
int choose_tile(int dtype, const Sizes& shape) {
  const ConvShape s = conv_shape_from_list(shape);
  return dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    return winograd_choose_tile(s, int(sizeof(t)), active_isa());
  });
}

// (path, kernels per chunk, channels per chunk) of the forward or input-gradient pass (conv_winograd.h).
std::tuple<std::string, int64_t, int64_t> plan(int dtype, const Sizes& shape, int tile, bool backward_input) {
  const ConvShape s = conv_shape_from_list(shape);
  const WinogradPlan p = dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    return conv_calls::winograd_plan(s, int(sizeof(t)), tile, backward_input);
  });
  static const char* const names[] = {"fused", "few_tiles", "chunked"};
  return {names[int(p.path)], p.kernels_per_chunk, p.channels_per_chunk};
}

// gw[K,C/g,3,3] = the weight gradient of convolution `shape`; see conv_winograd.h.
void backward_weight(int dtype, const Sizes& shape, Addr x, Addr gy, Addr gw) {
  const ConvShape s = conv_shape_from_list(shape);
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    conv_calls::winograd_backward_weight(s, as_ptr<const T>(x), as_ptr<const T>(gy), as_ptr<T>(gw));
  });
}

std::atomic<int64_t> chunk_bytes{0};  // 0: the default

}  // namespace

int64_t winograd_chunk_bytes() {
  const int64_t v = chunk_bytes.load(std::memory_order_relaxed);
  return v > 0 ? v : int64_t(8) << 20;
}

void set_winograd_chunk_bytes(int64_t bytes) { chunk_bytes.store(bytes > 0 ? bytes : 0); }

}  // namespace fastcnn

FASTCNN_BIND(conv_winograd) {
  using namespace fastcnn;
  m.def("forward", &forward, FASTCNN_NOGIL,
        "Winograd F(4x4,3x3) / F(6x6,3x3) correlation + bias + activation; returns the output tile used.");
  m.def("backward_input", &backward_input, FASTCNN_NOGIL,
        "Winograd F(4x4,3x3) / F(6x6,3x3) input gradient; returns the output tile used.");
  m.def("choose_tile", &choose_tile,
        "Output tile (4 or 6) the measured rule picks for a dtype code and ConvShape list (active ISA).");
  m.def("backward_weight", &backward_weight, FASTCNN_NOGIL, "Winograd F(4x4,3x3) weight gradient of that correlation.");
  m.def("plan", &plan, pybind11::arg("dtype"), pybind11::arg("shape"), pybind11::arg("tile") = 0, pybind11::arg("backward_input") = false,
        "(path, kernels per chunk, channels per chunk) of the forward or input-gradient pass on the active ISA: "
        "'fused', 'few_tiles' or 'chunked'.");
  m.def("chunk_bytes", &winograd_chunk_bytes, "Bytes one chunk of the chunked / few-tiles paths holds.");
  m.def("set_chunk_bytes", &set_winograd_chunk_bytes, pybind11::arg("bytes"),
        "Overrides chunk_bytes() (<= 0: the default, 8 MiB); tests shrink it to run every chunk loop.");
  m.attr("output_tile") = 4;  // of the weight gradient, and the forward's unless chosen otherwise
  m.attr("output_tiles") = std::vector<int>{4, 6};
}
