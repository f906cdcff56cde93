// Padding kernels (see pad.h): memory-bound copies; the interior of each output row is one
// contiguous copy of W*K elements, the borders K-element runs. Threads over output rows (forward)
// and over planes (backward: each plane's accumulation in a fixed order, so results are deterministic).
#include <algorithm>
#include <cstring>

#include "common/threads.h"
#include "pad.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {

constexpr int64_t kGrain = 16384;  // elements per thread chunk, at least

template <class T>
void forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t K, int64_t top, int64_t bottom,
             int64_t left, int64_t right, PadMode mode, T value) {
  const int64_t Ho = H + top + bottom, Wo = W + left + right, row = Wo * K;
  parallel_for(P * Ho, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, row)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t p = r / Ho, i = r % Ho;
      T* out = y + r * row;
      const int64_t si = pad_source(i, top, H, mode);
      if (si < 0) {
        std::fill(out, out + row, value);
        continue;
      }
      const T* src = x + (p * H + si) * W * K;
      for (int64_t j = 0; j < left; ++j) {
        const int64_t sj = pad_source(j, left, W, mode);
        if (sj < 0) std::fill(out + j * K, out + (j + 1) * K, value);
        else std::memcpy(out + j * K, src + sj * K, sizeof(T) * K);
      }
      std::memcpy(out + left * K, src, sizeof(T) * W * K);
      for (int64_t j = left + W; j < Wo; ++j) {
        const int64_t sj = pad_source(j, left, W, mode);
        if (sj < 0) std::fill(out + j * K, out + (j + 1) * K, value);
        else std::memcpy(out + j * K, src + sj * K, sizeof(T) * K);
      }
    }
  });
}

template <class T>
void backward(const T* gy, T* gx, int64_t P, int64_t H, int64_t W, int64_t K, int64_t top, int64_t bottom,
              int64_t left, int64_t right, PadMode mode) {
  const int64_t Ho = H + top + bottom, Wo = W + left + right;
  parallel_for(P, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, Ho * Wo * K)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* g = gx + p * H * W * K;
      std::fill(g, g + H * W * K, T(0));
      for (int64_t i = 0; i < Ho; ++i) {
        const int64_t si = pad_source(i, top, H, mode);
        if (si < 0) continue;
        const T* in = gy + (p * Ho + i) * Wo * K;
        T* dst = g + si * W * K;
        for (int64_t j = 0; j < Wo; ++j) {
          const int64_t sj = pad_source(j, left, W, mode);
          if (sj < 0) continue;
          for (int64_t k = 0; k < K; ++k) dst[sj * K + k] += in[j * K + k];
        }
      }
    }
  });
}

template <class T>
PadFns<T> pad_fns() {
  return {&forward<T>, &backward<T>};
}

}  // namespace

const PadKernels& pad_kernels() {
  static const PadKernels table{pad_fns<float>(), pad_fns<double>()};
  return table;
}
FASTCNN_ISA_NAMESPACE_END
