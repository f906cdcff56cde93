// Row-group normalisation passes over x[R, L] (see norm_groups.h). Threads over rows for the
// statistics and the element-wise passes, over parameter entries for the parameter gradients.
// Sums are two-level: Vec<T> lanes over at most kChunk elements (or kFlushRows rows), then added
// into double, so float32 statistics stay accurate for long rows. Index math in int64.
#include <algorithm>
#include <vector>

#include "common/simd.h"
#include "common/threads.h"
#include "norm_groups.h"
#include "shifted_sums.h"

// No contraction of a product and a sum into one FMA in this file: the backward's g - mean(g) must be
// exactly 0 where the row is constant (one element a row), so both passes must round g = w gy alike.
#pragma GCC optimize("fp-contract=off")

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {
using simd::Vec;

constexpr int64_t kGrain = 16384;    // elements per thread chunk, at least
constexpr int64_t kChunk = 4096;     // elements summed in T lanes before adding into double
constexpr int64_t kFlushRows = 64;   // rows summed in T lanes (column sums) before adding into double

template <class T>
inline Vec<T> load_n(const T* p, int n) { return n == Vec<T>::N ? Vec<T>::load(p) : Vec<T>::load(p, n); }

template <class T>
inline Vec<T> param_or(const T* p, int64_t k, int n, bool per_lane, T fallback) {
  if (!p) return Vec<T>::set1(fallback);
  return per_lane ? load_n(p + k, n) : Vec<T>::set1(p[k]);
}

// Walks row r's L elements in vectors: f(i, n, w, b) for elements [i, i + n) of the row, with w, b
// the affine parameters of those lanes (per lane when S == 1, one value per run of S otherwise).
template <class T, class F>
inline void row_vectors(int64_t r, int64_t L, int64_t G, int64_t S, const T* w, const T* b, F&& f) {
  using V = Vec<T>;
  const int64_t k0 = (r % G) * (L / S);
  if (S == 1) {
    for (int64_t i = 0; i < L; i += V::N) {
      const int n = int(std::min<int64_t>(V::N, L - i));
      f(i, n, param_or(w, k0 + i, n, true, T(1)), param_or(b, k0 + i, n, true, T(0)));
    }
    return;
  }
  for (int64_t j = 0; j < L / S; ++j) {
    const V wv = param_or(w, k0 + j, V::N, false, T(1)), bv = param_or(b, k0 + j, V::N, false, T(0));
    for (int64_t s = 0; s < S; s += V::N) f(j * S + s, int(std::min<int64_t>(V::N, S - s)), wv, bv);
  }
}

template <class T>
void row_moments(const T* x, int64_t R, int64_t L, double* mean, double* var) {
  parallel_for(R, std::max<int64_t>(1, kGrain / L), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = x + r * L;
      const T k = row[0];
      double t1 = 0, t2 = 0;
      for (int64_t c0 = 0; c0 < L; c0 += kChunk) add_shifted_sums(row + c0, std::min(kChunk, L - c0), k, t1, t2);
      const double d = t1 / double(L);
      mean[r] = double(k) + d;
      const double v = t2 / double(L) - d * d;
      var[r] = v < 0 ? 0.0 : v;  // rounding can dip below 0; NaN stays NaN
    }
  });
}

template <class T>
void row_affine(const T* x, T* y, int64_t R, int64_t L, int64_t G, int64_t S, const T* mean, const T* rstd,
                const T* w, const T* b) {
  using V = Vec<T>;
  parallel_for(R, std::max<int64_t>(1, kGrain / L), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * L;
      T* yr = y + r * L;
      const V m = V::set1(mean[r]), rs = V::set1(rstd[r]);
      row_vectors<T>(r, L, G, S, w, b, [&](int64_t i, int n, V wv, V bv) {
        const V out = fmadd((load_n(xr + i, n) - m) * rs, wv, bv);
        if (n == V::N) out.store(yr + i); else out.store(yr + i, n);
      });
    }
  });
}

template <class T>
void row_backward(const T* gy, const T* x, T* gx, int64_t R, int64_t L, int64_t G, int64_t S, const T* mean,
                  const T* rstd, const T* w) {
  using V = Vec<T>;
  parallel_for(R, std::max<int64_t>(1, kGrain / L), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* gr = gy + r * L;
      const T* xr = x + r * L;
      T* out = gx + r * L;
      const V m = V::set1(mean[r]);
      // sum of g = w gy and of g (x - mean), T lanes flushed into double per kChunk elements.
      double sg = 0, sgx = 0;
      V a1 = V::zero(), a2 = V::zero();
      int64_t since_flush = 0;
      row_vectors<T>(r, L, G, S, w, static_cast<const T*>(nullptr), [&](int64_t i, int n, V wv, V) {
        const V g = load_n(gr + i, n) * wv;  // zero in tail lanes
        a1 = a1 + g;
        a2 = fmadd(g, load_n(xr + i, n) - m, a2);
        if ((since_flush += n) >= kChunk) {
          sg += double(reduce_add(a1)); sgx += double(reduce_add(a2));
          a1 = V::zero(); a2 = V::zero(); since_flush = 0;
        }
      });
      sg += double(reduce_add(a1));
      sgx += double(reduce_add(a2));
      const double rs = double(rstd[r]);
      // rstd (g - mean(g)) first: g - mean(g) is exact 0 where the row is constant in g (one element
      // a row, as torch), instead of the rounding left by g rstd - mean(g) rstd in two products.
      const V av = V::set1(T(rs)), bv = V::set1(T(sg / double(L))),
              cv = V::set1(T(-rs * rs * rs * sgx / double(L)));
      row_vectors<T>(r, L, G, S, w, static_cast<const T*>(nullptr), [&](int64_t i, int n, V wv, V) {
        const V o = fmadd(load_n(xr + i, n) - m, cv, (load_n(gr + i, n) * wv - bv) * av);
        if (n == V::N) o.store(out + i); else o.store(out + i, n);
      });
    }
  });
}

template <class T>
void param_grads(const T* gy, const T* x, int64_t R, int64_t L, int64_t G, int64_t S, const T* mean,
                 const T* rstd, T* gw, T* gb) {
  using V = Vec<T>;
  const int64_t outer = R / G, per_group = L / S;
  if (S == 1) {
    // Parameter entries are columns of the rows: lanes over entries, rows summed kFlushRows at a
    // time in T, then in double. Tasks are (group, block of V::N entries) pairs.
    const int64_t blocks = (per_group + V::N - 1) / V::N;
    parallel_for(G * blocks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t g = t / blocks, j0 = (t % blocks) * V::N;
        const int n = int(std::min<int64_t>(V::N, per_group - j0));
        double dw[V::N] = {}, db[V::N] = {};
        for (int64_t o0 = 0; o0 < outer; o0 += kFlushRows) {
          V aw = V::zero(), ab = V::zero();
          for (int64_t o = o0; o < std::min(outer, o0 + kFlushRows); ++o) {
            const int64_t r = o * G + g;
            const V gv = load_n(gy + r * L + j0, n);
            ab = ab + gv;
            aw = fmadd(gv, (load_n(x + r * L + j0, n) - V::set1(mean[r])) * V::set1(rstd[r]), aw);
          }
          alignas(64) T bw[V::N], bb[V::N];
          aw.store(bw); ab.store(bb);
          for (int i = 0; i < n; ++i) { dw[i] += double(bw[i]); db[i] += double(bb[i]); }
        }
        const int64_t k = g * per_group + j0;
        for (int i = 0; i < n; ++i) {
          if (gw) gw[k + i] = T(dw[i]);
          if (gb) gb[k + i] = T(db[i]);
        }
      }
    });
    return;
  }
  // Each entry covers a run of S elements in `outer` rows: sum the runs, scale by the row's rstd.
  parallel_for(G * per_group, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, outer * S)), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t g = k / per_group, j = k % per_group;
      double dw = 0, db = 0;
      for (int64_t o = 0; o < outer; ++o) {
        const int64_t r = o * G + g;
        const T* gr = gy + r * L + j * S;
        const T* xr = x + r * L + j * S;
        const V m = V::set1(mean[r]);
        V aw = V::zero(), ab = V::zero();
        for (int64_t s = 0; s < S; s += V::N) {
          const int n = int(std::min<int64_t>(V::N, S - s));
          const V gv = load_n(gr + s, n);
          ab = ab + gv;
          aw = fmadd(gv, load_n(xr + s, n) - m, aw);
        }
        dw += double(reduce_add(aw)) * double(rstd[r]);
        db += double(reduce_add(ab));
      }
      if (gw) gw[k] = T(dw);
      if (gb) gb[k] = T(db);
    }
  });
}

template <class T>
GroupRowFns<T> group_row_fns() {
  return {&row_moments<T>, &row_affine<T>, &row_backward<T>, &param_grads<T>};
}

}  // namespace

const GroupNormKernels& group_norm_kernels() {
  static const GroupNormKernels table{group_row_fns<float>(), group_row_fns<double>()};
  return table;
}
FASTCNN_ISA_NAMESPACE_END
