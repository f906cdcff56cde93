// fastcnn._C.activation: addresses in, kernels of the active ISA called with the GIL released.
#include "common/module.h"
#include "kernels/activation.h"

namespace fastcnn {
namespace {

using Addr = std::uintptr_t;

template <class T>
const ActivationTable<T>& table() { return activation_kernels().get<T>(); }

void forward(int kind, Addr x, Addr y, int64_t n, double p0, double p1, Dtype dt) {
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    table<T>().forward(static_cast<Act>(kind), as_ptr<const T>(x), as_ptr<T>(y), n, T(p0), T(p1));
  });
}

void backward(int kind, Addr gy, Addr saved, Addr gx, int64_t n, bool from_output, double p0, double p1, Dtype dt) {
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    table<T>().backward(static_cast<Act>(kind), as_ptr<const T>(gy), as_ptr<const T>(saved), as_ptr<T>(gx), n,
                        from_output, T(p0), T(p1));
  });
}

void prelu_forward(Addr x, Addr w, Addr y, int64_t outer, int64_t C, int64_t inner, int64_t nw, Dtype dt) {
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    table<T>().prelu_forward(as_ptr<const T>(x), as_ptr<const T>(w), as_ptr<T>(y), outer, C, inner, nw);
  });
}

void prelu_backward(Addr gy, Addr x, Addr w, Addr gx, Addr gw, int64_t outer, int64_t C, int64_t inner, int64_t nw,
                    Dtype dt) {
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    table<T>().prelu_backward(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<const T>(w), as_ptr<T>(gx),
                              as_ptr<T>(gw), outer, C, inner, nw);
  });
}

void maxout_forward(Addr x, Addr y, int64_t outer, int64_t cout, int64_t k, int64_t inner, Dtype dt) {
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    table<T>().maxout_forward(as_ptr<const T>(x), as_ptr<T>(y), outer, cout, k, inner);
  });
}

void maxout_backward(Addr gy, Addr x, Addr gx, int64_t outer, int64_t cout, int64_t k, int64_t inner, Dtype dt) {
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    table<T>().maxout_backward(as_ptr<const T>(gy), as_ptr<const T>(x), as_ptr<T>(gx), outer, cout, k, inner);
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(activation) {
  using namespace fastcnn;
  m.def("forward", &forward, FASTCNN_NOGIL);
  m.def("backward", &backward, FASTCNN_NOGIL);
  m.def("prelu_forward", &prelu_forward, FASTCNN_NOGIL);
  m.def("prelu_backward", &prelu_backward, FASTCNN_NOGIL);
  m.def("maxout_forward", &maxout_forward, FASTCNN_NOGIL);
  m.def("maxout_backward", &maxout_backward, FASTCNN_NOGIL);
}
