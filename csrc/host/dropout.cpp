// fastcnn._C.dropout: mask * scale with a keep-mask drawn by torch's generator.
#include "common/module.h"
#include "kernels/dropout.h"

namespace fastcnn {
namespace {

void masked_scale(int dtype, std::uintptr_t x, std::uintptr_t keep, int64_t n, int64_t group, double scale,
                  std::uintptr_t y) {
  dispatch_float(Dtype(dtype), [&](auto zero) {
    using T = decltype(zero);
    pick<T>(dropout_kernels()).masked_scale(as_ptr<const T>(x), as_ptr<const uint8_t>(keep), n, group, T(scale),
                                            as_ptr<T>(y));
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(dropout) { m.def("masked_scale", &fastcnn::masked_scale, FASTCNN_NOGIL); }
