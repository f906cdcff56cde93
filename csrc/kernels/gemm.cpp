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
// Threads share the packed B block (each packs a share of its panels) and split C's rows between
// them, each packing only its own rows of A; see Plan.
#include "kernels/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include <omp.h>

#include "common/simd.h"
#include "common/threads.h"
#include "kernels/gemm_pack.h"

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
  // KC x NR B micro-panel about 24-48 KB (L1 + prefetch), MC x KC A block about 100-250 KB (L2 of
  // 1 MB), KC x NC B block a few MB (L3 of 32 MB). (KC 256-512, MC 72-288 all time the same here.)
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
  if (!trans) {  // op(A)(i, k) = A[i * lda + k]
    for (int64_t ip = 0; ip < mc; ip += MR) {
      const int rows = static_cast<int>(std::min<int64_t>(MR, mc - ip));
      gemm_pack::pack_streams<MR>(A + (i0 + ip) * lda + p0, lda, rows, kc, alpha, Ap + ip * kc);
    }
    return;
  }
  // op(A)(i, k) = A[k * lda + i]: a cache line of A's row k holds several panels' values, so take
  // 16 k-steps across all panels at a time, while those lines are still in L1.
  constexpr int64_t KB = 16;
  for (int64_t k0 = 0; k0 < kc; k0 += KB)
    for (int64_t ip = 0; ip < mc; ip += MR) {
      const int rows = static_cast<int>(std::min<int64_t>(MR, mc - ip));
      gemm_pack::pack_runs<MR>(A + (p0 + k0) * lda + i0 + ip, lda, rows, std::min(KB, kc - k0), alpha,
                               Ap + ip * kc + k0 * MR);
    }
}

// Bp[panel * panel_stride + k * NR + j] = op(B)(p0 + k, j0 + panel*NR + j), zero past column N.
template <class T>
void pack_b(bool trans, const T* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, T* Bp,
            int64_t panel_stride) {
  constexpr int NR = Blocking<T>::NR;
  for (int64_t jp = 0; jp < nc; jp += NR) {
    const int cols = static_cast<int>(std::min<int64_t>(NR, nc - jp));
    T* dst = Bp + jp / NR * panel_stride;
    if (trans)  // op(B)(k, j) = B[j * ldb + k]
      gemm_pack::pack_streams<NR>(B + (j0 + jp) * ldb + p0, ldb, cols, kc, T(1), dst);
    else        // op(B)(k, j) = B[k * ldb + j]
      gemm_pack::pack_runs<NR>(B + p0 * ldb + j0 + jp, ldb, cols, kc, T(1), dst);
  }
}

// C[0:mr, 0:nr] = Ap * Bp + beta * C over kc steps; Ap is kc x MR, Bp is kc x NR (packed). The
// tile computed is ROWS x NV vectors (mr <= ROWS <= MR, nr <= NV * Vec<T>::N): a thin edge tile
// (M = 16 is a full MR = 14 tile and 2 rows) costs its own rows and vectors, not a full tile's. Each
// element's K-loop of FMAs is the same whichever tile runs it, so results do not depend on ROWS/NV.
template <class T, int ROWS, int NV>
__attribute__((noinline)) void micro_kernel(int64_t kc, const T* __restrict Ap, const T* __restrict Bp, T* C, int64_t ldc, T beta, int mr,
                  int nr) {
  using V = Vec<T>;
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  static_assert(ROWS <= MR && NV <= kNV, "a tile fits in the packed panels");
  V acc[ROWS][NV];
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
  // C's tile is read and written after the K loop; its rows lie ldc apart, which the hardware
  // prefetcher does not follow, so fetch them now (some 10% at n = 2048). A streams from L2 in
  // order and B sits in L1: prefetching those in the loop only cost issue slots.
  for (int i = 0; i < mr; ++i) {
    __builtin_prefetch(C + i * ldc, 1);
    __builtin_prefetch(C + i * ldc + NR - 1, 1);
  }
  auto step = [&](int64_t k) {
    V b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) b[j] = V::load(Bp + k * NR + j * V::N);
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      const V a = V::set1(Ap[k * MR + i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = fmadd(a, b[j], acc[i][j]);
    }
  };
  // Not unrolled: unrolling made GCC interleave the steps' loads and spill 3 of the 12 AVX2
  // accumulators to the stack; the loop's own cost (3 adds and a branch) hides behind the FMAs.
#pragma GCC unroll 1
  for (int64_t k = 0; k < kc; ++k) step(k);
  const V vbeta = V::set1(beta);
  if (mr == ROWS && nr == NV * V::N) {
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i)
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
  for (int i = 0; i < ROWS; ++i) {
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

// The kernel of NV vectors with the fewest rows (2, 4, 8 or MR) that covers mr.
template <class T, int NV>
inline void tile_rows(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T beta, int mr, int nr) {
  constexpr int MR = Blocking<T>::MR;
  if (mr <= 2) return micro_kernel<T, 2, NV>(kc, Ap, Bp, C, ldc, beta, mr, nr);
  if (mr <= 4) return micro_kernel<T, 4, NV>(kc, Ap, Bp, C, ldc, beta, mr, nr);
  if constexpr (MR > 8) if (mr <= 8) return micro_kernel<T, 8, NV>(kc, Ap, Bp, C, ldc, beta, mr, nr);
  return micro_kernel<T, MR, NV>(kc, Ap, Bp, C, ldc, beta, mr, nr);
}

// One tile of mr x nr: the full MR x NR kernel, or for an edge tile the smallest kernel that covers it.
template <class T>
inline void tile(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T beta, int mr, int nr) {
  if (nr <= Vec<T>::N) return tile_rows<T, 1>(kc, Ap, Bp, C, ldc, beta, mr, nr);
  return tile_rows<T, kNV>(kc, Ap, Bp, C, ldc, beta, mr, nr);
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

// Block sizes of one call: each dimension is cut into equal blocks of whole units (KC: 1, MC: MR,
// NC: NR) no larger than the maximum, so a K of 400 runs as 2 x 200, not 384 + a thin 16.
inline int64_t even_block(int64_t n, int64_t max_block, int64_t unit) {
  const int64_t blocks = (n + max_block - 1) / max_block;
  const int64_t per = (n + blocks - 1) / blocks;
  return std::min(max_block, (per + unit - 1) / unit * unit);
}

inline int64_t round_up(int64_t n, int64_t unit) { return (n + unit - 1) / unit * unit; }

template <class T>
struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T beta;
  T* C;
  int64_t ldc;
};

// How a team shares the work of every (jc, pc) block. The B block is packed once, each thread
// packing its share of the panels, each panel in a fixed slot of KC x NR (so that a thin last KC
// block does not move one thread's panels onto another's that is still in use). Then either
//   split_rows: a barrier, and each thread runs its own strip of whole MR-tiles of C's rows against
//               the whole shared B block (packing only its own rows of A), or
//   columns:    each thread runs every row of C against the B panels it packed itself (no barrier;
//               A is packed by every thread: chosen when M is too short to split evenly).
struct Plan {
  int64_t kc, mc, nc;
  bool split_rows;
  int64_t a_stride, b_size;  // per-thread A block and shared B block, in elements (64-byte multiples)
};

// Called only by a team of two or more: an orphaned barrier binds to the innermost enclosing
// parallel region, which for a team of one may be a caller's (conv's parallel_for) region.
inline void team_barrier() {
#pragma omp barrier
}

// C[i0:i1, jc + p0 * NR : jc + p1 * NR] += op(A) block x panels [p0, p1) of the packed B block.
template <class T>
void macro_kernel(const Problem<T>& p, const Plan& plan, int64_t jc, int64_t nc, int64_t pc, int64_t kc,
                  int64_t i0, int64_t i1, int64_t p0, int64_t p1, const T* Bp, T* Ap) {
  using Bk = Blocking<T>;
  const T beta = pc == 0 ? p.beta : T(1);
  for (int64_t ic = i0; ic < i1; ic += plan.mc) {
    const int64_t mc = std::min(plan.mc, i1 - ic);
    pack_a(p.trans_a, p.A, p.lda, ic, mc, pc, kc, p.alpha, Ap);
    for (int64_t panel = p0; panel < p1; ++panel) {
      const int64_t jr = panel * Bk::NR;
      const int nr = static_cast<int>(std::min<int64_t>(Bk::NR, nc - jr));
      for (int64_t ir = 0; ir < mc; ir += Bk::MR) {
        const int mr = static_cast<int>(std::min<int64_t>(Bk::MR, mc - ir));
        tile<T>(kc, Ap + ir * kc, Bp + panel * Bk::NR * plan.kc, p.C + (ic + ir) * p.ldc + jc + jr, p.ldc, beta, mr, nr);
      }
    }
  }
}

// Thread `tid` of a team of `team`: the five loops, with the B block shared through `Bp`.
template <class T>
void gemm_team(const Problem<T>& p, const Plan& plan, T* Bp, T* Ap, int tid, int team) {
  using Bk = Blocking<T>;
  const int64_t tiles_m = (p.M + Bk::MR - 1) / Bk::MR;
  const int64_t r0 = std::min(p.M, tiles_m * tid / team * Bk::MR);
  const int64_t r1 = std::min(p.M, tiles_m * (tid + 1) / team * Bk::MR);
  for (int64_t jc = 0; jc < p.N; jc += plan.nc) {
    const int64_t nc = std::min(plan.nc, p.N - jc);
    const int64_t panels = (nc + Bk::NR - 1) / Bk::NR;
    const int64_t p0 = panels * tid / team, p1 = panels * (tid + 1) / team;
    for (int64_t pc = 0; pc < p.K; pc += plan.kc) {
      const int64_t kc = std::min(plan.kc, p.K - pc);
      if (p1 > p0)
        pack_b(p.trans_b, p.B, p.ldb, pc, kc, jc + p0 * Bk::NR, std::min(nc, p1 * Bk::NR) - p0 * Bk::NR,
               Bp + p0 * Bk::NR * plan.kc, Bk::NR * plan.kc);
      if (plan.split_rows) {
        if (team > 1) team_barrier();  // the whole B block is packed
        if (r1 > r0) macro_kernel(p, plan, jc, nc, pc, kc, r0, r1, 0, panels, Bp, Ap);
        if (team > 1) team_barrier();  // nobody reads the B block any more
      } else if (p1 > p0) {
        macro_kernel(p, plan, jc, nc, pc, kc, 0, p.M, p0, p1, Bp, Ap);
      }
    }
  }
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int threads) {
  using Bk = Blocking<T>;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  if (threads <= 0) threads = num_threads();
  if (omp_in_parallel()) threads = 1;
  const int64_t tiles_m = (M + Bk::MR - 1) / Bk::MR, tiles_n = (N + Bk::NR - 1) / Bk::NR;
  // A thread is worth waking for about 32K micro-tile K-steps (some 6 MFLOP, 50 us): below that the
  // parallel region's wake-up and barrier cost more than they save, far more on a loaded machine.
  const int64_t by_work = std::max<int64_t>(1, tiles_m * tiles_n * K / 32768);
  int team = static_cast<int>(std::min<int64_t>({threads, by_work, std::max(tiles_m, tiles_n)}));

  Plan plan;
  plan.kc = even_block(K, Bk::KC, 1);
  plan.mc = even_block(M, Bk::MC, Bk::MR);
  plan.nc = even_block(N, Bk::NC, Bk::NR);
  // Rows unless C is too short for every thread to get about the same number of row tiles; then
  // columns, if the B block has enough panels to go round.
  const int64_t panels = (plan.nc + Bk::NR - 1) / Bk::NR;
  auto imbalance = [team](int64_t tiles) { return double((tiles + team - 1) / team) * team / double(tiles); };
  plan.split_rows = tiles_m >= 8 * team || imbalance(tiles_m) <= imbalance(panels);
  if (!plan.split_rows && panels < team) team = static_cast<int>(panels);
  plan.a_stride = round_up(plan.mc * plan.kc, 64 / sizeof(T));
  plan.b_size = round_up(plan.kc * round_up(plan.nc, Bk::NR), 64 / sizeof(T));

  const Problem<T> p{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  // The calling thread's buffer holds the shared B block and one A block per thread.
  thread_local AlignedBuffer<T> workspace;
  T* ws = workspace.get(plan.b_size + team * plan.a_stride);
  if (team <= 1) {
    gemm_team(p, plan, ws, ws + plan.b_size, 0, 1);
    return;
  }
#pragma omp parallel num_threads(team)
  {
    const int tid = omp_get_thread_num(), size = omp_get_num_threads();  // size may be smaller than asked
    gemm_team(p, plan, ws, ws + plan.b_size + tid * plan.a_stride, tid, size);
  }
}

}  // namespace

const GemmKernels& gemm_kernels() {
  static const GemmKernels t{&gemm<float>, &gemm<double>, Blocking<float>::MR, Blocking<float>::NR};
  return t;
}

FASTCNN_ISA_NAMESPACE_END
