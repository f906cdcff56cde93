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
// them, each packing only its own rows of A; a C of few rows reads a plain B in place and splits
// its columns instead; see Plan.
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

// Ap[panel][k][i] = alpha * op(A)(i0 + panel*MR + i, p0 + k), zero past row M (MR: the panel height,
// Blocking::MR or kShortMR).
template <int MR, class T>
void pack_a(bool trans, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T alpha, T* Ap) {
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

// C[0:mr, 0:nr] = Ap * Bp + beta * C over kc steps; Ap is kc x AS (a packed panel of AS rows), Bp is kc x NR with rows
// ldbp apart (NR: a packed panel; ldb: read in place from a plain B, see Plan::direct_b). The
// tile computed is ROWS x NV vectors (mr <= ROWS <= MR, nr <= NV * Vec<T>::N): a thin edge tile
// (M = 16 is a full MR = 14 tile and 2 rows) costs its own rows and vectors, not a full tile's. Each
// element's K-loop of FMAs is the same whichever tile runs it, so results do not depend on ROWS/NV.
template <class T, int ROWS, int NV, int AS>
__attribute__((noinline)) void micro_kernel(int64_t kc, const T* __restrict Ap, const T* __restrict Bp, int64_t ldbp, T* C,
                                             int64_t ldc, T beta, int mr, int nr) {
  using V = Vec<T>;
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  static_assert(ROWS <= AS && AS <= MR && NV <= kNV, "a tile fits in the packed panels");
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
    for (int j = 0; j < NV; ++j) b[j] = V::load(Bp + k * ldbp + j * V::N);
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      const V a = V::set1(Ap[k * AS + i]);
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

// The kernel of NV vectors with the fewest rows (2, 4, 8 or AS) that covers mr, on A panels of AS rows.
template <class T, int NV, int AS>
inline void tile_rows(int64_t kc, const T* Ap, const T* Bp, int64_t ldbp, T* C, int64_t ldc, T beta, int mr, int nr) {
  if (mr <= 2) return micro_kernel<T, 2, NV, AS>(kc, Ap, Bp, ldbp, C, ldc, beta, mr, nr);
  if (mr <= 4) return micro_kernel<T, 4, NV, AS>(kc, Ap, Bp, ldbp, C, ldc, beta, mr, nr);
  if constexpr (AS > 8) if (mr <= 8) return micro_kernel<T, 8, NV, AS>(kc, Ap, Bp, ldbp, C, ldc, beta, mr, nr);
  return micro_kernel<T, AS, NV, AS>(kc, Ap, Bp, ldbp, C, ldc, beta, mr, nr);
}

// One tile of mr x nr: the full AS x NR kernel, or for an edge tile the smallest kernel that covers it.
template <class T, int AS>
inline void tile(int64_t kc, const T* Ap, const T* Bp, int64_t ldbp, T* C, int64_t ldc, T beta, int mr, int nr) {
  if (nr <= Vec<T>::N) return tile_rows<T, 1, AS>(kc, Ap, Bp, ldbp, C, ldc, beta, mr, nr);
  return tile_rows<T, kNV, AS>(kc, Ap, Bp, ldbp, C, ldc, beta, mr, nr);
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

// Plan::direct_b (and the column split) up to this many MR-row tiles of C (M = 16 is 2 AVX-512 tiles,
// 3 AVX2 ones).
constexpr int64_t kDirectBTiles = 3;
// Rows of a tile under Plan::short_rows.
constexpr int kShortMR = 8;
// Plan::private_b up to this K.
constexpr int64_t kPrivateBMaxK = 32;

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
//
// direct_b: a plain (not transposed) B with few rows of C is not packed: each full B panel is read
// in place (rows ldb apart), as the micro-kernel reads it once per MR rows of C and a copy would
// cost as much as the product (M = 16: a third of the time). Only a partial last panel is packed
// (its zero padding). Not for taller C: there each panel serves many tiles, and the packed panel's
// contiguous rows spare the TLB and cache sets that a strided read across KC rows would use.
//
// short_rows: C of MR < M <= 2 * kShortMR rows (AVX-512: M = 15, 16) runs as two tiles of at most
// kShortMR rows (8 + 8) instead of MR + a thin edge (14 + 2), whose few accumulator chains leave the
// FMA units waiting on latency.
//
// private_b (with split_rows): a B of one block and a few k-steps (K <= kPrivateBMaxK: a weight
// gradient summed over a batch) is packed whole by every thread into a buffer of its own, so the
// team needs no barrier (with one, two threads were no faster than one on 289 x 289 x 16).
struct Plan {
  int64_t kc, mc, nc;
  bool split_rows, direct_b, short_rows, private_b;
  int64_t a_stride, b_size;  // per-thread A block and (each) B block, in elements (64-byte multiples)
};

// Called only by a team of two or more: an orphaned barrier binds to the innermost enclosing
// parallel region, which for a team of one may be a caller's (conv's parallel_for) region.
inline void team_barrier() {
#pragma omp barrier
}

// C[i0:i1, jc + p0 * NR : jc + p1 * NR] += op(A) block x panels [p0, p1) of the packed B block, in
// tiles of AS rows.
template <int AS, class T>
void macro_kernel_rows(const Problem<T>& p, const Plan& plan, int64_t jc, int64_t nc, int64_t pc, int64_t kc,
                       int64_t i0, int64_t i1, int64_t p0, int64_t p1, const T* Bp, T* Ap) {
  using Bk = Blocking<T>;
  const T beta = pc == 0 ? p.beta : T(1);
  for (int64_t ic = i0; ic < i1; ic += plan.mc) {
    const int64_t mc = std::min(plan.mc, i1 - ic);
    pack_a<AS>(p.trans_a, p.A, p.lda, ic, mc, pc, kc, p.alpha, Ap);
    for (int64_t panel = p0; panel < p1; ++panel) {
      const int64_t jr = panel * Bk::NR;
      const int nr = static_cast<int>(std::min<int64_t>(Bk::NR, nc - jr));
      const bool in_place = plan.direct_b && nr == Bk::NR;
      const T* panel_b = in_place ? p.B + pc * p.ldb + jc + jr : Bp + panel * Bk::NR * plan.kc;
      const int64_t ldbp = in_place ? p.ldb : Bk::NR;
      for (int64_t ir = 0; ir < mc; ir += AS) {
        const int mr = static_cast<int>(std::min<int64_t>(AS, mc - ir));
        tile<T, AS>(kc, Ap + ir * kc, panel_b, ldbp, p.C + (ic + ir) * p.ldc + jc + jr, p.ldc, beta, mr, nr);
      }
    }
  }
}

template <class T>
void macro_kernel(const Problem<T>& p, const Plan& plan, int64_t jc, int64_t nc, int64_t pc, int64_t kc,
                  int64_t i0, int64_t i1, int64_t p0, int64_t p1, const T* Bp, T* Ap) {
  if constexpr (Blocking<T>::MR > kShortMR)
    if (plan.short_rows) return macro_kernel_rows<kShortMR>(p, plan, jc, nc, pc, kc, i0, i1, p0, p1, Bp, Ap);
  macro_kernel_rows<Blocking<T>::MR>(p, plan, jc, nc, pc, kc, i0, i1, p0, p1, Bp, Ap);
}

// Thread `tid` of a team of `team`: the five loops, with the B block shared through `Bp` (or, with
// private_b, this thread's own).
template <class T>
void gemm_team(const Problem<T>& p, const Plan& plan, T* Bp, T* Ap, int tid, int team) {
  using Bk = Blocking<T>;
  const int64_t tiles_m = (p.M + Bk::MR - 1) / Bk::MR;
  const int64_t r0 = std::min(p.M, tiles_m * tid / team * Bk::MR);
  const int64_t r1 = std::min(p.M, tiles_m * (tid + 1) / team * Bk::MR);
  for (int64_t jc = 0; jc < p.N; jc += plan.nc) {
    const int64_t nc = std::min(plan.nc, p.N - jc);
    const int64_t panels = (nc + Bk::NR - 1) / Bk::NR;
    const int64_t p0 = plan.private_b ? 0 : panels * tid / team;
    const int64_t p1 = plan.private_b ? panels : panels * (tid + 1) / team;
    // Panels this thread packs: all of its share, or with direct_b only a partial last one.
    const int64_t q0 = plan.direct_b ? std::max(p0, nc / Bk::NR) : p0;
    for (int64_t pc = 0; pc < p.K; pc += plan.kc) {
      const int64_t kc = std::min(plan.kc, p.K - pc);
      if (p1 > q0)
        pack_b(p.trans_b, p.B, p.ldb, pc, kc, jc + q0 * Bk::NR, std::min(nc, p1 * Bk::NR) - q0 * Bk::NR,
               Bp + q0 * Bk::NR * plan.kc, Bk::NR * plan.kc);
      if (plan.split_rows) {
        const bool shared = team > 1 && !plan.private_b;
        if (shared) team_barrier();  // the whole B block is packed
        if (r1 > r0) macro_kernel(p, plan, jc, nc, pc, kc, r0, r1, 0, panels, Bp, Ap);
        if (shared) team_barrier();  // nobody reads the B block any more
      } else if (p1 > p0) {
        macro_kernel(p, plan, jc, nc, pc, kc, 0, p.M, p0, p1, Bp, Ap);
      }
    }
  }
}

// N == 1 with a transposed A (a bias gradient gy^T ones, a vector-matrix product): C[i] = alpha *
// sum_k A[k, i] b[k] + beta * C[i], rows of A added in k order into a strip of accumulators,
// without the packing that a one-column B panel would waste 31 of 32 lanes on.
template <class T>
void gemv_trans(int64_t M, int64_t K, T alpha, const T* A, int64_t lda, const T* b, int64_t incb, T beta, T* C,
                int64_t ldc) {
  using V = Vec<T>;
  constexpr int NV = 4;
  for (int64_t i0 = 0; i0 < M; i0 += NV * V::N) {
    V acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = V::zero();
    const int64_t rows = std::min<int64_t>(NV * V::N, M - i0);
    if (rows == NV * V::N) {
      for (int64_t k = 0; k < K; ++k) {
        const V bk = V::set1(b[k * incb]);
        for (int v = 0; v < NV; ++v) acc[v] = fmadd(V::load(A + k * lda + i0 + v * V::N), bk, acc[v]);
      }
    } else {
      for (int64_t k = 0; k < K; ++k) {
        const V bk = V::set1(b[k * incb]);
        for (int v = 0; v < NV && v * V::N < rows; ++v)
          acc[v] = fmadd(V::load(A + k * lda + i0 + v * V::N, static_cast<int>(rows - v * V::N)), bk, acc[v]);
      }
    }
    T out[NV * V::N];
    for (int v = 0; v < NV; ++v) (acc[v] * V::set1(alpha)).store(out + v * V::N);
    for (int64_t i = 0; i < rows; ++i) {
      T* c = C + (i0 + i) * ldc;
      *c = beta == T(0) ? out[i] : out[i] + beta * *c;
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
  if (N == 1 && trans_a) return gemv_trans(M, K, alpha, A, lda, B, trans_b ? 1 : ldb, beta, C, ldc);
  if (threads <= 0) threads = num_threads();
  if (omp_in_parallel()) threads = 1;
  const int64_t tiles_m = (M + Bk::MR - 1) / Bk::MR, tiles_n = (N + Bk::NR - 1) / Bk::NR;
  // A thread is worth waking for about 32K micro-tile K-steps (some 6 MFLOP, 50 us): below that the
  // parallel region's wake-up and barrier cost more than they save, far more on a loaded machine
  // (a 289 x 289 x 16 weight gradient on two threads: 20 -> 23 us). A C of a few rows splits its
  // columns instead, with no barrier, and pays from 1536 (16 x 289 x 289: 20 -> 12 us, 2 threads;
  // 1024 was no faster, 2048 left 16 x 289 x 192 on one thread).
  const bool few_rows = tiles_m <= kDirectBTiles, small_k = K <= kPrivateBMaxK && N <= Bk::NC;
  const int64_t min_work = few_rows ? 1536 : small_k ? 768 : 32768;  // no barrier: see Plan
  const int64_t by_work = std::max<int64_t>(1, tiles_m * tiles_n * K / min_work);
  int team = static_cast<int>(std::min<int64_t>({threads, by_work, std::max(tiles_m, tiles_n)}));

  Plan plan;
  plan.kc = even_block(K, Bk::KC, 1);
  plan.mc = even_block(M, Bk::MC, Bk::MR);
  plan.nc = even_block(N, Bk::NC, Bk::NR);
  // Rows unless C is too short for every thread to get about the same number of row tiles; then
  // columns, if the B block has enough panels to go round.
  const int64_t panels = (plan.nc + Bk::NR - 1) / Bk::NR;
  auto imbalance = [team](int64_t tiles) { return double((tiles + team - 1) / team) * team / double(tiles); };
  // A C of a few rows always splits its columns (M = 16 is two tiles, but a strip of 14 rows and one
  // of 2); a taller one with a small K always its rows, with private B blocks.
  plan.split_rows = !few_rows && (small_k || tiles_m >= 8 * team || imbalance(tiles_m) <= imbalance(panels));
  plan.private_b = plan.split_rows && small_k && team > 1;
  if (!plan.split_rows && panels < team) team = static_cast<int>(panels);
  plan.direct_b = !trans_b && few_rows;
  plan.short_rows = Bk::MR > kShortMR && M > Bk::MR && M <= 2 * kShortMR;
  if (plan.short_rows) plan.mc = round_up(M, kShortMR);  // one A block of whole kShortMR panels
  plan.a_stride = round_up(plan.mc * plan.kc, 64 / sizeof(T));
  plan.b_size = round_up(plan.kc * round_up(plan.nc, Bk::NR), 64 / sizeof(T));

  const Problem<T> p{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  // The calling thread's buffer holds the shared B block and one A block per thread.
  thread_local AlignedBuffer<T> workspace;
  const int64_t b_blocks = plan.private_b ? team : 1;
  T* ws = workspace.get(b_blocks * plan.b_size + team * plan.a_stride);
  if (team <= 1) {
    gemm_team(p, plan, ws, ws + plan.b_size, 0, 1);
    return;
  }
#pragma omp parallel num_threads(team)
  {
    const int tid = omp_get_thread_num(), size = omp_get_num_threads();  // size may be smaller than asked
    T* Bp = ws + (plan.private_b ? tid * plan.b_size : 0);
    gemm_team(p, plan, Bp, ws + b_blocks * plan.b_size + tid * plan.a_stride, tid, size);
  }
}

}  // namespace

const GemmKernels& gemm_kernels() {
  static const GemmKernels t{&gemm<float>, &gemm<double>, Blocking<float>::MR, Blocking<float>::NR};
  return t;
}

FASTCNN_ISA_NAMESPACE_END
