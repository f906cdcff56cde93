// Tensor-core tile engine: C[m][n] = sum_{k in [kb, ke)} A(m, k) B(k, n) for one 128 x 128 output tile
// per block of 256 threads, on `mma.sync.aligned.m16n8k8` with TF32 inputs and float32 accumulation
// (sm_80 and later), operands streamed global -> shared by `cp.async` into two buffers (the copy of
// slice i+1 is in flight while the warps multiply slice i).
//
// float32 only. Two precisions (template parameter SPLIT):
//   SPLIT = false  plain TF32: each operand rounded to TF32 (cvt.rna), one mma per fragment pair
//                  (torch's rule for cuDNN convolutions when torch.backends.cudnn.allow_tf32 is on);
//   SPLIT = true   3xTF32: x = big + small with big = tf32(x), small = tf32(x - big), and
//                  a*b ~ a_big*b_big + a_big*b_small + a_small*b_big (three mma): about float32 accuracy
//                  on the tensor cores, used when TF32 is switched off.
//
// Operands come through loaders that hand out *addresses* (cp.async copies memory, it cannot compute a
// value): `at(...)` returns a pointer, or nullptr where the operand is zero (padding, outside the
// matrix), which becomes a zero-filling cp.async (src-size 0). A loader with kContigK = true (memory
// runs along k: weight rows, output-gradient rows) is asked `at(outer, k)` per element; one with
// kContigK = false (the gathered im2col matrix: a pixel per outer index) first builds a `Cursor` for
// its one fixed outer index (the pixel's coordinates, decomposed once per tile instead of once per
// element) and is then asked `at(cursor, k)`.
//
// The index math (which thread copies which element, which lane holds which fragment element) is in
// plain __host__ __device__ functions below; tests/cuda_host_shim.h runs the whole engine on the CPU
// with a host model of mma.sync built from the PTX ISA fragment table, so a wrong layout here fails the
// emulated convolution tests.
#pragma once
#include "common.cuh"

namespace fastcnn {
namespace mma {

constexpr int BM = 128, BN = 128, BK = 16;  // block tile (BK: k per shared-memory slice)
constexpr int WM = 64, WN = 32;             // warp tile: 2 x 4 warps
constexpr int WARPS_N = BN / WN;
constexpr int THREADS = (BM / WM) * (BN / WN) * 32;
constexpr int MI = WM / 16, NI = WN / 8;    // m16n8k8 tiles per warp tile
constexpr int PAD = 8;                      // row padding: fragment loads hit 32 distinct banks (8*t + g)
constexpr int LDA = BM + PAD, LDB = BN + PAD;
constexpr int PER_THREAD_A = BM * BK / THREADS, PER_THREAD_B = BN * BK / THREADS;  // cp.async per slice
static_assert(THREADS == 256 && PER_THREAD_A == 8 && PER_THREAD_B == 8, "engine sized for 256 threads");

// ---- fragment layout of mma.m16n8k8 .tf32 (PTX ISA, "Matrix fragments for mma.m16n8k8"):
// lane = 4 * groupID + threadID_in_group; A is 16 x 8 (4 registers), B 8 x 8 (2), C/D 16 x 8 (4).
FASTCNN_HD int frag_a_row(int lane, int reg) { return lane / 4 + 8 * (reg % 2); }
FASTCNN_HD int frag_a_k(int lane, int reg) { return lane % 4 + 4 * (reg / 2); }
FASTCNN_HD int frag_b_k(int lane, int reg) { return lane % 4 + 4 * reg; }
FASTCNN_HD int frag_b_col(int lane, int /*reg*/) { return lane / 4; }
FASTCNN_HD int frag_c_row(int lane, int reg) { return lane / 4 + 8 * (reg / 2); }
FASTCNN_HD int frag_c_col(int lane, int reg) { return 2 * (lane % 4) + reg % 2; }

// ---- which element of a BK-slice thread `tid` copies, i-th of its PER_THREAD copies.
// k-contiguous operand: 16 consecutive threads read 16 consecutive k of one row (coalesced).
FASTCNN_HD int copy_outer(bool contig_k, int tid, int i, int block_outer) {
  return contig_k ? tid / BK + i * (THREADS / BK) : tid % block_outer;
}
FASTCNN_HD int copy_k(bool contig_k, int tid, int i, int block_outer) {
  return contig_k ? tid % BK : tid / block_outer + i * (THREADS / block_outer);
}

// ---- the machine instructions (host versions: tests/cuda_host_shim.h)
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
// 4-byte asynchronous copy global -> shared; src == nullptr writes a zero (src-size 0 reads nothing;
// `fallback` is a valid address all the same).
FASTCNN_DEVICE void cp_async4(float* dst, const float* src, const float* fallback) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  const int bytes = src != nullptr ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(src != nullptr ? src : fallback),
               "r"(bytes));
}
FASTCNN_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Wait until at most N committed groups are still in flight.
template <int N>
FASTCNN_DEVICE void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
FASTCNN_DEVICE unsigned to_tf32(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}
FASTCNN_DEVICE float tf32_value(unsigned t) { return __uint_as_float(t); }
FASTCNN_DEVICE void mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#else
inline void cp_async4(float* dst, const float* src, const float*) { *dst = src != nullptr ? *src : 0.f; }
inline void cp_async_commit() {}
template <int N>
inline void cp_async_wait() {}
inline unsigned to_tf32(float x) { return fastcnn_emu_to_tf32(x); }
inline float tf32_value(unsigned t) { return __uint_as_float(t); }
inline void mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) { fastcnn_emu_mma_m16n8k8(d, a, b); }
#endif

// Round to TF32 (SPLIT: also the TF32 remainder) for one fragment element.
template <bool SPLIT>
FASTCNN_DEVICE void split_tf32(float x, unsigned& big, unsigned& small) {
  big = to_tf32(x);
  if (SPLIT) small = to_tf32(x - tf32_value(big));
}

// Runs the BM x BN tile at (m0, n0) over k in [kb, ke); epi(m, n, value) for each in-range result.
// All THREADS threads of the block must call it. `base_a` / `base_b`: valid addresses for the
// zero-filling copies.
template <bool SPLIT, class LA, class LB, class Epi>
FASTCNN_DEVICE void run_tile(const LA& la, const LB& lb, const Epi& epi, long long M, long long N, long long m0,
                             long long n0, long long kb, long long ke) {
  __shared__ float As[2][BK][LDA];
  __shared__ float Bs[2][BK][LDB];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;

  // A kContigK = false loader has one fixed outer index per thread: decompose it once.
  typename LA::Cursor ca = la.cursor(m0 + copy_outer(LA::kContigK, tid, 0, BM));
  typename LB::Cursor cb = lb.cursor(n0 + copy_outer(LB::kContigK, tid, 0, BN));

  auto issue = [&](int buf, long long k0) {
#pragma unroll
    for (int i = 0; i < PER_THREAD_A; ++i) {
      const int o = copy_outer(LA::kContigK, tid, i, BM), k = copy_k(LA::kContigK, tid, i, BM);
      cp_async4(&As[buf][k][o], la.at(ca, m0 + o, k0 + k), la.base());
    }
#pragma unroll
    for (int i = 0; i < PER_THREAD_B; ++i) {
      const int o = copy_outer(LB::kContigK, tid, i, BN), k = copy_k(LB::kContigK, tid, i, BN);
      cp_async4(&Bs[buf][k][o], lb.at(cb, n0 + o, k0 + k), lb.base());
    }
    cp_async_commit();
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;

  int buf = 0;
  if (kb < ke) issue(0, kb);
  for (long long k0 = kb; k0 < ke; k0 += BK) {
    if (k0 + BK < ke) {
      issue(buf ^ 1, k0 + BK);  // next slice in flight during this one's multiply
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < BK; ks += 8) {
      unsigned a[MI][4], b[NI][2], a_lo[MI][4], b_lo[NI][2];
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int r = 0; r < 4; ++r)
          split_tf32<SPLIT>(As[buf][ks + frag_a_k(lane, r)][wm * WM + i * 16 + frag_a_row(lane, r)], a[i][r],
                            a_lo[i][r]);
#pragma unroll
      for (int j = 0; j < NI; ++j)
#pragma unroll
        for (int r = 0; r < 2; ++r)
          split_tf32<SPLIT>(Bs[buf][ks + frag_b_k(lane, r)][wn * WN + j * 8 + frag_b_col(lane, r)], b[j][r],
                            b_lo[j][r]);
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j) {
          if (SPLIT) {  // small products first: they would vanish after the big one
            mma_tf32(acc[i][j], a_lo[i], b[j]);
            mma_tf32(acc[i][j], a[i], b_lo[j]);
          }
          mma_tf32(acc[i][j], a[i], b[j]);
        }
    }
    __syncthreads();  // everyone is done reading `buf` before it is refilled
    buf ^= 1;
  }

#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const long long m = m0 + wm * WM + i * 16 + frag_c_row(lane, r);
        const long long n = n0 + wn * WN + j * 8 + frag_c_col(lane, r);
        if (m < M && n < N) epi(m, n, acc[i][j][r]);
      }
}

}  // namespace mma
}  // namespace fastcnn
