// Vec<T>: one SIMD register of float or double for the ISA this translation unit is compiled for
// (AVX-512: 16 floats / 8 doubles, AVX2: 8 / 4, generic: SSE2-width GCC vectors, 4 / 2).
//
// Kernel files in csrc/kernels/ are written once against this interface; setup.py compiles them
// once per ISA. Only element-wise operations, masked tails and horizontal reductions live here;
// micro-kernels that need ISA-specific tricks (GEMM, transposes) may use intrinsics directly under
// `#if FASTCNN_HAS_AVX512` / `FASTCNN_HAS_AVX2`.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/isa.h"

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#define FASTCNN_HAS_AVX512 1
#else
#define FASTCNN_HAS_AVX512 0
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define FASTCNN_HAS_AVX2 1
#else
#define FASTCNN_HAS_AVX2 0
#endif

namespace fastcnn {
FASTCNN_ISA_INLINE_BEGIN
namespace simd {

template <class T>
struct Vec;

// The members every x86 Vec<T> spells alike but for the register type R, its lane mask type M, the
// intrinsic prefix P (_mm512, _mm256), the type suffix S (ps, pd) and the compare intrinsic CMP (to
// a mask register on AVX-512, a vector on AVX2). Macros, not a template over intrinsics, so that
// each member stays a one-instruction inline.
#define FASTCNN_VEC_X86_MEMBERS(T, R, M, P, S, CMP)                                              \
  using Reg = R;                                                                                 \
  using Mask = M;                                                                                \
  static constexpr int N = sizeof(R) / sizeof(T);                                                \
  Reg v;                                                                                         \
  Vec() = default;                                                                               \
  Vec(Reg r) : v(r) {}                                                                           \
  static Vec zero() { return P##_setzero_##S(); }                                                \
  static Vec set1(T x) { return P##_set1_##S(x); }                                               \
  static Vec load(const T* p) { return P##_loadu_##S(p); }                                       \
  void store(T* p) const { P##_storeu_##S(p, v); }                                               \
  void stream(T* p) const { P##_stream_##S(p, v); } /* p aligned to sizeof(Reg); bypasses the cache */ \
  friend Vec operator+(Vec a, Vec b) { return P##_add_##S(a.v, b.v); }                           \
  friend Vec operator-(Vec a, Vec b) { return P##_sub_##S(a.v, b.v); }                           \
  friend Vec operator*(Vec a, Vec b) { return P##_mul_##S(a.v, b.v); }                           \
  friend Vec operator/(Vec a, Vec b) { return P##_div_##S(a.v, b.v); }                           \
  friend Vec fmadd(Vec a, Vec b, Vec c) { return P##_fmadd_##S(a.v, b.v, c.v); }                 \
  /* max/min return b where either is NaN (x86 semantics): max(zero, x) keeps a NaN x. */        \
  friend Vec max(Vec a, Vec b) { return P##_max_##S(a.v, b.v); }                                \
  friend Vec min(Vec a, Vec b) { return P##_min_##S(a.v, b.v); }                                \
  friend Vec sqrt(Vec a) { return P##_sqrt_##S(a.v); }                                           \
  friend Mask operator>(Vec a, Vec b) { return CMP(a.v, b.v, _CMP_GT_OQ); }                      \
  friend Mask operator>=(Vec a, Vec b) { return CMP(a.v, b.v, _CMP_GE_OQ); }                     \
  friend Mask operator<(Vec a, Vec b) { return CMP(a.v, b.v, _CMP_LT_OQ); }                      \
  friend Mask operator==(Vec a, Vec b) { return CMP(a.v, b.v, _CMP_EQ_OQ); }                     \
  friend Mask unordered(Vec a, Vec b) { return CMP(a.v, b.v, _CMP_UNORD_Q); } /* a or b NaN */

#if FASTCNN_HAS_AVX512
// Vec<T> on AVX-512: R the register type, S the intrinsic suffix, M the lane mask type (a bit a lane).
#define FASTCNN_VEC_AVX512(T, R, S, M)                                                                   \
  template <>                                                                                         \
  struct Vec<T> {                                                                                     \
    FASTCNN_VEC_X86_MEMBERS(T, R, M, _mm512, S, _mm512_cmp_##S##_mask)                                \
    static Mask tail(int n) { return n >= N ? Mask((1u << N) - 1u) : Mask((1u << n) - 1u); }          \
    static Vec load(const T* p, int n) { return _mm512_maskz_loadu_##S(tail(n), p); }                 \
    static Vec load_or(const T* p, int n, T fill) {                                                   \
      return _mm512_mask_loadu_##S(_mm512_set1_##S(fill), tail(n), p);                                \
    }                                                                                                 \
    void store(T* p, int n) const { _mm512_mask_storeu_##S(p, tail(n), v); }                          \
    friend Vec select(Mask m, Vec a, Vec b) { return _mm512_mask_blend_##S(m, b.v, a.v); } /* m ? a : b */ \
    friend T reduce_add(Vec a) { return _mm512_reduce_add_##S(a.v); }                                 \
    friend T reduce_max(Vec a) { return _mm512_reduce_max_##S(a.v); }                                 \
    static Mask either(Mask a, Mask b) { return a | b; } /* lanes set in a or b */                    \
    static bool any(Mask m) { return m != 0; }                                                        \
  };
FASTCNN_VEC_AVX512(float, __m512, ps, __mmask16)
FASTCNN_VEC_AVX512(double, __m512d, pd, __mmask8)
#undef FASTCNN_VEC_AVX512

#elif FASTCNN_HAS_AVX2
namespace detail {
// Lane masks for partial loads/stores: row n has its first n lanes set.
alignas(32) inline const int32_t kTail32[9][8] = {
    {0, 0, 0, 0, 0, 0, 0, 0},         {-1, 0, 0, 0, 0, 0, 0, 0},       {-1, -1, 0, 0, 0, 0, 0, 0},
    {-1, -1, -1, 0, 0, 0, 0, 0},      {-1, -1, -1, -1, 0, 0, 0, 0},    {-1, -1, -1, -1, -1, 0, 0, 0},
    {-1, -1, -1, -1, -1, -1, 0, 0},   {-1, -1, -1, -1, -1, -1, -1, 0}, {-1, -1, -1, -1, -1, -1, -1, -1}};
alignas(32) inline const int64_t kTail64[5][4] = {
    {0, 0, 0, 0}, {-1, 0, 0, 0}, {-1, -1, 0, 0}, {-1, -1, -1, 0}, {-1, -1, -1, -1}};
}  // namespace detail

// Vec<T> on AVX2: R the register type, S the intrinsic suffix, TAIL the lane-mask table (detail::
// kTail32 / kTail64); a Mask is a vector whose lanes are all ones or all zeros. The horizontal
// reductions differ per type: they follow the two specialisations.
#define FASTCNN_VEC_AVX2(T, R, S, TAIL)                                                                  \
  template <>                                                                                         \
  struct Vec<T> {                                                                                     \
    FASTCNN_VEC_X86_MEMBERS(T, R, R, _mm256, S, _mm256_cmp_##S)                                       \
    static __m256i tail(int n) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(TAIL[n >= N ? N : n])); } \
    static Vec load(const T* p, int n) { return _mm256_maskload_##S(p, tail(n)); }                    \
    static Vec load_or(const T* p, int n, T fill) {                                                   \
      return _mm256_blendv_##S(_mm256_set1_##S(fill), _mm256_maskload_##S(p, tail(n)), _mm256_castsi256_##S(tail(n))); \
    }                                                                                                 \
    /* A masked store is microcoded on AMD cores (many times a plain store's cost): only for a tail. */ \
    void store(T* p, int n) const {                                                                   \
      if (n >= N)                                                                                     \
        _mm256_storeu_##S(p, v);                                                                      \
      else                                                                                            \
        _mm256_maskstore_##S(p, tail(n), v);                                                          \
    }                                                                                                 \
    friend Vec select(Mask m, Vec a, Vec b) { return _mm256_blendv_##S(b.v, a.v, m); } /* m ? a : b */ \
    static Mask either(Mask a, Mask b) { return _mm256_or_##S(a, b); }                                \
    static bool any(Mask m) { return _mm256_movemask_##S(m) != 0; }                                   \
  };
FASTCNN_VEC_AVX2(float, __m256, ps, detail::kTail32)
FASTCNN_VEC_AVX2(double, __m256d, pd, detail::kTail64)
#undef FASTCNN_VEC_AVX2

inline float reduce_add(Vec<float> a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
inline float reduce_max(Vec<float> a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
inline double reduce_add(Vec<double> a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
inline double reduce_max(Vec<double> a) {
  __m128d s = _mm_max_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
  return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
}

#else
// Portable fallback: GCC vector extensions at SSE2 width (every x86-64 has SSE2); the compiler
// lowers them for any target, so this copy also documents the semantics of the others.
template <class T>
struct GenericVec {
  static constexpr int N = 16 / sizeof(T);
  typedef T Reg __attribute__((vector_size(16)));
  struct Mask { bool lane[N]; };
  Reg v;
  GenericVec() = default;
  GenericVec(Reg r) : v(r) {}
  static GenericVec zero() { return set1(T(0)); }
  static GenericVec set1(T x) { Reg r; for (int i = 0; i < N; ++i) r[i] = x; return r; }
  static GenericVec load(const T* p) { Reg r; std::memcpy(&r, p, sizeof(r)); return r; }
  static GenericVec load(const T* p, int n) { return load_or(p, n, T(0)); }
  static GenericVec load_or(const T* p, int n, T fill) {
    Reg r; for (int i = 0; i < N; ++i) r[i] = i < n ? p[i] : fill; return r;
  }
  void store(T* p) const { std::memcpy(p, &v, sizeof(v)); }
  void store(T* p, int n) const { for (int i = 0; i < N && i < n; ++i) p[i] = v[i]; }
  void stream(T* p) const { store(p); }
  friend GenericVec operator+(GenericVec a, GenericVec b) { return Reg(a.v + b.v); }
  friend GenericVec operator-(GenericVec a, GenericVec b) { return Reg(a.v - b.v); }
  friend GenericVec operator*(GenericVec a, GenericVec b) { return Reg(a.v * b.v); }
  friend GenericVec operator/(GenericVec a, GenericVec b) { return Reg(a.v / b.v); }
  friend GenericVec fmadd(GenericVec a, GenericVec b, GenericVec c) { return Reg(a.v * b.v + c.v); }
  friend GenericVec max(GenericVec a, GenericVec b) { Reg r; for (int i = 0; i < N; ++i) r[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i]; return r; }
  friend GenericVec min(GenericVec a, GenericVec b) { Reg r; for (int i = 0; i < N; ++i) r[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i]; return r; }
  friend Mask operator>(GenericVec a, GenericVec b) { Mask m; for (int i = 0; i < N; ++i) m.lane[i] = a.v[i] > b.v[i]; return m; }
  friend Mask operator>=(GenericVec a, GenericVec b) { Mask m; for (int i = 0; i < N; ++i) m.lane[i] = a.v[i] >= b.v[i]; return m; }
  friend Mask operator<(GenericVec a, GenericVec b) { Mask m; for (int i = 0; i < N; ++i) m.lane[i] = a.v[i] < b.v[i]; return m; }
  friend Mask operator==(GenericVec a, GenericVec b) { Mask m; for (int i = 0; i < N; ++i) m.lane[i] = a.v[i] == b.v[i]; return m; }
  friend Mask unordered(GenericVec a, GenericVec b) { Mask m; for (int i = 0; i < N; ++i) m.lane[i] = a.v[i] != a.v[i] || b.v[i] != b.v[i]; return m; }
  static Mask either(Mask a, Mask b) { for (int i = 0; i < N; ++i) a.lane[i] = a.lane[i] || b.lane[i]; return a; }
  friend GenericVec select(Mask m, GenericVec a, GenericVec b) { Reg r; for (int i = 0; i < N; ++i) r[i] = m.lane[i] ? a.v[i] : b.v[i]; return r; }
  friend GenericVec sqrt(GenericVec a) { Reg r; for (int i = 0; i < N; ++i) r[i] = std::sqrt(a.v[i]); return r; }
  friend T reduce_add(GenericVec a) { T s = 0; for (int i = 0; i < N; ++i) s += a.v[i]; return s; }
  friend T reduce_max(GenericVec a) { T s = a.v[0]; for (int i = 1; i < N; ++i) s = a.v[i] > s ? a.v[i] : s; return s; }
  static bool any(Mask m) { for (int i = 0; i < N; ++i) if (m.lane[i]) return true; return false; }
};
template <> struct Vec<float> : GenericVec<float> { using GenericVec<float>::GenericVec; Vec(GenericVec<float> g) : GenericVec<float>(g) {} };
template <> struct Vec<double> : GenericVec<double> { using GenericVec<double>::GenericVec; Vec(GenericVec<double> g) : GenericVec<double>(g) {} };
#endif
#undef FASTCNN_VEC_X86_MEMBERS

// Orders non-temporal stores before what follows (after a loop of Vec::stream).
inline void stream_fence() { _mm_sfence(); }

// exp(x) for float lanes: Cephes range reduction x = n ln2 + r and a degree-6 polynomial for
// e^r (about 2 ulp on [-87.3, 88.0]), then scaling by 2^n: scalef on AVX-512, exponent-field
// arithmetic on AVX2 (x clamped to 88.0 there so 2^n stays finite; the activations that use exp
// saturate long before), the C library per lane in the generic copy.
inline Vec<float> exp(Vec<float> x) {
#if FASTCNN_HAS_AVX512 || FASTCNN_HAS_AVX2
  using V = Vec<float>;
#if FASTCNN_HAS_AVX512
  x = min(V::set1(88.7228f), max(V::set1(-87.3365f), x));  // this order keeps NaN
  V n = _mm512_roundscale_ps((x * V::set1(1.44269504088896341f)).v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
  x = min(V::set1(88.0f), max(V::set1(-87.3365f), x));  // this order keeps NaN
  V n = _mm256_round_ps((x * V::set1(1.44269504088896341f)).v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#endif
  V r = fmadd(n, V::set1(-0.693359375f), x);
  r = fmadd(n, V::set1(2.12194440e-4f), r);
  V p = V::set1(1.9875691500e-4f);
  p = fmadd(p, r, V::set1(1.3981999507e-3f));
  p = fmadd(p, r, V::set1(8.3334519073e-3f));
  p = fmadd(p, r, V::set1(4.1665795894e-2f));
  p = fmadd(p, r, V::set1(1.6666665459e-1f));
  p = fmadd(p, r, V::set1(5.0000001201e-1f));
  p = fmadd(p, r * r, r + V::set1(1.0f));
#if FASTCNN_HAS_AVX512
  return _mm512_scalef_ps(p.v, n.v);
#else
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23);
  return p * V(_mm256_castsi256_ps(e));
#endif
#else
  alignas(64) float buf[Vec<float>::N];
  x.store(buf);
  for (int i = 0; i < Vec<float>::N; ++i) buf[i] = std::exp(buf[i]);
  return Vec<float>::load(buf);
#endif
}

// double is the gradcheck dtype, not a speed target: the C library per lane.
inline Vec<double> exp(Vec<double> x) {
  using V = Vec<double>;
  alignas(64) double buf[V::N];
  x.store(buf);
  for (int i = 0; i < V::N; ++i) buf[i] = std::exp(buf[i]);
  return V::load(buf);
}

namespace detail {
// Splits positive normal x into mantissa m in [0.5, 1) and exponent e (x = m 2^e), as frexp; W the
// register width in bits (the intrinsics differ only in it).
#define FASTCNN_FREXP_NORMAL(W)                                                                   \
  inline void frexp_normal(Vec<float> x, Vec<float>& m, Vec<float>& e) {                          \
    const __m##W##i bits = _mm##W##_castps_si##W(x.v);                                            \
    e = _mm##W##_cvtepi32_ps(_mm##W##_sub_epi32(_mm##W##_srli_epi32(bits, 23), _mm##W##_set1_epi32(126))); \
    m = _mm##W##_castsi##W##_ps(_mm##W##_or_si##W(_mm##W##_and_si##W(bits, _mm##W##_set1_epi32(0x007FFFFF)), \
                                                  _mm##W##_set1_epi32(0x3F000000)));              \
  }
#if FASTCNN_HAS_AVX512
FASTCNN_FREXP_NORMAL(512)
#elif FASTCNN_HAS_AVX2
FASTCNN_FREXP_NORMAL(256)
#endif
#undef FASTCNN_FREXP_NORMAL

template <class T, class F>
inline Vec<T> per_lane(Vec<T> x, F f) {
  alignas(64) T buf[Vec<T>::N];
  x.store(buf);
  for (int i = 0; i < Vec<T>::N; ++i) buf[i] = f(buf[i]);
  return Vec<T>::load(buf);
}
}  // namespace detail

// log(x) for float lanes: Cephes logf (x = m 2^e with m in [sqrt(1/2), sqrt(2)), a degree-9
// polynomial in m - 1; about 1 ulp). Subnormal x is scaled by 2^23 first; x == 0 gives -inf, x < 0
// and NaN give NaN, +inf gives +inf, as std::log. The C library per lane in the generic copy.
inline Vec<float> log(Vec<float> x) {
#if FASTCNN_HAS_AVX512 || FASTCNN_HAS_AVX2
  using V = Vec<float>;
  const V tiny = V::set1(1.17549435e-38f);  // FLT_MIN
  const auto subnormal = x < tiny;
  V m, e;
  detail::frexp_normal(select(subnormal, x * V::set1(8388608.0f), x), m, e);
  e = select(subnormal, e - V::set1(23.0f), e);
  const auto low = m < V::set1(0.707106781186547524f);
  e = select(low, e - V::set1(1.0f), e);
  const V f = select(low, m + m, m) - V::set1(1.0f);
  const V z = f * f;
  V p = V::set1(7.0376836292e-2f);
  p = fmadd(p, f, V::set1(-1.1514610310e-1f));
  p = fmadd(p, f, V::set1(1.1676998740e-1f));
  p = fmadd(p, f, V::set1(-1.2420140846e-1f));
  p = fmadd(p, f, V::set1(1.4249322787e-1f));
  p = fmadd(p, f, V::set1(-1.6668057665e-1f));
  p = fmadd(p, f, V::set1(2.0000714765e-1f));
  p = fmadd(p, f, V::set1(-2.4999993993e-1f));
  p = fmadd(p, f, V::set1(3.3333331174e-1f));
  V y = p * f * z;
  y = fmadd(e, V::set1(-2.12194440e-4f), y);
  y = fmadd(z, V::set1(-0.5f), y);
  V r = fmadd(e, V::set1(0.693359375f), f + y);
  const V inf = V::set1(INFINITY);
  r = select(x == inf, inf, r);
  r = select(x == V::zero(), V::zero() - inf, r);
  return select(x < V::zero(), V::set1(NAN), select(x == x, r, x));  // x == x is false for NaN
#else
  return detail::per_lane(x, [](float v) { return std::log(v); });
#endif
}

inline Vec<double> log(Vec<double> x) {
  return detail::per_lane(x, [](double v) { return std::log(v); });
}

// log(1 + x) without losing small x: with u = 1 + x rounded, log(u) * x / (u - 1) corrects the
// rounding of u (Goldberg); u == 1 means x is below half an ulp of 1, where log1p(x) = x.
template <class T>
inline Vec<T> log1p(Vec<T> x) {
  using V = Vec<T>;
  const V u = V::set1(T(1)) + x;
  const V d = u - V::set1(T(1));
  const V r = select(d == V::zero(), x, log(u) * (x / d));
  return select(x == V::set1(T(INFINITY)), x, r);
}

// a^e for a >= 0 (norms and LRN raise magnitudes and sums of squares to real powers): exp(e log a)
// for float lanes, 0^e = 0 for e > 0, inf for e < 0, 1 for e == 0 as std::pow; the C library per
// lane for double.
inline Vec<float> pow_nonneg(Vec<float> a, float e) {
  using V = Vec<float>;
  if (e == 0.0f) return V::set1(1.0f);
  const V r = exp(V::set1(e) * log(a));
  return select(a == V::zero(), V::set1(e > 0.0f ? 0.0f : INFINITY), r);
}

inline Vec<double> pow_nonneg(Vec<double> a, double e) {
  return detail::per_lane(a, [e](double v) { return std::pow(v, e); });
}

}  // namespace simd
FASTCNN_ISA_INLINE_END
}  // namespace fastcnn
