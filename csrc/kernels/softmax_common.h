// Reductions over the class dimension D of x[outer, D, inner], shared by the softmax kernels and the
// softmax-cross-entropy loss. Two layouts of the same reduction:
//  - row:   inner == 1, the D values of one row are contiguous; vectorised along D;
//  - lanes: inner > 1, `width` (<= Vec::N) neighbouring inner positions are reduced at once, one
//           Vec lane each, stepping through D with stride `inner`.
// Included by ISA-compiled kernel files only (inside their FASTCNN_ISA namespace).
#pragma once
#include <cstdint>
#include <limits>

#include "common/simd.h"

namespace softmax_common {
using fastcnn::simd::Vec;

template <class T>
inline Vec<T> lanes_load(const T* p, int width, T fill) {
  return width == Vec<T>::N ? Vec<T>::load(p) : Vec<T>::load_or(p, width, fill);
}
template <class T>
inline void lanes_store(Vec<T> v, T* p, int width) {
  if (width == Vec<T>::N) v.store(p); else v.store(p, width);
}

template <class T>
inline T row_max(const T* x, int64_t D) {
  using V = Vec<T>;
  const T ninf = -std::numeric_limits<T>::infinity();
  V m0 = V::set1(ninf), m1 = V::set1(ninf);
  int64_t i = 0;
  for (; i + 2 * V::N <= D; i += 2 * V::N) {
    m0 = max(m0, V::load(x + i));
    m1 = max(m1, V::load(x + i + V::N));
  }
  for (; i < D; i += V::N) m0 = max(m0, V::load_or(x + i, int(D - i), ninf));
  return reduce_max(max(m0, m1));
}

// sum_i exp(x[i] - shift).
// Sum over the row of exp(x - shift); with kKeep each exp(x - shift) is also written to out (so
// softmax needs one exp per element, not two).
template <class T, bool kKeep = false>
inline T row_sum_exp(const T* x, int64_t D, T shift, T* out = nullptr) {
  using V = Vec<T>;
  const V sv = V::set1(shift), zero = V::zero();
  V s0 = zero, s1 = zero;
  int64_t i = 0;
  for (; i + 2 * V::N <= D; i += 2 * V::N) {
    const V e0 = exp(V::load(x + i) - sv), e1 = exp(V::load(x + i + V::N) - sv);
    if constexpr (kKeep) {
      e0.store(out + i);
      e1.store(out + i + V::N);
    }
    s0 = s0 + e0;
    s1 = s1 + e1;
  }
  for (; i < D; i += V::N) {  // tail lanes read -inf: exp gives 0 (float: <= 1e-38, below rounding of a sum >= 1)
    const V e = exp(V::load_or(x + i, int(D - i), -std::numeric_limits<T>::infinity()) - sv);
    if constexpr (kKeep) e.store(out + i, int(D - i));
    s0 = s0 + e;
  }
  return reduce_add(s0 + s1);
}

// Lanes layout: per-lane max over d of x[d * stride].
template <class T>
inline Vec<T> lanes_max(const T* x, int64_t D, int64_t stride, int width) {
  using V = Vec<T>;
  const T ninf = -std::numeric_limits<T>::infinity();
  V m = V::set1(ninf);
  for (int64_t d = 0; d < D; ++d) m = max(m, lanes_load(x + d * stride, width, ninf));
  return m;
}

template <class T, bool kKeep = false>  // kKeep: as row_sum_exp
inline Vec<T> lanes_sum_exp(const T* x, int64_t D, int64_t stride, int width, Vec<T> shift, T* out = nullptr) {
  using V = Vec<T>;
  V s = V::zero();
  for (int64_t d = 0; d < D; ++d) {
    const V e = exp(lanes_load(x + d * stride, width, T(0)) - shift);
    if constexpr (kKeep) lanes_store(e, out + d * stride, width);
    s = s + e;
  }
  return s;  // lanes >= width hold garbage; callers store only `width` lanes
}

}  // namespace softmax_common
