#include "kernels/vmath.h"

#include <stdexcept>

#include "common/simd.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {

template <class T>
simd::Vec<T> apply_one(int kind, simd::Vec<T> v, T e) {
  switch (kind) {
    case 0: return simd::exp(v);
    case 1: return simd::log(v);
    case 2: return simd::log1p(v);
    case 3: return simd::pow_nonneg(v, e);
  }
  throw std::invalid_argument("kind: 0 exp, 1 log, 2 log1p, 3 pow_nonneg");
}

template <class T>
void apply(int kind, const T* in, T* out, int64_t n, T e) {
  using V = simd::Vec<T>;
  for (int64_t i = 0; i < n; i += V::N) {
    const int w = int(n - i < V::N ? n - i : V::N);
    apply_one<T>(kind, V::load_or(in + i, w, T(1)), e).store(out + i, w);
  }
}
}  // namespace

const VmathKernels& vmath_kernels() {
  static const VmathKernels t{&apply<float>, &apply<double>};
  return t;
}

FASTCNN_ISA_NAMESPACE_END
