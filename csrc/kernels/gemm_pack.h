// Packing of GEMM operands into the interleaved panels the micro-kernel reads (csrc/kernels/gemm.cpp):
// a panel of W streams (W = MR rows of A or NR columns of B) holds, for each k, the W values of
// step k side by side: dst[k * W + i]. Streams past the matrix edge are zero.
//
// Depending on how the operand is stored, the W values of one k are either contiguous in memory
// (pack_runs: transposed A, plain B) or W strided streams (pack_streams: plain A, transposed B),
// which is a transpose; the AVX2 copy does that in 8 x 8 register blocks.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "common/isa.h"
#include "common/simd.h"

namespace fastcnn {
FASTCNN_ISA_INLINE_BEGIN
namespace gemm_pack {

// dst[k * W + i] = scale * src[k * ld + i] for i < n, zero for n <= i < W.
template <int W, class T>
void pack_runs(const T* src, int64_t ld, int n, int64_t kc, T scale, T* dst) {
  if (n == W) {  // a compile-time width: the compiler vectorises the copy
    for (int64_t k = 0; k < kc; ++k) {
      const T* s = src + k * ld;
      T* d = dst + k * W;
#pragma GCC unroll 32
      for (int i = 0; i < W; ++i) d[i] = scale * s[i];
    }
    return;
  }
  using V = simd::Vec<T>;
  if constexpr (W % V::N == 0) {  // a B edge panel: masked loads (the scalar loop cost 7 us of 16 x 289 x 289)
    const V vs = V::set1(scale);
    for (int64_t k = 0; k < kc; ++k)
      for (int j = 0; j < W; j += V::N)
        (j < n ? V::load(src + k * ld + j, n - j) * vs : V::zero()).store(dst + k * W + j);
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    int i = 0;
    for (; i < n; ++i) dst[k * W + i] = scale * src[k * ld + i];
    for (; i < W; ++i) dst[k * W + i] = T(0);
  }
}

#if FASTCNN_HAS_AVX2  // the AVX-512 copy too: conv_direct_blocks.h transposes its 16-lane blocks as two 8-lane halves
// Eight k-steps of up to 8 streams: column k of the 8 x 8 block src[i * ld + k] (rows past `rows`
// read as zero), scaled, as out[k].
inline void transpose_8x8(const float* src, int64_t ld, int rows, float scale, __m256 out[8]) {
  const __m256 s = _mm256_set1_ps(scale);
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_mul_ps(s, _mm256_loadu_ps(src + i * ld)) : _mm256_setzero_ps();
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);      // k = 0, 1 | 4, 5 of rows 2i, 2i+1
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);  // k = 2, 3 | 6, 7
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3 (h = 0) and 4-7 (h = 1)
    u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(1, 0, 1, 0));      // k = 0 | 4
    u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(3, 2, 3, 2));      // k = 1 | 5
    u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(1, 0, 1, 0));  // k = 2 | 6
    u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(3, 2, 3, 2));  // k = 3 | 7
  }
  for (int k = 0; k < 4; ++k) {
    out[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
    out[k + 4] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
  }
}

// The first `width` (6 or 8) lanes of v to p.
inline void store_lanes(float* p, __m256 v, int width) {
  if (width == 8) {
    _mm256_storeu_ps(p, v);
    return;
  }
  _mm_storeu_ps(p, _mm256_castps256_ps128(v));
  _mm_storel_pi(reinterpret_cast<__m64*>(p + 4), _mm256_extractf128_ps(v, 1));
}
#endif

// dst[k * W + i] = scale * src[i * ld + k] for i < n, zero for n <= i < W.
template <int W, class T>
void pack_streams(const T* src, int64_t ld, int n, int64_t kc, T scale, T* dst) {
  int64_t k = 0;
#if FASTCNN_HAS_AVX2  // AVX-512 too (MR = 14 streams: 8 + 6): the scalar loop was most of a small GEMM's time
  if constexpr (sizeof(T) == 4 && (W % 8 == 0 || W % 8 == 6)) {
    __m256 col[8];
    for (; k + 8 <= kc; k += 8)
      for (int g = 0; g < W; g += 8) {  // streams g .. g+7 of this panel
        const int width = std::min(8, W - g);
        transpose_8x8(src + int64_t(g) * ld + k, ld, std::max(0, std::min(width, n - g)), scale, col);
        for (int kk = 0; kk < 8; ++kk) store_lanes(dst + (k + kk) * W + g, col[kk], width);
      }
  }
#endif
  for (; k < kc; ++k) {
    int i = 0;
    for (; i < n; ++i) dst[k * W + i] = scale * src[i * ld + k];
    for (; i < W; ++i) dst[k * W + i] = T(0);
  }
}

}  // namespace gemm_pack
FASTCNN_ISA_INLINE_END
}  // namespace fastcnn
