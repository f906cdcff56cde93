// Pooling kernels of the cuda backend (launchers: fastcnn/backends/cuda/pool.py). Kernel contract
// and semantics: fastcnn/ops/pool.py. Window math is shared with the cpu kernels through
// pool_geometry.cuh.
//
// One thread per element of the tensor a kernel writes (grid-stride loop), so every kernel is
// free of write races except the accumulating index scatter (max-pooling backward: overlapping
// windows may pick the same input), which uses atomicAdd. Backward of average pooling is written
// as a gather over the outputs whose window covers an input element, so it needs no atomics.
// Tensors are addressed through their element strides (NCHW or channels_last alike).
#include "pool_geometry.cuh"

namespace {

using fastcnn::pool::AvgSpan;
using fastcnn::pool::Geom;
using fastcnn::pool::i64;
namespace pg = fastcnn::pool;

struct Strides {
  i64 n, c, h, w;
};

// Logical coordinates (n, c, a, b) of element e of an [N, C, A, B] tensor in NCHW order.
struct Coord {
  i64 n, c, a, b;
};
__device__ __forceinline__ Coord coord(i64 e, i64 C, i64 A, i64 B) {
  Coord r;
  r.b = e % B;
  e /= B;
  r.a = e % A;
  e /= A;
  r.c = e % C;
  r.n = e / C;
  return r;
}
__device__ __forceinline__ i64 offset(const Strides& s, i64 n, i64 c, i64 a, i64 b) {
  return n * s.n + c * s.c + a * s.h + b * s.w;
}

template <class T>
__device__ __forceinline__ T neg_inf();
template <>
__device__ __forceinline__ float neg_inf<float>() { return -__int_as_float(0x7f800000); }
template <>
__device__ __forceinline__ double neg_inf<double>() { return -__longlong_as_double(0x7ff0000000000000LL); }

// torch's rule: take a value if it is greater than the running max, or NaN.
template <class T>
__device__ __forceinline__ bool takes_max(T v, T cur) { return v > cur || v != v; }

// Max of plane (n, c) over rows h0 + i*dh (i < nh) and columns w0 + j*dw (j < nw), scanned in row
// order, and its flat index h*W + w (the window's first position where it has no taken value).
template <class T>
struct WindowMax {
  T value;
  i64 index;
};
template <class T>
__device__ __forceinline__ WindowMax<T> window_max(const T* x, const Strides& xs, i64 n, i64 c, i64 W, i64 h0, i64 nh,
                                                   i64 dh, i64 w0, i64 nw, i64 dw) {
  WindowMax<T> best{neg_inf<T>(), h0 * W + w0};
  for (i64 i = 0; i < nh; ++i) {
    const i64 h = h0 + i * dh;
    for (i64 j = 0; j < nw; ++j) {
      const i64 w = w0 + j * dw;
      const T v = x[offset(xs, n, c, h, w)];
      if (takes_max(v, best.value)) best = {v, h * W + w};
    }
  }
  return best;
}

template <class T>
__device__ void max_pool_forward(const T* x, T* y, long long* idx, Geom g, Strides xs, Strides ys, int with_idx) {
  const i64 total = g.N * g.C * g.P * g.Q;
  FASTCNN_GRID_LOOP(e, total) {
    const Coord o = coord(e, g.C, g.P, g.Q);
    const i64 hs = o.a * g.sh - g.ph, ws = o.b * g.sw - g.pw;
    const i64 i0 = pg::first_tap(hs, g.dh), i1 = pg::last_tap(hs, g.kh, g.dh, g.H);
    const i64 j0 = pg::first_tap(ws, g.dw), j1 = pg::last_tap(ws, g.kw, g.dw, g.W);
    const WindowMax<T> m =
        window_max(x, xs, o.n, o.c, g.W, hs + i0 * g.dh, i1 - i0, g.dh, ws + j0 * g.dw, j1 - j0, g.dw);
    const i64 at = offset(ys, o.n, o.c, o.a, o.b);
    y[at] = m.value;
    if (with_idx) idx[at] = m.index;
  }
}

template <class T>
__device__ void avg_pool_forward(const T* x, T* y, Geom g, Strides xs, Strides ys, int count_include_pad,
                                 long long divisor_override) {
  const i64 total = g.N * g.C * g.P * g.Q;
  FASTCNN_GRID_LOOP(e, total) {
    const Coord o = coord(e, g.C, g.P, g.Q);
    const AvgSpan sh = pg::avg_span(o.a, g.H, g.kh, g.sh, g.ph, count_include_pad != 0);
    const AvgSpan sw = pg::avg_span(o.b, g.W, g.kw, g.sw, g.pw, count_include_pad != 0);
    T sum = 0;
    for (i64 h = sh.begin; h < sh.end; ++h)
      for (i64 w = sw.begin; w < sw.end; ++w) sum += x[offset(xs, o.n, o.c, h, w)];
    const i64 div = divisor_override ? divisor_override : sh.count * sw.count;
    y[offset(ys, o.n, o.c, o.a, o.b)] = sum / T(div);
  }
}

// gx[h, w] = sum of gy[p, q] / divisor(p, q) over the outputs whose window covers (h, w).
template <class T>
__device__ void avg_pool_backward(const T* gy, T* gx, Geom g, Strides gys, Strides gxs, int count_include_pad,
                                  long long divisor_override) {
  const i64 total = g.N * g.C * g.H * g.W;
  FASTCNN_GRID_LOOP(e, total) {
    const Coord c = coord(e, g.C, g.H, g.W);
    // outputs p with p*sh - ph <= h < p*sh - ph + kh
    const i64 p0 = pg::max_i64(0, pg::floor_div(c.a + g.ph - g.kh, g.sh) + 1);
    const i64 p1 = pg::min_i64(g.P, pg::floor_div(c.a + g.ph, g.sh) + 1);
    const i64 q0 = pg::max_i64(0, pg::floor_div(c.b + g.pw - g.kw, g.sw) + 1);
    const i64 q1 = pg::min_i64(g.Q, pg::floor_div(c.b + g.pw, g.sw) + 1);
    T sum = 0;
    for (i64 p = p0; p < p1; ++p) {
      const AvgSpan sh = pg::avg_span(p, g.H, g.kh, g.sh, g.ph, count_include_pad != 0);
      for (i64 q = q0; q < q1; ++q) {
        const AvgSpan sw = pg::avg_span(q, g.W, g.kw, g.sw, g.pw, count_include_pad != 0);
        const i64 div = divisor_override ? divisor_override : sh.count * sw.count;
        sum += gy[offset(gys, c.n, c.c, p, q)] / T(div);
      }
    }
    gx[offset(gxs, c.n, c.c, c.a, c.b)] = sum;
  }
}

template <class T>
__device__ void adaptive_max_forward(const T* x, T* y, long long* idx, Geom g, Strides xs, Strides ys) {
  const i64 total = g.N * g.C * g.P * g.Q;
  FASTCNN_GRID_LOOP(e, total) {
    const Coord o = coord(e, g.C, g.P, g.Q);
    const i64 h0 = pg::adaptive_begin(o.a, g.H, g.P), h1 = pg::adaptive_end(o.a, g.H, g.P);
    const i64 w0 = pg::adaptive_begin(o.b, g.W, g.Q), w1 = pg::adaptive_end(o.b, g.W, g.Q);
    const WindowMax<T> m = window_max(x, xs, o.n, o.c, g.W, h0, h1 - h0, 1, w0, w1 - w0, 1);
    const i64 at = offset(ys, o.n, o.c, o.a, o.b);
    y[at] = m.value;
    idx[at] = m.index;
  }
}

template <class T>
__device__ void adaptive_avg_forward(const T* x, T* y, Geom g, Strides xs, Strides ys) {
  const i64 total = g.N * g.C * g.P * g.Q;
  FASTCNN_GRID_LOOP(e, total) {
    const Coord o = coord(e, g.C, g.P, g.Q);
    const i64 h0 = pg::adaptive_begin(o.a, g.H, g.P), h1 = pg::adaptive_end(o.a, g.H, g.P);
    const i64 w0 = pg::adaptive_begin(o.b, g.W, g.Q), w1 = pg::adaptive_end(o.b, g.W, g.Q);
    T sum = 0;
    for (i64 h = h0; h < h1; ++h)
      for (i64 w = w0; w < w1; ++w) sum += x[offset(xs, o.n, o.c, h, w)];
    y[offset(ys, o.n, o.c, o.a, o.b)] = sum / T((h1 - h0) * (w1 - w0));
  }
}

// gx[h, w] = sum of gy[p, q] / area(p, q) over the adaptive windows covering (h, w).
template <class T>
__device__ void adaptive_avg_backward(const T* gy, T* gx, Geom g, Strides gys, Strides gxs) {
  const i64 total = g.N * g.C * g.H * g.W;
  FASTCNN_GRID_LOOP(e, total) {
    const Coord c = coord(e, g.C, g.H, g.W);
    // candidates: the outputs whose windows may reach (h, w); checked exactly below
    const i64 p0 = (c.a * g.P) / g.H, p1 = pg::min_i64(g.P, ((c.a + 1) * g.P + g.H - 1) / g.H);
    const i64 q0 = (c.b * g.Q) / g.W, q1 = pg::min_i64(g.Q, ((c.b + 1) * g.Q + g.W - 1) / g.W);
    T sum = 0;
    for (i64 p = p0; p < p1; ++p) {
      const i64 h0 = pg::adaptive_begin(p, g.H, g.P), h1 = pg::adaptive_end(p, g.H, g.P);
      if (c.a < h0 || c.a >= h1) continue;
      for (i64 q = q0; q < q1; ++q) {
        const i64 w0 = pg::adaptive_begin(q, g.W, g.Q), w1 = pg::adaptive_end(q, g.W, g.Q);
        if (c.b < w0 || c.b >= w1) continue;
        sum += gy[offset(gys, c.n, c.c, p, q)] / T((h1 - h0) * (w1 - w0));
      }
    }
    gx[offset(gxs, c.n, c.c, c.a, c.b)] = sum;
  }
}

__device__ __forceinline__ void add_atomic(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void add_atomic(double* p, double v) { atomicAdd(p, v); }

// out (zeroed by the launcher) [n, c].flat[idx] (+)= src; g.H x g.W is out's plane, g.P x g.Q src's.
template <class T>
__device__ void index_scatter(const T* src, const long long* idx, T* out, Geom g, Strides ss, Strides os,
                              int accumulate) {
  const i64 total = g.N * g.C * g.P * g.Q;
  FASTCNN_GRID_LOOP(e, total) {
    const Coord o = coord(e, g.C, g.P, g.Q);
    const i64 at = offset(ss, o.n, o.c, o.a, o.b);
    const i64 k = idx[at];
    if (k < 0 || k >= g.H * g.W) continue;  // the ops layer rejects these; never write out of bounds
    T* dst = out + offset(os, o.n, o.c, k / g.W, k % g.W);
    if (accumulate)
      add_atomic(dst, src[at]);
    else
      *dst = src[at];
  }
}

// out[n, c, p, q] = src[n, c].flat[idx[n, c, p, q]]; src plane g.H x g.W.
template <class T>
__device__ void index_gather(const T* src, const long long* idx, T* out, Geom g, Strides ss, Strides os) {
  const i64 total = g.N * g.C * g.P * g.Q;
  FASTCNN_GRID_LOOP(e, total) {
    const Coord o = coord(e, g.C, g.P, g.Q);
    const i64 at = offset(os, o.n, o.c, o.a, o.b);
    const i64 k = idx[at];
    out[at] = (k < 0 || k >= g.H * g.W) ? T(0) : src[offset(ss, o.n, o.c, k / g.W, k % g.W)];
  }
}

__device__ __forceinline__ Geom make_geom(long long N, long long C, long long H, long long W, long long P,
                                          long long Q, long long kh, long long kw, long long sh, long long sw,
                                          long long ph, long long pw, long long dh, long long dw) {
  Geom g;
  g.N = N; g.C = C; g.H = H; g.W = W; g.P = P; g.Q = Q;
  g.kh = kh; g.kw = kw; g.sh = sh; g.sw = sw; g.ph = ph; g.pw = pw; g.dh = dh; g.dw = dw;
  return g;
}
__device__ __forceinline__ Strides make_strides(long long n, long long c, long long h, long long w) {
  Strides s;
  s.n = n; s.c = c; s.h = h; s.w = w;
  return s;
}

}  // namespace

// Every kernel takes the geometry (N, C, H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw) and the element
// strides of its input tensor(s) and output tensor(s), in that order.
#define GEOM_ARGS                                                                                      \
  long long N, long long C, long long H, long long W, long long P, long long Q, long long kh, long long kw, \
      long long sh, long long sw, long long ph, long long pw, long long dh, long long dw
#define GEOM make_geom(N, C, H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw)
#define STRIDE_ARGS(p) long long p##n, long long p##c, long long p##h, long long p##w
#define STRIDES(p) make_strides(p##n, p##c, p##h, p##w)

#define FASTCNN_POOL_KERNELS(T, SUFFIX)                                                                    \
  extern "C" __global__ void max_pool2d_forward_##SUFFIX(const T* x, T* y, long long* idx, GEOM_ARGS,       \
                                                          STRIDE_ARGS(xs), STRIDE_ARGS(ys), int with_idx) {  \
    max_pool_forward<T>(x, y, idx, GEOM, STRIDES(xs), STRIDES(ys), with_idx);                               \
  }                                                                                                        \
  extern "C" __global__ void avg_pool2d_forward_##SUFFIX(const T* x, T* y, GEOM_ARGS, STRIDE_ARGS(xs),     \
                                                          STRIDE_ARGS(ys), int cip, long long div) {        \
    avg_pool_forward<T>(x, y, GEOM, STRIDES(xs), STRIDES(ys), cip, div);                                    \
  }                                                                                                        \
  extern "C" __global__ void avg_pool2d_backward_##SUFFIX(const T* gy, T* gx, GEOM_ARGS, STRIDE_ARGS(gs),  \
                                                           STRIDE_ARGS(xs), int cip, long long div) {       \
    avg_pool_backward<T>(gy, gx, GEOM, STRIDES(gs), STRIDES(xs), cip, div);                                 \
  }                                                                                                        \
  extern "C" __global__ void adaptive_max_pool2d_forward_##SUFFIX(const T* x, T* y, long long* idx,        \
                                                                   GEOM_ARGS, STRIDE_ARGS(xs),              \
                                                                   STRIDE_ARGS(ys)) {                       \
    adaptive_max_forward<T>(x, y, idx, GEOM, STRIDES(xs), STRIDES(ys));                                     \
  }                                                                                                        \
  extern "C" __global__ void adaptive_avg_pool2d_forward_##SUFFIX(const T* x, T* y, GEOM_ARGS,             \
                                                                   STRIDE_ARGS(xs), STRIDE_ARGS(ys)) {      \
    adaptive_avg_forward<T>(x, y, GEOM, STRIDES(xs), STRIDES(ys));                                          \
  }                                                                                                        \
  extern "C" __global__ void adaptive_avg_pool2d_backward_##SUFFIX(const T* gy, T* gx, GEOM_ARGS,          \
                                                                    STRIDE_ARGS(gs), STRIDE_ARGS(xs)) {     \
    adaptive_avg_backward<T>(gy, gx, GEOM, STRIDES(gs), STRIDES(xs));                                       \
  }                                                                                                        \
  extern "C" __global__ void pool_index_scatter_##SUFFIX(const T* src, const long long* idx, T* out,       \
                                                          GEOM_ARGS, STRIDE_ARGS(ss), STRIDE_ARGS(os),      \
                                                          int accumulate) {                                 \
    index_scatter<T>(src, idx, out, GEOM, STRIDES(ss), STRIDES(os), accumulate);                            \
  }                                                                                                        \
  extern "C" __global__ void pool_index_gather_##SUFFIX(const T* src, const long long* idx, T* out,        \
                                                         GEOM_ARGS, STRIDE_ARGS(ss), STRIDE_ARGS(os)) {     \
    index_gather<T>(src, idx, out, GEOM, STRIDES(ss), STRIDES(os));                                         \
  }

FASTCNN_POOL_KERNELS(float, f32)
FASTCNN_POOL_KERNELS(double, f64)
