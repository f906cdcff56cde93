// fastcnn._C.softmax: softmax / log_softmax over D of x[outer, D, inner].
#include "common/module.h"
#include "kernels/softmax.h"

namespace fastcnn {
namespace {

void softmax_forward(int dtype, std::uintptr_t x, std::uintptr_t y, int64_t outer, int64_t D, int64_t inner, bool log) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(softmax_kernels()).forward(as_ptr<const T>(x), as_ptr<T>(y), outer, D, inner, log);
  });
}

void softmax_backward(int dtype, std::uintptr_t gy, std::uintptr_t y, std::uintptr_t gx, int64_t outer, int64_t D,
                      int64_t inner, bool log) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(softmax_kernels()).backward(as_ptr<const T>(gy), as_ptr<const T>(y), as_ptr<T>(gx), outer, D, inner, log);
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(softmax) {
  using namespace fastcnn;
  m.def("softmax_forward", &softmax_forward, FASTCNN_NOGIL);
  m.def("softmax_backward", &softmax_backward, FASTCNN_NOGIL);
}
