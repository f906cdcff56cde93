// Complex GEMM micro-kernels of the FFT convolution, one frequency at a time. Spectra of tiles are
// stored as [tile-vector][channel] complex vectors (L tiles' real parts, then their imaginary
// parts: 2L scalars); kernel spectra as complex scalars. Compiled per ISA (conv_fft.cpp only).
#pragma once
#include <cstdint>
#include <type_traits>

#include "common/simd.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace fft {

using simd::Vec;

// c - a * b (one instruction where the ISA has it).
template <class S>
inline Vec<S> fnmadd(Vec<S> a, Vec<S> b, std::common_type_t<Vec<S>> c) {  // c: not deduced (generic fmadd returns a base type)
  constexpr bool f32 = sizeof(S) == 4;
#if FASTCNN_HAS_AVX512
  if constexpr (f32) return _mm512_fnmadd_ps(a.v, b.v, c.v); else return _mm512_fnmadd_pd(a.v, b.v, c.v);
#elif FASTCNN_HAS_AVX2
  if constexpr (f32) return _mm256_fnmadd_ps(a.v, b.v, c.v); else return _mm256_fnmadd_pd(a.v, b.v, c.v);
#else
  return c - a * b;
#endif
}

// Register blocks: AVX-512 has 32 vector registers, AVX2 and SSE 16.
#if FASTCNN_HAS_AVX512
constexpr int kFwdNR = 8;   // output channels per forward micro-kernel: 16 accumulators
constexpr int kGradKB = 3;  // weight-grad block: 3 x 3 (k, c) pairs, 18 accumulators
constexpr int kGradCB = 3;
#else
constexpr int kFwdNR = 4;
constexpr int kGradKB = 2;
constexpr int kGradCB = 2;
#endif

// Forward, one tile-vector and NR output channels at one frequency:
//   y[j] = sum_c x[c] * w[j][c]   (x[c]: complex vector at x + 2L c; w[j][c]: complex scalar at
//   w + wstride*j + 2c, already conjugated for correlation; y[j]: complex vector at y + 2L j).
template <int NR, class S>
inline void cgemm_forward(const S* x, const S* w, int64_t wstride, int64_t C, S* y) {
  using V = Vec<S>;
  constexpr int L = V::N;
  V ar[NR], ai[NR];
  for (int j = 0; j < NR; ++j) ar[j] = ai[j] = V::zero();
  for (int64_t c = 0; c < C; ++c) {
    const V xr = V::load(x + 2 * L * c), xi = V::load(x + 2 * L * c + L);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const V wr = V::set1(w[j * wstride + 2 * c]), wi = V::set1(w[j * wstride + 2 * c + 1]);
      ar[j] = fnmadd(xi, wi, fmadd(xr, wr, ar[j]));
      ai[j] = fmadd(xi, wr, fmadd(xr, wi, ai[j]));
    }
  }
  for (int j = 0; j < NR; ++j) {
    ar[j].store(y + 2 * L * j);
    ai[j].store(y + 2 * L * j + L);
  }
}

// cgemm_forward for nr <= NR channels (the edge of a channel block).
template <int NR, class S>
inline void cgemm_forward_n(int nr, const S* x, const S* w, int64_t wstride, int64_t C, S* y) {
  if constexpr (NR > 1) {
    if (nr < NR) return cgemm_forward_n<NR - 1, S>(nr, x, w, wstride, C, y);
  }
  cgemm_forward<NR, S>(x, w, wstride, C, y);
}

// Weight gradient, KB x CB (k, c) pairs at one frequency, summed over ntv tile-vectors and their lanes:
//   out[i][j] += sum_t conj(g[t][i]) * x[t][j]
// g[t][i] at g + gstride*t + 2L i, x[t][j] at x + xstride*t + 2L j (complex vectors); out[i][j] is a
// complex scalar at out + ostride*i + 2j.
template <int KB, int CB, class S>
inline void cgemm_weight_grad(const S* g, int64_t gstride, const S* x, int64_t xstride, int64_t ntv, S* out,
                              int64_t ostride) {
  using V = Vec<S>;
  constexpr int L = V::N;
  V ar[KB][CB], ai[KB][CB];
  for (int i = 0; i < KB; ++i)
    for (int j = 0; j < CB; ++j) ar[i][j] = ai[i][j] = V::zero();
  for (int64_t t = 0; t < ntv; ++t) {
    V gr[KB], gi[KB], xr[CB], xi[CB];
    for (int i = 0; i < KB; ++i) {
      gr[i] = V::load(g + gstride * t + 2 * L * i);
      gi[i] = V::load(g + gstride * t + 2 * L * i + L);
    }
    for (int j = 0; j < CB; ++j) {
      xr[j] = V::load(x + xstride * t + 2 * L * j);
      xi[j] = V::load(x + xstride * t + 2 * L * j + L);
    }
    for (int i = 0; i < KB; ++i)
      for (int j = 0; j < CB; ++j) {
        ar[i][j] = fmadd(gi[i], xi[j], fmadd(gr[i], xr[j], ar[i][j]));
        ai[i][j] = fnmadd(gi[i], xr[j], fmadd(gr[i], xi[j], ai[i][j]));
      }
  }
  for (int i = 0; i < KB; ++i)
    for (int j = 0; j < CB; ++j) {
      out[ostride * i + 2 * j] += reduce_add(ar[i][j]);
      out[ostride * i + 2 * j + 1] += reduce_add(ai[i][j]);
    }
}

// cgemm_weight_grad for kb <= KB, cb <= CB (block edges).
template <int KB, int CB, class S>
inline void cgemm_weight_grad_n(int kb, int cb, const S* g, int64_t gstride, const S* x, int64_t xstride,
                                int64_t ntv, S* out, int64_t ostride) {
  if constexpr (KB > 1) {
    if (kb < KB) return cgemm_weight_grad_n<KB - 1, CB, S>(kb, cb, g, gstride, x, xstride, ntv, out, ostride);
  }
  if constexpr (CB > 1) {
    if (cb < CB) return cgemm_weight_grad_n<KB, CB - 1, S>(kb, cb, g, gstride, x, xstride, ntv, out, ostride);
  }
  cgemm_weight_grad<KB, CB, S>(g, gstride, x, xstride, ntv, out, ostride);
}

}  // namespace fft
FASTCNN_ISA_NAMESPACE_END
