// Direct convolution, backward-weight: gw[k][c][r][s] = sum over n, p, q of
// x[n][c][p*sh - ph + r*dh][q*sw - pw + s*dw] * gy[n][k][p][q], on the blocked copies of x (the
// forward's layout) and gy ([N][out block][P][Q][VL]).
//
// Each thread takes a contiguous run of (image, row block) units and accumulates into its own
// packed weight-gradient buffer (the forward's packed weight layout); the buffers are summed at the
// end and unpacked to [K][C/g][R][S]. Layers with many input blocks split those instead: each thread
// fills its input blocks' part of one buffer over all units. Dense micro-kernel: the gradient
// blocks of up to three output blocks (same group, as the forward's tiles) x a run of input lanes
// live in registers (lanes = output channels); per pixel one gy vector load per output block and
// one broadcast per input lane; a block of few input lanes (C = 1, 3) takes several taps per tile.
// Depthwise: element-wise products.
#include "kernels/conv_direct_blocks.h"

#include <memory>

FASTCNN_ISA_NAMESPACE_BEGIN
namespace conv_direct {
namespace {

// Where one register tile of the weight gradient reads and accumulates.
template <class T>
struct WgradArgs {
  T* acc;               // gradient block of output block 0 at the tile's first input lane
  int64_t acc_block;    // elements between the gradient blocks of consecutive output blocks
  const T* x;           // blocked input at the tap's first pixel and the tile's first lane
  int64_t x_row_step;
  const T* gy;          // blocked gy of output block 0 at the row block's first pixel
  int64_t gy_block;     // elements between the gy blocks of consecutive output blocks
  int64_t gy_row_step, rows, Q;
};

// acc_tb[c][k] += sum over rows, q of x(row, q + tap t)[c] * gy_b(row, q)[k] for NT taps t, CL input
// lanes c and NB output blocks b: NT*NB*CL accumulators, per pixel NB gy vector loads and NT*CL
// broadcasts for NT*NB*CL FMAs (3 x 4 on AVX2: 12 independent FMA chains and 7 loads per 12 FMAs).
// Tap t reads x at x_tap[t] from a.x and accumulates at acc + t * acc_tap. Several taps per tile
// (NT > 1) serve blocks of few input lanes (C = 1 or 3): one tap alone would give CL < 4 FMA
// chains, each waiting on its own latency.
template <class T, int NB, int CL, int NT>
void wgrad_tile(const WgradArgs<T>& a, const int64_t* x_tap, int64_t acc_tap) {
  using V = Vec<T>;
  constexpr int VL = V::N;
  V acc[NT][NB][CL];
  int64_t xo[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) {
    xo[t] = x_tap[t];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
#pragma GCC unroll 16
      for (int c = 0; c < CL; ++c) acc[t][b][c] = V::load(a.acc + t * acc_tap + b * a.acc_block + c * VL);
  }
  for (int64_t i = 0; i < a.rows; ++i) {
    const T* xr = a.x + i * a.x_row_step;
    const T* gr = a.gy + i * a.gy_row_step;
    const T* xt[NT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) xt[t] = xr + xo[t];
    for (int64_t q = 0; q < a.Q; ++q) {
      V gv[NB];
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b) gv[b] = V::load(gr + b * a.gy_block + q * VL);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t)
#pragma GCC unroll 16
        for (int c = 0; c < CL; ++c) {
          const V xv = V::set1(xt[t][q * VL + c]);
#pragma GCC unroll 4
          for (int b = 0; b < NB; ++b) acc[t][b][c] = fmadd(xv, gv[b], acc[t][b][c]);
        }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
#pragma GCC unroll 16
      for (int c = 0; c < CL; ++c) acc[t][b][c].store(a.acc + t * acc_tap + b * a.acc_block + c * VL);
}

// acc_t[c] += sum over rows, q of x(row, q + t)[c] * gy(row, q) for NS consecutive column taps t
// (stride and dilation 1 along the row: tap t's pixel q reads x at column q + t), CL input lanes
// and one output block. The gy vectors of NQ pixels stay in registers and each x column's
// broadcast serves every tap that meets one of them: per NQ pixels NQ loads and (NQ + NS - 1) * CL
// broadcasts for NQ * NS * CL FMAs (SegNet-Basic's 7x7 on AVX-512: 36 loads per 112 FMAs, against
// 17 per 16 for one tap at a time). Pixels beyond the last full group of NQ take one at a time.
// The products reach each accumulator in the same order as wgrad_tile's (row, then pixel), so
// both give the same sums.
template <class T, int NS, int CL, int NQ>
void wgrad_row_tile(const WgradArgs<T>& a, const int64_t*, int64_t acc_tap) {
  using V = Vec<T>;
  constexpr int VL = V::N;
  V acc[NS][CL];
#pragma GCC unroll 8
  for (int t = 0; t < NS; ++t)
#pragma GCC unroll 4
    for (int c = 0; c < CL; ++c) acc[t][c] = V::load(a.acc + t * acc_tap + c * VL);
  for (int64_t i = 0; i < a.rows; ++i) {
    const T* xr = a.x + i * a.x_row_step;
    const T* gr = a.gy + i * a.gy_row_step;
    int64_t q = 0;
    for (; q + NQ <= a.Q; q += NQ) {
      V gv[NQ];
#pragma GCC unroll 16
      for (int u = 0; u < NQ; ++u) gv[u] = V::load(gr + (q + u) * VL);
#pragma GCC unroll 4
      for (int c = 0; c < CL; ++c)
#pragma GCC unroll 24
        for (int j = 0; j < NQ + NS - 1; ++j) {  // x column q + j meets pixel q + u at tap j - u
          const V xv = V::set1(xr[(q + j) * VL + c]);
#pragma GCC unroll 8
          for (int t = 0; t < NS; ++t)
            if (j - t >= 0 && j - t < NQ) acc[t][c] = fmadd(xv, gv[j - t], acc[t][c]);
        }
    }
    for (; q < a.Q; ++q) {
      const V gv = V::load(gr + q * VL);
#pragma GCC unroll 4
      for (int c = 0; c < CL; ++c)
#pragma GCC unroll 8
        for (int t = 0; t < NS; ++t) acc[t][c] = fmadd(V::set1(xr[(q + t) * VL + c]), gv, acc[t][c]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NS; ++t)
#pragma GCC unroll 4
    for (int c = 0; c < CL; ++c) acc[t][c].store(a.acc + t * acc_tap + c * VL);
}

template <class T>
using WgradFn = void (*)(const WgradArgs<T>&, const int64_t*, int64_t);

// wgrad_row_tile's shape: up to kRowTaps taps x kRowLanes lanes of accumulators and kRowPixels gy
// vectors, within 32 registers (7 x 2 + 8 + 1). A wider kernel row is split evenly (9 = 5 + 4): a
// group of 1-2 taps would leave 2-4 FMA chains, each waiting on its latency.
constexpr int kRowTaps = 7;
constexpr int kRowLanes = 2;
constexpr int kRowPixels = 8;
// Kernels at least this wide take the row tiles (stride and dilation 1 along the row, dense blocks
// of more than kFewLanes lanes); 3x3 layers keep wgrad_tile, whose 2-3 output blocks already share
// each broadcast, and so do AlexNet conv2's 5x5 (K/g 128: 48.7 ms by row tiles against 46.0, 1
// thread) and rows shorter than kRowPixels (FCN's fc6 7x7 onto 3x3: 2.1-2.6 against 1.5 ms).
// AVX-512 only: with 16 registers (AVX2: 4 taps x 2 lanes + 4 + 1) the row tiles lost to
// wgrad_tile's 2 output blocks x 4 lanes (1 thread: SegNet-Basic 16->16 7x7 on 48x64 15.3 against
// 13.7 ms, AlexNet conv2 113 against 76).
constexpr bool kRowTiles = FASTCNN_HAS_AVX512;
constexpr int kRowTileMinWidth = 7;

template <class T, int CL, int... I>
WgradFn<T> row_fn_impl(int ns, std::integer_sequence<int, I...>) {
  static const WgradFn<T> table[] = {&wgrad_row_tile<T, I + 1, CL, kRowPixels>...};
  return table[ns - 1];
}

// The row tile for ns <= kRowTaps taps and cl <= kRowLanes lanes.
template <class T>
WgradFn<T> row_fn(int ns, int cl) {
  static_assert(kRowLanes == 2, "row_fn lists the lane counts");
  if (cl == 2) return row_fn_impl<T, 2>(ns, std::make_integer_sequence<int, kRowTaps>{});
  return row_fn_impl<T, 1>(ns, std::make_integer_sequence<int, kRowTaps>{});
}

// Input lanes one tile takes: all VL for one output block; VL / 2 for two or three, so that the
// accumulators, the gy vectors and a broadcast fit 16 registers (AVX2: 3 x 4 + 3 + 1).
template <class T>
constexpr int wgrad_lanes(int nb) { return nb == 1 ? Vec<T>::N : Vec<T>::N / 2; }

// Blocks of at most kFewLanes input lanes (fewer than a tile takes) reduce several taps per tile:
// 1, 2, 4 or 8 (kMaxTapsTogether), as many as keep the accumulators within kWgradAccs registers.
constexpr int kFewLanes = 4;
constexpr int kMaxTapsTogether = 8;
constexpr int kWgradAccs = FASTCNN_HAS_AVX512 ? 24 : 12;
// Bytes of one thread's gradient accumulated over all its units at a time (L2 with x and gy).
constexpr int64_t kAccChunkBytes = 512 * 1024;
// Input blocks per worker from which the workers split the input blocks rather than the units.
constexpr int64_t kInputBlocksPerWorker = 4;
// Bytes of x rows (one input block) and gy rows (the tile's output blocks) that all taps of a tile
// reread: a unit's rows are reduced in slices of this size, so that the taps after the first read
// them from L1 (this Xeon's 48 KB), not L2. SegNet-Basic's 16->16 7x7 on 48x64, AVX-512, 1 thread:
// whole unit (48 rows, 420 KB) 9.5 ms, slices of 8 / 4 / 2 rows 8.8 / 7.9 / 7.9 ms. Not for layers
// of few input channels per group: their tiles take several taps (rows) at once, and sliced they
// lost (SRResNet's 3->64 9x9 on 96x96: 35.1 -> 40.1 ms, SegNet-Basic's 3->16 7x7: 2.2 -> 2.4).
constexpr int64_t kWgradSliceBytes = 48 * 1024;

// Output rows of one slice: ((rows - 1) * stride + window) x rows and rows gy rows within
// kWgradSliceBytes, at least 1, at most `most`.
inline int64_t slice_rows(int64_t x_row_bytes, int64_t gy_row_bytes, int64_t window, int64_t stride, int64_t most) {
  const int64_t room = kWgradSliceBytes - (window - stride) * x_row_bytes;
  return std::clamp<int64_t>(room / (stride * x_row_bytes + gy_row_bytes), 1, most);
}

inline int taps_together(int nb, int cl) {
  int nt = 1;
  while (nt < kMaxTapsTogether && 2 * nt * nb * cl <= kWgradAccs) nt *= 2;
  return nt;
}

template <class T, int NB, int NT, int... I>
WgradFn<T> wgrad_fn_impl(int cl, std::integer_sequence<int, I...>) {
  static const WgradFn<T> table[] = {&wgrad_tile<T, NB, I + 1, NT>...};
  return table[cl - 1];
}

template <class T, int NB>
WgradFn<T> wgrad_fn_nb(int cl, int nt) {
  if (nt == 1) return wgrad_fn_impl<T, NB, 1>(cl, std::make_integer_sequence<int, wgrad_lanes<T>(NB)>{});
  constexpr int few = std::min(kFewLanes, wgrad_lanes<T>(NB));
  if (nt == 2) return wgrad_fn_impl<T, NB, 2>(cl, std::make_integer_sequence<int, few>{});
  if (nt == 4) return wgrad_fn_impl<T, NB, 4>(cl, std::make_integer_sequence<int, few>{});
  return wgrad_fn_impl<T, NB, 8>(cl, std::make_integer_sequence<int, few>{});
}

// The tile for nb output blocks (1 to 3), cl <= wgrad_lanes(nb) input lanes and nt taps (1; or 2,
// 4, 8 with cl <= kFewLanes).
template <class T>
WgradFn<T> wgrad_fn(int nb, int cl, int nt) {
  if (nb == 3) return wgrad_fn_nb<T, 3>(cl, nt);
  if (nb == 2) return wgrad_fn_nb<T, 2>(cl, nt);
  return wgrad_fn_nb<T, 1>(cl, nt);
}

// acc[VL] += sum over rows, q of x(row, q) * gy(row, q), lane by lane; four chains hide FMA latency.
template <class T>
void wgrad_block_depthwise(T* acc_mem, const T* x, int64_t x_row_step, const T* gy, int64_t gy_row_step, int64_t rows, int64_t Q) {
  using V = Vec<T>;
  constexpr int VL = V::N;
  V a0 = V::load(acc_mem), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  for (int64_t i = 0; i < rows; ++i) {
    const T* xr = x + i * x_row_step;
    const T* gr = gy + i * gy_row_step;
    int64_t q = 0;
    for (; q + 4 <= Q; q += 4) {
      a0 = fmadd(V::load(xr + q * VL), V::load(gr + q * VL), a0);
      a1 = fmadd(V::load(xr + (q + 1) * VL), V::load(gr + (q + 1) * VL), a1);
      a2 = fmadd(V::load(xr + (q + 2) * VL), V::load(gr + (q + 2) * VL), a2);
      a3 = fmadd(V::load(xr + (q + 3) * VL), V::load(gr + (q + 3) * VL), a3);
    }
    for (; q < Q; ++q) a0 = fmadd(V::load(xr + q * VL), V::load(gr + q * VL), a0);
  }
  V(V(a0 + a1) + V(a2 + a3)).store(acc_mem);
}

}  // namespace

template <class T>
void backward_weight(const ConvShape& s, const T* x, const T* gy, T* gw) {
  constexpr int VL = Vec<T>::N;
  // Before the few-channel tiles: their weight gradients (lanes = output channels) win on AVX2 too.
  if (narrow_copy_pays(s, s.K / s.G, s.C / s.G, VL)) return narrow_copy<T>().backward_weight(s, x, gy, gw);
  if (few_channels(s, true)) {
    few_backward_weight(s, x, gy, gw);
    return;
  }
  const Plan plan = make_plan(s, VL, false);
  const int64_t RS = s.R * s.S;
  const Blocked g = forward_input_geometry(s, static_cast<int64_t>(plan.in.size()));
  std::vector<ChannelBlock> gy_blocks;
  for (const OutBlock& o : plan.out) gy_blocks.push_back(o.ch);
  const Blocked gg = make_blocked(static_cast<int64_t>(gy_blocks.size()), s.P, s.Q, 0, 0, 1);
  const T* xb = pack_input_scratch(kSlotInput, x, s.N, s.C, s.H, s.W, plan.in, g);
  const T* gyb = pack_input_scratch(kSlotGrad, gy, s.N, s.K, s.P, s.Q, gy_blocks, gg);
  const int64_t XB = g.block_elems<VL>(), XI = XB * g.blocks, RL = g.row_len();
  const int64_t GB = gg.block_elems<VL>(), GI = GB * gg.blocks;
  const int64_t n_ob = static_cast<int64_t>(plan.out.size());
  const int64_t acc_elems = n_ob * plan.ob_elems() * RS;

  // A gradient too large for L2 (pspnet's 1024->128 3x3: 4.7 MB per thread) is accumulated in
  // chunks of input blocks, each over all of a thread's units, so that the accumulators are not
  // loaded from and stored to L3 by every tile of every unit.
  const int64_t per_in_block = n_ob * RS * plan.tap_elems * int64_t(sizeof(T));
  const int64_t most = std::max<int64_t>(1, kAccChunkBytes / per_in_block);
  const int64_t chunk = even_part(plan.n_in, most);
  const int64_t rows = rows_that_fit(chunk * RL * VL * int64_t(sizeof(T)), (s.R - 1) * s.dh + 1, s.sh);
  const int64_t row_blocks = ceil_div(s.P, rows), units = s.N * row_blocks;
  const int64_t macs = units * rows * s.Q * n_ob * plan.ob_elems() * RS;
  const int64_t workers = std::max<int64_t>(1, std::min({int64_t(num_threads()), units, macs / kMinFlopChunk}));
  // With input blocks to spare (pspnet's 1024->128: 64 of them), each worker takes a run of input
  // blocks over all units and fills its part of one accumulator: no per-thread copies of the
  // gradient to zero and add up (2 x 4.7 MB there), and sums whose order does not depend on the
  // thread count. Otherwise each worker takes a run of units into an accumulator of its own.
  const bool split_inputs = workers > 1 && plan.n_in >= kInputBlocksPerWorker * workers;
  const int64_t n_acc = split_inputs ? 1 : workers;
  std::unique_ptr<T[]> accs(new T[static_cast<size_t>(n_acc * acc_elems)]);  // zeroed by the workers
  // x offset of each tap (r, c) from its pixel's top-left tap, in the blocked copy.
  std::vector<int64_t> x_taps(static_cast<size_t>(RS));
  for (int64_t r = 0; r < s.R; ++r)
    for (int64_t c = 0; c < s.S; ++c) x_taps[r * s.S + c] = (r * s.dh * RL + g.pos(c * s.dw)) * VL;
  const int64_t zero = 0;
  // One row of x per tap row: phases 1 (stride 1 along the row) and dilation 1 along the row.
  // (Layers of few input channels per group keep the taps-together tiles of their output blocks.)
  const bool few_lanes = s.C / s.G <= kFewLanes;
  const bool row_tiles = kRowTiles && !plan.depthwise && !few_lanes && s.S >= kRowTileMinWidth && s.Q >= kRowPixels &&
                         s.sw == 1 && s.dw == 1 && g.phases == 1;
  const int64_t row_taps = even_part(s.S, kRowTaps);
  const int64_t gy_row_bytes = (row_tiles ? 1 : blocks_together(plan, 0, n_ob)) * s.Q * VL * int64_t(sizeof(T));
  const int64_t slice =
      few_lanes ? rows : slice_rows(RL * VL * int64_t(sizeof(T)), gy_row_bytes, (s.R - 1) * s.dh + 1, s.sh, rows);

  parallel_for(workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t wk = w0; wk < w1; ++wk) {
      T* acc = accs.get() + (split_inputs ? 0 : wk * acc_elems);
      const int64_t in0 = split_inputs ? plan.n_in * wk / workers : 0;
      const int64_t in1 = split_inputs ? plan.n_in * (wk + 1) / workers : plan.n_in;
      const int64_t u_begin = split_inputs ? 0 : units * wk / workers;
      const int64_t u_end = split_inputs ? units : units * (wk + 1) / workers;
      const int64_t in_block_elems = RS * plan.tap_elems;
      for (int64_t ob = 0; ob < n_ob; ++ob)
        std::fill(acc + (ob * plan.n_in + in0) * in_block_elems, acc + (ob * plan.n_in + in1) * in_block_elems, T(0));
      const int64_t step = split_inputs ? even_part(in1 - in0, most) : chunk;
      for (int64_t b0 = in0; b0 < in1; b0 += step)
      for (int64_t u = u_begin; u < u_end; ++u) {
        const int64_t n = u / row_blocks, u0 = (u % row_blocks) * rows, u1 = std::min<int64_t>(s.P, u0 + rows);
        for (int64_t p0 = u0, p1; p0 < u1; p0 = p1) {
          p1 = std::min(u1, p0 + slice);
          for (int64_t ob = 0, nb; ob < n_ob; ob += nb) {
            nb = row_tiles ? 1 : blocks_together(plan, ob, n_ob);
            const OutBlock& o = plan.out[ob];
            const T* gyo = gyb + n * GI + ob * GB + p0 * s.Q * VL;
            for (int64_t b = b0; b < std::min({o.n_in, b0 + step, in1}); ++b) {
              const int cn = b == o.n_in - 1 ? o.cn_last : VL;
              const T* xin = xb + n * XI + (o.in_first + b) * XB;
              const int lanes = wgrad_lanes<T>(static_cast<int>(nb));
              if (!plan.depthwise && cn <= kFewLanes && cn < lanes) {  // few lanes: taps in groups of nt
                T* am = acc + (ob * plan.n_in + b) * RS * plan.tap_elems;
                const T* xt = xin + p0 * s.sh * RL * VL;
                const int per = taps_together(static_cast<int>(nb), cn);
                for (int64_t t0 = 0, nt; t0 < RS; t0 += nt) {
                  nt = per;
                  while (nt > RS - t0) nt /= 2;
                  wgrad_fn<T>(static_cast<int>(nb), cn, static_cast<int>(nt))(
                      {am + t0 * plan.tap_elems, plan.ob_elems() * RS, xt, s.sh * RL * VL, gyo, GB, s.Q * VL, p1 - p0, s.Q},
                      x_taps.data() + t0, plan.tap_elems);
                }
                continue;
              }
              if (row_tiles && cn > kFewLanes) {  // wide kernel: a kernel row's taps in even groups of <= kRowTaps
                for (int64_t r = 0; r < s.R; ++r)
                  for (int64_t c0 = 0; c0 < s.S; c0 += row_taps) {
                    const int ns = static_cast<int>(std::min<int64_t>(row_taps, s.S - c0));
                    T* am = acc + ((ob * plan.n_in + b) * RS + r * s.S + c0) * plan.tap_elems;
                    const T* xt = xin + ((p0 * s.sh + r * s.dh) * RL + c0) * VL;
                    for (int l0 = 0; l0 < cn; l0 += kRowLanes) {
                      const int cl = std::min(kRowLanes, cn - l0);
                      row_fn<T>(ns, cl)({am + l0 * VL, 0, xt + l0, s.sh * RL * VL, gyo, GB, s.Q * VL, p1 - p0, s.Q},
                                        nullptr, plan.tap_elems);
                    }
                  }
                continue;
              }
              // Each tap takes only the output rows and columns whose input lies inside the image: the
              // rest would multiply the zero padding (R2D2's dilation-16 2x2 with padding 8 on 32x32:
              // 56% of the products are with the image).
              for (int64_t r = 0; r < s.R; ++r) {
                const auto [pa, pb] = pixels_inside(r * s.dh - s.ph, s.sh, s.H, p0, p1);
                if (pa == pb) continue;
                for (int64_t c = 0; c < s.S; ++c) {
                  const auto [qa, qb] = pixels_inside(c * s.dw - s.pw, s.sw, s.W, 0, s.Q);
                  if (qa == qb) continue;
                  T* am = acc + ((ob * plan.n_in + b) * RS + r * s.S + c) * plan.tap_elems;
                  const T* xt = xin + ((pa * s.sh + r * s.dh) * RL + g.pos(c * s.dw) + qa) * VL;
                  const T* gt = gyo + ((pa - p0) * s.Q + qa) * VL;
                  if (plan.depthwise) {
                    wgrad_block_depthwise(am, xt, s.sh * RL * VL, gt, s.Q * VL, pb - pa, qb - qa);
                    continue;
                  }
                  for (int l0 = 0; l0 < cn; l0 += lanes) {
                    const int cl = std::min(lanes, cn - l0);
                    wgrad_fn<T>(static_cast<int>(nb), cl, 1)({am + l0 * VL, plan.ob_elems() * RS, xt + l0, s.sh * RL * VL,
                                                               gt, GB, s.Q * VL, pb - pa, qb - qa}, &zero, 0);
                  }
                }
              }
            }
          }
        }
      }
    }
  });

  T* total = accs.get();
  if (n_acc > 1)
    parallel_for(acc_elems, kMinChunk, [&](int64_t i0, int64_t i1) {
      for (int64_t a = 1; a < n_acc; ++a) {
        const T* part = accs.get() + a * acc_elems;
        for (int64_t i = i0; i < i1; ++i) total[i] += part[i];
      }
    });
  for_each_weight(plan, s, VL, [&](int64_t pi, int64_t wi) { gw[wi] = total[pi]; });
}

template void backward_weight<float>(const ConvShape&, const float*, const float*, float*);
template void backward_weight<double>(const ConvShape&, const double*, const double*, double*);

}  // namespace conv_direct
FASTCNN_ISA_NAMESPACE_END
