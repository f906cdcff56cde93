// Building blocks of the direct convolution (included by the ISA-compiled conv_direct*.cpp files):
// the channel-blocked layout, packing to and from it, and the register-blocked micro-kernel.
//
// Layout. An image batch is copied once per call to [N][block][row][pos][VL]: VL = Vec<T>::N
// channels per block (16 floats on AVX-512), zero-padded spatially so the micro-kernel never tests
// bounds, and with the columns of a row split into `phases` interleaved sub-rows (column c at
// (c % phases) * phase_len + c / phases): with phases = stride the pixels of one output row read
// consecutive positions for every tap, so stride enters only the tap offsets.
// Weights are copied to [out block][in block][R][S][VL in][VL out] (dense) or [out block][R][S][VL]
// (depthwise: lanes are channels of different groups).
#pragma once
#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/activation_math.h"
#include "common/simd.h"
#include "common/threads.h"
#include "kernels/conv_direct.h"

// Complete unrolling of the tile loops (below: the accumulators must stay in registers). The
// sanitizer build (setup.py, FASTCNN_SANITIZE) leaves it out: instrumented, the unrolled tiles took
// GCC over ten minutes for this file; the loops compute the same either way.
#define FASTCNN_PRAGMA(text) _Pragma(#text)
#ifdef FASTCNN_SANITIZE_BUILD
#define FASTCNN_UNROLL(n)
#else
#define FASTCNN_UNROLL(n) FASTCNN_PRAGMA(GCC unroll n)
#endif
#include "kernels/conv_direct.h"
#include "kernels/conv_workspace.h"
#include "kernels/gemm_pack.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace conv_direct {
using simd::Vec;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// The size of the parts when n is cut into the fewest equal-as-possible parts of at most `most`.
inline int64_t even_part(int64_t n, int64_t most) { return ceil_div(n, ceil_div(n, most)); }

// Smallest share of a parallel loop worth a thread: elements copied, or multiply-adds (in lanes).
// Below it the loop runs inline, so tiny convolutions pay no OpenMP wake-up.
constexpr int64_t kMinChunk = 1 << 16;
constexpr int64_t kMinFlopChunk = 1 << 21;
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Lane l of a block is channel base + l * stride of the NCHW tensor, for l < count (zero beyond).
struct ChannelBlock {
  int64_t base, stride, count;
};

// An output block: its channels, the run of input blocks it reduces over, the weights' lane count
// in the last of them (the micro-kernel skips the zero lanes, which matters for C = 1 or 3).
struct OutBlock {
  ChannelBlock ch;
  int64_t in_first, n_in;
  int cn_last;
};

// Which blocks feed which: forward / backward-weight (in = x channels, out = y channels) or
// backward-input (in = gy channels, out = gx channels). Depthwise (C/groups == 1, groups > 1)
// puts one channel of each of VL groups in a block and reduces element-wise.
struct Plan {
  std::vector<ChannelBlock> in;
  std::vector<OutBlock> out;
  bool depthwise;
  bool transposed;     // backward-input roles
  int64_t tap_elems;   // weight elements per (in block, r, s): VL*VL dense, VL depthwise
  int64_t n_in;        // input blocks per output block (the same for all)
  int64_t ob_elems() const { return n_in * tap_elems; }  // times R*S: weights per output block
};

inline Plan make_plan(const ConvShape& s, int VL, bool transposed) {
  Plan plan;
  const int64_t G = s.G, Cg = s.C / G, Kg = s.K / G;
  plan.depthwise = Cg == 1 && G > 1;
  plan.transposed = transposed;
  if (plan.depthwise) {
    const int64_t m = Kg, CB = ceil_div(s.C, VL);
    plan.tap_elems = VL;
    plan.n_in = transposed ? m : 1;
    for (int64_t gb = 0; gb < CB; ++gb) {
      const int64_t count = std::min<int64_t>(VL, s.C - gb * VL);
      const ChannelBlock xc{gb * VL, 1, count};
      if (!transposed) plan.in.push_back(xc);
      for (int64_t i = 0; i < m; ++i) {
        const ChannelBlock yc{gb * VL * m + i, m, count};
        if (transposed) plan.in.push_back(yc);
        else plan.out.push_back({yc, gb, 1, 1});
      }
      if (transposed) plan.out.push_back({xc, gb * m, m, 1});
    }
    return plan;
  }
  // Dense (groups >= 1): blocks never straddle a group; a partial block is zero-padded.
  const int64_t Ci = transposed ? Kg : Cg, Co = transposed ? Cg : Kg;
  const int64_t IB = ceil_div(Ci, VL), OB = ceil_div(Co, VL);
  plan.tap_elems = int64_t(VL) * VL;
  plan.n_in = IB;
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t b = 0; b < IB; ++b) plan.in.push_back({g * Ci + b * VL, 1, std::min<int64_t>(VL, Ci - b * VL)});
    for (int64_t b = 0; b < OB; ++b)
      plan.out.push_back({{g * Co + b * VL, 1, std::min<int64_t>(VL, Co - b * VL)}, g * IB, IB,
                          static_cast<int>(Ci - (IB - 1) * VL)});
  }
  return plan;
}

// Calls visit(packed_index, weight_index) for every real weight of w[K][C/g][R][S] in the packed
// order of `plan` (padding slots are left alone). flip packs tap (r, c) where tap (R-1-r, S-1-c)
// goes, so that a correlation with the flipped weights (the stride-1 backward-input) still reads
// them in ascending order. Shared by packing and by backward-weight's unpacking.
template <class Visit>
void for_each_weight(const Plan& plan, const ConvShape& s, int VL, Visit&& visit, bool flip = false) {
  const int64_t RS = s.R * s.S, Cg = s.C / s.G, tap = plan.tap_elems;
  // The weights of output block ob from its input block b.
  auto block = [&](int64_t ob, int64_t b) {
    const OutBlock& o = plan.out[ob];
    const ChannelBlock& ic = plan.in[o.in_first + b];
    const int64_t packed0 = (ob * plan.n_in + b) * RS * tap;
    if (plan.depthwise) {  // lane l: every tap of w[k][0] (w row k)
      for (int64_t l = 0; l < o.ch.count; ++l) {
        const int64_t k = plan.transposed ? ic.base + l * ic.stride : o.ch.base + l * o.ch.stride;
        for (int64_t rs = 0; rs < RS; ++rs) visit(packed0 + (flip ? RS - 1 - rs : rs) * tap + l, k * RS + rs);
      }
      return;
    }
    // Lane (li, lo) is w[k0 + dk][c0 + dc] (a block does not straddle a group: one modulo per
    // block, where one per weight cost more than the copy). The k lanes are the outer loop: each
    // reads one run of weights contiguous in w; then taps, then c lanes.
    const int64_t k0 = plan.transposed ? ic.base : o.ch.base, c0 = (plan.transposed ? o.ch.base : ic.base) % Cg;
    const int64_t nk = plan.transposed ? ic.count : o.ch.count, nc = plan.transposed ? o.ch.count : ic.count;
    const int64_t k_lane = plan.transposed ? VL : 1, c_lane = plan.transposed ? 1 : VL;  // slot steps
    for (int64_t dk = 0; dk < nk; ++dk)
      for (int64_t rs = 0; rs < RS; ++rs) {
        const int64_t pi = packed0 + (flip ? RS - 1 - rs : rs) * tap + dk * k_lane, wi = ((k0 + dk) * Cg + c0) * RS + rs;
        for (int64_t dc = 0; dc < nc; ++dc) visit(pi + dc * c_lane, wi + dc * RS);
      }
  };
  if (plan.transposed && !plan.depthwise) {
    // Input blocks (of k) outer: the k rows of w are then read in order, where output blocks (of c)
    // outer read every k row in pieces of VL * R * S, a cache miss each (pspnet's 1024->128 3x3
    // backward-input: ~9% of the pass). Dense: a group's output blocks all read its n_in input blocks.
    const int64_t per_group = static_cast<int64_t>(plan.out.size()) / s.G;
    parallel_for(static_cast<int64_t>(plan.in.size()), std::max<int64_t>(1, kMinChunk / (per_group * RS * tap)),
                 [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t ob = i / plan.n_in * per_group; ob < (i / plan.n_in + 1) * per_group; ++ob) block(ob, i % plan.n_in);
    });
    return;
  }
  parallel_for(static_cast<int64_t>(plan.out.size()), std::max<int64_t>(1, kMinChunk / (plan.n_in * RS * tap)),
               [&](int64_t ob0, int64_t ob1) {
    for (int64_t ob = ob0; ob < ob1; ++ob)
      for (int64_t b = 0; b < plan.out[ob].n_in; ++b) block(ob, b);
  });
}

template <class T>
std::vector<T> pack_weights(const Plan& plan, const ConvShape& s, const T* w, bool flip = false) {
  constexpr int VL = Vec<T>::N;
  std::vector<T> packed(plan.out.size() * plan.ob_elems() * s.R * s.S, T(0));
  T* dst = packed.data();
  for_each_weight(plan, s, VL, [&](int64_t pi, int64_t wi) { dst[pi] = w[wi]; }, flip);
  return packed;
}

// Geometry of a blocked copy of a [N][channels][H][W] tensor.
struct Blocked {
  int64_t blocks, rows, phases, phase_len;
  int64_t top, left;   // source (h, w) lands at row h + top, column w + left
  int64_t width;       // columns [0, width) of the padded image are stored
  int64_t row_len() const { return phases * phase_len; }
  int64_t pos(int64_t col) const { return (col % phases) * phase_len + col / phases; }
  template <int VL>
  int64_t block_elems() const { return rows * row_len() * VL; }
};

inline Blocked make_blocked(int64_t blocks, int64_t rows, int64_t width, int64_t top, int64_t left, int64_t phases) {
  return Blocked{blocks, rows, phases, ceil_div(width, phases), top, left, width};
}

// Row d of a blocked copy: source column w lands at d + at[w - w0] (its g.pos times VL), lane l =
// s[l * lane_stride + w] for w in [w0, w1) and l < count, zero in lanes count..VL-1 (a transpose;
// with g.phases > 1 also the de-interleave of the stride phases).
template <class T>
inline void pack_row(const T* s, int64_t lane_stride, int64_t count, int64_t w0, int64_t w1, const int64_t* at, T* d) {
  constexpr int VL = Vec<T>::N;
  int64_t w = w0;
#if FASTCNN_HAS_AVX2
  if constexpr (sizeof(T) == 4 && VL % 8 == 0) {  // 8 x 8 register transposes, VL / 8 lane halves
    __m256 col[8];
    for (; w + 8 <= w1; w += 8)
      for (int h = 0; h < VL / 8; ++h) {
        const int rows = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(8, count - 8 * h)));
        gemm_pack::transpose_8x8(s + 8 * h * lane_stride + w, lane_stride, rows, 1.0f, col);
        for (int k = 0; k < 8; ++k) _mm256_storeu_ps(d + at[w - w0 + k] + 8 * h, col[k]);
      }
  }
#endif
  for (; w < w1; ++w) {
    T* dw = d + at[w - w0];
    for (int64_t l = 0; l < VL; ++l) dw[l] = l < count ? s[l * lane_stride + w] : T(0);
  }
}

// dst[N][blocks][rows][row_len][VL] <- src[N][channels][H][W] with zeros around and in empty lanes.
// dst holds N * g.blocks * g.block_elems<VL>() elements; every one is written.
template <class T>
void pack_input(const T* src, int64_t N, int64_t channels, int64_t H, int64_t W,
                const std::vector<ChannelBlock>& blocks, const Blocked& g, T* dst) {
  constexpr int VL = Vec<T>::N;
  const int64_t row_elems = g.row_len() * VL;
  const int64_t w0 = std::max<int64_t>(0, -g.left), w1 = std::min<int64_t>(W, g.width - g.left);
  // Each source column's place in a row, once per call: g.pos divides by the phase count, and done
  // per stored column that division dominated the packing (SRGAN D's 16->16 3x3 stride 2 on 48x48,
  // AVX-512, Zen 4, 1 thread: packing x took 1.5x the tiles' time; forward 1.07 -> 0.85 ms, weight
  // gradient, which packs x and gy, 1.13 -> 0.49).
  std::vector<int64_t> at(static_cast<size_t>(std::max<int64_t>(0, w1 - w0)));
  for (int64_t w = w0; w < w1; ++w) at[w - w0] = g.pos(w + g.left) * VL;
  parallel_for(N * g.blocks * g.rows, std::max<int64_t>(1, kMinChunk / row_elems), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t row = i % g.rows, nb = i / g.rows, b = nb % g.blocks, n = nb / g.blocks;
      T* d = dst + i * row_elems;
      const int64_t h = row - g.top;
      const bool inside = h >= 0 && h < H && w1 > w0;
      const ChannelBlock& cb = blocks[b];
      const T* s = src + ((n * channels + cb.base) * H + h) * W;
      if (inside && g.phases == 1) {  // zero the padding columns only, transpose the rest in
        std::memset(d, 0, sizeof(T) * (w0 + g.left) * VL);
        std::memset(d + (w1 + g.left) * VL, 0, sizeof(T) * (g.row_len() - w1 - g.left) * VL);
      } else {  // phased rows interleave padding and interior: zero all, then fill the interior
        std::memset(d, 0, sizeof(T) * row_elems);
      }
      if (inside) pack_row(s, cb.stride * H * W, cb.count, w0, w1, at.data(), d);
    }
  });
}

// conv::Workspace slots of the blocked copies: the input (x, or gy for backward-input), and gy of
// backward-weight.
constexpr int kSlotInput = 3, kSlotGrad = 4;

// The blocked copy in scratch slot `slot` of conv::Workspace (valid until that slot is asked for again).
template <class T>
const T* pack_input_scratch(int slot, const T* src, int64_t N, int64_t channels, int64_t H, int64_t W,
                            const std::vector<ChannelBlock>& blocks, const Blocked& g) {
  T* dst = conv::Workspace::get<T>(slot, static_cast<size_t>(N * g.blocks * g.template block_elems<Vec<T>::N>()));
  pack_input(src, N, channels, H, W, blocks, g, dst);
  return dst;
}

// The blocked copy as a vector of its own.
template <class T>
std::vector<T> pack_input(const T* src, int64_t N, int64_t channels, int64_t H, int64_t W,
                          const std::vector<ChannelBlock>& blocks, const Blocked& g) {
  std::vector<T> dst(static_cast<size_t>(N * g.blocks * g.template block_elems<Vec<T>::N>()));
  pack_input(src, N, channels, H, W, blocks, g, dst.data());
  return dst;
}

// y[ch(l)][row][0..npix) <- buf[npix][VL] for the block's lanes (the epilogue has already run).
template <class T>
inline void unpack_row(const T* buf, int64_t npix, const ChannelBlock& ch, T* y_image, int64_t plane, int64_t row_off) {
  constexpr int VL = Vec<T>::N;
  int64_t q = 0;
#if FASTCNN_HAS_AVX2
  if constexpr (sizeof(T) == 4 && VL % 8 == 0) {  // 8 pixels x 8 lanes per register transpose
    __m256 lane[8];
    for (; q + 8 <= npix; q += 8)
      for (int64_t h = 0; h < VL / 8 && 8 * h < ch.count; ++h) {
        gemm_pack::transpose_8x8(buf + q * VL + 8 * h, VL, 8, 1.0f, lane);
        for (int64_t l = 8 * h; l < std::min<int64_t>(ch.count, 8 * h + 8); ++l)
          _mm256_storeu_ps(y_image + (ch.base + l * ch.stride) * plane + row_off + q, lane[l - 8 * h]);
      }
  }
#endif
  for (int64_t l = 0; l < ch.count; ++l) {
    T* d = y_image + (ch.base + l * ch.stride) * plane + row_off;
    for (int64_t p = q; p < npix; ++p) d[p] = buf[p * VL + l];
  }
}

// One tap of the reduction: where it reads the blocked input (relative to the tile's first pixel)
// and the weights (relative to the output block's weights, for input block 0).
struct Tap {
  int64_t x_off, w_off;
};

struct Epilogue {
  Act act;
  double param;
};

// Widest tiles: accumulators + weight vectors + a broadcast must fit the register file (32 zmm
// on AVX-512, 16 ymm/xmm otherwise), and a tile needs >= 8 accumulators to hide FMA latency.
// Three output blocks per tile need the fewest loads per FMA (3 weights + NQ broadcasts for 3*NQ).
constexpr int kMaxBlocks = 3;                             // output blocks one dense tile may take
constexpr int kMaxTile3 = FASTCNN_HAS_AVX512 ? 9 : 4;     // pixels of a tile of three output blocks
constexpr int kMaxTile2 = FASTCNN_HAS_AVX512 ? 14 : 6;   // pixels of a tile of two output blocks
constexpr int kMaxTile1 = FASTCNN_HAS_AVX512 ? 24 : 12;  // pixels of a one-block or depthwise tile

template <class T>
struct TileArgs {
  const T* x;          // blocked input, input block 0: pixel j reads from x + pix[j]
  const int64_t* pix;  // per-pixel input offsets (a tile may span rows)
  int64_t x_block;     // elements between input blocks
  const T* w;          // packed weights of the first output block, input block 0
  int64_t w_block;     // between input blocks
  int64_t w_out;       // between output blocks
  int64_t n_in;        // input blocks to reduce over
  int cn_last;         // lanes used in the last input block
  const Tap* taps;
  int64_t n_taps;
  T* out;              // pixel j of output block b goes to out + b * out_block + j * out_stride
  int64_t out_stride, out_block;
  const T* bias;       // VL lanes per output block, or null
  Epilogue ep;
  // A reduction split into chunks of input blocks (correlate: deep layers): add starts from the
  // partial sums already in out; finish applies bias + activation (else out gets the raw sums).
  bool add = false, finish = true;
  // Row-tap tiles (conv_direct.cpp run_tile): the taps come in runs of run_len consecutive columns
  // of one kernel row, w_tap elements apart in the weights; 0: not used.
  int64_t run_len = 0, w_tap = 0;
};

// Where a tile's pixels read the blocked input. RowPixels: consecutive positions of one (phased)
// row, pixel j at x + j * VL, so every broadcast is one base register plus a constant offset.
// GatherPixels: a pointer per pixel (a tile spanning rows of a band); with more pixels than
// general registers the pointers spill.
template <class T, int NQ>
struct RowPixels {
  const T* x;
  RowPixels(const T* xt, const int64_t* pix) : x(xt + pix[0]) {}
  const T* at(int j) const { return x + j * Vec<T>::N; }
};

template <class T, int NQ>
struct GatherPixels {
  const T* p[NQ];
  GatherPixels(const T* xt, const int64_t* pix) {
FASTCNN_UNROLL(32)
    for (int j = 0; j < NQ; ++j) p[j] = xt + pix[j];
  }
  const T* at(int j) const { return p[j]; }
};

// acc[b][j] += sum over input lanes c < cn of x(pixel j)[c] * w_b[c][:]: one broadcast of each
// input value feeds NB output blocks. CN > 0 fixes cn at compile time (full blocks). The pixel and
// block loops must unroll completely, or acc leaves the registers (GCC's default limits stop at
// 18 pixels: acc then lives on the stack, one load + store per FMA).
template <class T, int NB, int NQ, int CN, class Px>
inline void fma_dense(Vec<T> (&acc)[NB][NQ], const Px& xp, const T* wp, int64_t w_out, int cn) {
  using V = Vec<T>;
  constexpr int VL = V::N;
  const int n = CN > 0 ? CN : cn;
FASTCNN_UNROLL(4)
  for (int c = 0; c < n; ++c) {
    V wv[NB];
FASTCNN_UNROLL(4)
    for (int b = 0; b < NB; ++b) wv[b] = V::load(wp + b * w_out + c * VL);
FASTCNN_UNROLL(32)
    for (int j = 0; j < NQ; ++j) {
      const V xv = V::set1(xp.at(j)[c]);
FASTCNN_UNROLL(4)
      for (int b = 0; b < NB; ++b) acc[b][j] = fmadd(xv, wv[b], acc[b][j]);
    }
  }
}

// A tile's accumulators at its start: zero, or the partial sums of the chunks before (a.add).
template <class T, int NB, int NQ>
inline void tile_start(Vec<T> (&acc)[NB][NQ], const TileArgs<T>& a) {
FASTCNN_UNROLL(4)
  for (int b = 0; b < NB; ++b)
FASTCNN_UNROLL(32)
    for (int j = 0; j < NQ; ++j) acc[b][j] = a.add ? Vec<T>::load(a.out + b * a.out_block + j * a.out_stride) : Vec<T>::zero();
}

// A tile's accumulators to a.out: raw (a chunk of the reduction before the last), or with bias and
// activation.
template <class T, int NB, int NQ>
inline void tile_store(const Vec<T> (&acc)[NB][NQ], const TileArgs<T>& a) {
  using V = Vec<T>;
  constexpr int VL = V::N;
  if (!a.finish) {
FASTCNN_UNROLL(4)
    for (int b = 0; b < NB; ++b)
FASTCNN_UNROLL(32)
      for (int j = 0; j < NQ; ++j) acc[b][j].store(a.out + b * a.out_block + j * a.out_stride);
    return;
  }
FASTCNN_UNROLL(4)
  for (int b = 0; b < NB; ++b) {
    const V bv = a.bias ? V::load(a.bias + b * VL) : V::zero();
FASTCNN_UNROLL(32)
    for (int j = 0; j < NQ; ++j)
      act::forward<T>(a.ep.act, V(acc[b][j] + bv), T(a.ep.param), T(0)).store(a.out + b * a.out_block + j * a.out_stride);
  }
}

// The micro-kernel: NQ output pixels x NB output blocks of VL channels in NB*NQ registers,
// reduced over the input blocks and the taps, then bias + activation and stored.
// Dense: per input lane, NB weight vectors times the broadcast input value of each pixel.
// Depthwise (NB = 1): input and weights are both vectors over the block's channels.
// ROW: the pixels are consecutive positions of one row (RowPixels), else gathered through a.pix.
template <class T, int NB, int NQ, bool DW, bool ROW>
void tile(const TileArgs<T>& a) {
  using V = Vec<T>;
  using Px = std::conditional_t<ROW, RowPixels<T, NQ>, GatherPixels<T, NQ>>;
  constexpr int VL = V::N;
  V acc[NB][NQ];
  tile_start(acc, a);
  for (int64_t i = 0; i < a.n_in; ++i) {
    const T* xb = a.x + i * a.x_block;
    const T* wb = a.w + i * a.w_block;
    const bool full = i < a.n_in - 1 || a.cn_last == VL;
    for (int64_t t = 0; t < a.n_taps; ++t) {
      const Px xp(xb + a.taps[t].x_off, a.pix);
      const T* wp = wb + a.taps[t].w_off;
      if constexpr (DW) {
        const V wv = V::load(wp);
FASTCNN_UNROLL(32)
        for (int j = 0; j < NQ; ++j) acc[0][j] = fmadd(V::load(xp.at(j)), wv, acc[0][j]);
      } else if (full) {
        fma_dense<T, NB, NQ, VL>(acc, xp, wp, a.w_out, VL);
      } else {
        fma_dense<T, NB, NQ, 0>(acc, xp, wp, a.w_out, a.cn_last);
      }
    }
  }
  tile_store(acc, a);
}

template <class T>
using TileFn = void (*)(const TileArgs<T>&);

template <class T, int NB, bool DW, bool ROW, int... I>
TileFn<T> tile_fn_impl(int nq, std::integer_sequence<int, I...>) {
  static const TileFn<T> table[] = {&tile<T, NB, I + 1, DW, ROW>...};
  return table[nq - 1];
}

template <class T, bool ROW>
TileFn<T> tile_fn_of(int nb, int nq, bool depthwise) {
  if (depthwise) return tile_fn_impl<T, 1, true, ROW>(nq, std::make_integer_sequence<int, kMaxTile1>{});
  if (nb == 3) return tile_fn_impl<T, 3, false, ROW>(nq, std::make_integer_sequence<int, kMaxTile3>{});
  if (nb == 2) return tile_fn_impl<T, 2, false, ROW>(nq, std::make_integer_sequence<int, kMaxTile2>{});
  return tile_fn_impl<T, 1, false, ROW>(nq, std::make_integer_sequence<int, kMaxTile1>{});
}

// The tile for nb output blocks (1 to kMaxBlocks; depthwise: 1) and nq <= max_tile(nb) pixels;
// row: the nq pixels are consecutive positions of one row (pix[j] = pix[0] + j * VL).
template <class T>
TileFn<T> tile_fn(int nb, int nq, bool depthwise, bool row) {
  return row ? tile_fn_of<T, true>(nb, nq, depthwise) : tile_fn_of<T, false>(nb, nq, depthwise);
}

inline int max_tile(int nb) { return nb == 3 ? kMaxTile3 : nb == 2 ? kMaxTile2 : kMaxTile1; }


// Splits n pixels into the fewest tiles of at most max_width, of nearly equal width.
struct Tiling {
  int64_t n, count;
  Tiling(int64_t n_, int64_t max_width) : n(n_), count(ceil_div(n_, max_width)) {}
  int64_t begin(int64_t i) const { return n * i / count; }
  int64_t width(int64_t i) const { return begin(i + 1) - begin(i); }
};

// Output blocks one tile takes together (they read the same input, so they share a group): three
// where possible, two where three would leave a single block behind (4 -> 2 + 2, 7 -> 2 + 3 + 2).
inline int blocks_together(const Plan& plan, int64_t ob, int64_t ob_end) {
  if (plan.depthwise) return 1;
  int64_t m = 1;
  while (ob + m < ob_end && m < 5 && plan.out[ob + m].in_first == plan.out[ob].in_first) ++m;
  if (m >= 3 && m != 4) return 3;
  return m >= 2 ? 2 : 1;
}

constexpr int64_t kL2Budget = 384 * 1024;  // bytes of blocked input a row block may touch

// Parallel work: tasks = images x row blocks x output-block chunks, sized so that a row block's
// input stays in L2 and there are enough tasks for the threads.
struct Work {
  int64_t out_rows, n_out_blocks;
  int64_t row_blocks, rows_per_block, ob_chunks, ob_per_chunk, tasks;
  int64_t grain;  // tasks per thread at least (small problems run on fewer threads)
  int64_t images = 1;  // images per task (group_images)

  // Task t: images [n, n + images) (the last group may be short), output rows [row0, row1) and
  // output blocks [ob0, ob1).
  struct Task {
    int64_t n, row0, row1, ob0, ob1;
  };
  Task task(int64_t t) const {
    const int64_t obc = t % ob_chunks, rb = (t / ob_chunks) % row_blocks;
    const int64_t row0 = rb * rows_per_block, ob0 = obc * ob_per_chunk;
    return {t / ob_chunks / row_blocks * images, row0, std::min(out_rows, row0 + rows_per_block), ob0,
            std::min(n_out_blocks, ob0 + ob_per_chunk)};
  }
};

// macs_per_row_block: multiply-add lanes of one output row of one output block.
inline Work split_work(int64_t N, int64_t out_rows, int64_t rows_fit, int64_t n_out_blocks, int64_t macs_per_row_block) {
  Work wk;
  wk.out_rows = out_rows;
  wk.n_out_blocks = n_out_blocks;
  wk.rows_per_block = std::max<int64_t>(1, std::min(out_rows, rows_fit));
  wk.row_blocks = ceil_div(out_rows, wk.rows_per_block);
  const int64_t want = 4 * num_threads();
  wk.ob_chunks = std::min<int64_t>(n_out_blocks, std::max<int64_t>(1, ceil_div(want, N * wk.row_blocks)));
  const int64_t per = ceil_div(n_out_blocks, wk.ob_chunks);
  wk.ob_per_chunk = per >= kMaxBlocks ? ceil_div(per, kMaxBlocks) * kMaxBlocks : ceil_div(per, 2) * 2;  // whole tiles
  wk.ob_chunks = ceil_div(n_out_blocks, wk.ob_per_chunk);
  wk.tasks = N * wk.row_blocks * wk.ob_chunks;
  wk.grain = std::max<int64_t>(1, kMinFlopChunk / std::max<int64_t>(1, macs_per_row_block * wk.rows_per_block * wk.ob_per_chunk));
  return wk;
}

// Tasks of several whole images: a task then runs each output-block group's weights (or chunk of
// them) over all its images before the next, so they are read from L3 once per task, not once per
// image (a task of one image reads all K*C*R*S weights for 81 pixels on a 9x9 map). Taken where a
// row block is the whole image and the weights of a task's output blocks exceed the L2 budget;
// as many images as keep their input (in_bytes each, per reduction chunk) within the budget while
// leaving 4 tasks per thread. pspnet's 1024->128 3x3 on 9x9, batch 16, AVX-512, 2 threads, medians
// of 20-24 interleaved calls, 1/2/4 images per task: forward 10.38/10.04/9.83 ms, backward-input
// 10.93/10.36/10.17; 4 gains a little more on a quiet machine, but with 2 tasks per thread a thread
// delayed by another process leaves a quarter of the work waiting (docs/algo-direct.md). Only on
// maps of at most kGroupMaxPixels output pixels, where an image reads each weight for few pixels:
// AlexNet's conv2 (27x27) did not gain (forward 20.2-25.0 ms before, 23.1-26.1 with 2 images).
constexpr int64_t kGroupMaxPixels = 256;
inline void group_images(Work& wk, int64_t N, int64_t pixels, int64_t in_bytes, int64_t weight_bytes) {
  if (wk.row_blocks != 1 || pixels > kGroupMaxPixels || weight_bytes <= kL2Budget) return;
  int64_t m = std::max<int64_t>(1, std::min<int64_t>(N, kL2Budget / std::max<int64_t>(1, in_bytes)));
  while (m > 1 && ceil_div(N, m) * wk.ob_chunks < 4 * num_threads()) --m;
  wk.images = m;
  wk.tasks = ceil_div(N, m) * wk.ob_chunks;
}

// Runs [0, n) on as many workers as parallel_for would start for `grain`, handing out one item at a
// time from a shared counter: body(worker, claim), with claim(item) true while items are left. On a
// machine shared with other processes a delayed thread then leaves its items to the others instead
// of making them wait at the end (a static split waits for the slowest thread).
template <class Body>
void parallel_claim(int64_t n, int64_t grain, Body&& body) {
  std::atomic<int64_t> next{0};
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(num_threads(), n / std::max<int64_t>(1, grain)));
  parallel_for(workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t worker = w0; worker < w1; ++worker) {
      auto claim = [&](int64_t& item) { return (item = next.fetch_add(1, std::memory_order_relaxed)) < n; };
      body(worker, claim);
    }
  });
}

}  // namespace conv_direct
FASTCNN_ISA_NAMESPACE_END

FASTCNN_ISA_NAMESPACE_BEGIN
namespace conv_direct {

// The forward input's blocked copy: every row and column some output pixel's taps reach, the
// columns split into `stride` phases. Shared by forward and backward-weight.
inline Blocked forward_input_geometry(const ConvShape& s, int64_t blocks) {
  return make_blocked(blocks, (s.P - 1) * s.sh + (s.R - 1) * s.dh + 1, (s.Q - 1) * s.sw + (s.S - 1) * s.dw + 1,
                      s.ph, s.pw, s.sw);
}

// Output rows per row block so that the input rows they read (in_row_bytes each) fit the budget.
inline int64_t rows_that_fit(int64_t in_row_bytes, int64_t window, int64_t stride) {
  const int64_t in_rows = kL2Budget / std::max<int64_t>(1, in_row_bytes);
  return std::max<int64_t>(1, (in_rows - window) / stride + 1);
}

template <class T>
void backward_weight(const ConvShape& s, const T* x, const T* gy, T* gw);  // conv_direct_wgrad.cpp

// The kernel rows [r0, r1) whose input rows for output row p lie inside the image (r0 == r1: none).
inline std::pair<int64_t, int64_t> rows_inside(const ConvShape& s, int64_t p) {
  int64_t r0 = 0, r1 = s.R;
  while (r0 < r1 && p * s.sh - s.ph + r0 * s.dh < 0) ++r0;
  while (r1 > r0 && p * s.sh - s.ph + (r1 - 1) * s.dh >= s.H) --r1;
  return {r0, r1};
}

// The kernel columns [c0, c1) whose input columns for output column q lie inside the image (c0 == c1:
// none); the column sibling of rows_inside.
inline std::pair<int64_t, int64_t> cols_inside(const ConvShape& s, int64_t q) {
  int64_t c0 = 0, c1 = s.S;
  while (c0 < c1 && q * s.sw - s.pw + c0 * s.dw < 0) ++c0;
  while (c1 > c0 && q * s.sw - s.pw + (c1 - 1) * s.dw >= s.W) --c1;
  return {c0, c1};
}

// The output pixels [a, b) of [lo, hi) whose input pixel, pixel * stride + offset, lies inside
// [0, size) (a == b: none): for one kernel tap, the pixels whose products are not with the padding.
inline std::pair<int64_t, int64_t> pixels_inside(int64_t offset, int64_t stride, int64_t size, int64_t lo, int64_t hi) {
  const int64_t a = std::max(lo, -floor_div(offset, stride));
  return {a, std::max(a, std::min(hi, floor_div(size - 1 - offset, stride) + 1))};
}

// Few channels per group (conv_direct_few.cpp): vectors along the output row, up to kFewMaxK output
// channels per tile. few_weights packs w (flip_transposed: for the stride-1 backward-input's
// correlation s, w being the forward's weights); few_correlate runs correlation s with them.
constexpr int kFewMaxK = 8;

template <class T>
std::vector<T> few_weights(const ConvShape& s, const T* w, bool flip_transposed);
template <class T>
void few_correlate(const ConvShape& s, const std::vector<T>& wf, const T* x, const T* bias, T* y, const Epilogue& ep);
// Which passes take them: stride-1 correlations (forward, backward-input) with at most kFewMaxK
// output and kFewMaxC input channels per group, weight gradients with at most kFewMaxK of each;
// not depthwise (its blocks put channels of different groups in the lanes: none is padding).
// Stride 2 stays on the blocked tiles: with the columns split into phases the plain rows lost
// (StyleGAN-XL's 8->8 4x4 s2 on 64x64, AVX-512, 1 thread: forward 2.01 against 1.12 ms,
// backward-weight 2.17 against 1.12). fastcnn/ops/_conv_algo.py FEW_* states the same limits (for
// AVX-512). With 8-lane blocks (AVX2) 8 and 16 channels fill them: FCN's 8->16 66x66 backward-input,
// 1 thread, 2.80 ms by the few-channel tiles against 2.66 by the blocked ones; so 8 there.
constexpr int64_t kFewMaxC = FASTCNN_HAS_AVX512 ? 16 : 8;
inline bool few_channels(const ConvShape& s, bool weight_gradient) {
  const int64_t Cg = s.C / s.G, Kg = s.K / s.G;
  return s.sh == 1 && s.sw == 1 && !(Cg == 1 && s.G > 1) && Kg <= kFewMaxK &&
         Cg <= (weight_gradient ? kFewMaxK : kFewMaxC);
}
template <class T>
void few_backward_weight(const ConvShape& s, const T* x, const T* gy, T* gw);

// The AVX2 copy for a pass the AVX-512 copy would run on half-empty vectors, where 512-bit FMAs issue
// at half the 256-bit rate (half_rate_zmm(): Zen 4), so that 8 lanes of work cost a whole 16-lane FMA:
// the vectorised channels per group (`out_lanes`: output channels; input channels for backward-input)
// leave at least half of their last vector empty, or the tile reduces over at most half a vector of
// input lanes. Zen 4, 1 thread, AVX-512 -> AVX2 copy (docs/algo-direct.md "Half-rate 512-bit FMAs"):
// PIDNet-S's and StyleGAN-XL D's 8->8 stride-2 passes 1.53-1.91 -> 0.88-1.04 ms, AlexNet's 3->24
// 11x11 stem 1.97 -> 1.25 (forward), HardNet's 8->16 stride 2 0.39 -> 0.26. Not for the few-channel
// row tiles of forward and backward-input (there AVX-512's took up to 16 input channels and won),
// nor depthwise (its lanes hold channels of several groups, none of them padding).
inline bool narrow_copy_pays(const ConvShape& s, int64_t out_lanes, int64_t in_lanes, int VL) {
  if (!FASTCNN_HAS_AVX512 || (s.C / s.G == 1 && s.G > 1) || !half_rate_zmm()) return false;
  const int64_t tail = out_lanes % VL;
  return (tail != 0 && tail <= VL / 2) || in_lanes <= VL / 2;
}
template <class T>
const ConvDirectFns<T>& narrow_copy() {
  if constexpr (sizeof(T) == 4) return fastcnn::avx2::conv_direct_kernels().f32;
  else return fastcnn::avx2::conv_direct_kernels().f64;
}

}  // namespace conv_direct
FASTCNN_ISA_NAMESPACE_END
