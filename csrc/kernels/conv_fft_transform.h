// 2-D real FFTs of T x T tiles (T = 8, 16, 32), vectorised *across tiles*: lane l of every Vec
// belongs to tile l, so each butterfly is a plain vector add/mul and no shuffles are needed. The
// tiles are moved between NCHW planes and this lane layout by load_tiles/store_tiles.
//
// Spectra are half spectra F[v][u], v < T, u <= T/2 (Hermitian symmetry of real input), frequency
// index f = v * (T/2+1) + u. The real row FFTs are done two rows at a time as one complex FFT
// (z = row_i + i row_{i+1}, split afterwards). Scaling: rfft2 returns 2x the true spectrum and
// irfft2 returns T*T times the true inverse of its input (both unnormalised), so a product of two
// rfft2 spectra comes back from irfft2 scaled by 4*T*T.
//
// Compiled once per ISA (included by the FFT and Winograd kernel files only): everything lives in the
// ISA namespace so the copies never share a symbol.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "common/simd.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace fft {

using simd::Vec;

template <class V>
struct Cx {
  V re, im;
};

// c[k] = cos(2 pi k / T), s[k] = sin(2 pi k / T), k < T/2, computed in double once.
template <class S, int T>
struct Twiddles {
  S c[T / 2], s[T / 2];
  Twiddles() {
    for (int k = 0; k < T / 2; ++k) {
      const double a = 2.0 * M_PI * k / T;
      c[k] = S(std::cos(a));
      s[k] = S(std::sin(a));
    }
  }
  static const Twiddles& get() {
    static const Twiddles table;
    return table;
  }
};

// Bit-reversal permutation of [0, T).
template <int T>
struct BitReverse {
  int r[T];
  constexpr BitReverse() : r{} {
    for (int i = 0; i < T; ++i)
      for (int b = 1; b < T; b <<= 1) r[i] = (r[i] << 1) | ((i & b) ? 1 : 0);
  }
};

// In-place radix-2 FFT of z[0..T) (forward: e^{-2 pi i jk/T}; Inv: e^{+...}, unnormalised). T is a
// compile-time constant, so the loops unroll and the trivial twiddles (1 and -+i) cost no multiply.
template <int T, bool Inv, class S>
inline void fft(Cx<Vec<S>>* z, const Twiddles<S, T>& tw) {
  using V = Vec<S>;
  constexpr BitReverse<T> rev;
#pragma GCC unroll 32
  for (int i = 0; i < T; ++i) {
    const int j = rev.r[i];
    if (i < j) std::swap(z[i], z[j]);
  }
#pragma GCC unroll 8
  for (int len = 2; len <= T; len <<= 1) {
    const int half = len >> 1, step = T / len;
#pragma GCC unroll 32
    for (int i = 0; i < T; i += len) {
#pragma GCC unroll 32
      for (int j = 0; j < half; ++j) {
        const Cx<V> a = z[i + j], b = z[i + j + half];
        const int k = j * step;
        Cx<V> t;
        if (k == 0) {
          t = b;
        } else if (4 * k == T) {  // w = -i (forward) or +i (inverse)
          t = Inv ? Cx<V>{V::zero() - b.im, b.re} : Cx<V>{b.im, V::zero() - b.re};
        } else {  // w = c -+ i s
          const V c = V::set1(tw.c[k]), s = V::set1(Inv ? tw.s[k] : -tw.s[k]);
          t = {fmadd(b.re, c, V::zero() - b.im * s), fmadd(b.re, s, b.im * c)};
        }
        z[i + j] = {a.re + t.re, a.im + t.im};
        z[i + j + half] = {a.re - t.re, a.im - t.im};
      }
    }
  }
}

// rb: T x T real tile rows (lanes = tiles), rows >= nrows are zero and skipped.
// Writes the half spectrum (scaled by 2) to dst: frequency f's real lanes at dst + f*fstride, its
// imaginary lanes L scalars further. H is scratch of T*(T/2+1) complex vectors.
template <int T, class S>
void rfft2(const Vec<S>* rb, int nrows, Cx<Vec<S>>* H, S* dst, int64_t fstride) {
  using V = Vec<S>;
  constexpr int U = T / 2 + 1, L = V::N;
  const auto& tw = Twiddles<S, T>::get();
  for (int i = 0; i < T; i += 2) {
    if (i >= nrows) {
      for (int u = 0; u < 2 * U; ++u) H[i * U + u] = {V::zero(), V::zero()};
      continue;
    }
    Cx<V> z[T];
    const bool second = i + 1 < nrows;
    for (int j = 0; j < T; ++j) z[j] = {rb[i * T + j], second ? rb[(i + 1) * T + j] : V(V::zero())};
    fft<T, false>(z, tw);
    // z = A + iB with A, B the spectra of the two real rows: 2A = Z[u] + conj(Z[-u]), 2B = (Z[u] - conj(Z[-u])) / i.
    for (int u = 0; u < U; ++u) {
      const Cx<V> p = z[u], m = z[(T - u) & (T - 1)];
      H[i * U + u] = {p.re + m.re, p.im - m.im};
      H[(i + 1) * U + u] = {p.im + m.im, m.re - p.re};
    }
  }
  for (int u = 0; u < U; ++u) {
    Cx<V> z[T];
    for (int v = 0; v < T; ++v) z[v] = H[v * U + u];
    fft<T, false>(z, tw);
    for (int v = 0; v < T; ++v) {
      S* d = dst + (v * U + u) * fstride;
      z[v].re.store(d);
      z[v].im.store(d + L);
    }
  }
}

// Inverse of rfft2 (unnormalised, scale T*T): reads the half spectrum from src (layout as rfft2's
// dst) and writes real rows [0, nrows) (rounded up to even) of the tile to rb.
template <int T, class S>
void irfft2(const S* src, int64_t fstride, Cx<Vec<S>>* H, int nrows, Vec<S>* rb) {
  using V = Vec<S>;
  constexpr int U = T / 2 + 1, L = V::N;
  const auto& tw = Twiddles<S, T>::get();
  for (int u = 0; u < U; ++u) {
    Cx<V> z[T];
    for (int v = 0; v < T; ++v) {
      const S* s = src + (v * U + u) * fstride;
      z[v] = {V::load(s), V::load(s + L)};
    }
    fft<T, true>(z, tw);
    for (int v = 0; v < T; ++v) H[v * U + u] = z[v];
  }
  for (int i = 0; i < nrows; i += 2) {
    // Rebuild z = A + iB over the full circle from the half spectra A (row i) and B (row i+1);
    // the u = 0 and u = T/2 bins of a real row are real, so only their real parts are used.
    const Cx<V>* a = H + i * U;
    const Cx<V>* b = H + (i + 1) * U;
    Cx<V> z[T];
    z[0] = {a[0].re, b[0].re};
    z[T / 2] = {a[T / 2].re, b[T / 2].re};
    for (int u = 1; u < T / 2; ++u) {
      z[u] = {a[u].re - b[u].im, a[u].im + b[u].re};
      z[T - u] = {a[u].re + b[u].im, b[u].re - a[u].im};
    }
    fft<T, true>(z, tw);
    for (int j = 0; j < T; ++j) {
      rb[i * T + j] = z[j].re;
      rb[(i + 1) * T + j] = z[j].im;
    }
  }
}

// Split <-> interleaved complex layout for n <= L lanes: dst[2l] = re[l], dst[2l+1] = im[l]. The
// kernel spectra are stored interleaved (one complex scalar per (k, c)); the transforms produce them
// split (lanes = kernels). Full vectors on AVX2 take two unpacks and a lane permute; the rest (tails,
// other ISAs) goes through a small buffer.
// With `stream` and a 32-byte aligned dst the stores are non-temporal (no read-for-ownership of
// lines that are only written); the caller then issues simd::stream_fence().
template <class S>
inline void store_interleaved(Vec<S> re, Vec<S> im, int n, S* dst, bool stream) {
  constexpr int L = Vec<S>::N;
#if FASTCNN_HAS_AVX2 && !FASTCNN_HAS_AVX512
  if (n == L) {
    Vec<S> a, b;
    if constexpr (sizeof(S) == 4) {
      const __m256 lo = _mm256_unpacklo_ps(re.v, im.v), hi = _mm256_unpackhi_ps(re.v, im.v);
      a = _mm256_permute2f128_ps(lo, hi, 0x20);
      b = _mm256_permute2f128_ps(lo, hi, 0x31);
    } else {
      const __m256d lo = _mm256_unpacklo_pd(re.v, im.v), hi = _mm256_unpackhi_pd(re.v, im.v);
      a = _mm256_permute2f128_pd(lo, hi, 0x20);
      b = _mm256_permute2f128_pd(lo, hi, 0x31);
    }
    if (stream && (reinterpret_cast<uintptr_t>(dst) & 31) == 0) {
      a.stream(dst);
      b.stream(dst + L);
    } else {
      a.store(dst);
      b.store(dst + L);
    }
    return;
  }
#endif
  S r[L], i[L];
  re.store(r);
  im.store(i);
  for (int l = 0; l < n; ++l) dst[2 * l] = r[l], dst[2 * l + 1] = i[l];
}

// Inverse of store_interleaved; lanes >= n read zero.
template <class S>
inline void load_interleaved(const S* src, int n, Vec<S>& re, Vec<S>& im) {
  constexpr int L = Vec<S>::N;
#if FASTCNN_HAS_AVX2 && !FASTCNN_HAS_AVX512
  if (n == L) {
    if constexpr (sizeof(S) == 4) {
      const __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + L);
      const __m256 t0 = _mm256_permute2f128_ps(a, b, 0x20), t1 = _mm256_permute2f128_ps(a, b, 0x31);
      re = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));
      im = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1));
    } else {
      const __m256d a = _mm256_loadu_pd(src), b = _mm256_loadu_pd(src + L);
      const __m256d t0 = _mm256_permute2f128_pd(a, b, 0x20), t1 = _mm256_permute2f128_pd(a, b, 0x31);
      re = _mm256_unpacklo_pd(t0, t1);
      im = _mm256_unpackhi_pd(t0, t1);
    }
    return;
  }
#endif
  S r[L] = {}, i[L] = {};
  for (int l = 0; l < n; ++l) r[l] = src[2 * l], i[l] = src[2 * l + 1];
  re = Vec<S>::load(r);
  im = Vec<S>::load(i);
}

// Where one lane's tile lies: the plane it belongs to (nullptr: an empty lane) and the plane
// coordinates of the tile's element (0, 0), which may lie outside the plane.
template <class S>
struct TileRef {
  S* plane;
  int64_t y0, x0;
};

// Tiling of the outputs: tiles of Mh x Mw outputs, numbered (n, ty, tx) row-major (the FFT and the
// Winograd convolutions: lane l of tile-vector tv is tile tv*L+l).
struct TileGrid {
  int64_t N, TY, TX, Mh, Mw;
  int64_t count() const { return N * TY * TX; }
  // Image and output-plane origin of tile t.
  void locate(int64_t t, int64_t& n, int64_t& oy, int64_t& ox) const {
    n = t / (TY * TX);
    const int64_t r = t % (TY * TX);
    oy = (r / TX) * Mh;
    ox = (r % TX) * Mw;
  }
  // Lanes of tile-vector tv: tile tv*L+l in plane (n, ch) of planes[N][CH][Hp][Wp], shifted by
  // (dy, dx) from its output origin; tiles past the last are empty lanes.
  template <class S, int L>
  void lanes(int64_t tv, S* planes, int64_t CH, int64_t ch, int64_t plane_size, int64_t dy, int64_t dx,
             TileRef<S>* out) const {
    for (int l = 0; l < L; ++l) {
      const int64_t t = tv * L + l;
      if (t >= count()) {
        out[l] = {nullptr, 0, 0};
        continue;
      }
      int64_t n, oy, ox;
      locate(t, n, oy, ox);
      out[l] = {planes + (n * CH + ch) * plane_size, oy + dy, ox + dx};
    }
  }
};

// rb (T*T*L scalars, [i][j][lane]) <- for each lane, plane[y0+i][x0+j] for i < eh, j < ew and inside
// the Hp x Wp plane; zero elsewhere.
template <int T, class S>
void load_tiles(S* rb, const TileRef<const S>* lanes, int64_t Hp, int64_t Wp, int eh, int ew) {
  constexpr int L = Vec<S>::N;
  std::memset(rb, 0, sizeof(S) * T * T * L);
  for (int l = 0; l < L; ++l) {
    const TileRef<const S>& t = lanes[l];
    if (!t.plane) continue;
    const int64_t ib = std::max<int64_t>(0, -t.y0), ie = std::min<int64_t>(eh, Hp - t.y0);
    const int64_t jb = std::max<int64_t>(0, -t.x0), je = std::min<int64_t>(ew, Wp - t.x0);
    for (int64_t i = ib; i < ie; ++i) {
      const S* row = t.plane + (t.y0 + i) * Wp + t.x0;
      S* out = rb + i * T * L + l;
      for (int64_t j = jb; j < je; ++j) out[j * L] = row[j];
    }
  }
}

// plane[y0+i][x0+j] <- rb[i][j][lane] for i < eh, j < ew, inside the plane, each non-empty lane.
template <int T, class S>
void store_tiles(const S* rb, const TileRef<S>* lanes, int64_t Hp, int64_t Wp, int eh, int ew) {
  constexpr int L = Vec<S>::N;
  for (int l = 0; l < L; ++l) {
    const TileRef<S>& t = lanes[l];
    if (!t.plane) continue;
    const int64_t ib = std::max<int64_t>(0, -t.y0), ie = std::min<int64_t>(eh, Hp - t.y0);
    const int64_t jb = std::max<int64_t>(0, -t.x0), je = std::min<int64_t>(ew, Wp - t.x0);
    for (int64_t i = ib; i < ie; ++i) {
      S* row = t.plane + (t.y0 + i) * Wp + t.x0;
      const S* in = rb + i * T * L + l;
      for (int64_t j = jb; j < je; ++j) row[j] = in[j * L];
    }
  }
}

}  // namespace fft
FASTCNN_ISA_NAMESPACE_END
