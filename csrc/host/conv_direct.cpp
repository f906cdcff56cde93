// fastcnn._C.conv_direct: the direct convolution kernels (csrc/kernels/conv_direct*.cpp) for
// the active ISA, through csrc/host/conv_calls.h (shared with the eager op, csrc/torchops/conv.cpp).
// Shapes arrive as one list: fastcnn/contracts/conv.py ConvShape, in its field order.
#include <pybind11/stl.h>

#include <vector>

#include "common/module.h"
#include "host/conv_calls.h"

namespace fastcnn {
namespace {

void forward(int dtype, const std::vector<int64_t>& shape, std::uintptr_t x, std::uintptr_t w, std::uintptr_t bias,
             std::uintptr_t y, int act, double act_param) {
  const ConvShape s = conv_shape_from_list(shape);
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    conv_calls::direct_forward(s, as_ptr<const T>(x), as_ptr<const T>(w), bias ? as_ptr<const T>(bias) : nullptr,
                               as_ptr<T>(y), act, act_param);
  });
}

void backward_input(int dtype, const std::vector<int64_t>& shape, std::uintptr_t gy, std::uintptr_t w, std::uintptr_t gx) {
  const ConvShape s = conv_shape_from_list(shape);
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    conv_calls::direct_backward_input(s, as_ptr<const T>(gy), as_ptr<const T>(w), as_ptr<T>(gx));
  });
}

void backward_weight(int dtype, const std::vector<int64_t>& shape, std::uintptr_t x, std::uintptr_t gy, std::uintptr_t gw) {
  const ConvShape s = conv_shape_from_list(shape);
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    conv_calls::direct_backward_weight(s, as_ptr<const T>(x), as_ptr<const T>(gy), as_ptr<T>(gw));
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(conv_direct) {
  m.def("forward", &fastcnn::forward, FASTCNN_NOGIL);
  m.def("backward_input", &fastcnn::backward_input, FASTCNN_NOGIL);
  m.def("backward_weight", &fastcnn::backward_weight, FASTCNN_NOGIL);
}
