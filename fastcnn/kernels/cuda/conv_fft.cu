// Tiled FFT convolution (stride 1, dilation 1), overlap-save with TS x TS tiles (TS = 8, 16, 32).
//
// A TS x TS input tile circularly correlated with a kernel zero-padded to TS x TS gives
// TS - R + 1 (x TS - S + 1) correct outputs; in the frequency domain that correlation is
// X_hat * conj(W_hat) per frequency, and the sum over input channels becomes one complex GEMM per
// frequency (Mathieu et al. 2013, fbfft). Pieces, each one kernel:
//
//   tiles_forward   real planes -> half spectra (TS x (TS/2+1) per tile), written frequency-major
//                   dst[f][c][n*tiles + t] so each frequency is a dense (channels x tiles) matrix.
//                   The same kernel transforms input tiles (TS x TS windows), weights (one R x S
//                   tile per (k, c), optionally flipped for the transposed convolution) and output
//                   gradient tiles (step x step windows, zero-padded).
//   cgemm           per (frequency, group): C = conj(A) B with the gemm_tile.cuh engine on complex
//                   values; split-K (slices summed by gemm.cu's sum_slices) for the weight gradient.
//   tiles_inverse   half spectra -> the kept top-left take_h x take_w block of each tile, written to
//                   its place in the output plane with the fused bias + activation epilogue.
//
// The DFTs are direct separable sums with a shared-memory twiddle table (TS <= 32: O(TS^3) per
// tile, small next to the channel GEMM when channels are many).
#include "conv_epilogue.cuh"
#include "conv_geometry.cuh"
#include "gemm_tile.cuh"

using namespace fastcnn;
using tile::cplx;

namespace {

template <int TS>
struct TileShape {
  static constexpr int HF = TS / 2 + 1;                          // kept columns of the half spectrum
  static constexpr int F = TS * HF;                              // frequencies per tile
  static constexpr int PER_BLOCK = TS * TS >= 1024 ? 1 : 1024 / (TS * TS);  // tiles per block
};

template <class T, int TS>
FASTCNN_DEVICE void fill_twiddles(T* re, T* im, int sign) {
  for (int m = threadIdx.x; m < TS; m += blockDim.x) {
    double c, s;
    geom::dft_twiddle(m, TS, sign, &c, &s);
    re[m] = static_cast<T>(c);
    im[m] = static_cast<T>(s);
  }
}

// One complex DFT output, sum_u z(u) * tw[(u * f) % TS] with tw = twr + i twi (the twiddle table
// of the transform's direction); z(u) reads the u-th input from shared memory.
template <class T, int TS, class Input>
FASTCNN_DEVICE cplx<T> complex_dft(const T* twr, const T* twi, int f, Input z) {
  T re = T(0), im = T(0);
#pragma unroll 8
  for (int u = 0; u < TS; ++u) {
    const int m = (u * f) % TS;
    const cplx<T> s = z(u);
    re += s.re * twr[m] - s.im * twi[m];
    im += s.re * twi[m] + s.im * twr[m];
  }
  return {re, im};
}

// Where tile `id` (over n_count x planes_c planes x tiles) lives: plane index n*planes_c + c.
struct TileIndex {
  long long n, c, plane, t, ty, tx;
};
FASTCNN_DEVICE TileIndex tile_index(long long id, long long planes_c, long long tiles_y, long long tiles_x) {
  const long long nt = tiles_y * tiles_x;
  TileIndex r;
  divmod(id, nt, r.plane, r.t);
  divmod(r.plane, planes_c, r.n, r.c);
  divmod(r.t, tiles_x, r.ty, r.tx);
  return r;
}

struct TileArgs {
  long long n_count, planes_c, H, W, tiles_y, tiles_x, step_h, step_w, off_h, off_w, take_h, take_w, ld_f, ld_c;
};

// Tile (ty, tx) of a plane covers rows ty*step_h - off_h + [0, take_h) (likewise columns), zero
// outside the plane and beyond take; with flip the plane is read upside down and mirrored.
template <class T, int TS>
__device__ void tiles_forward_body(const T* src, cplx<T>* dst, TileArgs a, long long flip) {
  using S = TileShape<TS>;
  constexpr int HF = S::HF, NB = S::PER_BLOCK;
  __shared__ T xs[NB][TS][TS];
  __shared__ cplx<T> rows[NB][TS][HF];
  __shared__ T twr[TS], twi[TS];
  fill_twiddles<T, TS>(twr, twi, -1);
  const long long nt = a.tiles_y * a.tiles_x, total = a.n_count * a.planes_c * nt;
  const long long first = static_cast<long long>(blockIdx.x) * NB;

  for (int e = threadIdx.x; e < NB * TS * TS; e += blockDim.x) {
    const int i = e / (TS * TS), u = (e / TS) % TS, v = e % TS;
    T val = T(0);
    if (first + i < total && u < a.take_h && v < a.take_w) {
      const TileIndex ti = tile_index(first + i, a.planes_c, a.tiles_y, a.tiles_x);
      long long ih = ti.ty * a.step_h - a.off_h + u, iw = ti.tx * a.step_w - a.off_w + v;
      if (flip) {
        ih = a.H - 1 - ih;
        iw = a.W - 1 - iw;
      }
      if (ih >= 0 && ih < a.H && iw >= 0 && iw < a.W) val = src[(ti.plane * a.H + ih) * a.W + iw];
    }
    xs[i][u][v] = val;
  }
  __syncthreads();
  // Real DFT along each row: only the TS/2 + 1 non-redundant frequencies.
  for (int e = threadIdx.x; e < NB * TS * HF; e += blockDim.x) {
    const int i = e / (TS * HF), u = (e / HF) % TS, fv = e % HF;
    T re = T(0), im = T(0);
#pragma unroll 8
    for (int v = 0; v < TS; ++v) {
      const int m = (v * fv) % TS;
      re += xs[i][u][v] * twr[m];
      im += xs[i][u][v] * twi[m];
    }
    rows[i][u][fv] = {re, im};
  }
  __syncthreads();
  // Complex DFT along each column; tiles fastest so consecutive threads write consecutive tiles.
  for (int e = threadIdx.x; e < NB * S::F; e += blockDim.x) {
    const int i = e % NB, f = e / NB, fu = f / HF, fv = f % HF;
    if (first + i >= total) continue;
    const TileIndex ti = tile_index(first + i, a.planes_c, a.tiles_y, a.tiles_x);
    dst[f * a.ld_f + ti.c * a.ld_c + ti.n * nt + ti.t] =
        complex_dft<T, TS>(twr, twi, fu, [&](int u) { return rows[i][u][fv]; });
  }
}

// Inverse of tiles_forward's layout: the top-left take_h x take_w of each tile's inverse DFT goes
// to rows ty*step_h + u, columns tx*step_w + v of plane (n, c) in dst[n][c][H][W], then bias[c]
// (may be null) and the activation.
template <class T, int TS>
__device__ void tiles_inverse_body(const cplx<T>* src, T* dst, const T* bias, TileArgs a, int act, T act_param) {
  using S = TileShape<TS>;
  constexpr int HF = S::HF, NB = S::PER_BLOCK;
  __shared__ cplx<T> spec[NB][TS][HF];
  __shared__ cplx<T> z[NB][TS][HF];
  __shared__ T twr[TS], twi[TS];
  fill_twiddles<T, TS>(twr, twi, +1);
  const long long nt = a.tiles_y * a.tiles_x, total = a.n_count * a.planes_c * nt;
  const long long first = static_cast<long long>(blockIdx.x) * NB;

  for (int e = threadIdx.x; e < NB * S::F; e += blockDim.x) {
    const int i = e % NB, f = e / NB;
    cplx<T> val = {T(0), T(0)};
    if (first + i < total) {
      const TileIndex ti = tile_index(first + i, a.planes_c, a.tiles_y, a.tiles_x);
      val = src[f * a.ld_f + ti.c * a.ld_c + ti.n * nt + ti.t];
    }
    spec[i][f / HF][f % HF] = val;
  }
  __syncthreads();
  // Inverse along columns, only for the rows that are kept.
  for (int e = threadIdx.x; e < NB * TS * HF; e += blockDim.x) {
    const int i = e / (TS * HF), u = (e / HF) % TS, fv = e % HF;
    if (u >= a.take_h) continue;
    z[i][u][fv] = complex_dft<T, TS>(twr, twi, u, [&](int fu) { return spec[i][fu][fv]; });
  }
  __syncthreads();
  // Inverse real DFT along rows from the half spectrum (Hermitian: the other half is conjugate).
  const T scale = T(1) / T(TS * TS);
  for (int e = threadIdx.x; e < NB * TS * TS; e += blockDim.x) {
    const int i = e / (TS * TS), u = (e / TS) % TS, v = e % TS;
    if (first + i >= total || u >= a.take_h || v >= a.take_w) continue;
    const TileIndex ti = tile_index(first + i, a.planes_c, a.tiles_y, a.tiles_x);
    const long long oh = ti.ty * a.step_h + u, ow = ti.tx * a.step_w + v;
    if (oh >= a.H || ow >= a.W) continue;
    T x = z[i][u][0].re + ((v & 1) ? -z[i][u][TS / 2].re : z[i][u][TS / 2].re);
    T rest = T(0);
    for (int fv = 1; fv < TS / 2; ++fv) {
      const int m = (v * fv) % TS;
      rest += z[i][u][fv].re * twr[m] - z[i][u][fv].im * twi[m];
    }
    x = (x + T(2) * rest) * scale;
    dst[(ti.plane * a.H + oh) * a.W + ow] = epi::bias_act(x, bias, ti.c, act, act_param);
  }
}

template <class T>
struct ComplexStore {
  cplx<T>* c;
  long long scm, scn;
  FASTCNN_DEVICE void operator()(long long m, long long n, cplx<T> v) const { c[m * scm + n * scn] = v; }
};

// Per z = ((b1 * nb2 + b2) * splits + split): C = conj(A) B on the strided complex matrices
// (b1 = frequency, b2 = group); split > 0 writes slice C + split * sc_split.
template <class T, bool A_ALONG_K, bool B_ALONG_K>
__device__ void cgemm_body(const cplx<T>* A, const cplx<T>* B, cplx<T>* C, long long M, long long N, long long K,
                           long long sam, long long sak, long long sbk, long long sbn, long long scm, long long scn,
                           long long nb2, long long splits, long long kchunk, long long sa1, long long sa2,
                           long long sb1, long long sb2, long long sc1, long long sc2, long long sc_split) {
  using Cfg = tile::ComplexConfig<T>;
  const tile::TileCoords t = tile::tile_coords<Cfg>(K, splits, kchunk);
  const long long b1 = t.batch / nb2, b2 = t.batch % nb2;
  tile::DenseLoader<cplx<T>, A_ALONG_K, true> la{A + b1 * sa1 + b2 * sa2, M, t.ke, sam, sak, false};
  tile::DenseLoader<cplx<T>, B_ALONG_K, false> lb{B + b1 * sb1 + b2 * sb2, N, t.ke, sbn, sbk, false};
  ComplexStore<T> epi{C + b1 * sc1 + b2 * sc2 + t.split * sc_split, scm, scn};
  tile::run_tile<Cfg>(la, lb, epi, M, N, t.m0, t.n0, t.kb, t.ke);
}

}  // namespace

#define FASTCNN_TILE_ARGS                                                                                 \
  long long n_count, long long planes_c, long long H, long long W, long long tiles_y, long long tiles_x,   \
      long long step_h, long long step_w, long long off_h, long long off_w, long long take_h, long long take_w, \
      long long ld_f, long long ld_c
#define FASTCNN_TILE_PACK \
  TileArgs{n_count, planes_c, H, W, tiles_y, tiles_x, step_h, step_w, off_h, off_w, take_h, take_w, ld_f, ld_c}

#define FASTCNN_FFT_TILES(TS, SUF, T)                                                                          \
  extern "C" __global__ void __launch_bounds__(256)                                                            \
      fft_tiles_forward_t##TS##_##SUF(const T* src, cplx<T>* dst, FASTCNN_TILE_ARGS, long long flip) {         \
    tiles_forward_body<T, TS>(src, dst, FASTCNN_TILE_PACK, flip);                                              \
  }                                                                                                            \
  extern "C" __global__ void __launch_bounds__(256) fft_tiles_inverse_t##TS##_##SUF(                           \
      const cplx<T>* src, T* dst, const T* bias, FASTCNN_TILE_ARGS, long long act, T act_param) {              \
    tiles_inverse_body<T, TS>(src, dst, bias, FASTCNN_TILE_PACK, static_cast<int>(act), act_param);            \
  }

FASTCNN_FFT_TILES(8, f32, float)
FASTCNN_FFT_TILES(16, f32, float)
FASTCNN_FFT_TILES(32, f32, float)
FASTCNN_FFT_TILES(8, f64, double)
FASTCNN_FFT_TILES(16, f64, double)
FASTCNN_FFT_TILES(32, f64, double)

#define FASTCNN_CGEMM(NAME, T, AK, BK)                                                                        \
  extern "C" __global__ void __launch_bounds__(256)                                                           \
      NAME(const cplx<T>* A, const cplx<T>* B, cplx<T>* C, long long M, long long N, long long K, long long sam, \
           long long sak, long long sbk, long long sbn, long long scm, long long scn, long long nb2,             \
           long long splits, long long kchunk, long long sa1, long long sa2, long long sb1, long long sb2,       \
           long long sc1, long long sc2, long long sc_split) {                                                \
    cgemm_body<T, AK, BK>(A, B, C, M, N, K, sam, sak, sbk, sbn, scm, scn, nb2, splits, kchunk, sa1, sa2, sb1,  \
                          sb2, sc1, sc2, sc_split);                                                           \
  }

FASTCNN_CGEMM(fft_cgemm_nn_f32, float, true, false)
FASTCNN_CGEMM(fft_cgemm_nt_f32, float, true, true)
FASTCNN_CGEMM(fft_cgemm_tn_f32, float, false, false)
FASTCNN_CGEMM(fft_cgemm_tt_f32, float, false, true)
FASTCNN_CGEMM(fft_cgemm_nn_f64, double, true, false)
FASTCNN_CGEMM(fft_cgemm_nt_f64, double, true, true)
FASTCNN_CGEMM(fft_cgemm_tn_f64, double, false, false)
FASTCNN_CGEMM(fft_cgemm_tt_f64, double, false, true)
