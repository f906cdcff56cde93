// Softmax cross-entropy forward and the fused backward (softmax - onehot, scaled) in one pass, on
// logits x[N, C, S] (see loss.h). S == 1: rows of C vectorised along C, threads over N. S > 1
// (segmentation): Vec::N neighbouring pixels per block, one lane each, stepping through C.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/simd.h"
#include "common/threads.h"
#include "loss.h"
#include "softmax_common.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {
using simd::Vec;
using namespace softmax_common;

constexpr int64_t kGrainElems = 16384;

template <class T>
inline T weight_of(const T* w, int64_t c) { return w ? w[c] : T(1); }

// Calls body(n, s0, width) for every block of <= Vec::N pixels (S > 1 layout), threads over blocks.
template <class T, class Body>
void for_pixel_blocks(int64_t N, int64_t C, int64_t S, Body&& body) {
  const int64_t blocks = (S + Vec<T>::N - 1) / Vec<T>::N;
  parallel_for(N * blocks, std::max<int64_t>(1, kGrainElems / (C * Vec<T>::N)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t s0 = (b % blocks) * Vec<T>::N;
      body(b / blocks, s0, int(std::min<int64_t>(Vec<T>::N, S - s0)));
    }
  });
}

// Calls body(i, off) for every position i = n * S + s of [N, C, S], off the index of its class 0
// (classes S apart), threads over positions.
template <class Body>
void for_positions(int64_t N, int64_t C, int64_t S, Body&& body) {
  parallel_for(N * S, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, C)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) body(i, (i / S) * C * S + i % S);
  });
}

template <class T>
void cross_entropy_forward(const T* x, const int64_t* t, const T* w, int64_t N, int64_t C, int64_t S,
                           int64_t ignore_index, double smoothing, T* loss, T* wt, T* lse_out) {
  using V = Vec<T>;
  // sum_c w[c] * (x[c] - m) over a row (S == 1); centred on the row max so that the smoothing term
  // W * (lse - m) - this does not cancel (exactly 0 for C = 1).
  auto row_weighted_sum = [&](const T* xr, T m) {
    const V mv = V::set1(m);
    V acc = V::zero();
    for (int64_t c = 0; c < C; c += V::N) {
      const int wd = int(std::min<int64_t>(V::N, C - c));
      acc = fmadd(V::load_or(xr + c, wd, m) - mv, w ? V::load(w + c, wd) : V::set1(T(1)), acc);  // tail: 0
    }
    return reduce_add(acc);
  };
  T W = T(0);
  for (int64_t c = 0; c < C; ++c) W += weight_of(w, c);
  const bool smooth = smoothing > 0;
  const T keep = T(1 - smoothing), spread = T(smoothing / double(C));
  auto finish = [&](int64_t i, T m, T log_sum, T x_t, T wx_centred) {  // one (n, s) element; lse = m + log_sum
    const int64_t target = t[i];
    if (target == ignore_index) {
      loss[i] = wt[i] = T(0);
    } else {
      wt[i] = weight_of(w, target);
      loss[i] = keep * wt[i] * ((m - x_t) + log_sum) + (smooth ? spread * (W * log_sum - wx_centred) : T(0));
    }
    lse_out[i] = m + log_sum;
  };
  if (S == 1) {
    parallel_for(N, std::max<int64_t>(1, kGrainElems / C), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const T* xr = x + n * C;
        const T m = row_max(xr, C);
        const int64_t target = t[n];
        const T x_t = target == ignore_index ? T(0) : xr[target];
        finish(n, m, std::log(row_sum_exp(xr, C, m)), x_t, smooth ? row_weighted_sum(xr, m) : T(0));
      }
    });
    return;
  }
  for_pixel_blocks<T>(N, C, S, [&](int64_t n, int64_t s0, int width) {
    const T* base = x + n * C * S + s0;
    const V m = lanes_max(base, C, S, width);
    alignas(64) T lse[V::N], wx[V::N];
    lanes_sum_exp(base, C, S, width, m).store(lse);
    alignas(64) T mb[V::N];
    m.store(mb);
    V acc = V::zero();
    if (smooth)
      for (int64_t c = 0; c < C; ++c)
        acc = fmadd(lanes_load(base + c * S, width, T(0)) - m, V::set1(weight_of(w, c)), acc);
    acc.store(wx);
    for (int l = 0; l < width; ++l) {
      const int64_t i = n * S + s0 + l, target = t[i];
      const T x_t = target == ignore_index ? T(0) : base[target * S + l];
      finish(i, mb[l], std::log(lse[l]), x_t, wx[l]);
    }
  });
}

template <class T>
void cross_entropy_backward(const T* x, const int64_t* t, const T* w, const T* lse, int64_t N, int64_t C, int64_t S,
                            int64_t ignore_index, double smoothing, const T* g, int64_t g_stride, T* gx) {
  using V = Vec<T>;
  T W = T(0);
  for (int64_t c = 0; c < C; ++c) W += weight_of(w, c);
  // Coefficients of element i: a (one-hot part) and b (smoothing part).
  auto coefs = [&](int64_t i, T& a, T& b) {
    const int64_t target = t[i];
    if (target == ignore_index) { a = b = T(0); return; }
    a = T(1 - smoothing) * g[i * g_stride] * weight_of(w, target);
    b = T(smoothing / double(C)) * g[i * g_stride];
  };
  // a (p - 1) + b (W p - w[t]) at the target, recomputed exactly as written (0 when C == 1, p == 1).
  auto target_grad = [&](T a, T b, T x_t, T lse_i, int64_t target) {
    const T p = std::exp(x_t - lse_i);
    return a * (p - T(1)) + b * (W * p - weight_of(w, target));
  };
  const V Wv = V::set1(W);
  if (S == 1) {
    parallel_for(N, std::max<int64_t>(1, kGrainElems / C), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        T a, b;
        coefs(n, a, b);
        const T* xr = x + n * C;
        T* gr = gx + n * C;
        const V lv = V::set1(lse[n]), av = V::set1(a), bv = V::set1(b);
        for (int64_t c = 0; c < C; c += V::N) {
          const int wd = int(std::min<int64_t>(V::N, C - c));
          const V p = exp(V::load(xr + c, wd) - lv);
          V g = av * p;
          if (smoothing > 0) g = fmadd(bv, Wv * p - (w ? V::load(w + c, wd) : V::set1(T(1))), g);
          if (wd == V::N) g.store(gr + c); else g.store(gr + c, wd);
        }
        if (t[n] != ignore_index) gr[t[n]] = target_grad(a, b, xr[t[n]], lse[n], t[n]);
      }
    });
    return;
  }
  for_pixel_blocks<T>(N, C, S, [&](int64_t n, int64_t s0, int width) {
    alignas(64) T ab[V::N], bb[V::N];
    for (int l = 0; l < V::N; ++l) ab[l] = bb[l] = T(0);
    for (int l = 0; l < width; ++l) coefs(n * S + s0 + l, ab[l], bb[l]);
    const V lv = lanes_load(lse + n * S + s0, width, T(0)), av = V::load(ab), bv = V::load(bb);
    const int64_t base = n * C * S + s0;
    for (int64_t c = 0; c < C; ++c) {
      const V p = exp(lanes_load(x + base + c * S, width, T(0)) - lv);
      V g = av * p;
      if (smoothing > 0) g = fmadd(bv, Wv * p - V::set1(weight_of(w, c)), g);
      lanes_store<T>(g, gx + base + c * S, width);
    }
    for (int l = 0; l < width; ++l) {
      const int64_t i = n * S + s0 + l, target = t[i];
      if (target != ignore_index)
        gx[base + target * S + l] = target_grad(ab[l], bb[l], x[base + target * S + l], lse[i], target);
    }
  });
}

template <class T>
void nll_forward(const T* x, const int64_t* t, const T* w, int64_t N, int64_t C, int64_t S, int64_t ignore_index,
                 T* out, T* wt) {
  parallel_for(N * S, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {  // a gather: one value per element, nothing to vectorise
      const int64_t target = t[i], n = i / S, s = i - n * S;
      wt[i] = target == ignore_index ? T(0) : weight_of(w, target);
      out[i] = target == ignore_index ? T(0) : -wt[i] * x[(n * C + target) * S + s];
    }
  });
}

template <class T>
void nll_backward(const int64_t* t, const T* w, int64_t N, int64_t C, int64_t S, int64_t ignore_index, const T* g,
                  int64_t g_stride, T* gx) {
  parallel_for(N, std::max<int64_t>(1, kGrainElems / (C * S)), [&](int64_t n0, int64_t n1) {
    std::fill(gx + n0 * C * S, gx + n1 * C * S, T(0));
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = n * S + s, target = t[i];
        if (target != ignore_index) gx[(n * C + target) * S + s] = -weight_of(w, target) * g[i * g_stride];
      }
  });
}

// Class-probability targets: one (n, s) row at a time, classes strided by S (scalar: soft targets
// are rare beside class indices, and every class term needs its own target value anyway).
template <class T>
T row_lse(const T* xr, int64_t C, int64_t S) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < C; ++c) {
    const T v = xr[c * S];
    if (std::isnan(v) || v > m) m = v;  // a NaN wins and stays, as in torch's max
  }
  if (std::isinf(m)) return m;  // every x -inf (or one +inf): lse = m, and the terms below give torch's NaN/inf
  T sum = T(0);
  for (int64_t c = 0; c < C; ++c) sum += std::exp(xr[c * S] - m);
  return m + std::log(sum);
}

template <class T>
void soft_cross_entropy_forward(const T* x, const T* t, const T* w, int64_t N, int64_t C, int64_t S,
                                double smoothing, T* loss, T* lse_out) {
  const T keep = T(1 - smoothing), spread = T(smoothing / double(C));
  for_positions(N, C, S, [&](int64_t i, int64_t off) {
    const T* xr = x + off;
    const T* tr = t + off;
    const T lse = row_lse(xr, C, S);
    T acc = T(0);
    for (int64_t c = 0; c < C; ++c) acc += weight_of(w, c) * (keep * tr[c * S] + spread) * (lse - xr[c * S]);
    loss[i] = acc;
    lse_out[i] = lse;
  });
}

template <class T>
void soft_cross_entropy_backward(const T* x, const T* t, const T* w, const T* lse, int64_t N, int64_t C, int64_t S,
                                 double smoothing, const T* g, int64_t g_stride, T* gx, T* gt) {
  const T keep = T(1 - smoothing), spread = T(smoothing / double(C));
  for_positions(N, C, S, [&](int64_t i, int64_t off) {
    const T* xr = x + off;
    const T* tr = t + off;
    const T gi = g[i * g_stride], l = lse[i];
    if (gx) {
      T A = T(0);
      for (int64_t c = 0; c < C; ++c) A += weight_of(w, c) * (keep * tr[c * S] + spread);
      for (int64_t c = 0; c < C; ++c)
        gx[off + c * S] = gi * (std::exp(xr[c * S] - l) * A - weight_of(w, c) * (keep * tr[c * S] + spread));
    }
    if (gt)
      for (int64_t c = 0; c < C; ++c) gt[off + c * S] = gi * keep * weight_of(w, c) * (l - xr[c * S]);
  });
}

// Element-wise losses, as torch computes them (BCE: logs clamped at -100, backward denominator
// max(x (1 - x), 1e-12); with logits: (1 - y) x + (1 + (pw - 1) y) softplus(-x), softplus(-x) =
// log1p(exp(-|x|)) + max(-x, 0)). The target-gradient kinds are backward-only: d loss / d target,
// log(1 - x) - log(x) for BCE (unclamped, as torch's logit(x).neg()), (pw - 1) softplus(-x) - x with
// logits (-x without pos_weight).
enum PointwiseKind { kMse = 0, kBce = 1, kBceLogits = 2, kBceTarget = 3, kBceLogitsTarget = 4 };

template <class T>
inline Vec<T> softplus_neg(Vec<T> x) {  // log(1 + exp(-x)), stable for any x
  using V = Vec<T>;
  const V ax = max(x, V::zero() - x);
  return simd::log1p(exp(V::zero() - ax)) + max(V::zero() - x, V::zero());
}

template <class T>
inline Vec<T> pointwise_value(int kind, Vec<T> x, Vec<T> y, Vec<T> pw, bool has_pw) {
  using V = Vec<T>;
  const V one = V::set1(T(1));
  if (kind == kMse) return (x - y) * (x - y);
  if (kind == kBce) {
    const V floor = V::set1(T(-100));
    const V lx = max(simd::log(x), floor);
    const V l1x = max(simd::log(one - x), floor);
    return V::zero() - fmadd(y, lx, (one - y) * l1x);
  }
  const V scale = has_pw ? V(fmadd(pw - one, y, one)) : one;
  return fmadd(one - y, x, scale * softplus_neg(x));
}

template <class T>
inline Vec<T> pointwise_grad(int kind, Vec<T> x, Vec<T> y, Vec<T> pw, bool has_pw) {
  using V = Vec<T>;
  const V one = V::set1(T(1));
  if (kind == kMse) return V::set1(T(2)) * (x - y);
  if (kind == kBce) return (x - y) / max((one - x) * x, V::set1(T(1e-12)));
  if (kind == kBceTarget) return simd::log(one - x) - simd::log(x);
  if (kind == kBceLogitsTarget) return has_pw ? (pw - one) * softplus_neg(x) - x : V::zero() - x;
  const V scale = has_pw ? V(fmadd(pw - one, y, one)) : one;
  const V sig_neg = one / (one + exp(x));  // sigmoid(-x)
  return (one - y) - scale * sig_neg;
}

template <class T, class Body>
void for_vec_blocks(int64_t n, Body&& body) {
  parallel_for((n + Vec<T>::N - 1) / Vec<T>::N, kGrainElems / Vec<T>::N, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) body(b * Vec<T>::N, int(std::min<int64_t>(Vec<T>::N, n - b * Vec<T>::N)));
  });
}

template <class T>
void pointwise_forward(int kind, const T* x, const T* y, const T* w, const T* pw, int64_t n, T* out) {
  using V = Vec<T>;
  for_vec_blocks<T>(n, [&](int64_t i, int wd) {
    // Tail lanes read 0.5 (inside every loss's domain) and are not stored.
    const V xv = lanes_load(x + i, wd, T(0.5)), yv = lanes_load(y + i, wd, T(0.5));
    V v = pointwise_value<T>(kind, xv, yv, pw ? lanes_load(pw + i, wd, T(1)) : V::set1(T(1)), pw != nullptr);
    if (w) v = v * lanes_load(w + i, wd, T(0));
    lanes_store<T>(v, out + i, wd);
  });
}

template <class T>
void pointwise_backward(int kind, const T* x, const T* y, const T* w, const T* pw, const T* g, int64_t g_stride,
                        int64_t n, T* gx) {
  using V = Vec<T>;
  for_vec_blocks<T>(n, [&](int64_t i, int wd) {
    const V xv = lanes_load(x + i, wd, T(0.5)), yv = lanes_load(y + i, wd, T(0.5));
    V v = pointwise_grad<T>(kind, xv, yv, pw ? lanes_load(pw + i, wd, T(1)) : V::set1(T(1)), pw != nullptr);
    if (w) v = v * lanes_load(w + i, wd, T(0));
    v = v * (g_stride ? lanes_load(g + i, wd, T(0)) : V::set1(g[0]));
    lanes_store<T>(v, gx + i, wd);
  });
}

// Two-level sum of values(i, width) (a Vec whose lanes past width are zero) over [0, n): Vec<T>
// lanes over blocks of kSumBlock values, each block's total added in double.
template <class T, class Values>
double block_sum(int64_t n, Values&& values) {
  using V = Vec<T>;
  constexpr int64_t kSumBlock = 1024;
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(size_t(std::max<int64_t>(blocks, 1)), 0.0);
  parallel_for(blocks, 16, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = b * kSumBlock, hi = std::min(n, lo + kSumBlock);
      V acc = V::zero();
      for (int64_t i = lo; i < hi; i += V::N) acc = acc + values(i, int(std::min<int64_t>(V::N, hi - i)));
      partial[size_t(b)] = double(reduce_add(acc));
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

template <class T>
double sum(const T* v, int64_t n) {
  return block_sum<T>(n, [&](int64_t i, int wd) { return Vec<T>::load(v + i, wd); });
}

// sum of pointwise_forward's values without writing them (the 'sum'/'mean' reductions).
template <class T>
double pointwise_sum(int kind, const T* x, const T* y, const T* w, const T* pw, int64_t n) {
  using V = Vec<T>;
  return block_sum<T>(n, [&](int64_t i, int wd) {
    const V xv = lanes_load(x + i, wd, T(0.5)), yv = lanes_load(y + i, wd, T(0.5));
    V v = pointwise_value<T>(kind, xv, yv, pw ? lanes_load(pw + i, wd, T(1)) : V::set1(T(1)), pw != nullptr);
    if (w) return V(v * lanes_load(w + i, wd, T(0)));  // zero weight in the tail lanes
    if (wd < V::N) {  // the tail lanes hold the loss of the 0.5 fill: drop them
      alignas(64) T buf[V::N];
      v.store(buf);
      for (int l = wd; l < V::N; ++l) buf[l] = T(0);
      v = V::load(buf);
    }
    return v;
  });
}

}  // namespace

const LossKernels& loss_kernels() {
  static const LossKernels table{
      {&cross_entropy_forward<float>, &cross_entropy_backward<float>, &soft_cross_entropy_forward<float>,
       &soft_cross_entropy_backward<float>, &nll_forward<float>, &nll_backward<float>,
       &pointwise_forward<float>, &pointwise_backward<float>, &pointwise_sum<float>, &sum<float>},
      {&cross_entropy_forward<double>, &cross_entropy_backward<double>, &soft_cross_entropy_forward<double>,
       &soft_cross_entropy_backward<double>, &nll_forward<double>, &nll_backward<double>,
       &pointwise_forward<double>, &pointwise_backward<double>, &pointwise_sum<double>, &sum<double>}};
  return table;
}
FASTCNN_ISA_NAMESPACE_END
