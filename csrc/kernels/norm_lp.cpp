// normalize (L_p over one dim) and local_response_norm (over channels), see norm.h.
// normalize: x viewed as [outer, D, inner]; inner == 1 rows vectorised along D, inner > 1 blocks of
// Vec::N inner positions (one lane each) stepping through D; p == 2 is all Vec arithmetic, other p
// use pow per lane. LRN: x[N, C, S]; per (n, block of pixels) a sliding window of squares along C,
// one add and one subtract per channel; s^-beta per lane through the library.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/simd.h"
#include "common/threads.h"
#include "norm.h"
#include "softmax_common.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {
using simd::Vec;
using softmax_common::lanes_load;
using softmax_common::lanes_store;

constexpr int64_t kGrainElems = 16384;

template <class T>
inline Vec<T> vabs(Vec<T> v) { return max(v, Vec<T>::zero() - v); }

// sum |x|^p (p == 2: x*x) for one Vec of lanes.
template <class T>
inline Vec<T> power_term(Vec<T> x, T p) {
  if (p == T(2)) return x * x;
  if (p == T(1)) return vabs<T>(x);
  return simd::pow_nonneg(vabs<T>(x), p);
}

template <class T>
inline T root(T s, T p) { return p == T(2) ? std::sqrt(s) : (p == T(1) ? s : std::pow(s, T(1) / p)); }

// Calls body(base, stride, count, width): the D values of `width` lanes start at base, step stride.
template <class T, class Body>
void for_lines(int64_t outer, int64_t D, int64_t inner, Body&& body) {
  if (inner == 1) {
    parallel_for(outer, std::max<int64_t>(1, kGrainElems / D), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) body(r, r * D, int64_t{1}, 0);
    });
    return;
  }
  const int64_t blocks = (inner + Vec<T>::N - 1) / Vec<T>::N;
  parallel_for(outer * blocks, std::max<int64_t>(1, kGrainElems / (D * Vec<T>::N)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t o = b / blocks, s0 = (b % blocks) * Vec<T>::N;
      body(o * inner + s0, o * D * inner + s0, inner, int(std::min<int64_t>(Vec<T>::N, inner - s0)));
    }
  });
}

// Row (width == 0): Vec-wide sum over D contiguous values of f(x_vec, i) -> scalar; lanes: per lane.
template <class T>
void normalize_forward(const T* x, T* y, T* norm, int64_t outer, int64_t D, int64_t inner, double p_, double eps_) {
  using V = Vec<T>;
  const T p = T(p_), eps = T(eps_);
  for_lines<T>(outer, D, inner, [&](int64_t line, int64_t base, int64_t stride, int width) {
    if (width == 0) {  // contiguous row
      V acc = V::zero();
      for (int64_t i = 0; i < D; i += V::N) acc = acc + power_term<T>(V::load(x + base + i, int(std::min<int64_t>(V::N, D - i))), p);
      const T n = root(reduce_add(acc), p);
      norm[line] = n;
      const V inv = V::set1(T(1) / std::max(n, eps));
      for (int64_t i = 0; i < D; i += V::N) {
        const int w = int(std::min<int64_t>(V::N, D - i));
        lanes_store<T>(V::load(x + base + i, w) * inv, y + base + i, w);
      }
      return;
    }
    V acc = V::zero();
    for (int64_t d = 0; d < D; ++d) acc = acc + power_term<T>(lanes_load(x + base + d * stride, width, T(0)), p);
    const V n = p == T(2) ? sqrt(acc) : (p == T(1) ? acc : simd::pow_nonneg(acc, T(1) / p));
    lanes_store<T>(n, norm + line, width);
    const V inv = V::set1(T(1)) / max(n, V::set1(eps));
    for (int64_t d = 0; d < D; ++d)
      lanes_store<T>(lanes_load(x + base + d * stride, width, T(0)) * inv, y + base + d * stride, width);
  });
}

// dn/dx without the 1/n^(p-1) factor: sign(x)|x|^(p-1).
template <class T>
inline Vec<T> norm_grad_term(Vec<T> x, T p) {
  if (p == T(2)) return x;
  const Vec<T> sign = select(x > Vec<T>::zero(), Vec<T>::set1(T(1)), select(x < Vec<T>::zero(), Vec<T>::set1(T(-1)), Vec<T>::zero()));
  return p == T(1) ? sign : Vec<T>(sign * simd::pow_nonneg(vabs<T>(x), p - T(1)));
}

template <class T>
void normalize_backward(const T* gy, const T* x, const T* norm, T* gx, int64_t outer, int64_t D, int64_t inner,
                        double p_, double eps_) {
  using V = Vec<T>;
  const T p = T(p_), eps = T(eps_);
  // coefficient of dn/dx-term: -[n > eps] * dot / d^2 / n^(p-1)
  auto coef = [p, eps](T n, T dot) {
    if (!(n > eps)) return T(0);
    return -dot / (n * n) / (p == T(2) ? n : std::pow(n, p - T(1)));
  };
  for_lines<T>(outer, D, inner, [&](int64_t line, int64_t base, int64_t stride, int width) {
    if (width == 0) {
      V acc = V::zero();
      for (int64_t i = 0; i < D; i += V::N) {
        const int w = int(std::min<int64_t>(V::N, D - i));
        acc = fmadd(V::load(gy + base + i, w), V::load(x + base + i, w), acc);
      }
      const T n = norm[line];
      const V inv = V::set1(T(1) / std::max(n, eps)), c = V::set1(coef(n, reduce_add(acc)));
      for (int64_t i = 0; i < D; i += V::N) {
        const int w = int(std::min<int64_t>(V::N, D - i));
        const V r = fmadd(c, norm_grad_term<T>(V::load(x + base + i, w), p), V::load(gy + base + i, w) * inv);
        lanes_store<T>(r, gx + base + i, w);
      }
      return;
    }
    V acc = V::zero();
    for (int64_t d = 0; d < D; ++d)
      acc = fmadd(lanes_load(gy + base + d * stride, width, T(0)), lanes_load(x + base + d * stride, width, T(0)), acc);
    alignas(64) T nb[V::N], db[V::N], cb[V::N], ib[V::N];
    lanes_load(norm + line, width, T(1)).store(nb);
    acc.store(db);
    for (int l = 0; l < V::N; ++l) { cb[l] = coef(nb[l], db[l]); ib[l] = T(1) / std::max(nb[l], eps); }
    const V c = V::load(cb), inv = V::load(ib);
    for (int64_t d = 0; d < D; ++d) {
      const int64_t o = base + d * stride;
      const V r = fmadd(c, norm_grad_term<T>(lanes_load(x + o, width, T(0)), p), lanes_load(gy + o, width, T(0)) * inv);
      lanes_store<T>(r, gx + o, width);
    }
  });
}

// Calls body(n, s0, width) for every block of <= Vec::N pixels of every image.
template <class T, class Body>
void for_pixel_blocks(int64_t N, int64_t C, int64_t S, Body&& body) {
  const int64_t blocks = (S + Vec<T>::N - 1) / Vec<T>::N;
  parallel_for(N * blocks, std::max<int64_t>(1, kGrainElems / (C * Vec<T>::N)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) body(b / blocks, (b % blocks) * Vec<T>::N, int(std::min<int64_t>(Vec<T>::N, S - (b % blocks) * Vec<T>::N)));
  });
}

template <class T>
void lrn_forward(const T* x, T* y, T* scale, int64_t N, int64_t C, int64_t S, int64_t size, double alpha, double beta,
                 double k) {
  using V = Vec<T>;
  const int64_t before = size / 2, after = (size - 1) / 2;  // contracts/norm.py lrn_window: [c - before, c + after]
  const V a = V::set1(T(alpha / double(size))), kv = V::set1(T(k));
  for_pixel_blocks<T>(N, C, S, [&](int64_t n, int64_t s0, int width) {
    const int64_t base = n * C * S + s0;
    auto sq = [&](int64_t c) { const V v = lanes_load(x + base + c * S, width, T(0)); return v * v; };
    V window = V::zero();  // sum of squares over [c - before, c + after] ∩ [0, C)
    for (int64_t c = 0; c < std::min(C, after); ++c) window = window + sq(c);
    for (int64_t c = 0; c < C; ++c) {
      if (c + after < C) window = window + sq(c + after);
      if (c - before - 1 >= 0) window = window - sq(c - before - 1);
      const V s = fmadd(a, window, kv);
      lanes_store<T>(s, scale + base + c * S, width);
      lanes_store<T>(lanes_load(x + base + c * S, width, T(0)) * simd::pow_nonneg(s, T(-beta)), y + base + c * S, width);
    }
  });
}

template <class T>
void lrn_backward(const T* gy, const T* x, const T* scale, T* gx, int64_t N, int64_t C, int64_t S, int64_t size,
                  double alpha, double beta) {
  using V = Vec<T>;
  const int64_t before = size / 2, after = (size - 1) / 2;
  const V factor = V::set1(T(-2.0 * alpha * beta / double(size)));
  for_pixel_blocks<T>(N, C, S, [&](int64_t n, int64_t s0, int width) {
    const int64_t base = n * C * S + s0;
    // t_c = gy_c x_c s_c^(-beta-1); gx_j = gy_j s_j^-beta + factor x_j sum_{c in [j - after, j + before]} t_c.
    std::vector<V> t(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      const int64_t o = base + c * S;
      t[size_t(c)] = lanes_load(gy + o, width, T(0)) * lanes_load(x + o, width, T(0)) *
                     simd::pow_nonneg(lanes_load(scale + o, width, T(1)), T(-beta - 1));
    }
    V window = V::zero();
    for (int64_t c = 0; c < std::min(C, before); ++c) window = window + t[size_t(c)];
    for (int64_t j = 0; j < C; ++j) {
      if (j + before < C) window = window + t[size_t(j + before)];
      if (j - after - 1 >= 0) window = window - t[size_t(j - after - 1)];
      const int64_t o = base + j * S;
      const V s = lanes_load(scale + o, width, T(1));
      const V r = fmadd(factor * lanes_load(x + o, width, T(0)), window, lanes_load(gy + o, width, T(0)) * simd::pow_nonneg(s, T(-beta)));
      lanes_store<T>(r, gx + o, width);
    }
  });
}

}  // namespace

LpNormFns<float> lp_norm_fns_f32() {
  return {&normalize_forward<float>, &normalize_backward<float>, &lrn_forward<float>, &lrn_backward<float>};
}
LpNormFns<double> lp_norm_fns_f64() {
  return {&normalize_forward<double>, &normalize_backward<double>, &lrn_forward<double>, &lrn_backward<double>};
}
FASTCNN_ISA_NAMESPACE_END
