// fastcnn._C.conv_im2col: im2col / col2im, channel_sum, bias + activation epilogue and the im2col
// convolution (csrc/kernels/conv_im2col.cpp), addresses in, GIL released; the convolution passes
// through csrc/host/conv_calls.h (shared with the eager op, csrc/torchops/conv.cpp).
#include <vector>

#include <pybind11/stl.h>

#include "common/module.h"
#include "host/conv_calls.h"

namespace fastcnn {
namespace {

using Addr = std::uintptr_t;

template <class Body>
void with_table(int dtype, Body&& body) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    body(conv_im2col_kernels().get<T>(), t);
  });
}

void im2col(const std::vector<int64_t>& geo, Addr x, Addr cols, int dtype) {
  const ConvShape g = conv_shape_from_list(geo);
  with_table(dtype, [&](const auto& k, auto t) {
    using T = decltype(t);
    k.im2col(g, as_ptr<const T>(x), as_ptr<T>(cols));
  });
}

void col2im(const std::vector<int64_t>& geo, Addr cols, Addr x, int dtype) {
  const ConvShape g = conv_shape_from_list(geo);
  with_table(dtype, [&](const auto& k, auto t) {
    using T = decltype(t);
    k.col2im(g, as_ptr<const T>(cols), as_ptr<T>(x));
  });
}

void channel_sum(Addr t_in, Addr out, int64_t N, int64_t K, int64_t L, int dtype) {
  with_table(dtype, [&](const auto& k, auto t) {
    using T = decltype(t);
    k.channel_sum(as_ptr<const T>(t_in), as_ptr<T>(out), N, K, L);
  });
}

void bias_act(Addr y, Addr bias, int64_t N, int64_t K, int64_t L, int act, double p0, double p1, int dtype) {
  with_table(dtype, [&](const auto& k, auto t) {
    using T = decltype(t);
    k.bias_act(as_ptr<T>(y), as_ptr<const T>(bias), N, K, L, act, T(p0), T(p1));
  });
}

void forward(const std::vector<int64_t>& geo, Addr x, Addr w, Addr bias, Addr y, int act, double p0, double p1,
             int dtype) {
  const ConvShape g = conv_shape_from_list(geo);
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    conv_calls::im2col_forward(g, as_ptr<const T>(x), as_ptr<const T>(w), as_ptr<const T>(bias), as_ptr<T>(y), act, p0,
                               p1);
  });
}

void backward_input(const std::vector<int64_t>& geo, Addr gy, Addr w, Addr gx, int dtype) {
  const ConvShape g = conv_shape_from_list(geo);
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    conv_calls::im2col_backward_input(g, as_ptr<const T>(gy), as_ptr<const T>(w), as_ptr<T>(gx));
  });
}

void backward_weight(const std::vector<int64_t>& geo, Addr x, Addr gy, Addr gw, int dtype) {
  const ConvShape g = conv_shape_from_list(geo);
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    conv_calls::im2col_backward_weight(g, as_ptr<const T>(x), as_ptr<const T>(gy), as_ptr<T>(gw));
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(conv_im2col) {
  using namespace fastcnn;
  // geometry: [N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, groups]; dtype 0 = float32, 1 = float64.
  m.def("im2col", &im2col, FASTCNN_NOGIL);
  m.def("col2im", &col2im, FASTCNN_NOGIL);
  m.def("channel_sum", &channel_sum, FASTCNN_NOGIL);
  m.def("bias_act", &bias_act, FASTCNN_NOGIL);
  m.def("forward", &forward, FASTCNN_NOGIL);
  m.def("backward_input", &backward_input, FASTCNN_NOGIL);
  m.def("backward_weight", &backward_weight, FASTCNN_NOGIL);
}
