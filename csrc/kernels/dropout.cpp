// Dropout's mask * scale (forward and backward) on Vec<T> lanes. group == 1: per element, the byte
// mask widened to a lane multiplier; group > 1 (dropout2d): one flag per plane, whole planes scaled
// or zeroed.
#include <algorithm>

#include "common/simd.h"
#include "common/threads.h"
#include "dropout.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {
using simd::Vec;

constexpr int64_t kGrainElems = 16384;

template <class T>
void masked_scale(const T* x, const uint8_t* keep, int64_t n, int64_t group, T scale, T* y) {
  using V = Vec<T>;
  const V sv = V::set1(scale);
  if (group == 1) {
    parallel_for((n + V::N - 1) / V::N, kGrainElems / V::N, [&](int64_t b0, int64_t b1) {
      alignas(64) T m[V::N];
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t i = b * V::N;
        const int w = int(std::min<int64_t>(V::N, n - i));
        for (int l = 0; l < V::N; ++l) m[l] = (l < w && keep[i + l]) ? scale : T(0);
        const V r = (w == V::N ? V::load(x + i) : V::load(x + i, w)) * V::load(m);
        if (w == V::N) r.store(y + i); else r.store(y + i, w);
      }
    });
    return;
  }
  const int64_t planes = n / group;
  parallel_for(planes, std::max<int64_t>(1, kGrainElems / group), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * group;
      T* yp = y + p * group;
      if (!keep[p]) {
        std::fill(yp, yp + group, T(0));
        continue;
      }
      int64_t i = 0;
      for (; i + V::N <= group; i += V::N) (V::load(xp + i) * sv).store(yp + i);
      if (i < group) (V::load(xp + i, int(group - i)) * sv).store(yp + i, int(group - i));
    }
  });
}

}  // namespace

const DropoutKernels& dropout_kernels() {
  static const DropoutKernels table{{&masked_scale<float>}, {&masked_scale<double>}};
  return table;
}
FASTCNN_ISA_NAMESPACE_END
