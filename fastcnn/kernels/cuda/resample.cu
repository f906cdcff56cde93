// CUDA kernels of the resampling family (signatures in fastcnn/ops/resample.py; launchers in
// fastcnn/backends/cuda/resample.py). Coordinate math: resample_coords.cuh, shared with the cpu
// kernels. Every kernel is a grid-stride loop (FASTCNN_GRID_LOOP) over 64-bit indices; one instantiation per dtype,
// exported as <name>_f32 / <name>_f64.
//
//   interpolate_forward   one thread per output pixel
//   interpolate_backward  one thread per input pixel, gathering over its contributor window (no atomics)
//   pixel_shuffle         one thread per element of the space tensor [N, C, H*r, W*r]
//   grid_sample_forward   one thread per output pixel
//   grid_sample_backward  one thread per grid point, looping over channels: grid gradient in registers,
//                         input gradient with atomicAdd (grid points may share input pixels)
#include "resample_coords.cuh"

namespace {

using fastcnn::resample::Axis;
using fastcnn::resample::Taps;
using fastcnn::resample::contributor_window;
using fastcnn::resample::grid_source;
using fastcnn::resample::make_axis;
using fastcnn::resample::tap_weight;
using fastcnn::resample::taps;

// An interpolation's geometry: both directions take the same launch arguments (FASTCNN_INTERP_ARGS).
template <class T>
struct Interp {
  long long planes;
  Axis<T> h, w;  // H -> P rows, W -> Q columns
};

template <class T>
__device__ void interpolate_forward(const T* __restrict__ x, T* __restrict__ y, const Interp<T> g) {
  const Axis<T>&ah = g.h, &aw = g.w;
  const long long H = ah.in, W = aw.in, P = ah.out, Q = aw.out, total = g.planes * P * Q;
  FASTCNN_GRID_LOOP(e, total) {
    const long long q = e % Q, p = (e / Q) % P, plane = e / (P * Q);
    const Taps<T> th = taps(ah, p), tw = taps(aw, q);
    const T* base = x + plane * H * W;
    const T* r0 = base + th.i0 * W;
    T v = tw.l1 == T(0) ? r0[tw.i0] : tw.l0 * r0[tw.i0] + tw.l1 * r0[tw.i1];
    if (th.l1 != T(0)) {
      const T* r1 = base + th.i1 * W;
      const T v1 = tw.l1 == T(0) ? r1[tw.i0] : tw.l0 * r1[tw.i0] + tw.l1 * r1[tw.i1];
      v = th.l0 * v + th.l1 * v1;
    } else if (th.l0 != T(1)) {
      v = th.l0 * v;
    }
    y[e] = v;
  }
}

template <class T>
__device__ void interpolate_backward(const T* __restrict__ gy, T* __restrict__ gx, const Interp<T> g) {
  const Axis<T>&ah = g.h, &aw = g.w;
  const long long H = ah.in, W = aw.in, P = ah.out, Q = aw.out, total = g.planes * H * W;
  FASTCNN_GRID_LOOP(e, total) {
    const long long w = e % W, h = (e / W) % H, plane = e / (H * W);
    long long p0, p1, q0, q1;
    contributor_window(ah, h, p0, p1);
    contributor_window(aw, w, q0, q1);
    const T* gp = gy + plane * P * Q;
    T acc = T(0);
    for (long long p = p0; p <= p1; ++p) {
      const T wh = tap_weight(ah, p, h);
      if (wh == T(0)) continue;
      T row = T(0);
      for (long long q = q0; q <= q1; ++q) {
        const T ww = tap_weight(aw, q, w);
        if (ww != T(0)) row += ww * gp[p * Q + q];
      }
      acc += wh * row;
    }
    gx[e] = acc;
  }
}

template <class T>
__device__ void pixel_shuffle(const T* __restrict__ src, T* __restrict__ dst, long long N, long long C, long long H,
                              long long W, long long r, int to_space) {
  const long long Ws = W * r, Hs = H * r, total = N * C * Hs * Ws;
  FASTCNN_GRID_LOOP(e, total) {
    const long long ws = e % Ws, hs = (e / Ws) % Hs, nc = e / (Ws * Hs);
    const long long depth = ((nc * r * r + (hs % r) * r + ws % r) * H + hs / r) * W + ws / r;
    if (to_space) dst[e] = src[depth];
    else dst[depth] = src[e];
  }
}

// Taps of one grid point (nearest: tap 0 alone, weight 1); out-of-range taps are marked invalid
// (read as zero).
template <class T>
struct GridTaps {
  long long off[4];
  bool valid[4];
  T fx, fy, dsx, dsy;
};

template <class T>
__device__ inline GridTaps<T> grid_taps(const T* g, long long H, long long W, int padding, bool align,
                                        bool nearest) {
  GridTaps<T> t;
  const T ix = grid_source(g[0], W, align, padding, &t.dsx);
  const T iy = grid_source(g[1], H, align, padding, &t.dsy);
  const fastcnn::resample::GridCorner<T> cr = fastcnn::resample::grid_corner(ix, iy, nearest);
  t.fx = cr.fx;
  t.fy = cr.fy;
  for (int k = 0; k < 4; ++k) {
    const T xx = cr.x0 + T(k & 1), yy = cr.y0 + T(k >> 1);
    t.valid[k] = (k == 0 || !nearest) && xx >= T(0) && xx < T(W) && yy >= T(0) && yy < T(H);
    t.off[k] = t.valid[k] ? (long long)yy * W + (long long)xx : 0;
  }
  return t;
}

template <class T>
__device__ void grid_sample_forward(const T* __restrict__ x, const T* __restrict__ grid, T* __restrict__ y,
                                    long long N, long long C, long long H, long long W, long long P, long long Q,
                                    int padding, int align, int nearest) {
  const long long total = N * C * P * Q;
  FASTCNN_GRID_LOOP(e, total) {
    const long long pq = e % (P * Q), c = (e / (P * Q)) % C, n = e / (C * P * Q);
    const GridTaps<T> t = grid_taps(grid + (n * P * Q + pq) * 2, H, W, padding, align != 0, nearest != 0);
    const T* xp = x + (n * C + c) * H * W;
    const T w[4] = {(T(1) - t.fx) * (T(1) - t.fy), t.fx * (T(1) - t.fy), (T(1) - t.fx) * t.fy, t.fx * t.fy};
    T v = T(0);
    for (int k = 0; k < 4; ++k)
      if (t.valid[k]) v += w[k] * xp[t.off[k]];
    y[e] = v;
  }
}

template <class T>
__device__ void grid_sample_backward(const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ grid,
                                     T* __restrict__ gx, T* __restrict__ ggrid, long long N, long long C, long long H,
                                     long long W, long long P, long long Q, int padding, int align,
                                     int nearest) {
  const long long points = N * P * Q;
  FASTCNN_GRID_LOOP(pt, points) {
    const long long n = pt / (P * Q), pq = pt % (P * Q);
    const GridTaps<T> t = grid_taps(grid + pt * 2, H, W, padding, align != 0, nearest != 0);
    const T w[4] = {(T(1) - t.fx) * (T(1) - t.fy), t.fx * (T(1) - t.fy), (T(1) - t.fx) * t.fy, t.fx * t.fy};
    T gix = T(0), giy = T(0);
    for (long long c = 0; c < C; ++c) {
      const T g = gy[(n * C + c) * P * Q + pq];
      const long long plane = (n * C + c) * H * W;
      if (gx)
        for (int k = 0; k < 4; ++k)
          if (t.valid[k]) atomicAdd(gx + plane + t.off[k], w[k] * g);
      if (ggrid && !nearest) {  // nearest: zero grid gradient, as torch
        T v[4];
        for (int k = 0; k < 4; ++k) v[k] = t.valid[k] ? x[plane + t.off[k]] : T(0);
        gix += g * ((v[1] - v[0]) * (T(1) - t.fy) + (v[3] - v[2]) * t.fy);
        giy += g * ((v[2] - v[0]) * (T(1) - t.fx) + (v[3] - v[1]) * t.fx);
      }
    }
    if (ggrid) {
      ggrid[pt * 2] = gix * t.dsx;
      ggrid[pt * 2 + 1] = giy * t.dsy;
    }
  }
}

}  // namespace

#define FASTCNN_INTERP_ARGS                                                                                      \
  long long planes, long long H, long long W, long long P, long long Q, int nearest, int align, double sh, double sw
#define FASTCNN_INTERP(T)                                                                                        \
  Interp<T> {                                                                                                    \
    planes, make_axis<T>(H, P, nearest != 0, align != 0, sh), make_axis<T>(W, Q, nearest != 0, align != 0, sw)   \
  }

#define FASTCNN_RESAMPLE_EXPORT(T, sfx)                                                                          \
  extern "C" __global__ void interpolate_forward_##sfx(const T* x, T* y, FASTCNN_INTERP_ARGS) {                  \
    interpolate_forward<T>(x, y, FASTCNN_INTERP(T));                                                             \
  }                                                                                                              \
  extern "C" __global__ void interpolate_backward_##sfx(const T* gy, T* gx, FASTCNN_INTERP_ARGS) {               \
    interpolate_backward<T>(gy, gx, FASTCNN_INTERP(T));                                                          \
  }                                                                                                              \
  extern "C" __global__ void pixel_shuffle_##sfx(const T* src, T* dst, long long N, long long C, long long H,    \
                                                 long long W, long long r, int to_space) {                       \
    pixel_shuffle<T>(src, dst, N, C, H, W, r, to_space);                                                         \
  }                                                                                                              \
  extern "C" __global__ void grid_sample_forward_##sfx(const T* x, const T* grid, T* y, long long N, long long C, \
                                                       long long H, long long W, long long P, long long Q,       \
                                                       int padding, int align, int nearest) {                    \
    grid_sample_forward<T>(x, grid, y, N, C, H, W, P, Q, padding, align, nearest);                               \
  }                                                                                                              \
  extern "C" __global__ void grid_sample_backward_##sfx(const T* gy, const T* x, const T* grid, T* gx, T* ggrid, \
                                                        long long N, long long C, long long H, long long W,      \
                                                        long long P, long long Q, int padding, int align,        \
                                                        int nearest) {                                           \
    grid_sample_backward<T>(gy, x, grid, gx, ggrid, N, C, H, W, P, Q, padding, align, nearest);                  \
  }

FASTCNN_RESAMPLE_EXPORT(float, f32)
FASTCNN_RESAMPLE_EXPORT(double, f64)
