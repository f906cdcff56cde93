// cpu kernels of the resampling family: interpolate (nearest, bilinear) forward and backward,
// pixel_shuffle / pixel_unshuffle, grid_sample (bilinear; zeros and border padding) forward and
// backward. Coordinate math comes from fastcnn/kernels/cuda/resample_coords.cuh, shared with CUDA.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/simd.h"
#include "common/threads.h"
#include "kernels/resample.h"
#include "resample_coords.cuh"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {

using simd::Vec;

// ---------------------------------------------------------------------------------------------
// Row helpers (vectorised over one contiguous row)

template <class T>
void blend_rows(const T* a, const T* b, T wa, T wb, T* out, int64_t n) {
  using V = Vec<T>;
  const V va = V::set1(wa), vb = V::set1(wb);
  int64_t i = 0;
  for (; i + V::N <= n; i += V::N) fmadd(V::load(a + i), va, V::load(b + i) * vb).store(out + i);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    fmadd(V::load(a + i, rest), va, V::load(b + i, rest) * vb).store(out + i, rest);
  }
}

// out = w * a (first) or out += w * a.
template <class T>
void axpy_row(const T* a, T w, T* out, int64_t n, bool first) {
  using V = Vec<T>;
  const V vw = V::set1(w);
  int64_t i = 0;
  for (; i + V::N <= n; i += V::N)
    (first ? V::load(a + i) * vw : fmadd(V::load(a + i), vw, V::load(out + i))).store(out + i);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    V v = V::load(a + i, rest) * vw;
    if (!first) v = v + V::load(out + i, rest);
    v.store(out + i, rest);
  }
}

// ---------------------------------------------------------------------------------------------
// interpolate

// Forward taps of one axis as flat tables (one entry per output pixel).
template <class T>
struct TapTable {
  std::vector<int64_t> i0, i1;
  std::vector<T> l0, l1;
  explicit TapTable(const resample::Axis<T>& a) : i0(a.out), i1(a.out), l0(a.out), l1(a.out) {
    for (int64_t d = 0; d < a.out; ++d) {
      const resample::Taps<T> t = resample::taps(a, d);
      i0[d] = t.i0; i1[d] = t.i1; l0[d] = t.l0; l1[d] = t.l1;
    }
  }
};

// Transposed taps of one axis (CSR): for input pixel i, the output pixels src[start[i]..start[i+1])
// that read it and their weights. Built from the exact forward taps over the contributor window,
// so the backward pass gathers per input pixel: no scatter, no races.
template <class T>
struct GatherTable {
  std::vector<int64_t> start, src;
  std::vector<T> w;
  explicit GatherTable(const resample::Axis<T>& a) : start(a.in + 1, 0) {
    src.reserve(2 * a.out);
    w.reserve(2 * a.out);
    for (int64_t i = 0; i < a.in; ++i) {
      long long first, last;
      resample::contributor_window(a, i, first, last);
      for (long long d = first; d <= last; ++d) {
        const T wd = resample::tap_weight(a, d, i);
        if (wd != T(0)) { src.push_back(d); w.push_back(wd); }
      }
      start[i + 1] = static_cast<int64_t>(src.size());
    }
  }
};

// One input row resampled along the width into out[Q].
template <class T>
void resample_row(const T* row, const TapTable<T>& tw, bool nearest, T* out, int64_t Q) {
  const int64_t* i0 = tw.i0.data();
  if (nearest) {
    for (int64_t q = 0; q < Q; ++q) out[q] = row[i0[q]];
    return;
  }
  const int64_t* i1 = tw.i1.data();
  const T* l0 = tw.l0.data();
  const T* l1 = tw.l1.data();
  for (int64_t q = 0; q < Q; ++q) out[q] = l0[q] * row[i0[q]] + l1[q] * row[i1[q]];
}

template <class T>
void interpolate_forward(const T* x, T* y, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                         bool nearest, bool align_corners, double scale_h, double scale_w) {
  const TapTable<T> th(resample::make_axis<T>(H, P, nearest, align_corners, scale_h));
  const TapTable<T> tw(resample::make_axis<T>(W, Q, nearest, align_corners, scale_w));
  // Width first, then a vectorised blend of two width-resampled rows per output row; the two most
  // recent width-resampled rows are cached, so an upsampled input row is resampled once, not per
  // output row that reads it.
  parallel_for(planes * P, std::max<int64_t>(1, 16384 / std::max<int64_t>(Q, 1)), [&](int64_t begin, int64_t end) {
    std::vector<T> buf(2 * Q);
    T* slot[2] = {buf.data(), buf.data() + Q};
    int64_t key[2] = {-1, -1};
    auto fetch = [&](int64_t k, int64_t keep) -> const T* {
      if (key[0] == k) return slot[0];
      if (key[1] == k) return slot[1];
      const int s = key[0] == keep ? 1 : 0;
      resample_row(x + k * W, tw, nearest, slot[s], Q);
      key[s] = k;
      return slot[s];
    };
    for (int64_t r = begin; r < end; ++r) {
      const int64_t plane = r / P, p = r % P;
      const int64_t k0 = plane * H + th.i0[p], k1 = plane * H + th.i1[p];
      T* out = y + r * Q;
      const T* r0 = fetch(k0, k1);
      if (th.l1[p] == T(0)) {
        if (th.l0[p] == T(1)) std::memcpy(out, r0, sizeof(T) * Q);
        else axpy_row(r0, th.l0[p], out, Q, true);
        continue;
      }
      const T* r1 = fetch(k1, k0);
      blend_rows(r0, r1, th.l0[p], th.l1[p], out, Q);
    }
  });
}

template <class T>
void interpolate_backward(const T* gy, T* gx, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                          bool nearest, bool align_corners, double scale_h, double scale_w) {
  const GatherTable<T> gh(resample::make_axis<T>(H, P, nearest, align_corners, scale_h));
  const GatherTable<T> gw(resample::make_axis<T>(W, Q, nearest, align_corners, scale_w));
  // Each (plane, input row) is one work item that writes only its own gx row: the height taps
  // are gathered into a row buffer (vectorised over the width), then the width taps per input pixel.
  parallel_for(planes * H, std::max<int64_t>(1, 8192 / std::max<int64_t>(Q, 1)), [&](int64_t begin, int64_t end) {
    std::vector<T> acc(Q);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t plane = r / H, h = r % H;
      T* out = gx + r * W;
      const int64_t e0 = gh.start[h], e1 = gh.start[h + 1];
      if (e0 == e1) {
        std::fill(out, out + W, T(0));
        continue;
      }
      for (int64_t e = e0; e < e1; ++e) axpy_row(gy + (plane * P + gh.src[e]) * Q, gh.w[e], acc.data(), Q, e == e0);
      for (int64_t w = 0; w < W; ++w) {
        T s = T(0);
        for (int64_t e = gw.start[w]; e < gw.start[w + 1]; ++e) s += gw.w[e] * acc[gw.src[e]];
        out[w] = s;
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// pixel_shuffle / pixel_unshuffle: space[n, c, h*r + i, w*r + j] <-> depth[n, c*r*r + i*r + j, h, w].
// One work item is one row of the space tensor; it interleaves (or de-interleaves) r depth rows.

// (De)interleaves one space row with its r depth rows; R > 0 fixes r at compile time so the
// compiler turns the loop into vector shuffles (r = 2, 3, 4 are the common factors).
template <class T, bool kToSpace, int R>
void shuffle_row(const T* src, T* dst, int64_t space_off, int64_t depth_off, int64_t plane, int64_t W, int64_t r) {
  const int64_t rr = R > 0 ? R : r;
  for (int64_t w = 0; w < W; ++w) {
    for (int64_t j = 0; j < rr; ++j) {
      if constexpr (kToSpace) dst[space_off + w * rr + j] = src[depth_off + j * plane + w];
      else dst[depth_off + j * plane + w] = src[space_off + w * rr + j];
    }
  }
}

template <class T, bool kToSpace, int R>
void shuffle_rows(const T* src, T* dst, int64_t N, int64_t C, int64_t H, int64_t W, int64_t r) {
  const int64_t Ws = W * r, rows = N * C * H * r, plane = H * W;
  parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(Ws, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t i = row % r, h = (row / r) % H, nc = row / (r * H);  // nc = n*C + c
      // depth channel of (i, j) is nc*r*r + i*r + j: the r depth rows of this space row are one
      // depth plane apart.
      const int64_t depth_off = ((nc * r * r + i * r) * H + h) * W;
      shuffle_row<T, kToSpace, R>(src, dst, row * Ws, depth_off, plane, W, r);
    }
  });
}

template <class T, bool kToSpace>
void shuffle_dispatch(const T* src, T* dst, int64_t N, int64_t C, int64_t H, int64_t W, int64_t r) {
  switch (r) {
    case 2: return shuffle_rows<T, kToSpace, 2>(src, dst, N, C, H, W, r);
    case 3: return shuffle_rows<T, kToSpace, 3>(src, dst, N, C, H, W, r);
    case 4: return shuffle_rows<T, kToSpace, 4>(src, dst, N, C, H, W, r);
    default: return shuffle_rows<T, kToSpace, 0>(src, dst, N, C, H, W, r);
  }
}

template <class T>
void pixel_shuffle(const T* src, T* dst, int64_t N, int64_t C, int64_t H, int64_t W, int64_t r, bool to_space) {
  if (to_space) shuffle_dispatch<T, true>(src, dst, N, C, H, W, r);
  else shuffle_dispatch<T, false>(src, dst, N, C, H, W, r);
}

// ---------------------------------------------------------------------------------------------
// grid_sample: four taps per grid point (nearest: tap 0 alone, weight 1); out-of-range taps read
// zero (their offset is set to 0 and their weight to 0, so the bilinear loops have no branches).

template <class T>
struct GridTaps {
  int64_t off[4];  // (y0,x0) (y0,x0+1) (y0+1,x0) (y0+1,x0+1) within a plane
  T w[4];
  bool valid[4];
  T fx, fy, dsx, dsy;
};

template <class T>
GridTaps<T> grid_taps(const T* g, int64_t H, int64_t W, int padding, bool align_corners, bool nearest) {
  GridTaps<T> t;
  const T ix = resample::grid_source(g[0], W, align_corners, padding, &t.dsx);
  const T iy = resample::grid_source(g[1], H, align_corners, padding, &t.dsy);
  const resample::GridCorner<T> cr = resample::grid_corner(ix, iy, nearest);
  t.fx = cr.fx;
  t.fy = cr.fy;
  const T wts[4] = {(1 - t.fx) * (1 - t.fy), t.fx * (1 - t.fy), (1 - t.fx) * t.fy, t.fx * t.fy};
  for (int k = 0; k < 4; ++k) {
    const T xx = cr.x0 + T(k & 1), yy = cr.y0 + T(k >> 1);
    // false for NaN coordinates
    t.valid[k] = (k == 0 || !nearest) && xx >= 0 && xx < T(W) && yy >= 0 && yy < T(H);
    t.off[k] = t.valid[k] ? static_cast<int64_t>(yy) * W + static_cast<int64_t>(xx) : 0;
    t.w[k] = t.valid[k] ? wts[k] : T(0);
  }
  return t;
}

template <class T>
void grid_sample_forward(const T* x, const T* grid, T* y, int64_t N, int64_t C, int64_t H, int64_t W,
                         int64_t P, int64_t Q, int padding, bool align_corners, bool nearest) {
  // Work item: one output row of grid points for one image; its taps are computed once and reused
  // for every channel.
  parallel_for(N * P, 1, [&](int64_t begin, int64_t end) {
    std::vector<GridTaps<T>> taps(Q);
    for (int64_t np = begin; np < end; ++np) {
      const int64_t n = np / P, p = np % P;
      for (int64_t q = 0; q < Q; ++q) taps[q] = grid_taps(grid + (np * Q + q) * 2, H, W, padding, align_corners, nearest);
      for (int64_t c = 0; c < C; ++c) {
        const T* xp = x + (n * C + c) * H * W;
        T* yr = y + ((n * C + c) * P + p) * Q;
        if (nearest) {  // no zero-weight products: a non-finite pixel elsewhere must not leak in
          for (int64_t q = 0; q < Q; ++q) yr[q] = taps[q].valid[0] ? xp[taps[q].off[0]] : T(0);
          continue;
        }
        for (int64_t q = 0; q < Q; ++q) {
          const GridTaps<T>& t = taps[q];
          yr[q] = t.w[0] * xp[t.off[0]] + t.w[1] * xp[t.off[1]] + t.w[2] * xp[t.off[2]] + t.w[3] * xp[t.off[3]];
        }
      }
    }
  });
}

template <class T>
void grid_sample_backward(const T* gy, const T* x, const T* grid, T* gx, T* ggrid, int64_t N, int64_t C,
                          int64_t H, int64_t W, int64_t P, int64_t Q, int padding, bool align_corners,
                          bool nearest) {
  // The input gradient scatters into gx[n, c]; a work item owns one image and a block of its
  // channels, so no two threads write the same gx element. With fewer images than threads the
  // channels are split, and each block keeps a private partial grid gradient, summed at the end.
  const int64_t nt = num_threads();
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(C, (nt + N - 1) / N));
  const int64_t points = N * P * Q;
  std::vector<T> partial(ggrid && blocks > 1 ? blocks * points * 2 : 0);
  if (gx) std::fill(gx, gx + N * C * H * W, T(0));
  parallel_for(N * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<GridTaps<T>> taps(Q);
    std::vector<T> gix(Q), giy(Q);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / blocks, b = item % blocks;
      const int64_t c0 = C * b / blocks, c1 = C * (b + 1) / blocks;
      T* gg = ggrid ? (blocks > 1 ? partial.data() + b * points * 2 : ggrid) : nullptr;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t np = n * P + p;
        for (int64_t q = 0; q < Q; ++q) taps[q] = grid_taps(grid + (np * Q + q) * 2, H, W, padding, align_corners, nearest);
        std::fill(gix.begin(), gix.end(), T(0));
        std::fill(giy.begin(), giy.end(), T(0));
        for (int64_t c = c0; c < c1; ++c) {
          const T* gr = gy + ((n * C + c) * P + p) * Q;
          if (gx) {
            T* gxp = gx + (n * C + c) * H * W;
            for (int64_t q = 0; q < Q; ++q) {
              const GridTaps<T>& t = taps[q];
              if (nearest) {
                if (t.valid[0]) gxp[t.off[0]] += gr[q];
              } else {
                for (int k = 0; k < 4; ++k) gxp[t.off[k]] += t.w[k] * gr[q];
              }
            }
          }
          if (gg && !nearest) {  // nearest: zero grid gradient, as torch
            const T* xp = x + (n * C + c) * H * W;
            for (int64_t q = 0; q < Q; ++q) {
              const GridTaps<T>& t = taps[q];
              T v[4];
              for (int k = 0; k < 4; ++k) v[k] = t.valid[k] ? xp[t.off[k]] : T(0);
              gix[q] += gr[q] * ((v[1] - v[0]) * (1 - t.fy) + (v[3] - v[2]) * t.fy);
              giy[q] += gr[q] * ((v[2] - v[0]) * (1 - t.fx) + (v[3] - v[1]) * t.fx);
            }
          }
        }
        if (gg) {
          for (int64_t q = 0; q < Q; ++q) {
            gg[(np * Q + q) * 2] = gix[q] * taps[q].dsx;
            gg[(np * Q + q) * 2 + 1] = giy[q] * taps[q].dsy;
          }
        }
      }
    }
  });
  if (ggrid && blocks > 1) {
    parallel_for(points * 2, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T s = T(0);
        for (int64_t b = 0; b < blocks; ++b) s += partial[b * points * 2 + i];
        ggrid[i] = s;
      }
    });
  }
}

template <class T>
ResampleOps<T> make_ops() {
  return ResampleOps<T>{&interpolate_forward<T>, &interpolate_backward<T>, &pixel_shuffle<T>,
                        &grid_sample_forward<T>, &grid_sample_backward<T>};
}

}  // namespace

const ResampleKernels& resample_kernels() {
  static const ResampleKernels t{make_ops<float>(), make_ops<double>()};
  return t;
}

FASTCNN_ISA_NAMESPACE_END
