// Winograd convolution F(m x m, 3x3), m = 4 or 6, on the cpu backend, compiled once per ISA (see setup.py).
//
// The outputs are cut into m x m tiles; tile t reads the (m+2) x (m+2) input patch at its origin - pad
// (zero outside the image). With the (m+2)^2 transform points p = (i, j):
//   1. filter transform, once per call: U[p][k][c] = (G g_kc G^T)[p]   (in double, rounded once);
//   2. per chunk of tiles: input transform V[p][c][t] = (B^T d_tc B)[p], L tiles per vector
//      (lane l = tile l, as the FFT convolution does, so the transforms are plain vector adds);
//   3. the channel reduction, one GEMM per (point, group) on fastcnn's GEMM:
//      M[p][k][t] = sum_c U[p][k][c] V[p][c][t]   ([K/g x C/g] x [C/g x tiles]);
//   4. output transform y_tile = A^T M_t A, + bias, activation, cropped into y.
// Where the filter-domain values U and one block's transforms fit in a core's L2 (the 64-channel
// layers), forward_fused runs steps 2-4 per block of tile-vectors in one thread, so V and
// M never leave that core's caches; where the tiles are few and the channels many (PSPNet's head),
// forward_few_tiles makes every tile one GEMM's columns and chunks over kernels and channels; otherwise
// forward_chunked runs each step over a chunk of tiles, threads splitting (tile-vector, channel) items
// in the transforms and (point, group) GEMMs.
// Everything but the 1-D transforms (struct Wino<m>) is shared by the two tile sizes; the weight
// gradient is F(4x4) only.
// Error bound: docs/algo-winograd.md (the transforms below are written so that every output is a
// combination with at most the roundings counted there).
#include "kernels/conv_winograd.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "common/activation_math.h"
#include "common/simd.h"
#include "common/threads.h"
#include "kernels/conv_fft_transform.h"
#include "kernels/conv_winograd_lanes.h"
#include "kernels/conv_workspace.h"
#include "kernels/gemm.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {

using simd::Vec;
using fft::TileGrid;
using fft::TileRef;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The 1-D transforms of F(m x m, 3x3), m = kOut, on patches of kIn = m + 2: input_1d (o = B^T d, stride
// `st` in and out), output_1d (o = A^T m, strides si / so) and filter_1d (o = G g, in double: the
// filter is transformed once, then rounded once). Every transform below is written so that each
// output is at most the number of roundings deep that docs/algo-winograd.md's bound counts.
template <int M>
struct Wino;

// F(4x4, 3x3), Lavin & Gray's points 0, +-1, +-2, infinity:
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
template <>
struct Wino<4> {
  static constexpr int kOut = 4, kIn = 6;
  template <class V>
  static void input_1d(const V* d, int st, V* o) {
    const V m4 = V::set1(-4), m5 = V::set1(-5), p4 = V::set1(4), p2 = V::set1(2);
    const V d0 = d[0], d1 = d[st], d2 = d[2 * st], d3 = d[3 * st], d4 = d[4 * st], d5 = d[5 * st];
    const V t0 = fmadd(m4, d2, d4), t1 = fmadd(m4, d1, d3);  // d4 - 4 d2, d3 - 4 d1
    const V t2 = d4 - d2, t3 = d3 - d1;
    o[0] = fmadd(p4, d0, fmadd(m5, d2, d4));
    o[st] = t0 + t1;
    o[2 * st] = t0 - t1;
    o[3 * st] = fmadd(p2, t3, t2);
    o[4 * st] = t2 - p2 * t3;
    o[5 * st] = fmadd(p4, d1, fmadd(m5, d3, d5));
  }
  template <class V>
  static void output_1d(const V* m, int si, V* o, int so) {
    const V a = m[si] + m[2 * si], b = m[si] - m[2 * si], c = m[3 * si] + m[4 * si], d = m[3 * si] - m[4 * si];
    o[0] = m[0] + a + c;
    o[so] = fmadd(V::set1(2), d, b);
    o[2 * so] = fmadd(V::set1(4), c, a);
    o[3 * so] = fmadd(V::set1(8), d, b) + m[5 * si];
  }
  template <class D>  // Vec<double>: the filter transform, by rounded reciprocals (no divisions)
  static void filter_1d(const D* g, int st, D* o, int so) {
    const D g0 = g[0], g1 = g[st], g2 = g[2 * st];
    const D r6 = D::set1(1.0 / 6), r24g0 = D::set1(1.0 / 24) * g0, r12g1 = D::set1(1.0 / 12) * g1;
    o[0] = D::set1(0.25) * g0;
    o[so] = D::set1(-1.0 / 6) * (g0 + g1 + g2);
    o[2 * so] = D::set1(-1.0 / 6) * (g0 - g1 + g2);
    o[3 * so] = fmadd(r6, g2, r24g0 + r12g1);
    o[4 * so] = fmadd(r6, g2, r24g0 - r12g1);
    o[5 * so] = g2;
  }
};

// F(6x6, 3x3), points 0, +-1, +-1/2, +-2, infinity (the matrices of docs/algo-winograd.md):
//   B^T = [1 0 -21/4 0 21/4 0 -1 0; 0 1 1 -17/4 -17/4 1 1 0; 0 -1 1 17/4 -17/4 -1 1 0;
//          0 1/2 1/4 -5/2 -5/4 2 1 0; 0 -1/2 1/4 5/2 -5/4 -2 1 0; 0 2 4 -5/2 -5 1/2 1 0;
//          0 -2 4 5/2 -5 -1/2 1 0; 0 -1 0 21/4 0 -21/4 0 1]
//   G   = [1 0 0; -2/9 -2/9 -2/9; -2/9 2/9 -2/9; 1/90 1/45 2/45; 1/90 -1/45 2/45;
//          32/45 16/45 8/45; 32/45 -16/45 8/45; 0 0 1]
//   A^T = [1 1 1 1 1 1 1 0; 0 1 -1 2 -2 1/2 -1/2 0; 0 1 1 4 4 1/4 1/4 0; 0 1 -1 8 -8 1/8 -1/8 0;
//          0 1 1 16 16 1/16 1/16 0; 0 1 -1 32 -32 1/32 -1/32 1]
// All coefficients of B^T and A^T are exact in binary (quarters, powers of two); each 1-D input output
// is at most 3 roundings deep (products inside FMAs do not round), each output one at most 4.
template <>
struct Wino<6> {
  static constexpr int kOut = 6, kIn = 8;
  template <class V>
  static void input_1d(const V* d, int st, V* o) {
    const V d0 = d[0], d1 = d[st], d2 = d[2 * st], d3 = d[3 * st], d4 = d[4 * st], d5 = d[5 * st],
            d6 = d[6 * st], d7 = d[7 * st];
    const V c525 = V::set1(5.25), m425 = V::set1(-4.25), m125 = V::set1(-1.25), m25 = V::set1(-2.5);
    o[0] = fmadd(c525, d4 - d2, d0 - d6);
    o[7 * st] = fmadd(c525, d3 - d5, d7 - d1);
    V t1 = fmadd(m425, d4, d2 + d6), t2 = fmadd(m425, d3, d1 + d5);
    o[st] = t1 + t2;
    o[2 * st] = t1 - t2;
    t1 = fmadd(m125, d4, fmadd(V::set1(0.25), d2, d6));
    t2 = fmadd(V::set1(0.5), d1, fmadd(m25, d3, V::set1(2) * d5));
    o[3 * st] = t1 + t2;
    o[4 * st] = t1 - t2;
    t1 = fmadd(V::set1(4), fmadd(m125, d4, d2), d6);
    t2 = fmadd(V::set1(2), d1, fmadd(m25, d3, V::set1(0.5) * d5));
    o[5 * st] = t1 + t2;
    o[6 * st] = t1 - t2;
  }
  template <class V>
  static void output_1d(const V* m, int si, V* o, int so) {
    const V a1 = m[si] + m[2 * si], b1 = m[si] - m[2 * si], a2 = m[3 * si] + m[4 * si], b2 = m[3 * si] - m[4 * si],
            a3 = m[5 * si] + m[6 * si], b3 = m[5 * si] - m[6 * si];
    o[0] = m[0] + a1 + a2 + a3;
    o[so] = fmadd(V::set1(0.5), b3, fmadd(V::set1(2), b2, b1));
    o[2 * so] = fmadd(V::set1(0.25), a3, fmadd(V::set1(4), a2, a1));
    o[3 * so] = fmadd(V::set1(0.125), b3, fmadd(V::set1(8), b2, b1));
    o[4 * so] = fmadd(V::set1(0.0625), a3, fmadd(V::set1(16), a2, a1));
    o[5 * so] = fmadd(V::set1(0.03125), b3, fmadd(V::set1(32), b2, b1)) + m[7 * si];
  }
  template <class D>
  static void filter_1d(const D* g, int st, D* o, int so) {
    const D g0 = g[0], g1 = g[st], g2 = g[2 * st];
    const D two = D::set1(2), four = D::set1(4), e = fmadd(four, g2, g0), f = fmadd(four, g0, g2);
    o[0] = g0;
    o[so] = D::set1(-2.0 / 9) * (g0 + g1 + g2);
    o[2 * so] = D::set1(-2.0 / 9) * (g0 - g1 + g2);
    o[3 * so] = D::set1(1.0 / 90) * fmadd(two, g1, e);
    o[4 * so] = D::set1(1.0 / 90) * fmadd(D::set1(-2), g1, e);
    o[5 * so] = D::set1(8.0 / 45) * fmadd(two, g1, f);
    o[6 * so] = D::set1(8.0 / 45) * fmadd(D::set1(-2), g1, f);
    o[7 * so] = g2;
  }
};

// v = B^T d B of one kIn x kIn patch per lane (d, v: kIn^2 vectors, row-major).
template <class W, class V>
inline void input_2d(const V* d, V* v) {
  constexpr int n = W::kIn;
  V t[n * n];
  for (int j = 0; j < n; ++j) W::input_1d(d + j, n, t + j);            // columns: B^T d
  for (int i = 0; i < n; ++i) W::input_1d(t + n * i, 1, v + n * i);  // rows: (B^T d) B
}

// o = A^T m A (m: kIn^2 vectors, o: kOut^2, row-major).
template <class W, class V>
inline void output_2d(const V* m, V* o) {
  constexpr int n = W::kIn, r = W::kOut;
  V t[r * n];
  for (int j = 0; j < n; ++j) W::output_1d(m + j, n, t + j, n);          // A^T M     (kOut x kIn)
  for (int i = 0; i < r; ++i) W::output_1d(t + n * i, 1, o + r * i, 1);  // (A^T M) A (kOut x kOut)
}

// The filter-domain values for the effective kernels (as given, or flipped and channel-transposed) of
// the kernels [k0, k0 + nk) and the channels [c0, c0 + nc) of their group: U[p][k - k0][c - c0] (rows
// of nc channels, for fastcnn's GEMM), or with k_inner (every kernel and channel) U[p][g][c][k % (K/g)]
// (rows of K/g kernels, the broadcasts of forward_fused's block GEMM). Either way filter i of the
// range (in that order) is U[p][i]: Vec<double>::N consecutive filters are transformed together and
// stored contiguously per point (a per-filter scatter over the points cost more than the arithmetic).
struct FilterRange {
  int64_t k0, nk, c0, nc;
};

// dst[0, n) = the first n lanes of v, rounded to S (n <= Vec<double>::N).
template <class S>
inline void store_rounded(Vec<double> v, S* dst, int n) {
  if constexpr (sizeof(S) == sizeof(double)) {
    v.store(dst, n);
  } else {
#if FASTCNN_HAS_AVX512
    const __m256 f = _mm512_cvtpd_ps(v.v);
    if (n == Vec<double>::N)
      _mm256_storeu_ps(dst, f);
    else
      _mm256_mask_storeu_ps(dst, __mmask8((1u << n) - 1u), f);
#elif FASTCNN_HAS_AVX2
    const __m128 f = _mm256_cvtpd_ps(v.v);
    if (n == Vec<double>::N) return _mm_storeu_ps(dst, f);
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, f);
    for (int l = 0; l < n; ++l) dst[l] = lanes[l];
#else
    alignas(64) double lanes[Vec<double>::N];
    v.store(lanes);
    for (int l = 0; l < n; ++l) dst[l] = S(lanes[l]);
#endif
  }
}

template <class W, class S>
void transform_filters(const WinogradConvArgs& a, S* U, bool k_inner, FilterRange r) {
  using D = Vec<double>;
  constexpr int kIn = W::kIn, kPoints = kIn * kIn, LD = D::N;
  const S* w = static_cast<const S*>(a.w);
  const int64_t Cg = a.shape.C / a.shape.G, Kg = a.shape.K / a.shape.G, n = r.nk * r.nc;
  parallel_for(ceil_div(n, LD), 4, [&](int64_t b, int64_t e) {
    alignas(64) double gl[9][LD];
    D g[9], t[3 * kIn], u[kPoints];
    for (int64_t blk = b; blk < e; ++blk) {
      const int lanes = int(std::min<int64_t>(LD, n - blk * LD));
      for (int l = 0; l < LD; ++l) {  // lanes past the end repeat the last filter
        const int64_t i = blk * LD + std::min(l, lanes - 1);
        const int64_t k = k_inner ? i / (Cg * Kg) * Kg + i % Kg : r.k0 + i / r.nc;
        const int64_t c = k_inner ? i / Kg % Cg : r.c0 + i % r.nc;
        if (a.flip_transpose) {
          const S* src = w + (((k / Kg) * Cg + c) * Kg + k % Kg) * 9;
          for (int q = 0; q < 9; ++q) gl[q][l] = double(src[8 - q]);
        } else {
          const S* src = w + (k * Cg + c) * 9;
          for (int q = 0; q < 9; ++q) gl[q][l] = double(src[q]);
        }
      }
      for (int q = 0; q < 9; ++q) g[q] = D::load(gl[q]);
      for (int j = 0; j < 3; ++j) W::filter_1d(g + j, 3, t + j, 3);              // t = G g   (kIn x 3)
      for (int i = 0; i < kIn; ++i) W::filter_1d(t + 3 * i, 1, u + kIn * i, 1);  // u = t G^T (kIn x kIn)
      for (int p = 0; p < kPoints; ++p) store_rounded(u[p], U + p * n + blk * LD, lanes);
    }
  });
}

template <class W, class S>
void transform_filters(const WinogradConvArgs& a, S* U, bool k_inner) {
  transform_filters<W, S>(a, U, k_inner, FilterRange{0, a.shape.K, 0, a.shape.C / a.shape.G});
}

// The output tiles of correlation s: kOut x kOut from the top left, cropped at the bottom and right.
template <class W>
TileGrid tile_grid(const ConvShape& s) {
  return TileGrid{s.N, ceil_div(s.P, W::kOut), ceil_div(s.Q, W::kOut), W::kOut, W::kOut};
}

// Tile-vectors of L tiles whose transforms (kPoints x (C + K) per tile) fit one chunk of
// winograd_chunk_bytes() (0 where not even one fits; forward_chunked then takes one a chunk).
template <class W, class S>
int64_t tile_vectors_per_chunk(const ConvShape& s) {
  constexpr int64_t kPoints = W::kIn * W::kIn;
  return winograd_chunk_bytes() / (kPoints * (s.C + s.K) * Vec<S>::N * int64_t(sizeof(S)));
}

// The tiling and workspaces of one call (forward and weight gradient alike): 4x4 output tiles, L per
// tile-vector, processed in chunks whose transformed tiles (kPoints x (C + K) x tiles) stay near the
// caches; U holds the kPoints x K x C/g filter-domain values, Vt the x transforms, Mt the output-side ones.
template <class W, class S>
struct Plan {
  static constexpr int L = Vec<S>::N, kPoints = W::kIn * W::kIn;
  int64_t G, Cg, Kg;
  TileGrid grid;
  int64_t NTV, chunk, ld;  // tile-vectors in all and per chunk; tiles per row of Vt, Mt
  S *U, *Vt, *Mt;
  explicit Plan(const ConvShape& s)
      : G(s.G), Cg(s.C / s.G), Kg(s.K / s.G), grid(tile_grid<W>(s)),
        NTV(ceil_div(grid.count(), L)),
        chunk(std::min(NTV, std::max<int64_t>(1, tile_vectors_per_chunk<W, S>(s)))),
        ld(chunk * L),
        U(conv::Workspace::get<S>(0, size_t(kPoints * s.K * Cg))),
        Vt(conv::Workspace::get<S>(1, size_t(kPoints * s.C * ld))),
        Mt(conv::Workspace::get<S>(2, size_t(kPoints * s.K * ld))) {}
};

template <int kOut, class S, Act kKind>
void epilogue_kind(Vec<S>* o, S bias, S param) {
  const Vec<S> vb = Vec<S>::set1(bias);
  for (int i = 0; i < kOut * kOut; ++i) {
    const Vec<S> v = o[i] + vb;
    o[i] = kKind == Act::identity ? v : act::forward<S>(kKind, v, param, S(0));
  }
}

template <int kOut, class S>
void epilogue(Vec<S>* o, S bias, Act kind, S param) {
  switch (kind) {
    case Act::relu: return epilogue_kind<kOut, S, Act::relu>(o, bias, param);
    case Act::leaky_relu: return epilogue_kind<kOut, S, Act::leaky_relu>(o, bias, param);
    case Act::elu: return epilogue_kind<kOut, S, Act::elu>(o, bias, param);
    case Act::sigmoid: return epilogue_kind<kOut, S, Act::sigmoid>(o, bias, param);
    case Act::tanh: return epilogue_kind<kOut, S, Act::tanh>(o, bias, param);
    default: return epilogue_kind<kOut, S, Act::identity>(o, bias, param);
  }
}

// The patches of a tile-vector of x (planes x[N][C][H][W], patch origin = tile origin - pad).
template <class W, class S>
using InputLanes = winograd::TileLanes<S, W::kIn>;

template <class W, class S>
InputLanes<W, S> input_lanes(const TileGrid& grid, const ConvShape& s, int64_t tv) {
  return InputLanes<W, S>(grid, tv, s.C, s.H, s.W, -s.ph, -s.pw);
}

// (B^T d B)[p] of the kIn x kIn patches of a tile-vector (`lanes`; zeros outside the planes), channel by
// channel for the channels [c0, c1): point p of channel c goes to dst + (p * rows + c - c0) * ld (rows:
// the channels per point in dst).
template <class W, class S>
inline void transform_tile_vector(const InputLanes<W, S>& lanes, const S* x, const ConvShape& s, S* dst, int64_t ld,
                                  int64_t c0, int64_t c1, int64_t rows) {
  constexpr int kPoints = W::kIn * W::kIn;
  const int64_t C = s.C;
  Vec<S> d[kPoints], v[kPoints];
  const S* x0 = x + lanes.n0 * C * s.H * s.W;
  for (int64_t c = c0; c < c1; ++c) {
    lanes.load(x0, C, c, s.H, s.W, d);
    input_2d<W>(d, v);
    for (int p = 0; p < kPoints; ++p) v[p].store(dst + (p * rows + c - c0) * ld);
  }
}

// Every channel of tile-vector tv: point p of channel c at dst + (p * C + c) * ld.
template <class W, class S>
inline void transform_tile_vector(const TileGrid& grid, const S* x, const ConvShape& s, int64_t tv, S* dst, int64_t ld) {
  transform_tile_vector<W, S>(input_lanes<W, S>(grid, s, tv), x, s, dst, ld, 0, s.C, s.C);
}

// V[p][c][tvl*L + l] = (B^T d B)[p] of the nt tile-vectors from tv0, rows of V `ld` apart.
template <class W, class S>
void transform_inputs(const TileGrid& grid, const S* x, const ConvShape& s, int64_t tv0, int64_t nt, S* Vt, int64_t ld) {
  constexpr int L = Vec<S>::N;
  parallel_for(nt, 1, [&](int64_t b, int64_t e) {
    for (int64_t tvl = b; tvl < e; ++tvl) transform_tile_vector<W>(grid, x, s, tv0 + tvl, Vt + tvl * L, ld);
  });
}

// 1-D transform of an output gradient o = A m (A = (A^T)^T, 6 x 4; m: 4 entries at stride `si`, o: 6 at
// stride `so`): the adjoint of output_1d. Exact coefficients 1, 2, 4, 8; at most 2 roundings deep.
template <class V>
inline void output_adjoint_1d(const V* m, int si, V* o, int so) {
  const V m0 = m[0], m1 = m[si], m2 = m[2 * si], m3 = m[3 * si];
  const V a = m0 + m2, b = m1 + m3, c = fmadd(V::set1(4), m2, m0), d = V::set1(2) * fmadd(V::set1(4), m3, m1);
  o[0] = m0;
  o[so] = a + b;
  o[2 * so] = a - b;
  o[3 * so] = c + d;
  o[4 * so] = c - d;
  o[5 * so] = m3;
}


// C = A op(B) + beta C on fastcnn's GEMM (this ISA's copy), single-threaded: callers split the GEMMs.
template <class S>
void gemm(bool trans_b, int64_t M, int64_t N, int64_t K, const S* A, int64_t lda, const S* B, int64_t ldb,
              S beta, S* C, int64_t ldc) {
  if constexpr (sizeof(S) == 4)
    gemm_kernels().f32(false, trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, 1);
  else
    gemm_kernels().f64(false, trans_b, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc, 1);
}

template <class W, class S>
void forward_chunked(const WinogradConvArgs& a) {
  using V = Vec<S>;
  constexpr int L = V::N, kOut = W::kOut, kPoints = W::kIn * W::kIn;
  const S* x = static_cast<const S*>(a.x);
  const S* bias = static_cast<const S*>(a.bias);
  S* y = static_cast<S*>(a.y);
  const Plan<W, S> plan(a.shape);
  const int64_t G = plan.G, Cg = plan.Cg, Kg = plan.Kg, NTV = plan.NTV, chunk = plan.chunk, ld = plan.ld;
  const TileGrid& grid = plan.grid;
  S *U = plan.U, *Vt = plan.Vt, *Mt = plan.Mt;  // transformed filters, inputs, outputs
  transform_filters<W, S>(a, U, false);
  const Act kind = static_cast<Act>(a.act);
  const S param = S(a.act_param);

  for (int64_t tv0 = 0; tv0 < NTV; tv0 += chunk) {
    const int64_t nt = std::min(chunk, NTV - tv0);
    transform_inputs<W, S>(grid, x, a.shape, tv0, nt, Vt, ld);

    const int64_t ntiles = std::min(nt * L, grid.count() - tv0 * L);
    parallel_for(kPoints * G, 1, [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        const int64_t p = item / G, g = item % G;
        gemm<S>(false, Kg, ntiles, Cg, U + (p * a.shape.K + g * Kg) * Cg, Cg, Vt + (p * a.shape.C + g * Cg) * ld, ld, S(0),
                Mt + (p * a.shape.K + g * Kg) * ld, ld);
      }
    });

    parallel_for(nt * a.shape.K, 4, [&](int64_t b, int64_t e) {
      alignas(64) S out[kOut * kOut * L];
      V m[kPoints];
      V* o = reinterpret_cast<V*>(out);
      TileRef<S> lanes[L];
      for (int64_t item = b; item < e; ++item) {
        const int64_t tvl = item / a.shape.K, k = item % a.shape.K;
        const S* src = Mt + k * ld + tvl * L;
        for (int p = 0; p < kPoints; ++p) m[p] = V::load(src + p * a.shape.K * ld);
        output_2d<W>(m, o);
        epilogue<kOut, S>(o, bias ? bias[k] : S(0), kind, param);
        grid.lanes<S, L>(tv0 + tvl, y, a.shape.K, k, a.shape.P * a.shape.Q, 0, 0, lanes);
        fft::store_tiles<kOut>(out, lanes, a.shape.P, a.shape.Q, kOut, kOut);
      }
    });
  }
}

// ---- forward_few_tiles ----------------------------------------------------------------------------
// Many channels on small maps (PSPNet's 1024->128 head on 9x9 maps: 144 tiles, 1152 channels in and
// out): forward_chunked's chunks (winograd_chunk_bytes()) hold only 3 tile-vectors there, so each channel GEMM
// is a thin [K/g x C/g] x [C/g x 48] that repacks all of U[p] for every chunk. Here every tile of the
// call is one GEMM's columns, and the chunks run over kernels and channels instead: per (group,
// kernel chunk) the channel chunks' filter and input transforms and GEMMs accumulating M[p] (kernels x
// tiles), then that kernel chunk's output transforms. The input transforms of a group are made once
// where all its channels fit one chunk, else once per kernel chunk.
template <class W, class S>
struct FewTilesPlan {
  static constexpr int L = Vec<S>::N, kPoints = W::kIn * W::kIn;
  TileGrid grid;
  int64_t NTV, ld, Kc, Cc;  // tile-vectors, GEMM columns (NTV x L), kernels and channels per chunk
  explicit FewTilesPlan(const ConvShape& s)
      : grid(tile_grid<W>(s)),
        NTV(ceil_div(grid.count(), L)),
        ld(NTV * L) {
    // Scalars per point for U (Kc x Cc), V (Cc x ld) and M (Kc x ld); chunks of whole vectors' worth
    // of rows (16) so the GEMM's row blocks stay full.
    const int64_t budget = winograd_chunk_bytes() / (kPoints * int64_t(sizeof(S))), Cg = s.C / s.G, Kg = s.K / s.G;
    const auto rows = [](int64_t v, int64_t cap) { return std::min(cap, std::max<int64_t>(16, v / 16 * 16)); };
    if (Cg * ld <= budget / 2) {  // all of a group's channels in one chunk: V made once per group
      Cc = Cg;
      Kc = rows((budget - Cc * ld) / (ld + Cc), Kg);
    } else {
      Kc = rows(budget / (3 * ld), Kg);
      Cc = rows((budget - Kc * ld) / (ld + Kc), Cg);
    }
  }
  // Worth it over forward_chunked: the chunked path would split the tiles (its chunks' GEMMs thin), and
  // 96 rows of every tile (room for U, V and M chunks of at least 32 rows each) fit the budget.
  static bool applies(const ConvShape& s) {
    const int64_t NTV = ceil_div(tile_grid<W>(s).count(), L);
    return tile_vectors_per_chunk<W, S>(s) < NTV && kPoints * int64_t(sizeof(S)) * 96 * NTV * L <= winograd_chunk_bytes();
  }
};

template <class W, class S>
void forward_few_tiles(const WinogradConvArgs& a) {
  using V = Vec<S>;
  constexpr int L = V::N, kOut = W::kOut, kPoints = W::kIn * W::kIn;
  constexpr int64_t kRowsPerItem = 16;  // channels / kernels per transform work item
  const ConvShape& s = a.shape;
  const FewTilesPlan<W, S> plan(s);
  const TileGrid& grid = plan.grid;
  const int64_t G = s.G, Cg = s.C / G, Kg = s.K / G, NTV = plan.NTV, ld = plan.ld, Kc = plan.Kc, Cc = plan.Cc;
  const int64_t ntiles = grid.count(), PQ = s.P * s.Q;
  const S* x = static_cast<const S*>(a.x);
  const S* bias = static_cast<const S*>(a.bias);
  S* y = static_cast<S*>(a.y);
  S* U = conv::Workspace::get<S>(0, size_t(kPoints * Kc * Cc));
  S* Vt = conv::Workspace::get<S>(1, size_t(kPoints * Cc * ld));
  S* Mt = conv::Workspace::get<S>(2, size_t(kPoints * Kc * ld));
  const Act kind = static_cast<Act>(a.act);
  const S param = S(a.act_param);

  // Where each tile-vector's patches lie, once per call (not per item and channel chunk: it costs as
  // much as transforming a few channels).
  std::vector<InputLanes<W, S>> patches;
  patches.reserve(size_t(NTV));
  for (int64_t tv = 0; tv < NTV; ++tv) patches.push_back(input_lanes<W, S>(grid, s, tv));
  const auto transform_channels = [&](int64_t c0, int64_t nc) {  // Vt[p][c - c0][tiles], c0 absolute
    const int64_t blocks = ceil_div(nc, kRowsPerItem);
    parallel_for(NTV * blocks, 1, [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        const int64_t tv = item / blocks, cb = c0 + item % blocks * kRowsPerItem;
        transform_tile_vector<W, S>(patches[size_t(tv)], x, s, Vt + (cb - c0) * ld + tv * L, ld, cb,
                                    std::min(cb + kRowsPerItem, c0 + nc), nc);
      }
    });
  };

  for (int64_t g = 0; g < G; ++g) {
    const bool v_once = Cc == Cg;
    if (v_once) transform_channels(g * Cg, Cg);
    for (int64_t k0 = 0; k0 < Kg; k0 += Kc) {
      const int64_t nk = std::min(Kc, Kg - k0);
      for (int64_t c0 = 0; c0 < Cg; c0 += Cc) {
        const int64_t nc = std::min(Cc, Cg - c0);
        if (!v_once) transform_channels(g * Cg + c0, nc);
        transform_filters<W, S>(a, U, false, FilterRange{g * Kg + k0, nk, c0, nc});
        const S beta = c0 == 0 ? S(0) : S(1);
        parallel_for(kPoints, 1, [&](int64_t b, int64_t e) {
          for (int64_t p = b; p < e; ++p)
            gemm<S>(false, nk, ntiles, nc, U + p * nk * nc, nc, Vt + p * nc * ld, ld, beta, Mt + p * nk * ld, ld);
        });
      }
      const int64_t blocks = ceil_div(nk, kRowsPerItem);
      parallel_for(NTV * blocks, 1, [&](int64_t b, int64_t e) {
        V m[kPoints];
        alignas(64) S out[kOut * kOut * L];
        V* o = reinterpret_cast<V*>(out);
        for (int64_t item = b; item < e; ++item) {
          const int64_t tv = item / blocks, kb = item % blocks * kRowsPerItem;
          const winograd::OutLanes<S, kOut> lanes(grid, tv, y, s.K, s.P, s.Q);
          for (int64_t kk = kb; kk < std::min(kb + kRowsPerItem, nk); ++kk) {
            const int64_t k = g * Kg + k0 + kk;
            const S* src = Mt + kk * ld + tv * L;
            for (int p = 0; p < kPoints; ++p) m[p] = V::load(src + p * nk * ld);
            output_2d<W>(m, o);
            epilogue<kOut, S>(o, bias ? bias[k] : S(0), kind, param);
            lanes.store(out, k * PQ);
          }
        }
      });
    }
  }
}

// ---- forward_fused ------------------------------------------------------------------------------
// Blocks of Block<W>::vecs tile-vectors: one thread transforms a block's patches for all channels into Vb
// (kPoints x C x NB), runs the kPoints x G channel GEMMs into Mb (kPoints x K x NB) and the output
// transforms, so both stay in that core's L2 (with the filter-domain values U, shared, read-only).
// Rows (kernels) per pass of the block GEMM: rows x vecs accumulators in registers, each
// broadcast of U feeding vecs FMAs (F(4x4): kBlockVecs x kRows). Measured (docs/algo-winograd.md, 1 thread, 64-channel
// layers): AVX-512 3 x 8 ties 2 x 12; AVX2 3 x 4 is 3-5% faster than 2 x 6.
#if FASTCNN_HAS_AVX512
constexpr int kBlockVecs = 2, kRows = 12;  // 24 of 32 registers
#elif FASTCNN_HAS_AVX2
constexpr int kBlockVecs = 3, kRows = 4;   // 12 of 16 registers
#else
constexpr int kBlockVecs = 2, kRows = 4;
#endif
// The block shape per output tile: F(6x6)'s 64 points double Vb and Mb against F(4x4)'s 36, so
// on AVX-512 its blocks are one tile-vector with 24 rows (U + Vb + Mb 1.5 MiB for 64 channels).
template <class W>
struct Block {
  static constexpr bool kNarrow = W::kOut == 6 && FASTCNN_HAS_AVX512;
  static constexpr int vecs = kNarrow ? 1 : kBlockVecs, rows = kNarrow ? 24 : kRows;
};
// U + Vb + Mb at most this: the fused path (a core's L2 is 1-2 MiB on the machines measured).
constexpr int64_t kFusedBytes = int64_t(9) << 18;  // 2.25 MiB

template <class W, class S>
bool fused_fits(const ConvShape& s) {
  constexpr int64_t kPoints = W::kIn * W::kIn;
  const int64_t NB = Block<W>::vecs * Vec<S>::N;
  return int64_t(sizeof(S)) * kPoints * (s.K * (s.C / s.G) + (s.C + s.K) * NB) <= kFusedBytes;
}

// m[r][:] = sum_c u[c][r] v[c][:] for r < R, over the NB tiles of a block: R kernels of one (point,
// group) channel GEMM. u: C/g rows ldu apart (U with k_inner), v: C/g rows of NB, m: R rows of NB.
// One FMA per channel and product, summed in channel order (the bound allows any order).
template <class S, int BV, int R>
inline void block_gemm_rows(const S* u, int64_t ldu, const S* v, int64_t Cg, S* m) {
  using V = Vec<S>;
  constexpr int L = V::N, NB = BV * L;
  V acc[R][BV];
#pragma GCC unroll 32
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < BV; ++j) acc[r][j] = V::zero();
  for (int64_t c = 0; c < Cg; ++c) {
    V b[BV];
#pragma GCC unroll 4
    for (int j = 0; j < BV; ++j) b[j] = V::load(v + c * NB + j * L);
    const S* uc = u + c * ldu;
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r) {
      const V ar = V::set1(uc[r]);
#pragma GCC unroll 4
      for (int j = 0; j < BV; ++j) acc[r][j] = fmadd(ar, b[j], acc[r][j]);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < BV; ++j) acc[r][j].store(m + r * NB + j * L);
}

// The last rows (< Block::rows) of a channel GEMM: block_gemm_rows<rows> picked at run time.
template <class S, int BV, int R>
inline void block_gemm_tail(int rows, const S* u, int64_t ldu, const S* v, int64_t Cg, S* m) {
  if constexpr (R > 0) {
    if (rows == R) return block_gemm_rows<S, BV, R>(u, ldu, v, Cg, m);
    block_gemm_tail<S, BV, R - 1>(rows, u, ldu, v, Cg, m);
  }
}

template <class W, class S>
void forward_fused(const WinogradConvArgs& a) {
  using V = Vec<S>;
  constexpr int BV = Block<W>::vecs, BR = Block<W>::rows;
  constexpr int L = V::N, NB = BV * L, kOut = W::kOut, kPoints = W::kIn * W::kIn;
  const ConvShape& s = a.shape;
  const S* x = static_cast<const S*>(a.x);
  const S* bias = static_cast<const S*>(a.bias);
  S* y = static_cast<S*>(a.y);
  const int64_t G = s.G, C = s.C, K = s.K, Cg = C / G, Kg = K / G, PQ = s.P * s.Q;
  const TileGrid grid = tile_grid<W>(s);
  const int64_t NTV = ceil_div(grid.count(), L), blocks = ceil_div(NTV, BV);
  S* U = conv::Workspace::get<S>(0, size_t(kPoints * K * Cg));
  transform_filters<W, S>(a, U, true);
  const Act kind = static_cast<Act>(a.act);
  const S param = S(a.act_param);

  // Threads take blocks from a shared counter rather than fixed ranges: a thread that the OS
  // pauses (a shared machine) then delays the call by a block, not by its whole share.
  std::atomic<int64_t> next{0};
  parallel_for(blocks, 1, [&](int64_t, int64_t) {
    S* Vb = conv::Workspace::get<S>(1, size_t(kPoints * C * NB));  // this thread's
    S* Mb = conv::Workspace::get<S>(2, size_t(kPoints * K * NB));
    V d[kPoints];
    alignas(64) S out[kOut * kOut * L];
    V* o = reinterpret_cast<V*>(out);
    for (int64_t blk; (blk = next.fetch_add(1, std::memory_order_relaxed)) < blocks;) {
      for (int j = 0; j < BV; ++j)  // input transforms (an empty tile-vector past the end: zeros)
        transform_tile_vector<W>(grid, x, s, blk * BV + j, Vb + j * L, NB);
      for (int p = 0; p < kPoints; ++p)  // channel GEMMs: Mb[p][k] = sum_c U[p][c][k] Vb[p][c]
        for (int64_t g = 0; g < G; ++g) {
          const S* u = U + (p * G + g) * Cg * Kg;
          const S* vb = Vb + (p * C + g * Cg) * NB;
          S* mb = Mb + (p * K + g * Kg) * NB;
          int64_t k0 = 0;
          for (; k0 + BR <= Kg; k0 += BR) block_gemm_rows<S, BV, BR>(u + k0, Kg, vb, Cg, mb + k0 * NB);
          block_gemm_tail<S, BV, BR - 1>(int(Kg - k0), u + k0, Kg, vb, Cg, mb + k0 * NB);
        }
      for (int j = 0; j < BV; ++j) {  // output transforms, epilogue, cropped stores
        const int64_t tv = blk * BV + j;
        if (tv >= NTV) break;
        const winograd::OutLanes<S, kOut> lanes(grid, tv, y, K, s.P, s.Q);
        for (int64_t k = 0; k < K; ++k) {
          const S* src = Mb + k * NB + j * L;
          for (int p = 0; p < kPoints; ++p) d[p] = V::load(src + p * K * NB);
          output_2d<W>(d, o);
          epilogue<kOut, S>(o, bias ? bias[k] : S(0), kind, param);
          lanes.store(out, k * PQ);
        }
      }
    }
  });
}

template <class W, class S>
WinogradPlan plan_tile(const ConvShape& s) {
  if (fused_fits<W, S>(s)) return {WinogradPath::fused, s.K / s.G, s.C / s.G};
  if (FewTilesPlan<W, S>::applies(s)) {
    const FewTilesPlan<W, S> few(s);
    return {WinogradPath::few_tiles, few.Kc, few.Cc};
  }
  return {WinogradPath::chunked, s.K / s.G, s.C / s.G};
}

template <class W, class S>
void forward_tile(const WinogradConvArgs& a) {
  switch (plan_tile<W, S>(a.shape).path) {
    case WinogradPath::fused: return forward_fused<W, S>(a);
    case WinogradPath::few_tiles: return forward_few_tiles<W, S>(a);
    default: return forward_chunked<W, S>(a);
  }
}

WinogradPlan plan(const ConvShape& s, int elem_size, int tile) {
  if (elem_size == 8) return tile == 6 ? plan_tile<Wino<6>, double>(s) : plan_tile<Wino<4>, double>(s);
  return tile == 6 ? plan_tile<Wino<6>, float>(s) : plan_tile<Wino<4>, float>(s);
}

// a.tile: 4 or 6 (the host binding resolves and checks it: conv_calls.h winograd_resolve_tile).
template <class S>
void forward(const WinogradConvArgs& a) {
  if (a.tile == 6)
    forward_tile<Wino<6>, S>(a);
  else
    forward_tile<Wino<4>, S>(a);
}

// F(4x4, 3x3) only (docs/algo-winograd.md: F(6x6) is built for forward and backward-input).
// gw = G^T [sum over tiles of (A gy_t A^T) . (B^T d_t B)] G: per chunk of gy tiles, the transforms of
// the x patches (as the forward's) and of the gy tiles, then one GEMM per (point, group) that adds
// Wt[p] (K/g x tiles) @ Vt[p]^T (tiles x C/g) to Ug[p]; at the end the 3x3 kernels from Ug, in double.
template <class S>
void backward_weight(const WinogradWeightArgs& a) {
  using V = Vec<S>;
  using W = Wino<4>;
  constexpr int L = V::N, kIn = W::kIn, kOut = W::kOut, kPoints = kIn * kIn;
  const S* x = static_cast<const S*>(a.x);
  const S* gy = static_cast<const S*>(a.gy);
  S* gw = static_cast<S*>(a.gw);
  const Plan<W, S> plan(a.shape);
  const int64_t G = plan.G, Cg = plan.Cg, Kg = plan.Kg, NTV = plan.NTV, chunk = plan.chunk, ld = plan.ld;
  const TileGrid& grid = plan.grid;
  S *Ug = plan.U, *Vt = plan.Vt, *Wt = plan.Mt;  // gradient of the transformed filters, x and gy transforms

  for (int64_t tv0 = 0; tv0 < NTV; tv0 += chunk) {
    const int64_t nt = std::min(chunk, NTV - tv0);
    transform_inputs<W, S>(grid, x, a.shape, tv0, nt, Vt, ld);
    parallel_for(nt, 1, [&](int64_t b, int64_t e) {
      V m[kOut * kOut], t[kIn * kOut], v[kPoints];
      for (int64_t tvl = b; tvl < e; ++tvl) {
        const winograd::TileLanes<S, kOut> lanes(grid, tv0 + tvl, a.shape.K, a.shape.P, a.shape.Q, 0, 0);
        const S* gy0 = gy + lanes.n0 * a.shape.K * a.shape.P * a.shape.Q;
        for (int64_t k = 0; k < a.shape.K; ++k) {
          lanes.load(gy0, a.shape.K, k, a.shape.P, a.shape.Q, m);
          for (int j = 0; j < kOut; ++j) output_adjoint_1d(m + j, kOut, t + j, kOut);         // A m    (6 x 4)
          for (int i = 0; i < kIn; ++i) output_adjoint_1d(t + kOut * i, 1, v + kIn * i, 1);  // A m A^T (6 x 6)
          S* dst = Wt + k * ld + tvl * L;
          for (int p = 0; p < kPoints; ++p) v[p].store(dst + p * a.shape.K * ld);
        }
      }
    });
    const int64_t ntiles = std::min(nt * L, grid.count() - tv0 * L);
    const S beta = tv0 == 0 ? S(0) : S(1);
    parallel_for(kPoints * G, 1, [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        const int64_t p = item / G, g = item % G;
        gemm<S>(true, Kg, Cg, ntiles, Wt + (p * a.shape.K + g * Kg) * ld, ld, Vt + (p * a.shape.C + g * Cg) * ld, ld, beta,
                    Ug + (p * a.shape.K + g * Kg) * Cg, Cg);
      }
    });
  }

  // gw[k][c] = G^T Ug[.][k][c] G (3 x 3), in double, rounded once
  static constexpr double kG[kIn][3] = {{1.0 / 4, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                         {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  const int64_t KC = a.shape.K * Cg;
  parallel_for(KC, 16, [&](int64_t b, int64_t e) {
    for (int64_t kc = b; kc < e; ++kc) {
      double u[kPoints], t[3 * kIn];
      for (int p = 0; p < kPoints; ++p) u[p] = double(Ug[p * KC + kc]);
      for (int r = 0; r < 3; ++r)
        for (int j = 0; j < kIn; ++j) {
          double acc = 0;
          for (int i = 0; i < kIn; ++i) acc += kG[i][r] * u[i * kIn + j];
          t[r * kIn + j] = acc;  // (G^T U)[r][j]
        }
      for (int r = 0; r < 3; ++r)
        for (int s2 = 0; s2 < 3; ++s2) {
          double acc = 0;
          for (int j = 0; j < kIn; ++j) acc += t[r * kIn + j] * kG[j][s2];
          gw[kc * 9 + r * 3 + s2] = S(acc);
        }
    }
  });
}

}  // namespace

const ConvWinogradKernels& conv_winograd_kernels() {
  static const ConvWinogradKernels table{&forward<float>, &forward<double>, &backward_weight<float>,
                                         &backward_weight<double>, &plan};
  return table;
}

FASTCNN_ISA_NAMESPACE_END
