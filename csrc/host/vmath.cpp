// fastcnn._C.vmath: the vector math of common/simd.h on arrays, for tests (see kernels/vmath.h).
#include "common/module.h"
#include "kernels/vmath.h"

FASTCNN_BIND(vmath) {
  using namespace fastcnn;
  m.def("apply", [](int kind, std::uintptr_t in, std::uintptr_t out, int64_t n, double e, Dtype dtype) {
        if (dtype == Dtype::float32)
          vmath_kernels().apply_f32(kind, as_ptr<const float>(in), as_ptr<float>(out), n, float(e));
        else
          vmath_kernels().apply_f64(kind, as_ptr<const double>(in), as_ptr<double>(out), n, e);
      }, FASTCNN_NOGIL, "out = exp / log / log1p / pow_nonneg(in, e) (kind 0-3) with the active ISA's Vec math.");
}
