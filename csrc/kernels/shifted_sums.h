// Sums of d = x - k and d^2 over a contiguous run, for the variance of batch and group norms: the
// shift k (an element of the same set) keeps float sums accurate when |mean| >> std.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/simd.h"

namespace fastcnn {
FASTCNN_ISA_INLINE_BEGIN  // distinct per cpu ISA copy (see csrc/common/isa.h)

// t1 += sum(p[i] - k), t2 += sum((p[i] - k)^2) over i < n: in Vec<T> lanes, then into double.
template <class T>
inline void add_shifted_sums(const T* p, int64_t n, T k, double& t1, double& t2) {
  using V = simd::Vec<T>;
  const V kv = V::set1(k);
  V a1 = V::zero(), a2 = V::zero(), b1 = V::zero(), b2 = V::zero();
  int64_t i = 0;
  for (; i + 2 * V::N <= n; i += 2 * V::N) {  // two chains hide the add latency
    const V d0 = V::load(p + i) - kv, d1 = V::load(p + i + V::N) - kv;
    a1 = a1 + d0; a2 = fmadd(d0, d0, a2);
    b1 = b1 + d1; b2 = fmadd(d1, d1, b2);
  }
  for (; i < n; i += V::N) {
    const V d = V::load_or(p + i, int(std::min<int64_t>(V::N, n - i)), k) - kv;  // tail lanes give 0
    a1 = a1 + d; a2 = fmadd(d, d, a2);
  }
  t1 += double(reduce_add(a1 + b1));
  t2 += double(reduce_add(a2 + b2));
}

FASTCNN_ISA_INLINE_END
}  // namespace fastcnn
