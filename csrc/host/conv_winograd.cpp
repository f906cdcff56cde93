// fastcnn._C.conv_winograd: the Winograd F(4x4,3x3) convolution's entry points
// (csrc/kernels/conv_winograd.cpp), the convolution as a ConvShape list (fastcnn/contracts/conv.py
// field order), addresses in, the active ISA's kernel called with the GIL released.
#include <pybind11/stl.h>

#include <stdexcept>
#include <vector>

#include "common/module.h"
#include "host/conv_shape.h"
#include "kernels/conv_winograd.h"

namespace fastcnn {
namespace {

using Addr = std::uintptr_t;
using Sizes = std::vector<int64_t>;

ConvShape checked(const Sizes& shape) {
  const ConvShape s = conv_shape_from_list(shape);
  require_unit_stride_dilation(s, "winograd");
  if (s.R != 3 || s.S != 3) throw std::invalid_argument("shape: the winograd convolution takes 3x3 kernels only");
  return s;
}

void correlate(int dtype, const ConvShape& s, Addr x, Addr w, Addr bias, Addr y, bool flip_transpose, int act,
               double act_param) {
  WinogradConvArgs a{reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(w),
                     bias ? reinterpret_cast<const void*>(bias) : nullptr, reinterpret_cast<void*>(y),
                     s, flip_transpose, act, act_param};
  const ConvWinogradKernels& k = conv_winograd_kernels();
  if (static_cast<Dtype>(dtype) == Dtype::float64) k.forward_f64(a); else k.forward_f32(a);
}

// y[N,K,P,Q] = act(bias + correlation of x[N,C,H,W] with 3x3 kernels w); see conv_winograd.h.
void forward(int dtype, const Sizes& shape, Addr x, Addr w, Addr bias, Addr y, int act, double act_param) {
  correlate(dtype, checked(shape), x, w, bias, y, false, act, act_param);
}

// gx[N,C,H,W] of convolution `shape`: the correlation of gy with the flipped, channel-transposed w.
void backward_input(int dtype, const Sizes& shape, Addr gy, Addr w, Addr gx) {
  correlate(dtype, input_gradient_correlation(checked(shape)), gy, w, 0, gx, true, 0, 0.0);
}

// gw[K,C/g,3,3] = the weight gradient of convolution `shape`; see conv_winograd.h.
void backward_weight(int dtype, const Sizes& shape, Addr x, Addr gy, Addr gw) {
  WinogradWeightArgs a{reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(gy), reinterpret_cast<void*>(gw),
                       checked(shape)};
  const ConvWinogradKernels& k = conv_winograd_kernels();
  if (static_cast<Dtype>(dtype) == Dtype::float64) k.backward_weight_f64(a); else k.backward_weight_f32(a);
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(conv_winograd) {
  using namespace fastcnn;
  m.def("forward", &forward, FASTCNN_NOGIL, "Winograd F(4x4,3x3) correlation + bias + activation.");
  m.def("backward_input", &backward_input, FASTCNN_NOGIL, "Winograd F(4x4,3x3) input gradient.");
  m.def("backward_weight", &backward_weight, FASTCNN_NOGIL, "Winograd F(4x4,3x3) weight gradient of that correlation.");
  m.attr("output_tile") = 4;
}
