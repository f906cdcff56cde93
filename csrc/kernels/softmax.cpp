// softmax / log_softmax forward and backward over D of x[outer, D, inner] (see softmax.h).
// inner == 1: rows vectorised along D, threads over rows. inner > 1 (e.g. dim=1 of NCHW): blocks
// of Vec::N inner positions reduced lane-wise while stepping through D, threads over (outer, block).
#include <algorithm>
#include <cmath>

#include "common/simd.h"
#include "common/threads.h"
#include "softmax.h"
#include "softmax_common.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {
using simd::Vec;
using namespace softmax_common;

constexpr int64_t kGrainElems = 16384;

// Calls body(base_offset, width) for every block of <= Vec::N inner positions of every outer index.
template <class T, class Body>
void for_lane_blocks(int64_t outer, int64_t D, int64_t inner, Body&& body) {
  const int64_t blocks = (inner + Vec<T>::N - 1) / Vec<T>::N;
  parallel_for(outer * blocks, std::max<int64_t>(1, kGrainElems / (D * Vec<T>::N)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t o = b / blocks, s0 = (b % blocks) * Vec<T>::N;
      body(o * D * inner + s0, int(std::min<int64_t>(Vec<T>::N, inner - s0)));
    }
  });
}

template <class T>
void forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner, bool log) {
  using V = Vec<T>;
  if (inner == 1) {
    parallel_for(outer, std::max<int64_t>(1, kGrainElems / D), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * D;
        T* yr = y + r * D;
        const T m = row_max(xr, D);
        // softmax keeps exp(x - m) in y and scales it; log_softmax needs only the sum
        const T s = log ? row_sum_exp(xr, D, m) : row_sum_exp<T, true>(xr, D, m, yr);
        const V shift = V::set1(m + std::log(s)), inv = V::set1(T(1) / s);
        const T* src = log ? xr : yr;
        int64_t i = 0;
        for (; i + V::N <= D; i += V::N) {
          const V v = V::load(src + i);
          (log ? v - shift : v * inv).store(yr + i);
        }
        if (i < D) {
          const int w = int(D - i);
          const V v = V::load(src + i, w);
          (log ? v - shift : v * inv).store(yr + i, w);
        }
      }
    });
    return;
  }
  for_lane_blocks<T>(outer, D, inner, [&](int64_t base, int width) {
    const V m = lanes_max(x + base, D, inner, width);
    const V s = log ? lanes_sum_exp(x + base, D, inner, width, m) : lanes_sum_exp<T, true>(x + base, D, inner, width, m, y + base);
    const V lse = m + simd::log(s), inv = V::set1(T(1)) / s;
    const T* src = (log ? x : y) + base;  // softmax: y already holds exp(x - m)
    for (int64_t d = 0; d < D; ++d) {
      const V v = lanes_load(src + d * inner, width, T(0));
      lanes_store<T>(log ? v - lse : v * inv, y + base + d * inner, width);
    }
  });
}

template <class T>
void backward(const T* gy, const T* y, T* gx, int64_t outer, int64_t D, int64_t inner, bool log) {
  using V = Vec<T>;
  if (inner == 1) {
    parallel_for(outer, std::max<int64_t>(1, kGrainElems / D), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* g = gy + r * D;
        const T* yr = y + r * D;
        T* out = gx + r * D;
        V acc = V::zero();
        for (int64_t i = 0; i < D; i += V::N) {  // masked tails load 0
          const int w = int(std::min<int64_t>(V::N, D - i));
          acc = log ? acc + V::load(g + i, w) : fmadd(V::load(g + i, w), V::load(yr + i, w), acc);
        }
        const V sum = V::set1(reduce_add(acc));
        for (int64_t i = 0; i < D; i += V::N) {
          const int w = int(std::min<int64_t>(V::N, D - i));
          const V gv = V::load(g + i, w), yv = V::load(yr + i, w);
          const V r = log ? gv - exp(yv) * sum : yv * (gv - sum);
          if (w == V::N) r.store(out + i); else r.store(out + i, w);
        }
      }
    });
    return;
  }
  for_lane_blocks<T>(outer, D, inner, [&](int64_t base, int width) {
    V sum = V::zero();
    for (int64_t d = 0; d < D; ++d) {
      const V gv = lanes_load(gy + base + d * inner, width, T(0));
      sum = log ? sum + gv : fmadd(gv, lanes_load(y + base + d * inner, width, T(0)), sum);
    }
    for (int64_t d = 0; d < D; ++d) {
      const int64_t o = base + d * inner;
      const V gv = lanes_load(gy + o, width, T(0)), yv = lanes_load(y + o, width, T(0));
      lanes_store<T>(log ? gv - exp(yv) * sum : yv * (gv - sum), gx + o, width);
    }
  });
}

}  // namespace

const SoftmaxKernels& softmax_kernels() {
  static const SoftmaxKernels table{{&forward<float>, &backward<float>}, {&forward<double>, &backward<double>}};
  return table;
}
FASTCNN_ISA_NAMESPACE_END
