// The shared-memory tiled GEMM engine behind every GEMM-shaped kernel of the cuda backend: the
// plain/batched gemm (gemm.cu), the implicit-GEMM convolutions (conv_direct.cu, whose loaders
// gather the im2col matrix on the fly) and the per-frequency complex GEMM of the FFT convolution
// (conv_fft.cu).
//
//   C[m][n] = sum_{k in [kb, ke)} A(m, k) * B(k, n)
//
// A block computes a BM x BN tile with (BM/TM) x (BN/TN) threads, each holding a TM x TN register
// tile. The K loop walks BK-wide slices through double-buffered shared memory: while the block
// multiplies slice i out of one buffer, every thread has already issued its global loads of slice
// i+1 into registers, then stores them into the other buffer (one __syncthreads per slice).
//
// Operands are read through *loaders*: both A and B^T are seen as (outer x k) matrices (outer = m
// for A, n for B). Each thread fetches one chunk of CW consecutive elements per slice, either along
// k (kContigK: rows of a row-major A) or along outer (columns of a row-major B, output pixels of an
// implicit im2col), so global reads stay coalesced. A loader returns zeros outside its matrix, so
// edges need no special case; dense loaders use 16-byte vector loads when the host says the data
// is aligned and the chunk is inside.
#pragma once
#include "common.cuh"

namespace fastcnn {
namespace tile {

template <class T>
struct cplx {
  T re, im;
};

template <class V>
FASTCNN_DEVICE V zero() { return V(0); }
template <>
FASTCNN_DEVICE cplx<float> zero<cplx<float>>() { return {0.f, 0.f}; }
template <>
FASTCNN_DEVICE cplx<double> zero<cplx<double>>() { return {0.0, 0.0}; }

template <class T>
FASTCNN_DEVICE void mac(T& acc, T a, T b) { acc = fma(a, b, acc); }
template <class T>
FASTCNN_DEVICE void mac(cplx<T>& acc, cplx<T> a, cplx<T> b) {
  acc.re = fma(a.re, b.re, fma(-a.im, b.im, acc.re));
  acc.im = fma(a.re, b.im, fma(a.im, b.re, acc.im));
}

template <class T>
FASTCNN_DEVICE T conj_if(T v, bool) { return v; }
template <class T>
FASTCNN_DEVICE cplx<T> conj_if(cplx<T> v, bool c) { return c ? cplx<T>{v.re, -v.im} : v; }

template <class V_, int BM_, int BN_, int BK_, int TM_, int TN_>
struct Config {
  using V = V_;
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int THREADS = (BM / TM) * (BN / TN);
  static constexpr int CA = BM * BK / THREADS;  // elements of A each thread fetches per slice
  static constexpr int CB = BN * BK / THREADS;
  static_assert(CA >= 1 && CA * THREADS == BM * BK, "A slice must split evenly over the threads");
  static_assert(CB >= 1 && CB * THREADS == BN * BK, "B slice must split evenly over the threads");
  static_assert(BK % CA == 0 && BK % CB == 0 && BM % CA == 0 && BN % CB == 0, "chunks must tile the slice");
};

// Real: 128 x 128 x 8 tile, 8 x 8 per thread, 256 threads, 4-element (16-byte for float) chunks.
template <class T>
using RealConfig = Config<T, 128, 128, 8, 8, 8>;
// Complex: 64 x 64 x 8, 4 x 4 per thread (same register budget as 8 x 8 real), 256 threads.
template <class T>
using ComplexConfig = Config<cplx<T>, 64, 64, 8, 4, 4>;

// Vector load of CW contiguous elements (caller guarantees alignment and bounds).
template <int CW, class V>
FASTCNN_DEVICE void load_vec(const V* src, V (&out)[CW]) {
#pragma unroll
  for (int i = 0; i < CW; ++i) out[i] = src[i];
}
template <>
FASTCNN_DEVICE void load_vec<4, float>(const float* src, float (&out)[4]) {
  const float4 v = *reinterpret_cast<const float4*>(src);
  out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
}
template <>
FASTCNN_DEVICE void load_vec<4, double>(const double* src, double (&out)[4]) {
  const double2 a = reinterpret_cast<const double2*>(src)[0];
  const double2 b = reinterpret_cast<const double2*>(src)[1];
  out[0] = a.x; out[1] = a.y; out[2] = b.x; out[3] = b.y;
}

// A strided matrix M(outer, k) = p[outer * s_outer + k * s_k], zero outside [0, n_outer) x [0, k_end),
// optionally conjugated (complex). vec: the host checked that p and s_outer allow aligned 16-byte loads
// along k (only used when kContigK and s_k == 1).
template <class V, bool KCONTIG, bool CONJ = false>
struct DenseLoader {
  static constexpr bool kContigK = KCONTIG;
  const V* p;
  long long n_outer, k_end, s_outer, s_k;
  bool vec;

  template <int CW>
  FASTCNN_DEVICE void fetch(long long o, long long k, V (&out)[CW]) const {
    if (KCONTIG) {
      if (o < n_outer && vec && k + CW <= k_end) {
        load_vec<CW>(p + o * s_outer + k, out);
#pragma unroll
        for (int i = 0; i < CW; ++i) out[i] = conj_if(out[i], CONJ);
      } else {
#pragma unroll
        for (int i = 0; i < CW; ++i)
          out[i] = (o < n_outer && k + i < k_end) ? conj_if(p[o * s_outer + (k + i) * s_k], CONJ) : zero<V>();
      }
    } else {
#pragma unroll
      for (int i = 0; i < CW; ++i)
        out[i] = (o + i < n_outer && k < k_end) ? conj_if(p[(o + i) * s_outer + k * s_k], CONJ) : zero<V>();
    }
  }
};

// Runs one BM x BN output tile at (m0, n0) over k in [kb, ke) and hands each in-range result to
// epi(m, n, value). Must be called by all Cfg::THREADS threads of the block.
template <class Cfg, class LA, class LB, class Epi>
FASTCNN_DEVICE void run_tile(const LA& la, const LB& lb, const Epi& epi, long long M, long long N, long long m0,
                             long long n0, long long kb, long long ke) {
  using V = typename Cfg::V;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
  constexpr int CA = Cfg::CA, CB = Cfg::CB;
  // +CA / +CB padding staggers the banks of the transposing shared-memory stores.
  __shared__ V As[2][BK][BM + CA];
  __shared__ V Bs[2][BK][BN + CB];

  const int tid = threadIdx.x;
  const int tx = tid % (BN / TN), ty = tid / (BN / TN);

  // This thread's chunk of the A and B slices: (outer offset, k offset) inside the tile.
  const int a_o = LA::kContigK ? tid / (BK / CA) : (tid % (BM / CA)) * CA;
  const int a_k = LA::kContigK ? (tid % (BK / CA)) * CA : tid / (BM / CA);
  const int b_o = LB::kContigK ? tid / (BK / CB) : (tid % (BN / CB)) * CB;
  const int b_k = LB::kContigK ? (tid % (BK / CB)) * CB : tid / (BN / CB);

  V ra[CA], rb[CB];
  auto fetch = [&](long long k0) {
    la.template fetch<CA>(m0 + a_o, k0 + a_k, ra);
    lb.template fetch<CB>(n0 + b_o, k0 + b_k, rb);
  };
  auto stash = [&](int buf) {
#pragma unroll
    for (int i = 0; i < CA; ++i) {
      if (LA::kContigK) As[buf][a_k + i][a_o] = ra[i];
      else As[buf][a_k][a_o + i] = ra[i];
    }
#pragma unroll
    for (int i = 0; i < CB; ++i) {
      if (LB::kContigK) Bs[buf][b_k + i][b_o] = rb[i];
      else Bs[buf][b_k][b_o + i] = rb[i];
    }
  };

  V acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = zero<V>();

  int buf = 0;
  if (kb < ke) {
    fetch(kb);
    stash(0);
  }
  __syncthreads();
  for (long long k0 = kb; k0 < ke; k0 += BK) {
    const bool more = k0 + BK < ke;
    if (more) fetch(k0 + BK);  // global loads in flight during the multiply below
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      V a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[buf][kk][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[buf][kk][tx * TN + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) mac(acc[i][j], a[i], b[j]);
    }
    if (more) stash(buf ^ 1);
    __syncthreads();
    buf ^= 1;
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const long long m = m0 + ty * TM + i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const long long n = n0 + tx * TN + j;
      if (n < N) epi(m, n, acc[i][j]);
    }
  }
}

// Block-to-work mapping shared by every GEMM-shaped kernel: blockIdx.x = N tile, blockIdx.y = M
// tile, blockIdx.z = (batch, split) with split fastest. A split covers k in [split * kchunk, ...).
struct TileCoords {
  long long m0, n0, batch, split, kb, ke;
};
template <class Cfg>
FASTCNN_DEVICE TileCoords tile_coords(long long K, long long splits, long long kchunk) {
  TileCoords t;
  t.n0 = static_cast<long long>(blockIdx.x) * Cfg::BN;
  t.m0 = static_cast<long long>(blockIdx.y) * Cfg::BM;
  t.split = static_cast<long long>(blockIdx.z) % splits;
  t.batch = static_cast<long long>(blockIdx.z) / splits;
  t.kb = t.split * kchunk;
  t.ke = t.kb + kchunk < K ? t.kb + kchunk : K;
  return t;
}

}  // namespace tile
}  // namespace fastcnn
