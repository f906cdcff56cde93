// fastcnn._C.pad: 2-D spatial padding (constant, reflect, replicate, circular) forward and backward
// (csrc/kernels/pad.h).
#include "common/module.h"
#include "kernels/pad.h"

namespace fastcnn {
namespace {

void forward(int dtype, std::uintptr_t x, std::uintptr_t y, int64_t P, int64_t H, int64_t W, int64_t K, int64_t top,
             int64_t bottom, int64_t left, int64_t right, int mode, double value) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(pad_kernels()).forward(as_ptr<const T>(x), as_ptr<T>(y), P, H, W, K, top, bottom, left, right,
                                   PadMode(mode), T(value));
  });
}

void backward(int dtype, std::uintptr_t gy, std::uintptr_t gx, int64_t P, int64_t H, int64_t W, int64_t K,
              int64_t top, int64_t bottom, int64_t left, int64_t right, int mode) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(pad_kernels()).backward(as_ptr<const T>(gy), as_ptr<T>(gx), P, H, W, K, top, bottom, left, right,
                                    PadMode(mode));
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(pad) {
  using namespace fastcnn;
  m.def("forward", &forward, FASTCNN_NOGIL);
  m.def("backward", &backward, FASTCNN_NOGIL);
}
