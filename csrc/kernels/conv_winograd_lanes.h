// Where the L tiles of one tile-vector lie, computed once per tile-vector and reused for every
// channel (the geometry of a tile does not depend on its channel), and the loads / stores of their
// patches for one channel: a masked vector gather per patch element on AVX-512 / AVX2 (lane l reads
// tile l's element; lanes outside the plane read 0), the scalar lane-by-lane copy of the FFT's
// load_tiles / store_tiles elsewhere and where the offsets do not fit 32-bit gather indices.
//
// Compiled once per ISA (included by conv_winograd.cpp only).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#include "common/simd.h"
#include "kernels/conv_fft_transform.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace winograd {

using simd::Vec;
using fft::TileGrid;
using fft::TileRef;

#if FASTCNN_HAS_AVX512 || FASTCNN_HAS_AVX2
constexpr bool kHasGather = true;
#else
constexpr bool kHasGather = false;
#endif

// Vec<S> of L lanes: lane l = base[idx[l]] where bit l of `mask` is set, else 0.
#if FASTCNN_HAS_AVX512
inline Vec<float> gather(const float* base, const int32_t* idx, unsigned mask) {
  const __m512i i = _mm512_loadu_si512(idx);
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), __mmask16(mask), i, base, 4);
}
inline Vec<double> gather(const double* base, const int32_t* idx, unsigned mask) {
  const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx));
  return _mm512_mask_i32gather_pd(_mm512_setzero_pd(), __mmask8(mask), i, base, 8);
}
#elif FASTCNN_HAS_AVX2
inline Vec<float> gather(const float* base, const int32_t* idx, unsigned mask) {
  const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx));
  const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i m = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(int(mask)), bits), bits);
  return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, i, _mm256_castsi256_ps(m), 4);
}
inline Vec<double> gather(const double* base, const int32_t* idx, unsigned mask) {
  const __m128i i = _mm_loadu_si128(reinterpret_cast<const __m128i*>(idx));
  const __m256i bits = _mm256_setr_epi64x(1, 2, 4, 8);
  const __m256i m = _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(mask), bits), bits);
  return _mm256_mask_i32gather_pd(_mm256_setzero_pd(), base, i, _mm256_castsi256_pd(m), 8);
}
#endif

// Tile-vector tv of `grid` over planes[N][CH][Hp][Wp] (patches of T x T from the tile origin + (dy, dx)):
// per lane its image relative to the first lane's, its patch origin, and (for the gather) the element
// offset of every patch element from the first lane's plane of the channel, with masks of the rows and
// columns inside the plane.
template <class S, int T>
struct TileLanes {
  static constexpr int L = Vec<S>::N;
  int64_t n0 = 0;            // image of lane 0
  int64_t dn[L], y0[L], x0[L];  // dn = -1: an empty lane (past the last tile)
  alignas(64) int32_t idx[T * T][L];  // offset of patch element (i, j) of every lane
  unsigned mask[T * T];               // bit l: lane l's element (i, j) lies inside its plane
  bool gatherable = false;

  TileLanes(const TileGrid& grid, int64_t tv, int64_t CH, int64_t Hp, int64_t Wp, int64_t dy, int64_t dx) {
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
    for (int l = 0; l < L; ++l) {
      const int64_t t = tv * L + l;
      if (t >= grid.count()) {
        dn[l] = -1, y0[l] = x0[l] = 0;
        continue;
      }
      int64_t n, oy, ox;
      grid.locate(t, n, oy, ox);
      if (l == 0) n0 = n;
      dn[l] = n - n0, y0[l] = oy + dy, x0[l] = ox + dx;
      const int64_t o = dn[l] * CH * Hp * Wp + y0[l] * Wp + x0[l];
      lo = std::min(lo, o), hi = std::max(hi, o + (T - 1) * (Wp + 1));
    }
    gatherable = kHasGather && lo >= std::numeric_limits<int32_t>::min() && hi <= std::numeric_limits<int32_t>::max();
    if (!gatherable) return;
    for (int i = 0; i < T; ++i)
      for (int j = 0; j < T; ++j) {
        unsigned m = 0;
        for (int l = 0; l < L; ++l) {
          const int64_t y = y0[l] + i, x = x0[l] + j;
          const bool in = dn[l] >= 0 && y >= 0 && y < Hp && x >= 0 && x < Wp;
          idx[i * T + j][l] = in ? int32_t(dn[l] * CH * Hp * Wp + y * Wp + x) : 0;
          m |= unsigned(in) << l;
        }
        mask[i * T + j] = m;
      }
  }

  // The lanes' TileRefs in channel ch of planes (base of planes[n0][0]).
  template <class P>
  void refs(P* planes0, int64_t CH, int64_t ch, int64_t Hp, int64_t Wp, TileRef<P>* out) const {
    for (int l = 0; l < L; ++l)
      out[l] = dn[l] < 0 ? TileRef<P>{nullptr, 0, 0}
                         : TileRef<P>{planes0 + (dn[l] * CH + ch) * Hp * Wp, y0[l], x0[l]};
  }

  // d[i*T + j] (lane l) = element (i, j) of lane l's patch in channel ch (0 outside the plane).
  // planes0: planes[n0][0].
  void load(const S* planes0, int64_t CH, int64_t ch, int64_t Hp, int64_t Wp, Vec<S>* d) const {
    if constexpr (kHasGather) {
      if (gatherable) {
        const S* base = planes0 + ch * Hp * Wp;
        for (int e = 0; e < T * T; ++e) d[e] = mask[e] ? gather(base, idx[e], mask[e]) : Vec<S>::zero();
        return;
      }
    }
    alignas(64) S raw[T * T * L];
    TileRef<const S> lanes[L];
    refs(planes0, CH, ch, Hp, Wp, lanes);
    fft::load_tiles<T>(raw, lanes, Hp, Wp, T, T);
    for (int e = 0; e < T * T; ++e) d[e] = Vec<S>::load(raw + e * L);
  }
};

// The output tiles of tile-vector tv (T x T from the tile origin, cropped at the plane's bottom and
// right edges) in planes[N][CH][Hp][Wp], computed once and stored for every channel: a full tile is
// T x T unrolled scalar stores, a cropped one a loop over its rows and columns.
template <class S, int T>
struct OutLanes {
  static constexpr int L = Vec<S>::N;
  S* origin[L];  // channel 0; nullptr: an empty lane
  int rows[L], cols[L];
  int64_t Wp;

  OutLanes(const TileGrid& grid, int64_t tv, S* planes, int64_t CH, int64_t Hp, int64_t Wp_) : Wp(Wp_) {
    for (int l = 0; l < L; ++l) {
      const int64_t t = tv * L + l;
      if (t >= grid.count()) {
        origin[l] = nullptr, rows[l] = cols[l] = 0;
        continue;
      }
      int64_t n, oy, ox;
      grid.locate(t, n, oy, ox);
      origin[l] = planes + n * CH * Hp * Wp + oy * Wp + ox;
      rows[l] = int(std::min<int64_t>(T, Hp - oy)), cols[l] = int(std::min<int64_t>(T, Wp - ox));
    }
  }

  // Channel ch (plane_size apart) <- o[(i*T + j)*L + l], element (i, j) of lane l's tile.
  void store(const S* o, int64_t ch_offset) const {
    for (int l = 0; l < L; ++l) {
      if (!origin[l]) continue;
      S* dst = origin[l] + ch_offset;
      if (rows[l] == T && cols[l] == T) {
#pragma GCC unroll 8
        for (int i = 0; i < T; ++i)
#pragma GCC unroll 8
          for (int j = 0; j < T; ++j) dst[i * Wp + j] = o[(i * T + j) * L + l];
      } else {
        for (int i = 0; i < rows[l]; ++i)
          for (int j = 0; j < cols[l]; ++j) dst[i * Wp + j] = o[(i * T + j) * L + l];
      }
    }
  }
};

}  // namespace winograd
FASTCNN_ISA_NAMESPACE_END
