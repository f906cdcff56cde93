// Pooling kernels of the cpu backend: max / average pooling with fixed and adaptive windows,
// forward and backward, plus the index scatter/gather behind max-pooling backward and max_unpool2d.
//
// Two layouts, each vectorised along its contiguous axis:
//   NCHW: one output row of one plane per work item; SIMD lanes are consecutive output columns, so
//         each kernel tap is one strided load (stride 1: plain load; stride 2: two loads and a
//         deinterleaving permute; else per-lane copies). Windows that cross the border are done
//         per element with bounds; rows that cross it just skip their missing taps.
//   NHWC (channels_last): one output pixel per work item; lanes are channels, every tap is a plain
//         contiguous load; no conversion to NCHW.
// Max pooling follows torch's rule exactly: a tap replaces the running max if it is greater or NaN,
// so ties keep the first index (row-major) and a NaN propagates with the index of the last NaN.
// The argmax is tracked as a tap offset in the value lanes (exact below 2^24 for float; larger
// windows take the per-element path) and turned into h * W + w when stored.
#include "kernels/pool.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "common/simd.h"
#include "common/threads.h"
#include "kernels/pool_simd.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {

using pool::Geom;
using pool::i64;
using pool_simd::takes_max;
using simd::Vec;

template <class T>
constexpr T neg_inf() { return -std::numeric_limits<T>::infinity(); }

// Argmax offsets ride in T lanes and are converted through int32: they must stay below 2^24
// (exact in float); larger windows take the per-element path.
template <class T>
constexpr i64 exact_limit() { return i64(1) << 24; }

// Work items of about this many output elements or more are worth a thread of their own. An OpenMP
// region costs 5-20 us on a quiet machine (milliseconds when the other core is busy); at 2048 the
// small maps of SegNet's decoder (16 x 16 x 6 x 8) opened one per pool / unpool call and lost 10-25
// us each to torch (whose grain is 32K), so below 16K elements (as the activation and BatchNorm
// kernels) a call runs on the calling thread.
constexpr i64 kGrainElems = 16384;
i64 grain_for(i64 elems_per_item) { return std::max<i64>(1, kGrainElems / std::max<i64>(1, elems_per_item)); }

// The taps of one window that lie inside the input: rows hstart + i*dh for i in [i0, i1),
// columns wstart + j*dw for j in [j0, j1).
struct Window {
  i64 hstart, i0, i1, dh, wstart, j0, j1, dw;
};
Window fixed_window(const Geom& g, i64 p, i64 q) {
  const i64 hs = p * g.sh - g.ph, ws = q * g.sw - g.pw;
  return {hs, pool::first_tap(hs, g.dh), pool::last_tap(hs, g.kh, g.dh, g.H), g.dh,
          ws, pool::first_tap(ws, g.dw), pool::last_tap(ws, g.kw, g.dw, g.W), g.dw};
}
Window adaptive_window(const Geom& g, i64 p, i64 q) {
  const i64 hs = pool::adaptive_begin(p, g.H, g.P), ws = pool::adaptive_begin(q, g.W, g.Q);
  return {hs, 0, pool::adaptive_end(p, g.H, g.P) - hs, 1, ws, 0, pool::adaptive_end(q, g.W, g.Q) - ws, 1};
}

// Per-element max over a window; `cs` is the distance between neighbouring pixels of a plane
// (1 in NCHW, C in NHWC).
template <class T>
void max_window_scalar(const T* plane, i64 W, i64 cs, const Window& w, T* out, int64_t* index) {
  T best = neg_inf<T>();
  int64_t best_i = (w.hstart + w.i0 * w.dh) * W + w.wstart + w.j0 * w.dw;
  for (i64 i = w.i0; i < w.i1; ++i) {
    const i64 h = w.hstart + i * w.dh;
    for (i64 j = w.j0; j < w.j1; ++j) {
      const i64 pos = h * W + w.wstart + j * w.dw;
      const T v = plane[pos * cs];
      if (takes_max(v, best)) {
        best = v;
        best_i = pos;
      }
    }
  }
  *out = best;
  if (index) *index = best_i;
}

// avg_pool2d's divisor for output (p, q).
struct AvgRule {
  bool count_include_pad;
  int64_t divisor_override;
};
Window avg_window(const Geom& g, i64 p, i64 q, const AvgRule& r, i64* divisor) {
  const pool::AvgSpan sh = pool::avg_span(p, g.H, g.kh, g.sh, g.ph, r.count_include_pad);
  const pool::AvgSpan sw = pool::avg_span(q, g.W, g.kw, g.sw, g.pw, r.count_include_pad);
  *divisor = r.divisor_override ? r.divisor_override : sh.count * sw.count;
  return {sh.begin, 0, sh.end - sh.begin, 1, sw.begin, 0, sw.end - sw.begin, 1};
}

// Output columns [lo, hi) of a fixed-window pool that need no column bounds checks.
struct Interior {
  i64 lo, hi;
};
Interior column_interior(const Geom& g) {
  const i64 lo = std::min(pool::interior_lo(g.sw, g.pw), g.Q);
  const i64 hi = std::max(lo, pool::interior_hi(g.Q, g.W, g.kw, g.sw, g.pw, g.dw));
  return {lo, hi};
}

// ---------------------------------------------------------------- NCHW, fixed windows: forward

// tap_off[i * kw + j] = i * dh * W + j * dw, the argmax offset of tap (i, j) (kIdx only): a
// broadcast from memory, where converting the integer in the loop would chain every tap.
template <class T, bool kIdx>
void max_row_nchw(const T* plane, T* yrow, int64_t* irow, const Geom& g, i64 p, Interior in, const T* tap_off) {
  using V = Vec<T>;
  for (i64 q = 0; q < in.lo; ++q) max_window_scalar(plane, g.W, 1, fixed_window(g, p, q), yrow + q, kIdx ? irow + q : nullptr);
  const Window w0 = fixed_window(g, p, in.lo);
  for (i64 q0 = in.lo; q0 < in.hi; q0 += V::N) {
    const int n = static_cast<int>(std::min<i64>(V::N, in.hi - q0));
    const i64 wstart = q0 * g.sw - g.pw;
    V best = V::set1(neg_inf<T>());
    V off = V::set1(T(w0.i0 * g.dh * g.W));  // torch starts from the first tap inside the input
    const bool full = n == V::N && wstart + (V::N - 1) * g.sw + (g.kw - 1) * g.dw + 1 < g.W;
    for (i64 i = w0.i0; i < w0.i1; ++i) {
      const T* row = plane + (w0.hstart + i * g.dh) * g.W + wstart;
      auto tap = [&](i64 j, V v) {
        const auto take = takes_max(v, best);
        best = select(take, v, best);
        if (kIdx) off = select(take, V::set1(tap_off[i * g.kw + j]), off);
      };
      if (full)
        pool_simd::full_vector_taps(row, g.sw, g.kw, g.dw, tap);
      else
        for (i64 j = 0; j < g.kw; ++j) tap(j, pool_simd::load_strided(row + j * g.dw, g.sw, n, neg_inf<T>()));
    }
    best.store(yrow + q0, n);
    if (kIdx) pool_simd::store_index(irow + q0, n, w0.hstart * g.W + wstart, g.sw, off);
  }
  for (i64 q = in.hi; q < g.Q; ++q) max_window_scalar(plane, g.W, 1, fixed_window(g, p, q), yrow + q, kIdx ? irow + q : nullptr);
}

// Runs row(plane_index, p) over every output row of every plane, threaded; `row_work` is about
// how many input elements one row reads (sets the grain).
template <class Row>
void for_each_output_row(const Geom& g, i64 row_work, Row&& row) {
  fastcnn::parallel_for(g.N * g.C * g.P, grain_for(row_work), [&](i64 begin, i64 end) {
    for (i64 item = begin; item < end; ++item) row(item / g.P, item % g.P);
  });
}

// ---------------------------------------------------------------- NHWC: per pixel over channels

// Runs fn(n, p, q) over every output pixel, threaded by output rows.
template <class Fn>
void for_each_output_pixel(const Geom& g, Fn&& fn) {
  fastcnn::parallel_for(g.N * g.P, grain_for(g.C * g.Q), [&](i64 begin, i64 end) {
    for (i64 item = begin; item < end; ++item)
      for (i64 q = 0; q < g.Q; ++q) fn(item / g.P, item % g.P, q);
  });
}

// NHWC kernels keep this many channel vectors in registers per pass over a window.
constexpr int kChannelVecs = 4;

// Lanes per vector of the channel chunk starting at c0 (0 for vectors past the end).
template <class T>
void chunk_lanes(i64 C, i64 c0, int* lanes) {
  for (int u = 0; u < kChannelVecs; ++u)
    lanes[u] = static_cast<int>(std::max<i64>(0, std::min<i64>(Vec<T>::N, C - c0 - u * Vec<T>::N)));
}

// Max over one window for all channels of one pixel (x points at the image, y/idx at the pixel).
template <class T, bool kIdx>
void max_pixel_nhwc(const T* x, T* y, int64_t* idx, const Geom& g, const Window& w) {
  using V = Vec<T>;
  const i64 base = (w.hstart + w.i0 * w.dh) * g.W + w.wstart + w.j0 * w.dw;
  const i64 span = (w.i1 - w.i0 - 1) * w.dh * g.W + (w.j1 - w.j0 - 1) * w.dw;
  if (span >= exact_limit<T>()) {
    for (i64 c = 0; c < g.C; ++c) max_window_scalar(x + c, g.W, g.C, w, y + c, kIdx ? idx + c : nullptr);
    return;
  }
  for (i64 c0 = 0; c0 < g.C; c0 += kChannelVecs * V::N) {
    int lanes[kChannelVecs];
    chunk_lanes<T>(g.C, c0, lanes);
    V best[kChannelVecs], off[kChannelVecs];
    for (int u = 0; u < kChannelVecs; ++u) best[u] = V::set1(neg_inf<T>()), off[u] = V::zero();
    for (i64 i = w.i0; i < w.i1; ++i) {
      for (i64 j = w.j0; j < w.j1; ++j) {
        const i64 pos = (w.hstart + i * w.dh) * g.W + w.wstart + j * w.dw;
        const T* px = x + pos * g.C + c0;
        const V tap = V::set1(T(pos - base));
#pragma GCC unroll 4
        for (int u = 0; u < kChannelVecs; ++u) {
          if (lanes[u] == 0) break;
          const V v = pool_simd::load_n(px + u * V::N, lanes[u], neg_inf<T>());
          const auto take = takes_max(v, best[u]);
          best[u] = select(take, v, best[u]);
          if (kIdx) off[u] = select(take, tap, off[u]);
        }
      }
    }
    for (int u = 0; u < kChannelVecs && lanes[u] > 0; ++u) {
      best[u].store(y + c0 + u * V::N, lanes[u]);
      if (kIdx) pool_simd::store_index(idx + c0 + u * V::N, lanes[u], base, 0, off[u]);
    }
  }
}

template <class T>
void sum_pixel_nhwc(const T* x, T* y, const Geom& g, const Window& w, T divisor) {
  using V = Vec<T>;
  const V vdiv = V::set1(divisor);
  for (i64 c0 = 0; c0 < g.C; c0 += kChannelVecs * V::N) {
    int lanes[kChannelVecs];
    chunk_lanes<T>(g.C, c0, lanes);
    V sum[kChannelVecs];
    for (int u = 0; u < kChannelVecs; ++u) sum[u] = V::zero();
    for (i64 i = w.i0; i < w.i1; ++i)
      for (i64 j = w.j0; j < w.j1; ++j) {
        const T* px = x + ((w.hstart + i * w.dh) * g.W + w.wstart + j * w.dw) * g.C + c0;
#pragma GCC unroll 4
        for (int u = 0; u < kChannelVecs; ++u) {
          if (lanes[u] == 0) break;
          sum[u] = sum[u] + pool_simd::load_n(px + u * V::N, lanes[u], T(0));
        }
      }
    for (int u = 0; u < kChannelVecs && lanes[u] > 0; ++u) (sum[u] / vdiv).store(y + c0 + u * V::N, lanes[u]);
  }
}

// g * scale added to every pixel of the window, all channels of [c0, c0 + n) (NHWC gradient).
template <class T>
void spread_pixel_nhwc(T* gx, const T* gy, const Geom& g, const Window& w, T scale, i64 c0, int n) {
  using V = Vec<T>;
  const V v = V::load(gy + c0, n) * V::set1(scale);
  for (i64 i = w.i0; i < w.i1; ++i)
    for (i64 j = w.j0; j < w.j1; ++j) {
      T* p = gx + ((w.hstart + i * w.dh) * g.W + w.wstart + j * w.dw) * g.C + c0;
      (V::load(p, n) + v).store(p, n);
    }
}

// Runs fn(n, c0, cn) over (image, channel block) pairs, threaded: each pair owns the gradient
// entries of its channels in its image, so scatters into gx need no atomics.
template <class T, class Fn>
void for_each_image_channel_block(const Geom& g, Fn&& fn) {
  const i64 blocks = (g.C + Vec<T>::N - 1) / Vec<T>::N;
  fastcnn::parallel_for(g.N * blocks, 1, [&](i64 begin, i64 end) {
    for (i64 item = begin; item < end; ++item) {
      const i64 c0 = (item % blocks) * Vec<T>::N;
      fn(item / blocks, c0, static_cast<int>(std::min<i64>(Vec<T>::N, g.C - c0)));
    }
  });
}

// Zeroes channels [c0, c0 + n) of every pixel of image gx (NHWC).
template <class T>
void zero_channels_nhwc(T* gx_image, const Geom& g, i64 c0, int n) {
  const Vec<T> z = Vec<T>::zero();
  for (i64 pos = 0; pos < g.H * g.W; ++pos) z.store(gx_image + pos * g.C + c0, n);
}

// The NHWC input gradient of an average pooling: each gy pixel times `scale` added to every pixel
// of its window, with (window, scale) = window_of(p, q) for output pixel (p, q).
template <class T, class WindowOf>
void spread_nhwc(const T* gy, T* gx, const Geom& g, WindowOf&& window_of) {
  for_each_image_channel_block<T>(g, [&](i64 n, i64 c0, int cn) {
    T* gxn = gx + n * g.H * g.W * g.C;
    zero_channels_nhwc(gxn, g, c0, cn);
    for (i64 p = 0; p < g.P; ++p)
      for (i64 q = 0; q < g.Q; ++q) {
        const auto [w, scale] = window_of(p, q);
        spread_pixel_nhwc(gxn, gy + ((n * g.P + p) * g.Q + q) * g.C, g, w, scale, c0, cn);
      }
  });
}

// Runs fn(plane_index) over every plane, threaded.
template <class Fn>
void for_each_plane(const Geom& g, i64 plane_elems, Fn&& fn) {
  fastcnn::parallel_for(g.N * g.C, grain_for(plane_elems), [&](i64 begin, i64 end) {
    for (i64 b = begin; b < end; ++b) fn(b);
  });
}

// ---------------------------------------------------------------- separable fixed-window pools
// The max (or sum) over a window is the max (sum) over its columns of the max (sum) over its rows.
// So the separable forward takes, per output row, the element-wise max/sum of the window's kh
// input rows (plain vector ops over whole contiguous rows), then the kw taps along that row: kh + kw
// operations per output instead of kh * kw, and the second pass reads a row buffer in L1 whose
// borders hold the identity (-inf / 0) where the padding is, so it needs no bounds checks. Max rows
// holding a NaN go to the exact per-window path (plain maxima do not follow torch's NaN rule); a
// tie between -0 and +0 may then pick the other zero than torch's row-major first (the indices path
// below keeps torch's choice).

// How a separable pool combines taps: their max (a row with a NaN goes to the exact path) or sum.
struct MaxOf {
  static constexpr bool kNanMatters = true;
  template <class T>
  static T identity() { return neg_inf<T>(); }
  template <class V>
  static V combine(V a, V b) { return max(a, b); }
};
struct SumOf {
  static constexpr bool kNanMatters = false;
  template <class T>
  static T identity() { return T(0); }
  template <class V>
  static V combine(V a, V b) { return a + b; }
};

// The row maxima (or sums) of one output row, in pixels of `cs` elements (1 in NCHW, C in NHWC):
// pixel b of the buffer is input column b - pw; pixels outside [pw, pw + W) keep the border value.
template <class T>
class RowBuffer {
 public:
  RowBuffer(const Geom& g, i64 cs, T border = neg_inf<T>())
      : cs_(cs),
        pixels_(std::max((g.Q - 1) * g.sw + (g.kw - 1) * g.dw + 1, g.pw + g.W)),
        data_(pixels_ * cs + 2 * Vec<T>::N, border) {}
  T* pixel(i64 b) { return data_.data() + b * cs_; }
  i64 pixels() const { return pixels_; }

  // Element-wise Op (max or sum) of the window rows of output row p (row r at image + r * row_step,
  // W * cs elements), stored from pixel pw on; with kTrack (max only), row_of_max receives (at the
  // same places) the input row holding each max, the first one on ties as in torch's row-major
  // rule. Returns false if Op is max and any of the rows held a NaN.
  template <class Op = MaxOf, bool kTrack = false>
  bool take_rows(const T* image, i64 row_step, const Geom& g, i64 p, RowBuffer* row_of_max = nullptr) {
    using V = Vec<T>;
    const Window w = fixed_window(g, p, 0);
    const i64 rows = w.i1 - w.i0, len = g.W * cs_, step = g.dh * row_step;
    if (rows <= 0) return true;  // not reached: torch's shape rules give every window an input row
    const T* first = image + (w.hstart + w.i0 * g.dh) * row_step;
    T* out = pixel(g.pw);
    T* rows_out = kTrack ? row_of_max->pixel(g.pw) : nullptr;
    if (kTrack) {  // broadcast from memory in the loop (an int->float convert there would chain)
      row_ids_.resize(rows);
      for (i64 i = 0; i < rows; ++i) row_ids_[i] = T(w.hstart + (w.i0 + i) * g.dh);
    }
    pool_simd::NanProbe<T> nan;
    for (i64 e = 0; e < len; e += V::N) {
      const int n = static_cast<int>(std::min<i64>(V::N, len - e));
      auto row = [&](i64 i) { return pool_simd::load_n(first + i * step + e, n, Op::template identity<T>()); };
      V m = row(0), r = kTrack ? V::set1(row_ids_[0]) : V::zero();
      auto fold = [&](V v, i64 i) {
        if constexpr (kTrack) {
          const auto take = v > m;
          m = select(take, v, m);
          r = select(take, V::set1(row_ids_[i]), r);
        } else {
          m = Op::template combine<V>(m, v);
        }
      };
      i64 i = 1;  // the rows after the first in pairs: one NaN test per pair
      if (rows % 2 == 0) {
        const V v = row(1);
        if (Op::kNanMatters) nan.add(m, v);
        fold(v, 1);
        i = 2;
      } else if (Op::kNanMatters) {
        nan.add(m);
      }
      for (; i < rows; i += 2) {
        const V a = row(i), b = row(i + 1);
        if (Op::kNanMatters) nan.add(a, b);
        fold(a, i);
        fold(b, i + 1);
      }
      m.store(out + e, n);
      if constexpr (kTrack) r.store(rows_out + e, n);
    }
    return !nan.seen();
  }

 private:
  i64 cs_, pixels_;
  std::vector<T> data_;
  std::vector<T> row_ids_;
};

// Splits a row buffer of single elements into its s phases: phase r holds elements r, r + s, ...
// so that every tap of a stride-s output vector becomes a plain load.
template <class T>
class RowPhases {
 public:
  RowPhases(const Geom& g, i64 buffer_len, T border = neg_inf<T>())
      : stride_(g.sw), len_((buffer_len + g.sw - 1) / g.sw + Vec<T>::N), border_(border),
        data_(stride_ == 1 ? 0 : stride_ * len_) {}

  // Pointer to the elements k*s + off of `row` (k = 0, 1, ...), for any tap offset off >= 0.
  const T* at(const T* row, i64 off) const {
    return stride_ == 1 ? row + off : data_.data() + (off % stride_) * len_ + off / stride_;
  }
  void split(const T* row, i64 buffer_len) {
    if (stride_ == 1) return;
    T* ph = data_.data();
    const i64 groups = (buffer_len + stride_ - 1) / stride_;
    if (stride_ == 2) {
      for (i64 k = 0; k < groups; k += Vec<T>::N) {  // reads 2N elements: the buffer has the slack
        Vec<T> even, odd;
        pool_simd::deinterleave2(row + 2 * k, even, odd);
        even.store(ph + k);
        odd.store(ph + len_ + k);
      }
      return;
    }
    for (i64 k = 0; k < groups; ++k)
      for (i64 r = 0; r < stride_; ++r) ph[r * len_ + k] = k * stride_ + r < buffer_len ? row[k * stride_ + r] : border_;
  }

 private:
  i64 stride_, len_;
  T border_;
  std::vector<T> data_;
};

// Separable fixed-window pool over NCHW: per output row, Op over the window's rows, then over its
// kw taps along the row buffer; finish(p, q0, v) turns a vector of window results into outputs
// (max: as they are; avg: divided by each window's divisor), exact(plane, yrow, p) redoes a row
// the row pass refused (a NaN under max).
template <class T, class Op, class Finish, class Exact>
void separable_nchw(const T* x, T* y, const Geom& g, Finish&& finish, Exact&& exact) {
  using V = Vec<T>;
  fastcnn::parallel_for(g.N * g.C * g.P, grain_for(g.Q * (g.kh + g.kw)), [&](i64 begin, i64 end) {
    RowBuffer<T> buf(g, 1, Op::template identity<T>());
    RowPhases<T> phases(g, buf.pixels(), Op::template identity<T>());
    std::vector<const T*> taps(g.kw);  // tap j of output column q is taps[j][q]
    for (i64 j = 0; j < g.kw; ++j) taps[j] = phases.at(buf.pixel(0), j * g.dw);
    for (i64 item = begin; item < end; ++item) {
      const i64 b = item / g.P, p = item % g.P;
      const T* plane = x + b * g.H * g.W;
      T* yrow = y + (b * g.P + p) * g.Q;
      if (!buf.template take_rows<Op>(plane, g.W, g, p)) {
        exact(plane, yrow, p);
        continue;
      }
      phases.split(buf.pixel(0), buf.pixels());
      for (i64 q0 = 0; q0 < g.Q; q0 += V::N) {
        V m = V::load(taps[0] + q0);
        for (i64 j = 1; j < g.kw; ++j) m = Op::template combine<V>(m, V::load(taps[j] + q0));
        finish(p, q0, m).store(yrow + q0, static_cast<int>(std::min<i64>(V::N, g.Q - q0)));
      }
    }
  });
}

// The same over NHWC: the row buffer holds W pixels of C channels; finish(p, q, v) per vector of
// channels of output pixel q, exact(image, yrow, p) as above.
template <class T, class Op, class Finish, class Exact>
void separable_nhwc(const T* x, T* y, const Geom& g, Finish&& finish, Exact&& exact) {
  using V = Vec<T>;
  fastcnn::parallel_for(g.N * g.P, grain_for(g.C * g.Q * (g.kh + g.kw)), [&](i64 begin, i64 end) {
    RowBuffer<T> buf(g, g.C, Op::template identity<T>());
    for (i64 item = begin; item < end; ++item) {
      const i64 n = item / g.P, p = item % g.P;
      const T* image = x + n * g.H * g.W * g.C;
      T* yrow = y + item * g.Q * g.C;
      if (!buf.template take_rows<Op>(image, g.W * g.C, g, p)) {
        exact(image, yrow, p);
        continue;
      }
      for (i64 q = 0; q < g.Q; ++q) {
        const T* first = buf.pixel(q * g.sw);
        for (i64 c0 = 0; c0 < g.C; c0 += V::N) {  // full loads may run into the next pixel: unused lanes
          V m = V::load(first + c0);
          for (i64 j = 1; j < g.kw; ++j) m = Op::template combine<V>(m, V::load(first + j * g.dw * g.C + c0));
          finish(p, q, m).store(yrow + q * g.C + c0, static_cast<int>(std::min<i64>(V::N, g.C - c0)));
        }
      }
    }
  });
}

// The argmax offset of tap (i, j) of a window, i * dh * W + j * dw, per tap (see max_row_nchw).
template <class T>
std::vector<T> tap_offsets(const Geom& g) {
  std::vector<T> off(g.kh * g.kw);
  for (i64 i = 0; i < g.kh; ++i)
    for (i64 j = 0; j < g.kw; ++j) off[i * g.kw + j] = T(i * g.dh * g.W + j * g.dw);
  return off;
}

// Row of the padding columns in a row-of-max buffer: their positions row * W + column sort after
// every real one (H * W < 2^24 on this path), so a padding tap never wins a tie.
template <class T>
constexpr T padding_row() { return T(i64(1) << 24); }

// NCHW with indices, separable: the row pass also records which row holds each column's max;
// the column pass compares (value, position h * W + w) pairs, a greater value or an equal value
// at a smaller position winning, which is exactly torch's first-in-row-major-order rule.
template <class T>
void max_forward_separable_nchw_indices(const T* x, T* y, int64_t* idx, const Geom& g) {
  using V = Vec<T>;
  const Interior in = column_interior(g);
  const std::vector<T> tap_off = tap_offsets<T>(g);
  fastcnn::parallel_for(g.N * g.C * g.P, grain_for(g.Q * (g.kh + 2 * g.kw)), [&](i64 begin, i64 end) {
    RowBuffer<T> vals(g, 1), rows(g, 1, padding_row<T>());
    RowPhases<T> val_phases(g, vals.pixels()), row_phases(g, rows.pixels());
    std::vector<const T*> val_taps(g.kw), row_taps(g.kw);
    std::vector<T> tap_cols(g.kw);
    for (i64 j = 0; j < g.kw; ++j) {
      val_taps[j] = val_phases.at(vals.pixel(0), j * g.dw);
      row_taps[j] = row_phases.at(rows.pixel(0), j * g.dw);
      tap_cols[j] = T(j * g.dw);
    }
    // Outputs whose window holds no input column: the vector pass would report a padding position;
    // torch reports the window's first in-range tap (the scalar path's rule), so those are redone.
    std::vector<i64> dead_cols;
    for (i64 q = 0; q < g.Q; ++q) {
      const Window w = fixed_window(g, 0, q);
      if (w.j0 >= w.j1) dead_cols.push_back(q);
    }
    alignas(64) T lane_cols[V::N];  // output lane l starts its window at input column l * sw - pw
    for (int l = 0; l < V::N; ++l) lane_cols[l] = T(l * g.sw - g.pw);
    const V width = V::set1(T(g.W)), col_step = V::set1(T(V::N * g.sw));
    for (i64 item = begin; item < end; ++item) {
      const i64 b = item / g.P, p = item % g.P;
      const T* plane = x + b * g.H * g.W;
      const i64 o = (b * g.P + p) * g.Q;
      if (!vals.template take_rows<MaxOf, true>(plane, g.W, g, p, &rows)) {
        max_row_nchw<T, true>(plane, y + o, idx + o, g, p, in, tap_off.data());
        continue;
      }
      val_phases.split(vals.pixel(0), vals.pixels());
      row_phases.split(rows.pixel(0), rows.pixels());
      V col = V::load(lane_cols);
      for (i64 q0 = 0; q0 < g.Q; q0 += V::N, col = col + col_step) {
        V best = V::load(val_taps[0] + q0);
        V best_pos = fmadd(V::load(row_taps[0] + q0), width, col);
        for (i64 j = 1; j < g.kw; ++j) {
          const V v = V::load(val_taps[j] + q0);
          const V pos = fmadd(V::load(row_taps[j] + q0), width, col + V::set1(tap_cols[j]));
          const V tie_pos = select(v == best, pos, best_pos);  // an equal value: the smaller position
          best = select(tie_pos < best_pos, v, best);
          best_pos = min(tie_pos, best_pos);
          const auto greater = v > best;
          best = select(greater, v, best);
          best_pos = select(greater, pos, best_pos);
        }
        const int n = static_cast<int>(std::min<i64>(V::N, g.Q - q0));
        best.store(y + o + q0, n);
        pool_simd::store_index(idx + o + q0, n, 0, 0, best_pos);
      }
      const bool dead_row = fixed_window(g, p, 0).i0 >= fixed_window(g, p, 0).i1;
      for (i64 k = 0, count = dead_row ? g.Q : i64(dead_cols.size()); k < count; ++k) {
        const i64 q = dead_row ? k : dead_cols[k];
        max_window_scalar(plane, g.W, 1, fixed_window(g, p, q), y + o + q, idx + o + q);
      }
    }
  });
}

// ---------------------------------------------------------------- fixed windows: entry points

template <class T>
void max_forward(const T* x, T* y, int64_t* idx, const Geom& g, bool channels_last) {
  if (!idx) {
    auto as_is = [](i64, i64, Vec<T> v) { return v; };
    if (channels_last) {
      separable_nhwc<T, MaxOf>(x, y, g, as_is, [&](const T* image, T* yrow, i64 p) {
        for (i64 q = 0; q < g.Q; ++q) max_pixel_nhwc<T, false>(image, yrow + q * g.C, nullptr, g, fixed_window(g, p, q));
      });
    } else {
      const Interior in = column_interior(g);
      separable_nchw<T, MaxOf>(x, y, g, as_is, [&](const T* plane, T* yrow, i64 p) {
        max_row_nchw<T, false>(plane, yrow, nullptr, g, p, in, nullptr);
      });
    }
    return;
  }
  if (channels_last) {
    for_each_output_pixel(g, [&](i64 n, i64 p, i64 q) {
      const i64 o = (n * g.P + p) * g.Q + q;
      max_pixel_nhwc<T, true>(x + n * g.H * g.W * g.C, y + o * g.C, idx + o * g.C, g, fixed_window(g, p, q));
    });
    return;
  }
  if (g.H * g.W < exact_limit<T>()) {  // positions exact in T
    max_forward_separable_nchw_indices(x, y, idx, g);
    return;
  }
  Interior in = column_interior(g);
  if ((g.kh - 1) * g.dh * g.W + (g.kw - 1) * g.dw >= exact_limit<T>()) in.hi = in.lo;  // all per element
  const std::vector<T> tap_off = tap_offsets<T>(g);
  for_each_output_row(g, g.Q * g.kh * g.kw, [&](i64 b, i64 p) {
    const i64 o = (b * g.P + p) * g.Q;
    max_row_nchw<T, true>(x + b * g.H * g.W, y + o, idx + o, g, p, in, tap_off.data());
  });
}

// Separable: window sums as for max, then divided by the divisor of each window, which is (rows
// counted) x (columns counted) or divisor_override. Sums add rows first, so they may round
// differently from torch's row-major order.
template <class T>
void avg_forward(const T* x, T* y, const Geom& g, bool channels_last, bool count_include_pad, int64_t divisor_override) {
  using V = Vec<T>;
  std::vector<T> rows_counted(g.P), cols_counted(g.Q + V::N, T(1));
  for (i64 p = 0; p < g.P; ++p) rows_counted[p] = T(pool::avg_span(p, g.H, g.kh, g.sh, g.ph, count_include_pad).count);
  for (i64 q = 0; q < g.Q; ++q) cols_counted[q] = T(pool::avg_span(q, g.W, g.kw, g.sw, g.pw, count_include_pad).count);
  const V override_div = V::set1(T(divisor_override));
  auto never = [](const T*, T*, i64) {};  // sums refuse no row
  if (channels_last) {
    separable_nhwc<T, SumOf>(x, y, g, [&](i64 p, i64 q, V v) {
      return V(v / (divisor_override ? override_div : V(V::set1(rows_counted[p] * cols_counted[q]))));
    }, never);
    return;
  }
  separable_nchw<T, SumOf>(x, y, g, [&](i64 p, i64 q0, V v) {
    return V(v / (divisor_override ? override_div : V(V::set1(rows_counted[p]) * V::load(cols_counted.data() + q0))));
  }, never);
}

template <class T>
void avg_backward(const T* gy, T* gx, const Geom& g, bool channels_last, bool count_include_pad, int64_t divisor_override) {
  using V = Vec<T>;
  const AvgRule r{count_include_pad, divisor_override};
  if (channels_last) {
    spread_nhwc(gy, gx, g, [&](i64 p, i64 q) {
      i64 div;
      const Window w = avg_window(g, p, q, r, &div);
      return std::pair<Window, T>{w, T(1) / T(div)};
    });
    return;
  }
  const Interior in = column_interior(g);
  for_each_plane(g, g.H * g.W, [&](i64 b) {
    T* plane = gx + b * g.H * g.W;
    std::memset(plane, 0, sizeof(T) * g.H * g.W);
    for (i64 p = 0; p < g.P; ++p) {
      const T* grow = gy + (b * g.P + p) * g.Q;
      auto scalar_at = [&](i64 q) {
        i64 div;
        const Window w = avg_window(g, p, q, r, &div);
        const T v = grow[q] / T(div);
        for (i64 i = w.i0; i < w.i1; ++i)
          for (i64 j = w.j0; j < w.j1; ++j) plane[(w.hstart + i) * g.W + w.wstart + j] += v;
      };
      for (i64 q = 0; q < in.lo; ++q) scalar_at(q);
      i64 div;
      const Window w0 = avg_window(g, p, in.lo, r, &div);
      const V vdiv = V::set1(T(div));
      for (i64 q0 = in.lo; q0 < in.hi; q0 += V::N) {
        const int n = static_cast<int>(std::min<i64>(V::N, in.hi - q0));
        const V v = V::load(grow + q0, n) / vdiv;
        const i64 wstart = q0 * g.sw - g.pw;
        for (i64 i = w0.i0; i < w0.i1; ++i) {
          T* row = plane + (w0.hstart + i) * g.W + wstart;
          for (i64 j = 0; j < g.kw; ++j) pool_simd::add_strided(row + j, g.sw, v, n);
        }
      }
      for (i64 q = in.hi; q < g.Q; ++q) scalar_at(q);
    }
  });
}

// ---------------------------------------------------------------- adaptive windows

// Adaptive pooling whose windows are all alike (H % P == 0 and W % Q == 0, e.g. global pooling)
// is fixed-window pooling with kernel = stride = H / P: the fast row kernels apply.
// Taken where its column loads are cheap (stride <= 2 along W) or the layout is NHWC; wide
// windows (global pooling) go to the lanes-along-the-window kernels instead.
bool adaptive_is_uniform(const Geom& g, bool channels_last) {
  return g.H % g.P == 0 && g.W % g.Q == 0 && (channels_last || g.W / g.Q <= 2);
}
Geom as_fixed(const Geom& g) {
  Geom f = g;
  f.kh = f.sh = g.H / g.P;
  f.kw = f.sw = g.W / g.Q;
  f.ph = f.pw = 0;
  f.dh = f.dw = 1;
  return f;
}

// Max over an irregular NCHW window: lanes run along the window's columns, each lane keeps the
// first max (last NaN) of its columns, then the lanes are merged by value and index.
template <class T>
void max_window_nchw_lanes(const T* plane, const Geom& g, const Window& w, T* out, int64_t* index) {
  using V = Vec<T>;
  const i64 width = w.j1 - w.j0;
  if ((w.i1 - w.i0) * g.W >= exact_limit<T>()) {
    max_window_scalar(plane, g.W, 1, w, out, index);
    return;
  }
  alignas(64) T lane_off[V::N];
  for (int l = 0; l < V::N; ++l) lane_off[l] = T(l);
  const V iota = V::load(lane_off);
  V best = V::set1(neg_inf<T>()), off = V::zero();
  for (i64 i = w.i0; i < w.i1; ++i) {
    const T* row = plane + (w.hstart + i) * g.W + w.wstart;
    for (i64 c0 = 0; c0 < width; c0 += V::N) {
      const int n = static_cast<int>(std::min<i64>(V::N, width - c0));
      const V v = V::load_or(row + c0, n, neg_inf<T>());
      const auto take = takes_max(v, best);
      best = select(take, v, best);
      off = select(take, iota + V::set1(T((i - w.i0) * g.W + c0)), off);
    }
  }
  alignas(64) T vals[V::N], offs[V::N];
  best.store(vals);
  off.store(offs);
  const int lanes = static_cast<int>(std::min<i64>(V::N, width));
  T b = vals[0];
  i64 bo = static_cast<i64>(offs[0]);
  for (int l = 1; l < lanes; ++l) {
    const i64 o = static_cast<i64>(offs[l]);
    const bool nan_v = vals[l] != vals[l], nan_b = b != b;
    const bool take = nan_v ? (!nan_b || o > bo) : (!nan_b && (vals[l] > b || (vals[l] == b && o < bo)));
    if (take) {
      b = vals[l];
      bo = o;
    }
  }
  *out = b;
  if (index) *index = (w.hstart + w.i0) * g.W + w.wstart + bo;
}

// Four row accumulators, so that a wide window (global pooling: 60 rows of 60) is not one chain
// of dependent adds.
template <class T>
T sum_window_nchw_lanes(const T* plane, const Geom& g, const Window& w) {
  using V = Vec<T>;
  const i64 width = w.j1 - w.j0;
  auto add_row = [&](i64 i, V sum) {
    const T* row = plane + (w.hstart + i) * g.W + w.wstart;
    for (i64 c0 = 0; c0 < width; c0 += V::N)
      sum = sum + pool_simd::load_n(row + c0, static_cast<int>(std::min<i64>(V::N, width - c0)), T(0));
    return sum;
  };
  V s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
  i64 i = w.i0;
  if (width < V::N) {  // a narrow window (adaptive 13 -> 6): one partial vector a row, few rows
    for (; i < w.i1; ++i) s0 = s0 + V::load(plane + (w.hstart + i) * g.W + w.wstart, static_cast<int>(width));
    return reduce_add(s0);
  }
  for (; i + 4 <= w.i1; i += 4) {
    s0 = add_row(i, s0);
    s1 = add_row(i + 1, s1);
    s2 = add_row(i + 2, s2);
    s3 = add_row(i + 3, s3);
  }
  for (; i < w.i1; ++i) s0 = add_row(i, s0);
  return reduce_add(V(V(s0 + s1) + V(s2 + s3)));
}

i64 window_area(const Window& w) { return (w.i1 - w.i0) * (w.j1 - w.j0); }

// Narrow adaptive windows on NCHW planes (PSPNet's pyramid, 9x9 -> 2, 3, 6): the per-window path
// (four integer divisions for its bounds, a masked load and a horizontal reduction per window, a
// scalar loop per gradient row) costs several times the sums themselves. These run separably with
// the bounds worked out once per call: per output row p, the element-wise sum of its window's input
// rows (whole rows, vector ops), then each output's columns in that row buffer; the backward spreads
// one output row's shares along a row buffer and adds it to each of the window's input rows.
struct AxisWindows {
  std::vector<i64> begin, end;
};
AxisWindows adaptive_axis(i64 in, i64 out) {
  AxisWindows a{std::vector<i64>(out), std::vector<i64>(out)};
  for (i64 o = 0; o < out; ++o) a.begin[o] = pool::adaptive_begin(o, in, out), a.end[o] = pool::adaptive_end(o, in, out);
  return a;
}
template <class T>
bool adaptive_is_narrow(const Geom& g) {
  if (g.P * g.Q == 1) return false;  // global pooling: one reduction per plane, the lanes path
  i64 widest = 0;
  for (i64 q = 0; q < g.Q; ++q) widest = std::max(widest, pool::adaptive_end(q, g.W, g.Q) - pool::adaptive_begin(q, g.W, g.Q));
  return widest < Vec<T>::N;
}

// Runs plane(b, row buffer of W) over every NCHW plane, threaded (a buffer per thread chunk).
template <class T, class Fn>
void for_each_plane_with_row(const Geom& g, Fn&& plane) {
  fastcnn::parallel_for(g.N * g.C, grain_for(g.H * g.W), [&](i64 begin, i64 end) {
    std::vector<T> row(g.W);
    for (i64 b = begin; b < end; ++b) plane(b, row.data());
  });
}

template <class T>
void adaptive_avg_forward_narrow(const T* x, T* y, const Geom& g) {
  using V = Vec<T>;
  const AxisWindows rows = adaptive_axis(g.H, g.P), cols = adaptive_axis(g.W, g.Q);
  for_each_plane_with_row<T>(g, [&](i64 b, T* sum) {
    const T* plane = x + b * g.H * g.W;
    for (i64 p = 0; p < g.P; ++p) {
      for (i64 c = 0; c < g.W; c += V::N) {
        const int n = static_cast<int>(std::min<i64>(V::N, g.W - c));
        V s = V::zero();
        for (i64 h = rows.begin[p]; h < rows.end[p]; ++h) s = s + V::load(plane + h * g.W + c, n);
        s.store(sum + c, n);
      }
      const i64 rows_p = rows.end[p] - rows.begin[p];
      T* out = y + (b * g.P + p) * g.Q;
      for (i64 q = 0; q < g.Q; ++q) {
        T t = 0;
        for (i64 w = cols.begin[q]; w < cols.end[q]; ++w) t += sum[w];
        out[q] = t / T(rows_p * (cols.end[q] - cols.begin[q]));
      }
    }
  });
}

template <class T>
void adaptive_avg_backward_narrow(const T* gy, T* gx, const Geom& g) {
  using V = Vec<T>;
  const AxisWindows rows = adaptive_axis(g.H, g.P), cols = adaptive_axis(g.W, g.Q);
  for_each_plane_with_row<T>(g, [&](i64 b, T* spread) {
    T* plane = gx + b * g.H * g.W;
    std::memset(plane, 0, sizeof(T) * g.H * g.W);
    for (i64 p = 0; p < g.P; ++p) {
      std::fill(spread, spread + g.W, T(0));
      const i64 rows_p = rows.end[p] - rows.begin[p];
      const T* grow = gy + (b * g.P + p) * g.Q;
      for (i64 q = 0; q < g.Q; ++q) {
        const T share = grow[q] / T(rows_p * (cols.end[q] - cols.begin[q]));
        for (i64 w = cols.begin[q]; w < cols.end[q]; ++w) spread[w] += share;
      }
      for (i64 h = rows.begin[p]; h < rows.end[p]; ++h)
        for (i64 c = 0; c < g.W; c += V::N) {
          const int n = static_cast<int>(std::min<i64>(V::N, g.W - c));
          (V::load(plane + h * g.W + c, n) + V::load(spread + c, n)).store(plane + h * g.W + c, n);
        }
    }
  });
}

template <class T>
void adaptive_max_forward(const T* x, T* y, int64_t* idx, const Geom& g, bool channels_last) {
  if (adaptive_is_uniform(g, channels_last)) return max_forward(x, y, idx, as_fixed(g), channels_last);
  if (channels_last) {
    for_each_output_pixel(g, [&](i64 n, i64 p, i64 q) {
      const i64 o = (n * g.P + p) * g.Q + q;
      if (idx)
        max_pixel_nhwc<T, true>(x + n * g.H * g.W * g.C, y + o * g.C, idx + o * g.C, g, adaptive_window(g, p, q));
      else
        max_pixel_nhwc<T, false>(x + n * g.H * g.W * g.C, y + o * g.C, nullptr, g, adaptive_window(g, p, q));
    });
    return;
  }
  for_each_output_row(g, g.W * pool::ceil_div(g.H, g.P), [&](i64 b, i64 p) {
    for (i64 q = 0; q < g.Q; ++q) {
      const i64 o = (b * g.P + p) * g.Q + q;
      max_window_nchw_lanes(x + b * g.H * g.W, g, adaptive_window(g, p, q), y + o, idx ? idx + o : nullptr);
    }
  });
}

template <class T>
void adaptive_avg_forward(const T* x, T* y, const Geom& g, bool channels_last) {
  if (adaptive_is_uniform(g, channels_last)) return avg_forward(x, y, as_fixed(g), channels_last, true, 0);
  if (channels_last) {
    for_each_output_pixel(g, [&](i64 n, i64 p, i64 q) {
      const Window w = adaptive_window(g, p, q);
      sum_pixel_nhwc(x + n * g.H * g.W * g.C, y + ((n * g.P + p) * g.Q + q) * g.C, g, w, T(window_area(w)));
    });
    return;
  }
  if (adaptive_is_narrow<T>(g)) return adaptive_avg_forward_narrow(x, y, g);
  for_each_output_row(g, g.W * pool::ceil_div(g.H, g.P), [&](i64 b, i64 p) {
    for (i64 q = 0; q < g.Q; ++q) {
      const Window w = adaptive_window(g, p, q);
      y[(b * g.P + p) * g.Q + q] = sum_window_nchw_lanes(x + b * g.H * g.W, g, w) / T(window_area(w));
    }
  });
}

template <class T>
void adaptive_avg_backward(const T* gy, T* gx, const Geom& g, bool channels_last) {
  using V = Vec<T>;
  if (adaptive_is_uniform(g, channels_last)) return avg_backward(gy, gx, as_fixed(g), channels_last, true, 0);
  if (channels_last) {
    spread_nhwc(gy, gx, g, [&](i64 p, i64 q) {
      const Window w = adaptive_window(g, p, q);
      return std::pair<Window, T>{w, T(1) / T(window_area(w))};
    });
    return;
  }
  if (adaptive_is_narrow<T>(g)) return adaptive_avg_backward_narrow(gy, gx, g);
  for_each_plane(g, g.H * g.W, [&](i64 b) {
    T* plane = gx + b * g.H * g.W;
    std::memset(plane, 0, sizeof(T) * g.H * g.W);
    for (i64 p = 0; p < g.P; ++p)
      for (i64 q = 0; q < g.Q; ++q) {
        const Window w = adaptive_window(g, p, q);
        const T share = gy[(b * g.P + p) * g.Q + q] / T(window_area(w));
        const V v = V::set1(share);
        const i64 width = w.j1 - w.j0;
        for (i64 i = w.i0; i < w.i1; ++i) {
          T* row = plane + (w.hstart + i) * g.W + w.wstart;
          i64 c0 = 0;
          for (; c0 + V::N <= width; c0 += V::N) (V::load(row + c0) + v).store(row + c0);
          for (; c0 < width; ++c0) row[c0] += share;  // a narrow tail: masked stores are slow on AMD
        }
      }
  });
}

// ---------------------------------------------------------------- indices: scatter and gather

template <class T>
int64_t index_scatter(const T* src, const int64_t* idx, T* out, const Geom& g, bool channels_last, bool accumulate) {
  const i64 HW = g.H * g.W, PQ = g.P * g.Q;
  std::atomic<int64_t> bad{0};
  auto put = [&](T& dst, T v) { dst = accumulate ? dst + v : v; };
  if (channels_last) {
    // work item: one image's channels [c0, c1), so items never write the same element
    const i64 splits = std::min<i64>(g.C, std::max<i64>(1, (2 * fastcnn::num_threads() + g.N - 1) / g.N));
    fastcnn::parallel_for(g.N * splits, 1, [&](i64 begin, i64 end) {
      int64_t local_bad = 0;
      for (i64 item = begin; item < end; ++item) {
        const i64 n = item / splits, c0 = g.C * (item % splits) / splits, c1 = g.C * (item % splits + 1) / splits;
        T* on = out + n * HW * g.C;
        if (splits == 1)
          std::memset(on, 0, sizeof(T) * HW * g.C);
        else
          for (i64 pos = 0; pos < HW; ++pos) std::memset(on + pos * g.C + c0, 0, sizeof(T) * (c1 - c0));
        for (i64 o = 0; o < PQ; ++o) {
          const i64 at = (n * PQ + o) * g.C;
          for (i64 c = c0; c < c1; ++c) {
            const int64_t k = idx[at + c];
            if (k < 0 || k >= HW) { ++local_bad; continue; }
            put(on[k * g.C + c], src[at + c]);
          }
        }
      }
      bad += local_bad;
    });
    return bad.load();
  }
  for_each_plane(g, HW, [&](i64 b) {
    T* plane = out + b * HW;
    std::memset(plane, 0, sizeof(T) * HW);
    const int64_t* ib = idx + b * PQ;
    const T* sb = src + b * PQ;
    int64_t local_bad = 0;
    for (i64 o = 0; o < PQ; ++o) {
      const int64_t k = ib[o];
      if (k < 0 || k >= HW) { ++local_bad; continue; }
      put(plane[k], sb[o]);
    }
    bad += local_bad;
  });
  return bad.load();
}

template <class T>
int64_t index_gather(const T* src, const int64_t* idx, T* out, const Geom& g, bool channels_last) {
  const i64 HW = g.H * g.W, PQ = g.P * g.Q;
  std::atomic<int64_t> bad{0};
  // Runs of out's memory order that read one src plane (NCHW: a plane's PQ values; NHWC: a pixel's
  // C channels, plane offset c): no per-element divisions to find the plane (SegNet's unpooling
  // backward).
  // element j of a run reads base[k * step + j * lane] (NCHW: step 1, lane 0; NHWC: step C, lane 1)
  const i64 step = channels_last ? g.C : 1, lane = channels_last ? 1 : 0;
  auto gather = [&](const T* base, const int64_t* ib, T* ob, i64 count, int64_t& local_bad) {
    for (i64 j = 0; j < count; ++j) {
      const int64_t k = ib[j];
      if (k < 0 || k >= HW) {
        ++local_bad;
        ob[j] = T(0);
        continue;
      }
      ob[j] = base[k * step + j * lane];
    }
  };
  const i64 runs = channels_last ? g.N * PQ : g.N * g.C, run = channels_last ? g.C : PQ;
  fastcnn::parallel_for(runs, grain_for(run), [&](i64 begin, i64 end) {
    int64_t local_bad = 0;
    for (i64 r = begin; r < end; ++r) {
      const T* base = channels_last ? src + (r / PQ) * HW * g.C : src + r * HW;
      gather(base, idx + r * run, out + r * run, run, local_bad);
    }
    bad += local_bad;
  });
  return bad.load();
}

template <class T>
PoolFns<T> fns() {
  return {&max_forward<T>, &avg_forward<T>, &avg_backward<T>, &adaptive_max_forward<T>, &adaptive_avg_forward<T>,
          &adaptive_avg_backward<T>, &index_scatter<T>, &index_gather<T>};
}

}  // namespace

const PoolKernels& pool_kernels() {
  static const PoolKernels t{fns<float>(), fns<double>()};
  return t;
}

FASTCNN_ISA_NAMESPACE_END
