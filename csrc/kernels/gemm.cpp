// BLIS-style GEMM (Goto / Van Zee & van de Geijn): the five loops around a register micro-kernel.
//
//   for jc in N by NC:                 B block  KC x NC  packed into NR-wide panels (L3)
//     for pc in K by KC:
//       for ic in M by MC:             A block  MC x KC  packed into MR-tall panels (L2), alpha folded in
//         for jr in NC by NR:          one B micro-panel KC x NR, reused by every ir (L1)
//           for ir in MC by MR:        micro-kernel: MR x NR accumulators in registers, K-loop of FMAs
//
// Packing reads A and B in whichever orientation they are stored, so transposes are free, and pads
// the last panel with zeros, so the micro-kernel always runs full tiles and only its store is masked.
// Threads split C into column strips (or row strips when C is tall and thin), each thread with its
// own packing buffers.
#include "kernels/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "common/simd.h"
#include "common/threads.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {
using simd::Vec;

// Register tile: MR rows x NV vectors. AVX-512 has 32 registers: 14 x 2 accumulators + 2 B vectors
// (A comes as a broadcast operand); AVX2 and SSE have 16: 6 x 2 accumulators + 2 B + 1 A.
#if FASTCNN_HAS_AVX512
constexpr int kMR = 14;
#else
constexpr int kMR = 6;
#endif
constexpr int kNV = 2;

template <class T>
struct Blocking {
  static constexpr int MR = kMR;
  static constexpr int NR = kNV * Vec<T>::N;
  // KC x NR B micro-panel about 24-48 KB (L1 + prefetch), MC x KC A block about 250 KB (L2 of 1 MB),
  // KC x NC B block a few MB (L3 of 32 MB).
  static constexpr int64_t KC = sizeof(T) == 4 ? 384 : 256;
  static constexpr int64_t MC = MR * (sizeof(T) == 4 ? 12 : 10);
  static constexpr int64_t NC = 3072;
};

template <class T>
struct AlignedBuffer {
  struct Free { void operator()(T* p) const { std::free(p); } };
  std::unique_ptr<T, Free> data;
  int64_t size = 0;
  T* get(int64_t n) {
    if (n > size) {
      const size_t bytes = ((static_cast<size_t>(n) * sizeof(T) + 63) / 64) * 64;
      data.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
      if (!data) throw std::bad_alloc();
      size = n;
    }
    return data.get();
  }
};

// Ap[panel][k][i] = alpha * op(A)(i0 + panel*MR + i, p0 + k), zero past row M.
template <class T>
void pack_a(bool trans, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T alpha, T* Ap) {
  constexpr int MR = Blocking<T>::MR;
  for (int64_t ip = 0; ip < mc; ip += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - ip);
    T* dst = Ap + ip * kc;
    if (trans) {  // op(A)(i, k) = A[k * lda + i]: MR contiguous values per k
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = A + (p0 + k) * lda + i0 + ip;
        int64_t i = 0;
        for (; i < rows; ++i) dst[k * MR + i] = alpha * src[i];
        for (; i < MR; ++i) dst[k * MR + i] = T(0);
      }
    } else {  // op(A)(i, k) = A[i * lda + k]: MR row streams
      const T* src = A + (i0 + ip) * lda + p0;
      if (rows == MR) {
        for (int64_t k = 0; k < kc; ++k)
#pragma GCC unroll 16
          for (int i = 0; i < MR; ++i) dst[k * MR + i] = alpha * src[i * lda + k];
      } else {
        for (int64_t k = 0; k < kc; ++k) {
          int64_t i = 0;
          for (; i < rows; ++i) dst[k * MR + i] = alpha * src[i * lda + k];
          for (; i < MR; ++i) dst[k * MR + i] = T(0);
        }
      }
    }
  }
}

// Bp[panel][k][j] = op(B)(p0 + k, j0 + panel*NR + j), zero past column N.
template <class T>
void pack_b(bool trans, const T* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, T* Bp) {
  using V = Vec<T>;
  constexpr int NR = Blocking<T>::NR;
  for (int64_t jp = 0; jp < nc; jp += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - jp);
    T* dst = Bp + jp * kc;
    if (!trans) {  // op(B)(k, j) = B[k * ldb + j]: one contiguous NR-row per k
      const T* src = B + p0 * ldb + j0 + jp;
      for (int64_t k = 0; k < kc; ++k) {
        const T* row = src + k * ldb;
        T* out = dst + k * NR;
        for (int v = 0; v < NR; v += V::N) {
          const int64_t n = cols - v;
          (n >= V::N ? V::load(row + v) : n > 0 ? V::load(row + v, static_cast<int>(n)) : V::zero()).store(out + v);
        }
      }
    } else {  // op(B)(k, j) = B[j * ldb + k]: NR column streams
      const T* src = B + (j0 + jp) * ldb + p0;
      for (int64_t k = 0; k < kc; ++k) {
        int64_t j = 0;
        for (; j < cols; ++j) dst[k * NR + j] = src[j * ldb + k];
        for (; j < NR; ++j) dst[k * NR + j] = T(0);
      }
    }
  }
}

// C[0:mr, 0:nr] = Ap * Bp + beta * C over kc steps; Ap is kc x MR, Bp is kc x NR (packed).
template <class T>
__attribute__((noinline)) void micro_kernel(int64_t kc, const T* __restrict Ap, const T* __restrict Bp, T* C, int64_t ldc, T beta, int mr,
                  int nr) {
  using V = Vec<T>;
  constexpr int MR = Blocking<T>::MR, NV = kNV, NR = Blocking<T>::NR;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __builtin_prefetch(Bp + 8 * NR);
    __builtin_prefetch(Ap + 8 * MR);
    V b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) b[j] = V::load(Bp + j * V::N);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V a = V::set1(Ap[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = fmadd(a, b[j], acc[i][j]);
    }
    Ap += MR;
    Bp += NR;
  }
  const V vbeta = V::set1(beta);
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        T* c = C + i * ldc + j * V::N;
        V r = acc[i][j];
        if (beta != T(0)) r = fmadd(vbeta, V::load(c), r);
        r.store(c);
      }
    return;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= mr) break;
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      const int n = nr - j * V::N;
      if (n <= 0) break;
      T* c = C + i * ldc + j * V::N;
      V r = acc[i][j];
      if (beta != T(0)) r = fmadd(vbeta, V::load(c, n), r);
      r.store(c, n);
    }
  }
}

template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  using V = Vec<T>;
  for (int64_t i = 0; i < M; ++i) {
    T* row = C + i * ldc;
    int64_t j = 0;
    if (beta == T(0)) {
      for (; j < N; ++j) row[j] = T(0);
      continue;
    }
    for (; j + V::N <= N; j += V::N) (V::load(row + j) * V::set1(beta)).store(row + j);
    for (; j < N; ++j) row[j] *= beta;
  }
}

// One thread's GEMM over the whole (sub-)problem.
template <class T>
void gemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  using Bk = Blocking<T>;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  thread_local AlignedBuffer<T> a_buf, b_buf;
  const int64_t kc_max = std::min<int64_t>(Bk::KC, K);
  const int64_t nc_max = std::min<int64_t>(Bk::NC, (N + Bk::NR - 1) / Bk::NR * Bk::NR);
  const int64_t mc_max = std::min<int64_t>(Bk::MC, (M + Bk::MR - 1) / Bk::MR * Bk::MR);
  T* Ap = a_buf.get(mc_max * kc_max);
  T* Bp = b_buf.get(kc_max * nc_max);
  for (int64_t jc = 0; jc < N; jc += Bk::NC) {
    const int64_t nc = std::min<int64_t>(Bk::NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += Bk::KC) {
      const int64_t kc = std::min<int64_t>(Bk::KC, K - pc);
      const T beta_here = pc == 0 ? beta : T(1);
      pack_b(trans_b, B, ldb, pc, kc, jc, nc, Bp);
      for (int64_t ic = 0; ic < M; ic += Bk::MC) {
        const int64_t mc = std::min<int64_t>(Bk::MC, M - ic);
        pack_a(trans_a, A, lda, ic, mc, pc, kc, alpha, Ap);
        for (int64_t jr = 0; jr < nc; jr += Bk::NR) {
          const int nr = static_cast<int>(std::min<int64_t>(Bk::NR, nc - jr));
          for (int64_t ir = 0; ir < mc; ir += Bk::MR) {
            const int mr = static_cast<int>(std::min<int64_t>(Bk::MR, mc - ir));
            micro_kernel<T>(kc, Ap + ir * kc, Bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, beta_here, mr, nr);
          }
        }
      }
    }
  }
}

// Splits C into `threads` strips of whole micro-tiles along its longer tile dimension.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int threads) {
  using Bk = Blocking<T>;
  if (threads <= 0) threads = num_threads();
  const int64_t tiles_m = (M + Bk::MR - 1) / Bk::MR, tiles_n = (N + Bk::NR - 1) / Bk::NR;
  // A thread is worth waking for about 32K micro-tile K-steps (some 6 MFLOP, 50 us): below that the
  // parallel region's wake-up and barrier cost more than they save, far more on a loaded machine.
  const int64_t work = tiles_m * tiles_n * std::max<int64_t>(K, 1);
  const int64_t by_work = std::max<int64_t>(1, work / 32768);
  const bool split_n = tiles_n >= tiles_m || tiles_n >= 4 * threads;
  const int64_t strips = std::min<int64_t>({threads, split_n ? tiles_n : tiles_m, by_work});
  if (strips <= 1) {
    gemm_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int64_t tiles = split_n ? tiles_n : tiles_m;
  parallel_for(strips, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t t0 = tiles * s / strips, t1 = tiles * (s + 1) / strips;
      if (split_n) {
        const int64_t j0 = t0 * Bk::NR, j1 = std::min<int64_t>(N, t1 * Bk::NR);
        gemm_serial(trans_a, trans_b, M, j1 - j0, K, alpha, A, lda, B + (trans_b ? j0 * ldb : j0), ldb, beta,
                    C + j0, ldc);
      } else {
        const int64_t i0 = t0 * Bk::MR, i1 = std::min<int64_t>(M, t1 * Bk::MR);
        gemm_serial(trans_a, trans_b, i1 - i0, N, K, alpha, A + (trans_a ? i0 : i0 * lda), lda, B, ldb, beta,
                    C + i0 * ldc, ldc);
      }
    }
  });
}

}  // namespace

const GemmKernels& gemm_kernels() {
  static const GemmKernels t{&gemm<float>, &gemm<double>, Blocking<float>::MR, Blocking<float>::NR};
  return t;
}

FASTCNN_ISA_NAMESPACE_END
