// SIMD pieces the pooling kernels need beyond simd::Vec: the max-pooling update mask (greater, or
// NaN, as torch's kernels), and strided loads / strided accumulating stores that let the NCHW
// kernels vectorise along output columns when the stride is 2 (deinterleaving permutes on AVX-512
// and AVX2) and fall back to per-lane copies for other strides.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/simd.h"

namespace fastcnn {
FASTCNN_ISA_INLINE_BEGIN  // distinct per cpu ISA copy (see csrc/common/isa.h)
namespace pool_simd {
using simd::Vec;

// Lanes where v should replace the running max cur: v > cur, or v is NaN (so NaN propagates and
// the index points at the last NaN, as in torch's cpu kernels).
template <class T>
inline typename Vec<T>::Mask takes_max(Vec<T> v, Vec<T> cur) { return Vec<T>::either(v > cur, unordered(v, v)); }
template <class T>
inline bool takes_max(T v, T cur) { return v > cur || v != v; }

// Remembers whether any lane of the vectors fed to it was NaN. The separable max-pooling path
// takes plain maxima (x86 max drops a NaN in its first operand) and hands a row that saw a NaN to
// the exact path, so NaN results and indices still follow torch's rule.
template <class T>
class NanProbe {
 public:
  void add(Vec<T> a, Vec<T> b) { seen_ = Vec<T>::either(seen_, unordered(a, b)); }
  void add(Vec<T> a) { add(a, a); }
  bool seen() const { return Vec<T>::any(seen_); }

 private:
  typename Vec<T>::Mask seen_ = typename Vec<T>::Mask{};  // all lanes clear
};

// Lanes l < n hold p[l * s]; the others hold `fill`. Never touches memory past p[(n - 1) * s].
template <class T>
inline Vec<T> load_per_lane(const T* p, int64_t s, int n, T fill) {
  alignas(64) T buf[Vec<T>::N];
  for (int l = 0; l < Vec<T>::N; ++l) buf[l] = l < n ? p[l * s] : fill;
  return Vec<T>::load(buf);
}

inline Vec<float> load_even(const float* p, int n, float fill) {
  // the 2n - 1 elements p[0 .. 2n-2] in two registers, then the even ones
#if FASTCNN_HAS_AVX512
  const int len = 2 * n - 1;
  __m512 a = Vec<float>::load_or(p, std::min(len, 16), fill).v;
  __m512 b = Vec<float>::load_or(p + 16, std::max(len - 16, 0), fill).v;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  return _mm512_permutex2var_ps(a, even, b);
#elif FASTCNN_HAS_AVX2
  const int len = 2 * n - 1;
  __m256 a = Vec<float>::load_or(p, std::min(len, 8), fill).v;
  __m256 b = Vec<float>::load_or(p + 8, std::max(len - 8, 0), fill).v;
  __m256 s = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 | a4 a6 b4 b6
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
#else
  return load_per_lane(p, 2, n, fill);
#endif
}
inline Vec<double> load_even(const double* p, int n, double fill) {
#if FASTCNN_HAS_AVX512
  const int len = 2 * n - 1;
  __m512d a = Vec<double>::load_or(p, std::min(len, 8), fill).v;
  __m512d b = Vec<double>::load_or(p + 8, std::max(len - 8, 0), fill).v;
  const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  return _mm512_permutex2var_pd(a, even, b);
#elif FASTCNN_HAS_AVX2
  const int len = 2 * n - 1;
  __m256d a = Vec<double>::load_or(p, std::min(len, 4), fill).v;
  __m256d b = Vec<double>::load_or(p + 4, std::max(len - 4, 0), fill).v;
  __m256d s = _mm256_unpacklo_pd(a, b);  // a0 b0 a2 b2
  return _mm256_permute4x64_pd(s, _MM_SHUFFLE(3, 1, 2, 0));
#else
  return load_per_lane(p, 2, n, fill);
#endif
}

// out[l] = base + l * step + off[l] for l < n, where off holds non-negative integers below 2^24
// (exact in float and in int32): the argmax of a vector of outputs, converted to torch's int64.
inline void store_index(int64_t* out, int n, int64_t base, int64_t step, Vec<float> off) {
#if FASTCNN_HAS_AVX512
  if (n == 16) {
    const __m512i i32 = _mm512_cvttps_epi32(off.v);
    const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i lo = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(i32)),
                                        _mm512_add_epi64(_mm512_set1_epi64(base), _mm512_mullo_epi64(lanes, _mm512_set1_epi64(step))));
    const __m512i hi = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(i32, 1)),
                                        _mm512_add_epi64(_mm512_set1_epi64(base + 8 * step), _mm512_mullo_epi64(lanes, _mm512_set1_epi64(step))));
    _mm512_storeu_si512(out, lo);
    _mm512_storeu_si512(out + 8, hi);
    return;
  }
#elif FASTCNN_HAS_AVX2
  if (n == 8) {
    const __m256i i32 = _mm256_cvttps_epi32(off.v);
    const __m256i ramp = _mm256_setr_epi64x(base, base + step, base + 2 * step, base + 3 * step);
    const __m256i four = _mm256_set1_epi64x(4 * step);
    const __m256i lo = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(i32)), ramp);
    const __m256i hi = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(i32, 1)), _mm256_add_epi64(ramp, four));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 4), hi);
    return;
  }
#endif
  alignas(64) float buf[Vec<float>::N];
  off.store(buf);
  for (int l = 0; l < n; ++l) out[l] = base + l * step + static_cast<int64_t>(buf[l]);
}
inline void store_index(int64_t* out, int n, int64_t base, int64_t step, Vec<double> off) {
#if FASTCNN_HAS_AVX512
  if (n == 8) {
    const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i v = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_cvttpd_epi32(off.v)),
                                       _mm512_add_epi64(_mm512_set1_epi64(base), _mm512_mullo_epi64(lanes, _mm512_set1_epi64(step))));
    _mm512_storeu_si512(out, v);
    return;
  }
#elif FASTCNN_HAS_AVX2
  if (n == 4) {
    const __m256i ramp = _mm256_setr_epi64x(base, base + step, base + 2 * step, base + 3 * step);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(off.v)), ramp));
    return;
  }
#endif
  alignas(64) double buf[Vec<double>::N];
  off.store(buf);
  for (int l = 0; l < n; ++l) out[l] = base + l * step + static_cast<int64_t>(buf[l]);
}

// Lanes l < n hold p[l]: a plain load when the vector is full, a masked one otherwise.
template <class T>
inline Vec<T> load_n(const T* p, int n, T fill) {
  return n == Vec<T>::N ? Vec<T>::load(p) : Vec<T>::load_or(p, n, fill);
}

// even[l] = p[2l], odd[l] = p[2l + 1] for every lane: reads p[0 .. 2N-1] with plain loads.
inline void deinterleave2(const float* p, Vec<float>& even, Vec<float>& odd) {
#if FASTCNN_HAS_AVX512
  const __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
  even = _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
  odd = _mm512_permutex2var_ps(a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
#elif FASTCNN_HAS_AVX2
  const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
#else
  alignas(16) float e[Vec<float>::N], o[Vec<float>::N];
  for (int l = 0; l < Vec<float>::N; ++l) e[l] = p[2 * l], o[l] = p[2 * l + 1];
  even = Vec<float>::load(e);
  odd = Vec<float>::load(o);
#endif
}
inline void deinterleave2(const double* p, Vec<double>& even, Vec<double>& odd) {
#if FASTCNN_HAS_AVX512
  const __m512d a = _mm512_loadu_pd(p), b = _mm512_loadu_pd(p + 8);
  even = _mm512_permutex2var_pd(a, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b);
  odd = _mm512_permutex2var_pd(a, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b);
#elif FASTCNN_HAS_AVX2
  const __m256d a = _mm256_loadu_pd(p), b = _mm256_loadu_pd(p + 4);
  even = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
  odd = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
#else
  alignas(16) double e[Vec<double>::N], o[Vec<double>::N];
  for (int l = 0; l < Vec<double>::N; ++l) e[l] = p[2 * l], o[l] = p[2 * l + 1];
  even = Vec<double>::load(e);
  odd = Vec<double>::load(o);
#endif
}

// Calls fn(j, v) for the kw taps of a full vector of outputs whose window columns start at row:
// v[l] = row[l * s + j * dil]. Needs row[(N-1) * s + (kw-1) * dil + 1] readable. Stride 2 loads
// each pair of registers once and takes both the even and the odd lanes from it.
template <class T, class Fn>
inline void full_vector_taps(const T* row, int64_t s, int64_t kw, int64_t dil, Fn&& fn) {
  using V = Vec<T>;
  if (s == 1) {
    for (int64_t j = 0; j < kw; ++j) fn(j, V::load(row + j * dil));
  } else if (s == 2) {
    V even = V::zero(), odd = V::zero();  // set on the first tap
    int64_t loaded = -1;
    for (int64_t j = 0; j < kw; ++j) {
      const int64_t off = j * dil, base = off & ~int64_t(1);
      if (base != loaded) {
        deinterleave2(row + base, even, odd);
        loaded = base;
      }
      fn(j, (off & 1) ? odd : even);
    }
  } else {
    for (int64_t j = 0; j < kw; ++j) fn(j, load_per_lane(row + j * dil, s, V::N, T(0)));
  }
}

// Lanes l < n hold p[l * s] (others `fill`).
template <class T>
inline Vec<T> load_strided(const T* p, int64_t s, int n, T fill) {
  if (s == 1) return Vec<T>::load_or(p, n, fill);
  if (s == 2) return load_even(p, n, fill);
  return load_per_lane(p, s, n, fill);
}

// p[l * s] += g[l] for l < n. Never touches memory past p[(n - 1) * s].
template <class T>
inline void add_per_lane(T* p, int64_t s, Vec<T> g, int n) {
  alignas(64) T buf[Vec<T>::N];
  g.store(buf);
  for (int l = 0; l < n; ++l) p[l * s] += buf[l];
}

template <class T>
inline void add_strided(T* p, int64_t s, Vec<T> g, int n) {
  using V = Vec<T>;
  if (s == 1) {
    (V::load(p, n) + g).store(p, n);
    return;
  }
#if FASTCNN_HAS_AVX512
  if (s == 2) {
    // spread g over the even lanes of two registers and add under the even-lane mask
    const int len = 2 * n - 1;
    const int n_lo = std::min(len, V::N), n_hi = std::max(len - V::N, 0);
    if constexpr (sizeof(T) == 4) {
      const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
      const __m512i hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
      const __mmask16 even = 0x5555;
      __m512 a = V::load(p, n_lo).v;
      a = _mm512_mask_add_ps(a, even, a, _mm512_permutexvar_ps(lo, g.v));
      V(a).store(p, n_lo);
      if (n_hi > 0) {
        __m512 b = V::load(p + V::N, n_hi).v;
        b = _mm512_mask_add_ps(b, even, b, _mm512_permutexvar_ps(hi, g.v));
        V(b).store(p + V::N, n_hi);
      }
    } else {
      const __m512i lo = _mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3);
      const __m512i hi = _mm512_setr_epi64(4, 4, 5, 5, 6, 6, 7, 7);
      const __mmask8 even = 0x55;
      __m512d a = V::load(p, n_lo).v;
      a = _mm512_mask_add_pd(a, even, a, _mm512_permutexvar_pd(lo, g.v));
      V(a).store(p, n_lo);
      if (n_hi > 0) {
        __m512d b = V::load(p + V::N, n_hi).v;
        b = _mm512_mask_add_pd(b, even, b, _mm512_permutexvar_pd(hi, g.v));
        V(b).store(p + V::N, n_hi);
      }
    }
    return;
  }
#endif
  add_per_lane(p, s, g, n);
}

}  // namespace pool_simd
FASTCNN_ISA_INLINE_END
}  // namespace fastcnn
