// Direct convolution on the GPU as implicit GEMM: the gemm_tile.cuh engine with loaders that read
// the convolution operands in place (no column matrix in memory; the im2col gather happens while a
// slice is loaded into shared memory). One launch covers all groups (blockIdx.z = group, split).
//
//   forward          y[n,g*Kg+m,p,q]  = act(bias + sum_{c,r,s} w[g*Kg+m,c,r,s] * x[n,g*Cg+c,ih,iw])
//                    M = Kg, N = batch*P*Q (pixels), K = Cg*R*S
//   backward input   gx[n,g*Cg+c,h,w] = sum_{k,r,s} w[g*Kg+k,c,r,s] * gy[n,g*Kg+k,p,q]  (p*sh-ph+r*dh = h)
//                    M = Cg, N = batch*H*W, K = Kg*R*S
//   backward weight  gw[g*Kg+m,c,r,s] = sum_{n,p,q} gy[n,g*Kg+m,p,q] * x[n,g*Cg+c,ih,iw]
//                    M = Kg, N = Cg*R*S, K = batch*P*Q (split-K into slices, summed by gemm.cu's
//                    sum_slices: the reduction is long and M x N small)
#include "conv_epilogue.cuh"
#include "conv_geometry.cuh"
#include "conv_stores.cuh"
#include "gemm_tile.cuh"

using namespace fastcnn;
using geom::ConvShape;
using conv::ForwardEpilogue;
using conv::InputGradEpilogue;
using conv::StoreEpilogue;

namespace {

// x[n][c][ih][iw] of the group's channels, zero outside the image.
template <class T>
FASTCNN_DEVICE T read_input(const T* xg, const ConvShape& g, long long n, long long c, long long ih, long long iw) {
  const bool inside = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
  return inside ? xg[((n * g.C + c) * g.H + ih) * g.W + iw] : T(0);
}

// The im2col matrix, gathered: x[n][g*Cg+c][ih][iw] for tap (c,r,s) and output pixel (n,p,q), zero
// in the padding. Chunks run along pixels (coalesced): along the GEMM rows in the forward pass
// (B^T(pixel, (c,r,s)), PixelsAlongK = false), along k in backward weight (B^T((c,r,s), (n,p,q))).
template <class T, bool PixelsAlongK>
struct ImageGatherLoader {
  static constexpr bool kContigK = PixelsAlongK;
  const T* xg;  // x at the group's first channel
  ConvShape g;
  long long n_rows, k_end;
  template <int CW>
  FASTCNN_DEVICE void fetch(long long row, long long k, T (&out)[CW]) const {
    const long long RS = g.R * g.S, PQ = g.P * g.Q;
    long long c, rs, r, s, n, pq, p, q;
    divmod(PixelsAlongK ? row : k, RS, c, rs);
    divmod(rs, g.S, r, s);
#pragma unroll
    for (int i = 0; i < CW; ++i) {
      const long long ri = PixelsAlongK ? row : row + i, ki = PixelsAlongK ? k + i : k;
      out[i] = T(0);
      if (ri < n_rows && ki < k_end) {
        divmod(PixelsAlongK ? ki : ri, PQ, n, pq);
        divmod(pq, g.Q, p, q);
        out[i] = read_input(xg, g, n, c, geom::conv_in_coord(p, r, g.sh, g.ph, g.dh),
                            geom::conv_in_coord(q, s, g.sw, g.pw, g.dw));
      }
    }
  }
};

// Backward input A(c, (k,r,s)) = w[g*Kg+k][c][r][s]: runs along (r,s) in memory.
template <class T>
struct TransposedWeightLoader {
  static constexpr bool kContigK = true;
  const T* wg;  // w at the group's first output channel
  long long Cg, RS, k_end;
  template <int CW>
  FASTCNN_DEVICE void fetch(long long c, long long k, T (&out)[CW]) const {
#pragma unroll
    for (int i = 0; i < CW; ++i) {
      const long long kk = k + i;
      long long k_out, rs;
      divmod(kk, RS, k_out, rs);
      out[i] = (c < Cg && kk < k_end) ? wg[(k_out * Cg + c) * RS + rs] : T(0);
    }
  }
};

// Backward input B^T((n,h,w), (k,r,s)) = gy[n][g*Kg+k][p][q] for the output (p, q) that reads (h, w)
// through tap (r, s), zero if none does.
template <class T>
struct OutputGradGatherLoader {
  static constexpr bool kContigK = false;
  const T* gyg;  // gy at the group's first channel
  ConvShape g;
  long long n_pix, k_end;
  template <int CW>
  FASTCNN_DEVICE void fetch(long long o, long long k, T (&out)[CW]) const {
    const long long RS = g.R * g.S, HW = g.H * g.W;
    long long kk, rs, r, s, n, hw, h, w;
    divmod(k, RS, kk, rs);
    divmod(rs, g.S, r, s);
#pragma unroll
    for (int i = 0; i < CW; ++i) {
      const long long pix = o + i;
      out[i] = T(0);
      if (pix < n_pix && k < k_end) {
        divmod(pix, HW, n, hw);
        divmod(hw, g.W, h, w);
        const long long p = geom::conv_out_coord(h, r, g.sh, g.ph, g.dh, g.P);
        const long long q = geom::conv_out_coord(w, s, g.sw, g.pw, g.dw, g.Q);
        if (p >= 0 && q >= 0) out[i] = gyg[((n * g.K + kk) * g.P + p) * g.Q + q];
      }
    }
  }
};

// Backward weight A(m, (n,p,q)) = gy[n][g*Kg+m][p][q]: runs along (p,q) in memory.
template <class T>
struct OutputGradRowLoader {
  static constexpr bool kContigK = true;
  const T* gyg;
  ConvShape g;
  long long Kg, k_end;
  template <int CW>
  FASTCNN_DEVICE void fetch(long long m, long long k, T (&out)[CW]) const {
    const long long PQ = g.P * g.Q;
#pragma unroll
    for (int i = 0; i < CW; ++i) {
      const long long pix = k + i;
      long long n, pq;
      divmod(pix, PQ, n, pq);
      out[i] = (m < Kg && pix < k_end) ? gyg[(n * g.K + m) * PQ + pq] : T(0);
    }
  }
};

template <class T>
__device__ void forward_body(const T* x, const T* w, const T* bias, T* y, ConvShape g, int act, T act_param,
                             long long vec_w) {
  using Cfg = tile::RealConfig<T>;
  const long long Kg = g.K / g.G, Cg = g.C / g.G, CRS = Cg * g.R * g.S, n_pix = g.N * g.P * g.Q;
  const tile::TileCoords t = tile::tile_coords<Cfg>(CRS, 1, CRS);
  const long long grp = t.batch;
  tile::DenseLoader<T, true> la{w + grp * Kg * CRS, Kg, t.ke, CRS, 1, vec_w != 0};
  ImageGatherLoader<T, false> lb{x + grp * Cg * g.H * g.W, g, n_pix, t.ke};
  ForwardEpilogue<T> epi{y, bias, g, grp * Kg, act, act_param};
  tile::run_tile<Cfg>(la, lb, epi, Kg, n_pix, t.m0, t.n0, t.kb, t.ke);
}

template <class T>
__device__ void backward_input_body(const T* gy, const T* w, T* gx, ConvShape g) {
  using Cfg = tile::RealConfig<T>;
  const long long Kg = g.K / g.G, Cg = g.C / g.G, RS = g.R * g.S, KRS = Kg * RS, n_pix = g.N * g.H * g.W;
  const tile::TileCoords t = tile::tile_coords<Cfg>(KRS, 1, KRS);
  const long long grp = t.batch;
  TransposedWeightLoader<T> la{w + grp * Kg * Cg * RS, Cg, RS, t.ke};
  OutputGradGatherLoader<T> lb{gy + grp * Kg * g.P * g.Q, g, n_pix, t.ke};
  InputGradEpilogue<T> epi{gx, g, grp * Cg};
  tile::run_tile<Cfg>(la, lb, epi, Cg, n_pix, t.m0, t.n0, t.kb, t.ke);
}

// out: gw itself (splits == 1) or a workspace of `splits` slices of K*Cg*R*S.
template <class T>
__device__ void backward_weight_body(const T* x, const T* gy, T* out, ConvShape g, long long splits,
                                     long long kchunk) {
  using Cfg = tile::RealConfig<T>;
  const long long Kg = g.K / g.G, Cg = g.C / g.G, CRS = Cg * g.R * g.S, n_pix = g.N * g.P * g.Q;
  const tile::TileCoords t = tile::tile_coords<Cfg>(n_pix, splits, kchunk);
  const long long grp = t.batch;
  OutputGradRowLoader<T> la{gy + grp * Kg * g.P * g.Q, g, Kg, t.ke};
  ImageGatherLoader<T, true> lb{x + grp * Cg * g.H * g.W, g, CRS, t.ke};
  StoreEpilogue<T> epi{out + t.split * g.K * CRS + grp * Kg * CRS, CRS};
  tile::run_tile<Cfg>(la, lb, epi, Kg, CRS, t.m0, t.n0, t.kb, t.ke);
}

}  // namespace

#define FASTCNN_SHAPE_ARGS                                                                                   \
  long long N, long long C, long long H, long long W, long long K, long long R, long long S, long long P,     \
      long long Q, long long sh, long long sw, long long ph, long long pw, long long dh, long long dw, long long G
#define FASTCNN_SHAPE ConvShape{N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, G}

#define FASTCNN_CONV_DIRECT(SUF, T)                                                                          \
  extern "C" __global__ void __launch_bounds__(256)                                                          \
      conv_direct_forward_##SUF(const T* x, const T* w, const T* bias, T* y, FASTCNN_SHAPE_ARGS, long long act, \
                                T act_param, long long vec_w) {                                              \
    forward_body(x, w, bias, y, FASTCNN_SHAPE, static_cast<int>(act), act_param, vec_w);                     \
  }                                                                                                          \
  extern "C" __global__ void __launch_bounds__(256)                                                          \
      conv_direct_backward_input_##SUF(const T* gy, const T* w, T* gx, FASTCNN_SHAPE_ARGS) {                 \
    backward_input_body(gy, w, gx, FASTCNN_SHAPE);                                                           \
  }                                                                                                          \
  extern "C" __global__ void __launch_bounds__(256) conv_direct_backward_weight_##SUF(                       \
      const T* x, const T* gy, T* out, FASTCNN_SHAPE_ARGS, long long splits, long long kchunk) {             \
    backward_weight_body(x, gy, out, FASTCNN_SHAPE, splits, kchunk);                                         \
  }

FASTCNN_CONV_DIRECT(f32, float)
FASTCNN_CONV_DIRECT(f64, double)
