// Convolution as implicit GEMM on the tensor cores (algo 'implicit_gemm' of the cuda backend): the
// mma_tile.cuh engine (mma.sync m16n8k8 TF32, cp.async double buffering) with loaders that hand out
// the addresses of the convolution operands in place; the GEMMs are those of conv_direct.cu:
//
//   forward          M = Kg, N = batch*P*Q, K = Cg*R*S   A = w rows, B = gathered input
//   backward input   M = Cg, N = batch*H*W, K = Kg*R*S   A = w transposed, B = gathered gy
//   backward weight  M = Kg, N = Cg*R*S, K = batch*P*Q  A = gy rows, B = gathered input (split-K)
//
// float32 only (sm_80+); `_tf32` kernels round the operands to TF32, `_tf32x3` keep float32 accuracy
// with three products (mma_tile.cuh). Grid: x = N tiles, y = M tiles, z = group (* splits).
#include "conv_geometry.cuh"
#include "conv_stores.cuh"
#include "mma_tile.cuh"

using namespace fastcnn;
using geom::ConvShape;

namespace {

struct NoCursor {};

// A dense matrix read along k: p[outer * ld + k], zero outside [0, n_outer) x [.., k_end).
struct RowLoader {
  static constexpr bool kContigK = true;
  using Cursor = NoCursor;
  const float* p;
  long long n_outer, ld, k_end;
  FASTCNN_DEVICE Cursor cursor(long long) const { return {}; }
  FASTCNN_DEVICE const float* at(const Cursor&, long long o, long long k) const {
    return o < n_outer && k < k_end ? p + o * ld + k : nullptr;
  }
  FASTCNN_DEVICE const float* base() const { return p; }
};

// forward B^T(pixel, (c,r,s)) = x[n][g*Cg+c][p*sh-ph+r*dh][q*sw-pw+s*dw]; the pixel is fixed per thread.
struct ForwardImageLoader {
  static constexpr bool kContigK = false;
  struct Cursor {
    const float* img;  // x at (image n, the group's first channel); nullptr: pixel past the end
    long long ih0, iw0;
  };
  const float* xg;
  ConvShape g;
  long long n_pix, k_end;
  FASTCNN_DEVICE Cursor cursor(long long pix) const {
    if (pix >= n_pix) return {nullptr, 0, 0};
    long long n, pq, p, q;
    divmod(pix, g.P * g.Q, n, pq);
    divmod(pq, g.Q, p, q);
    return {xg + n * g.C * g.H * g.W, p * g.sh - g.ph, q * g.sw - g.pw};
  }
  FASTCNN_DEVICE const float* at(const Cursor& cur, long long, long long k) const {
    if (cur.img == nullptr || k >= k_end) return nullptr;
    long long c, rs, r, s;
    divmod(k, g.R * g.S, c, rs);
    divmod(rs, g.S, r, s);
    const long long ih = cur.ih0 + r * g.dh, iw = cur.iw0 + s * g.dw;
    return ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? cur.img + (c * g.H + ih) * g.W + iw : nullptr;
  }
  FASTCNN_DEVICE const float* base() const { return xg; }
};

// backward input A(c, (k,r,s)) = w[g*Kg+k][c][r][s].
struct TransposedWeightLoader {
  static constexpr bool kContigK = true;
  using Cursor = NoCursor;
  const float* wg;
  long long Cg, RS, k_end;
  FASTCNN_DEVICE Cursor cursor(long long) const { return {}; }
  FASTCNN_DEVICE const float* at(const Cursor&, long long c, long long k) const {
    if (c >= Cg || k >= k_end) return nullptr;
    long long kk, rs;
    divmod(k, RS, kk, rs);
    return wg + (kk * Cg + c) * RS + rs;
  }
  FASTCNN_DEVICE const float* base() const { return wg; }
};

// backward input B^T((n,h,w), (k,r,s)) = gy[n][g*Kg+k][p][q] for the output (p, q) that reads (h, w)
// through tap (r, s), zero if none does; the input pixel is fixed per thread.
struct InputGradLoader {
  static constexpr bool kContigK = false;
  struct Cursor {
    const float* img;  // gy at (image n, the group's first channel); nullptr: pixel past the end
    long long h, w;
  };
  const float* gyg;
  ConvShape g;
  long long n_pix, k_end;
  FASTCNN_DEVICE Cursor cursor(long long pix) const {
    if (pix >= n_pix) return {nullptr, 0, 0};
    long long n, hw, h, w;
    divmod(pix, g.H * g.W, n, hw);
    divmod(hw, g.W, h, w);
    return {gyg + n * g.K * g.P * g.Q, h, w};
  }
  FASTCNN_DEVICE const float* at(const Cursor& cur, long long, long long k) const {
    if (cur.img == nullptr || k >= k_end) return nullptr;
    long long kk, rs, r, s;
    divmod(k, g.R * g.S, kk, rs);
    divmod(rs, g.S, r, s);
    const long long p = geom::conv_out_coord(cur.h, r, g.sh, g.ph, g.dh, g.P);
    const long long q = geom::conv_out_coord(cur.w, s, g.sw, g.pw, g.dw, g.Q);
    return p >= 0 && q >= 0 ? cur.img + (kk * g.P + p) * g.Q + q : nullptr;
  }
  FASTCNN_DEVICE const float* base() const { return gyg; }
};

// backward weight A(m, (n,p,q)) = gy[n][g*Kg+m][p][q].
struct OutputGradRowLoader {
  static constexpr bool kContigK = true;
  using Cursor = NoCursor;
  const float* gyg;
  ConvShape g;
  long long Kg, k_end;
  FASTCNN_DEVICE Cursor cursor(long long) const { return {}; }
  FASTCNN_DEVICE const float* at(const Cursor&, long long m, long long pix) const {
    if (m >= Kg || pix >= k_end) return nullptr;
    long long n, pq;
    divmod(pix, g.P * g.Q, n, pq);
    return gyg + (n * g.K + m) * g.P * g.Q + pq;
  }
  FASTCNN_DEVICE const float* base() const { return gyg; }
};

// backward weight B^T((c,r,s), (n,p,q)) = x[n][g*Cg+c][p*sh-ph+r*dh][q*sw-pw+s*dw].
struct WeightGradImageLoader {
  static constexpr bool kContigK = true;
  using Cursor = NoCursor;
  const float* xg;
  ConvShape g;
  long long crs_end, k_end;
  FASTCNN_DEVICE Cursor cursor(long long) const { return {}; }
  FASTCNN_DEVICE const float* at(const Cursor&, long long crs, long long pix) const {
    if (crs >= crs_end || pix >= k_end) return nullptr;
    long long c, rs, r, s, n, pq, p, q;
    divmod(crs, g.R * g.S, c, rs);
    divmod(rs, g.S, r, s);
    divmod(pix, g.P * g.Q, n, pq);
    divmod(pq, g.Q, p, q);
    const long long ih = geom::conv_in_coord(p, r, g.sh, g.ph, g.dh), iw = geom::conv_in_coord(q, s, g.sw, g.pw, g.dw);
    return ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? xg + ((n * g.C + c) * g.H + ih) * g.W + iw : nullptr;
  }
  FASTCNN_DEVICE const float* base() const { return xg; }
};

struct Tile {
  long long m0, n0, grp, split;
};
FASTCNN_DEVICE Tile tile_of_block(long long splits) {
  return {static_cast<long long>(blockIdx.y) * mma::BM, static_cast<long long>(blockIdx.x) * mma::BN,
          static_cast<long long>(blockIdx.z) / splits, static_cast<long long>(blockIdx.z) % splits};
}

template <bool SPLIT>
__device__ void forward_body(const float* x, const float* w, const float* bias, float* y, ConvShape g, int act,
                             float act_param) {
  const long long Kg = g.K / g.G, Cg = g.C / g.G, CRS = Cg * g.R * g.S, n_pix = g.N * g.P * g.Q;
  const Tile t = tile_of_block(1);
  RowLoader la{w + t.grp * Kg * CRS, Kg, CRS, CRS};
  ForwardImageLoader lb{x + t.grp * Cg * g.H * g.W, g, n_pix, CRS};
  conv::ForwardEpilogue<float> epi{y, bias, g, t.grp * Kg, act, act_param};
  mma::run_tile<SPLIT>(la, lb, epi, Kg, n_pix, t.m0, t.n0, 0, CRS);
}

template <bool SPLIT>
__device__ void backward_input_body(const float* gy, const float* w, float* gx, ConvShape g) {
  const long long Kg = g.K / g.G, Cg = g.C / g.G, RS = g.R * g.S, KRS = Kg * RS, n_pix = g.N * g.H * g.W;
  const Tile t = tile_of_block(1);
  TransposedWeightLoader la{w + t.grp * Kg * Cg * RS, Cg, RS, KRS};
  InputGradLoader lb{gy + t.grp * Kg * g.P * g.Q, g, n_pix, KRS};
  conv::InputGradEpilogue<float> epi{gx, g, t.grp * Cg};
  mma::run_tile<SPLIT>(la, lb, epi, Cg, n_pix, t.m0, t.n0, 0, KRS);
}

// out: gw itself (splits == 1) or `splits` slices of K*Cg*R*S summed afterwards (gemm.cu sum_slices).
template <bool SPLIT>
__device__ void backward_weight_body(const float* x, const float* gy, float* out, ConvShape g, long long splits,
                                     long long kchunk) {
  const long long Kg = g.K / g.G, Cg = g.C / g.G, CRS = Cg * g.R * g.S, n_pix = g.N * g.P * g.Q;
  const Tile t = tile_of_block(splits);
  const long long kb = t.split * kchunk, ke = kb + kchunk < n_pix ? kb + kchunk : n_pix;
  OutputGradRowLoader la{gy + t.grp * Kg * g.P * g.Q, g, Kg, ke};
  WeightGradImageLoader lb{x + t.grp * Cg * g.H * g.W, g, CRS, ke};
  conv::StoreEpilogue<float> epi{out + t.split * g.K * CRS + t.grp * Kg * CRS, CRS};
  mma::run_tile<SPLIT>(la, lb, epi, Kg, CRS, t.m0, t.n0, kb, ke);
}

}  // namespace

#define FASTCNN_SHAPE_ARGS                                                                                   \
  long long N, long long C, long long H, long long W, long long K, long long R, long long S, long long P,     \
      long long Q, long long sh, long long sw, long long ph, long long pw, long long dh, long long dw, long long G
#define FASTCNN_SHAPE ConvShape{N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, G}

// One register budget for all: 256 threads, at least one block per SM (no spills per ptxas -v).
#define FASTCNN_CONV_MMA(PREC, SPLIT)                                                                        \
  extern "C" __global__ void __launch_bounds__(256) conv_implicit_gemm_forward_##PREC##_f32(                 \
      const float* x, const float* w, const float* bias, float* y, FASTCNN_SHAPE_ARGS, long long act,        \
      float act_param) {                                                                                     \
    forward_body<SPLIT>(x, w, bias, y, FASTCNN_SHAPE, static_cast<int>(act), act_param);                     \
  }                                                                                                          \
  extern "C" __global__ void __launch_bounds__(256) conv_implicit_gemm_backward_input_##PREC##_f32(          \
      const float* gy, const float* w, float* gx, FASTCNN_SHAPE_ARGS) {                                      \
    backward_input_body<SPLIT>(gy, w, gx, FASTCNN_SHAPE);                                                    \
  }                                                                                                          \
  extern "C" __global__ void __launch_bounds__(256) conv_implicit_gemm_backward_weight_##PREC##_f32(         \
      const float* x, const float* gy, float* out, FASTCNN_SHAPE_ARGS, long long splits, long long kchunk) { \
    backward_weight_body<SPLIT>(x, gy, out, FASTCNN_SHAPE, splits, kchunk);                                  \
  }

FASTCNN_CONV_MMA(tf32, false)
FASTCNN_CONV_MMA(tf32x3, true)
