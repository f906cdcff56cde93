// fastcnn._C.conv_winograd: the Winograd F(4x4,3x3) convolution's entry point
// (csrc/kernels/conv_winograd.cpp), addresses in, the active ISA's kernel called with the GIL released.
#include "common/module.h"
#include "kernels/conv_winograd.h"

namespace fastcnn {
namespace {

using Addr = std::uintptr_t;

// y[N,K,P,Q] = act(bias + correlation of x[N,C,H,W] with 3x3 kernels w); see conv_winograd.h.
void forward(int dtype, Addr x, Addr w, Addr bias, Addr y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
             int64_t P, int64_t Q, int64_t pad_h, int64_t pad_w, int64_t groups, bool flip_transpose, int act,
             double act_param) {
  WinogradConvArgs a{reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(w),
                     bias ? reinterpret_cast<const void*>(bias) : nullptr, reinterpret_cast<void*>(y),
                     N, C, H, W, K, P, Q, pad_h, pad_w, groups, flip_transpose, act, act_param};
  const ConvWinogradKernels& k = conv_winograd_kernels();
  if (static_cast<Dtype>(dtype) == Dtype::float64) k.forward_f64(a); else k.forward_f32(a);
}

// gw[K,C/g,3,3] = the weight gradient of that correlation (pad = the forward's); see conv_winograd.h.
void backward_weight(int dtype, Addr x, Addr gy, Addr gw, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                     int64_t P, int64_t Q, int64_t pad_h, int64_t pad_w, int64_t groups) {
  WinogradWeightArgs a{reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(gy), reinterpret_cast<void*>(gw),
                       N, C, H, W, K, P, Q, pad_h, pad_w, groups};
  const ConvWinogradKernels& k = conv_winograd_kernels();
  if (static_cast<Dtype>(dtype) == Dtype::float64) k.backward_weight_f64(a); else k.backward_weight_f32(a);
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(conv_winograd) {
  using namespace fastcnn;
  m.def("forward", &forward, FASTCNN_NOGIL, "Winograd F(4x4,3x3) correlation + bias + activation.");
  m.def("backward_weight", &backward_weight, FASTCNN_NOGIL, "Winograd F(4x4,3x3) weight gradient of that correlation.");
  m.attr("output_tile") = 4;
}
