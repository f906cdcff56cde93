// Batch-norm passes over x[N, C, S] (see norm.h). Two layouts of the same work:
//  - rows (S > 1, NCHW): channel c is N contiguous rows of S; vectorised along S, threads over C
//    for the reductions and over the N*C rows for the element-wise passes;
//  - columns (S == 1, (N, C) input): vectorised along C, threads over blocks of channels.
// Sums are two-level: Vec<T> lanes over one row (or <= kFlushRows rows), then added into double,
// so float32 statistics stay accurate for any N*S. Index math in int64.
#include <algorithm>
#include <utility>

#include "common/simd.h"
#include "common/threads.h"
#include "norm.h"
#include "shifted_sums.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {
using simd::Vec;

constexpr int64_t kFlushRows = 64;     // column layout: rows summed in T before adding into double
constexpr int64_t kRowGrain = 16384;   // elements per thread chunk in element-wise passes

// Column layout helper: the lane block [c0, c0 + width) of a row, width <= Vec<T>::N.
template <class T>
inline Vec<T> load_lanes(const T* p, int width) {
  return width == Vec<T>::N ? Vec<T>::load(p) : Vec<T>::load(p, width);
}
template <class T>
inline void store_lanes(Vec<T> v, T* p, int width) {
  if (width == Vec<T>::N) v.store(p); else v.store(p, width);
}
template <class T>
inline void add_lanes(Vec<T> v, double* dst, int width) {
  alignas(64) T buf[Vec<T>::N];
  v.store(buf);
  for (int i = 0; i < width; ++i) dst[i] += double(buf[i]);
}

// Column layout (S == 1): per channel, s1 = sum_n u and s2 = sum_n u v, threaded over blocks of
// Vec<T>::N channels. block_terms(c0, width) sets a block up and returns the row function
// n -> (u, v) of lanes [c0, c0 + width); rows are summed kFlushRows at a time in T, then in double.
template <class T, class BlockTerms>
void column_sums(int64_t N, int64_t C, double* s1, double* s2, BlockTerms&& block_terms) {
  using V = Vec<T>;
  const int64_t blocks = (C + V::N - 1) / V::N;
  // a thread's chunk holds at least kRowGrain elements: a small layer runs inline, without waking a
  // second thread (an OpenMP region costs microseconds, milliseconds when that core is busy)
  parallel_for(blocks, std::max<int64_t>(1, kRowGrain / std::max<int64_t>(1, N * V::N)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t c0 = b * V::N;
      const int width = int(std::min<int64_t>(V::N, C - c0));
      const auto terms = block_terms(c0, width);
      std::fill(s1 + c0, s1 + c0 + width, 0.0);
      std::fill(s2 + c0, s2 + c0 + width, 0.0);
      for (int64_t n0 = 0; n0 < N; n0 += kFlushRows) {
        V a1 = V::zero(), a2 = V::zero();
        for (int64_t n = n0; n < std::min(N, n0 + kFlushRows); ++n) {
          const auto [u, v] = terms(n);
          a1 = a1 + u;
          a2 = fmadd(u, v, a2);
        }
        add_lanes(a1, s1 + c0, width);
        add_lanes(a2, s2 + c0, width);
      }
    }
  });
}

template <class T>
void channel_moments(const T* x, int64_t N, int64_t C, int64_t S, double* shift, double* s1, double* s2) {
  using V = Vec<T>;
  if (S == 1) {
    return column_sums<T>(N, C, s1, s2, [&](int64_t c0, int width) {
      for (int i = 0; i < width; ++i) shift[c0 + i] = double(x[c0 + i]);
      const V k = load_lanes(x + c0, width);
      return [=](int64_t n) {  // (d, d) with d = x - shift: sums of d and d^2
        const V d = load_lanes(x + n * C + c0, width) - k;
        return std::pair<V, V>{d, d};
      };
    });
  }
  parallel_for(C, std::max<int64_t>(1, kRowGrain / std::max<int64_t>(1, N * S)), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const T k = x[c * S];
      double t1 = 0, t2 = 0;
      for (int64_t n = 0; n < N; ++n) add_shifted_sums(x + (n * C + c) * S, S, k, t1, t2);
      shift[c] = double(k); s1[c] = t1; s2[c] = t2;
    }
  });
}

// out = p[c] * u + q[c] * (v - m[c]) + r[c] over [N, C, S] (v may be null: q, m unused). The one
// element-wise pass shared by the forward (u = x) and the backward (u = gy, v = x, m = mean;
// centring v before scaling keeps the result accurate when |mean| >> std).
template <class T>
void per_channel_fma(const T* u, const T* v, T* out, int64_t N, int64_t C, int64_t S, const T* p, const T* q,
                     const T* m, const T* r) {
  using V = Vec<T>;
  if (S == 1) {
    parallel_for(N, std::max<int64_t>(1, kRowGrain / std::max<int64_t>(1, C)), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        for (int64_t c = 0; c < C; c += V::N) {
          const int width = int(std::min<int64_t>(V::N, C - c));
          const int64_t o = n * C + c;
          V acc = fmadd(load_lanes(u + o, width), load_lanes(p + c, width), load_lanes(r + c, width));
          if (v) acc = fmadd(load_lanes(v + o, width) - load_lanes(m + c, width), load_lanes(q + c, width), acc);
          store_lanes(acc, out + o, width);
        }
      }
    });
    return;
  }
  parallel_for(N * C, std::max<int64_t>(1, kRowGrain / S), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t c = row % C, o = row * S;
      const V pv = V::set1(p[c]), rv = V::set1(r[c]), qv = V::set1(v ? q[c] : T(0)), mv = V::set1(v ? m[c] : T(0));
      int64_t i = 0;
      for (; i + V::N <= S; i += V::N) {
        V acc = fmadd(V::load(u + o + i), pv, rv);
        if (v) acc = fmadd(V::load(v + o + i) - mv, qv, acc);
        acc.store(out + o + i);
      }
      if (i < S) {
        const int w = int(S - i);
        V acc = fmadd(V::load(u + o + i, w), pv, rv);
        if (v) acc = fmadd(V::load(v + o + i, w) - mv, qv, acc);
        acc.store(out + o + i, w);
      }
    }
  });
}

template <class T>
void channel_affine(const T* x, T* y, int64_t N, int64_t C, int64_t S, const T* scale, const T* shift) {
  per_channel_fma<T>(x, nullptr, y, N, C, S, scale, nullptr, nullptr, shift);
}

template <class T>
void grad_affine(const T* gy, const T* x, T* gx, int64_t N, int64_t C, int64_t S, const T* a, const T* b,
                 const T* mean, const T* k) {
  per_channel_fma<T>(gy, x, gx, N, C, S, a, b, mean, k);
}

template <class T>
void grad_moments(const T* gy, const T* x, const T* mean, int64_t N, int64_t C, int64_t S, double* sum_gy,
                  double* sum_gy_xmu) {
  using V = Vec<T>;
  if (S == 1) {
    return column_sums<T>(N, C, sum_gy, sum_gy_xmu, [&](int64_t c0, int width) {
      const V m = load_lanes(mean + c0, width);
      return [=](int64_t n) {  // (gy, x - mean): sums of gy and gy (x - mean)
        return std::pair<V, V>{load_lanes(gy + n * C + c0, width), load_lanes(x + n * C + c0, width) - m};
      };
    });
  }
  parallel_for(C, std::max<int64_t>(1, kRowGrain / std::max<int64_t>(1, N * S)), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const V m = V::set1(mean[c]);
      double t1 = 0, t2 = 0;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t o = (n * C + c) * S;
        V a1 = V::zero(), a2 = V::zero(), b1 = V::zero(), b2 = V::zero();
        int64_t i = 0;
        for (; i + 2 * V::N <= S; i += 2 * V::N) {
          const V g0 = V::load(gy + o + i), g1 = V::load(gy + o + i + V::N);
          a1 = a1 + g0; a2 = fmadd(g0, V::load(x + o + i) - m, a2);
          b1 = b1 + g1; b2 = fmadd(g1, V::load(x + o + i + V::N) - m, b2);
        }
        for (; i < S; i += V::N) {
          const int w = int(std::min<int64_t>(V::N, S - i));
          const V g = V::load(gy + o + i, w);  // zero in tail lanes
          a1 = a1 + g; a2 = fmadd(g, V::load(x + o + i, w) - m, a2);
        }
        t1 += double(reduce_add(a1 + b1));
        t2 += double(reduce_add(a2 + b2));
      }
      sum_gy[c] = t1; sum_gy_xmu[c] = t2;
    }
  });
}

template <class T>
BatchNormFns<T> batch_norm_fns() {
  return {&channel_moments<T>, &channel_affine<T>, &grad_moments<T>, &grad_affine<T>};
}

}  // namespace

const NormKernels& norm_kernels() {
  static const NormKernels table{batch_norm_fns<float>(), batch_norm_fns<double>(), lp_norm_fns_f32(),
                                 lp_norm_fns_f64()};
  return table;
}
FASTCNN_ISA_NAMESPACE_END
