// Direct convolution, forward and backward-input, on the channel-blocked layout of
// conv_direct_blocks.h; backward-weight is in conv_direct_wgrad.cpp.
//
// Forward: for each (image, row block, chunk of output blocks) task, each output block and band of
// rows (short rows are joined so that tiles are full width), the band's pixels are cut into tiles
// of up to kMaxTile; a tile keeps its NQ x VL outputs in registers over all input blocks and taps,
// applies bias + activation, and lands in a band buffer that is transposed into the NCHW output.
// Weights of one output block (C/g * R * S * VL values) stay in L2 across the rows of a task; the
// input rows of a row block fit L2 too.
//
// Backward-input with stride 1 is the forward's correlation of gy (padded by (R-1)*dh - ph) with the
// weights packed transposed ([c][k] roles swapped) and flipped. With stride > 1, gx pixel
// (h, w) gathers gy(p, q) with h + ph = p*sh + r*dh, w + pw = q*sw + s*dw: the gx columns of one residue class a = w mod sw read consecutive gy columns through a
// fixed set of taps, so each (row, residue) is a stride-1 correlation with its own tap list: no
// scatter, no zero-stuffed gy.
#include "kernels/conv_direct_blocks.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace conv_direct {

// Output pixels per run of tiles: short rows (13 on AlexNet's 13x13 layers) are joined into bands
// of rows so that tiles are full width (a 13-pixel row alone leaves a quarter of a 4-wide tile empty).
constexpr int64_t kBandPixels = 64;
// Fewest accumulators (pixels x output blocks) of a row-by-row tile; below, rows are joined.
constexpr int kRowTileAccs = 12;

// Weights of one tile's output blocks (kMaxBlocks of them) over the whole reduction beyond which it
// is cut into chunks of input blocks, and the chunks' size: each chunk's weights stay in L2 (most
// in L1) while every row of a task uses them, where the whole reduction's were streamed from L3 for
// every row (pspnet's 1024->128 3x3 on 9x9: 1.8 MB per three blocks; AVX-512, 1 thread, forward:
// unchunked 25.6 ms, chunks of 512 KB 20-22, 256 KB 22.3, 128 KB 19.4-20.1, 48 KB 20.5; torch 19.3-19.6).
constexpr int64_t kChunkFromBytes = 512 * 1024;
constexpr int64_t kChunkWeightBytes = 128 * 1024;

// Input blocks per reduction chunk (even chunks; all n_in when the weights are within kChunkFromBytes).
inline int64_t reduction_chunk(const Plan& plan, int64_t RS, int64_t elem_bytes) {
  const int64_t per_block = kMaxBlocks * RS * plan.tap_elems * elem_bytes;
  if (plan.depthwise || plan.n_in * per_block <= kChunkFromBytes) return plan.n_in;
  const int64_t most = std::max<int64_t>(1, kChunkWeightBytes / per_block);
  return even_part(plan.n_in, most);
}

// Row-tap tiles (AVX-512): one output block, NQ <= kRunTile consecutive pixels of one row, and the
// taps of each kernel row of a kernel >= kRunMinWidth wide (stride and dilation 1 along the row) in
// groups of 4-7 (kRunTaps; 9 = 5 + 4): the group's weight vectors stay in registers and each input
// column's broadcast serves every tap that meets one of the tile's pixels: per input lane
// NS loads and NQ + NS - 1 broadcasts for NQ * NS FMAs, where tile() takes NS * (1 + NQ) loads.
// SegNet-Basic's 16-channel 7x7 layers and its 3->16 stem (docs/ops-conv.md "SegNet-Basic's 7x7
// passes"). Registers: 16 accumulators + 7 weights + a broadcast.
constexpr bool kRunTiles = FASTCNN_HAS_AVX512;
constexpr int kRunTaps = 7;
constexpr int kRunTile = 16;
constexpr int64_t kRunMinWidth = 7;
constexpr int64_t kRunMinPixels = 8;  // rows at least this long (8 accumulators hide the FMA latency)

// acc[u] += sum over lanes c < n, taps s < NS of x(column u + s)[c] * w_s[c][:], x at pixel 0 of
// the group's first tap, w_s at wp + s * w_tap.
template <class T, int NQ, int NS>
inline void fma_run(Vec<T> (&acc)[NQ], const T* x, const T* wp, int64_t w_tap, int n) {
  using V = Vec<T>;
  constexpr int VL = V::N;
  for (int c = 0; c < n; ++c) {
    V wv[NS];
FASTCNN_UNROLL(8)
    for (int t = 0; t < NS; ++t) wv[t] = V::load(wp + t * w_tap + c * VL);
FASTCNN_UNROLL(32)
    for (int j = 0; j < NQ + NS - 1; ++j) {  // input column j meets pixel j - t at tap t
      const V xv = V::set1(x[j * VL + c]);
FASTCNN_UNROLL(8)
      for (int t = 0; t < NS; ++t)
        if (j - t >= 0 && j - t < NQ) acc[j - t] = fmadd(xv, wv[t], acc[j - t]);
    }
  }
}

template <class T, int NQ>
void run_tile(const TileArgs<T>& a) {
  using V = Vec<T>;
  constexpr int VL = V::N;
  V acc[1][NQ];
  tile_start(acc, a);
  const Tiling groups(a.run_len, kRunTaps);  // widths 4-7 for runs >= 7
  for (int64_t i = 0; i < a.n_in; ++i) {
    const T* xb = a.x + i * a.x_block + a.pix[0];
    const T* wb = a.w + i * a.w_block;
    const int n = i < a.n_in - 1 ? VL : a.cn_last;
    for (int64_t t0 = 0; t0 < a.n_taps; t0 += a.run_len)
      for (int64_t k = 0; k < groups.count; ++k) {
        const Tap& tap = a.taps[t0 + groups.begin(k)];
        const T* x = xb + tap.x_off;
        const T* wp = wb + tap.w_off;
        switch (groups.width(k)) {
          case 4: fma_run<T, NQ, 4>(acc[0], x, wp, a.w_tap, n); break;
          case 5: fma_run<T, NQ, 5>(acc[0], x, wp, a.w_tap, n); break;
          case 6: fma_run<T, NQ, 6>(acc[0], x, wp, a.w_tap, n); break;
          default: fma_run<T, NQ, 7>(acc[0], x, wp, a.w_tap, n); break;
        }
      }
  }
  tile_store(acc, a);
}

template <class T, int... I>
TileFn<T> run_tile_impl(int nq, std::integer_sequence<int, I...>) {
  static const TileFn<T> table[] = {&run_tile<T, I + 1>...};
  return table[nq - 1];
}

// The row-tap tile of nq <= kRunTile pixels.
template <class T>
TileFn<T> run_tile_fn(int nq) {
  if constexpr (kRunTiles) return run_tile_impl<T>(nq, std::make_integer_sequence<int, kRunTile>{});
  return nullptr;
}

// An output row cut into tiles for the row-by-row tiling, each with the hull [c0, c1) of the kernel
// columns that read inside the image for some of its pixels: the others read only the zero padding
// and are left out (the sibling of the row skip). Dilated layers with wide padding have many:
// R2D2's 2x2 dilation-16 pad-8 on 32 columns reads padding in kernel column 0 for pixels 0-7 and
// in column 1 for 24-31. A hull, as a tile's pixels may in principle need columns with a gap.
struct ColumnTiles {
  std::vector<int64_t> start;                    // tile i: pixels [start[i], start[i + 1])
  std::vector<std::pair<int64_t, int64_t>> cols;  // its kernel columns
  int64_t count() const { return static_cast<int64_t>(cols.size()); }
};

// Relative time of one tap and input lane of a tile of nq pixels x nb output blocks: its FMAs, or
// its weight loads + broadcasts, or the FMA latency while it has few accumulators, plus the loop's
// own (which makes fewer, wider tiles win a tie).
inline int64_t tile_cost(int64_t nb, int64_t nq) { return std::max({nb * nq, nb + nq, int64_t(kRowTileAccs)}) + 2; }

// Weights of a tile's reduction up to which narrower tiles may be cut: each tile reads all of them,
// from L1 below this; above, from L2, and the narrower tiles lost more than the skipped taps gave
// (pspnet's dilation-4 3x3, 128 channels: 216 KB, 9-pixel rows cut 5 + 4: forward 3% slower).
constexpr int64_t kCutWeightBytes = 32 * 1024;

// Tiles of at most max_width pixels: the even Tiling (with its columns' hulls) unless cutting at the
// columns where a kernel column starts or stops reading padding is clearly cheaper by tile_cost
// (a narrow tile costs more per pixel: plain pad-1 layers keep the even tiles) and the tile's
// weights (weight_bytes) stay in L1.
inline ColumnTiles column_tiles(const ConvShape& s, int64_t nb, int64_t max_width, int64_t weight_bytes) {
  std::vector<std::pair<int64_t, int64_t>> inside(static_cast<size_t>(s.Q));
  for (int64_t q = 0; q < s.Q; ++q) inside[q] = cols_inside(s, q);
  auto hull = [&](int64_t q0, int64_t q1) {
    int64_t c0 = s.S, c1 = 0;
    for (int64_t q = q0; q < q1; ++q)
      if (inside[q].first < inside[q].second) c0 = std::min(c0, inside[q].first), c1 = std::max(c1, inside[q].second);
    return c0 < c1 ? std::pair<int64_t, int64_t>{c0, c1} : std::pair<int64_t, int64_t>{0, 0};
  };
  ColumnTiles even;
  const Tiling tiling(s.Q, max_width);
  int64_t even_cost = 0;
  for (int64_t i = 0; i <= tiling.count; ++i) even.start.push_back(tiling.begin(i));
  for (int64_t i = 0; i < tiling.count; ++i) {
    even.cols.push_back(hull(tiling.begin(i), tiling.begin(i + 1)));
    even_cost += (even.cols.back().second - even.cols.back().first) * tile_cost(nb, tiling.width(i));
  }
  if (weight_bytes > kCutWeightBytes) return even;
  // Cheapest cut of pixels [0, j) into tiles (best[j], the last tile starting at from[j]).
  std::vector<int64_t> best(static_cast<size_t>(s.Q + 1), 0), from(static_cast<size_t>(s.Q + 1), 0);
  for (int64_t j = 1; j <= s.Q; ++j) {
    best[j] = -1;
    int64_t c0 = s.S, c1 = 0;
    for (int64_t i = j - 1; i >= std::max<int64_t>(0, j - max_width); --i) {
      if (inside[i].first < inside[i].second) c0 = std::min(c0, inside[i].first), c1 = std::max(c1, inside[i].second);
      const int64_t cost = best[i] + std::max<int64_t>(0, c1 - c0) * tile_cost(nb, j - i);
      if (best[j] < 0 || cost < best[j]) best[j] = cost, from[j] = i;
    }
  }
  if (best[s.Q] * 100 > even_cost * 97) return even;  // not clearly cheaper
  ColumnTiles cut;
  for (int64_t j = s.Q; j > 0; j = from[j]) cut.start.push_back(j);
  cut.start.push_back(0);
  std::reverse(cut.start.begin(), cut.start.end());
  for (size_t i = 0; i + 1 < cut.start.size(); ++i) cut.cols.push_back(hull(cut.start[i], cut.start[i + 1]));
  return cut;
}

// y = act(correlation of x with the packed weights wb + bias) for the forward geometry s; plan.in
// are x's channel blocks, plan.out y's. The stride-1 backward-input is this correlation of gy with
// the transposed weights, packed flipped. A chunked reduction keeps a task's partial sums in its
// buffer across the chunks (all its rows at once), else a band of rows is finished at a time.
template <class T>
void correlate(const ConvShape& s, const Plan& plan, const std::vector<T>& wb, const T* x, const T* bias,
               T* y, const Epilogue& ep) {
  constexpr int VL = Vec<T>::N;
  const int64_t RS = s.R * s.S;
  const Blocked g = forward_input_geometry(s, static_cast<int64_t>(plan.in.size()));
  const T* xb = pack_input_scratch(kSlotInput, x, s.N, s.C, s.H, s.W, plan.in, g);
  const int64_t XB = g.block_elems<VL>(), XI = XB * g.blocks, RL = g.row_len();
  const int64_t n_ob = static_cast<int64_t>(plan.out.size());
  const int64_t chunk = reduction_chunk(plan, RS, sizeof(T));
  Work wk = split_work(s.N, s.P, rows_that_fit(chunk * RL * VL * int64_t(sizeof(T)), (s.R - 1) * s.dh + 1, s.sh),
                       n_ob, s.Q * plan.n_in * RS * plan.tap_elems);
  const int64_t w_out = plan.ob_elems() * RS;
  group_images(wk, s.N, s.P * s.Q, chunk * XB * int64_t(sizeof(T)),
               std::min(n_ob, wk.ob_per_chunk) * w_out * int64_t(sizeof(T)));
  // A tap reads rows r*dh below and the column phase of c*dw right of its pixel's (p*sh, q*sw).
  std::vector<Tap> taps(static_cast<size_t>(RS));
  for (int64_t r = 0; r < s.R; ++r)
    for (int64_t c = 0; c < s.S; ++c)
      taps[r * s.S + c] = {(r * s.dh * RL + g.pos(c * s.dw)) * VL,
                           (r * s.S + c) * plan.tap_elems};
  // Row-tap tiles read a kernel row's taps as consecutive columns: phases 1, dilation 1 along the row.
  const bool run_taps = kRunTiles && !plan.depthwise && s.S >= kRunMinWidth && s.sw == 1 && s.dw == 1 && g.phases == 1;
  const int64_t band = std::max<int64_t>(1, kBandPixels / s.Q);
  const int64_t span = chunk < plan.n_in ? std::max(band, wk.rows_per_block) : band;  // rows in the buffer
  std::vector<ColumnTiles> col_tiles;  // for tiles of nb = 1 .. kMaxBlocks output blocks
  for (int nb = 1; nb <= kMaxBlocks; ++nb)
    col_tiles.push_back(column_tiles(s, nb, max_tile(nb), nb * chunk * RS * plan.tap_elems * int64_t(sizeof(T))));

  parallel_claim(wk.tasks, wk.grain, [&](int64_t, auto&& claim) {
    const int64_t img_elems = std::min<int64_t>(span, s.P) * s.Q * VL;  // one image's rows of one output block in buf
    std::vector<T> buf(static_cast<size_t>(kMaxBlocks * wk.images * img_elems));
    std::vector<int64_t> pix(static_cast<size_t>(band * s.Q));  // input offset of each pixel of a band
    std::vector<Tap> tile_taps(static_cast<size_t>(RS));         // a tile's taps without padding columns
    alignas(64) T bias_lanes[kMaxBlocks * VL];
    for (int64_t t; claim(t);) {
      const auto [n0, p0, p1, ob0, ob1] = wk.task(t);
      const int64_t n1 = std::min<int64_t>(s.N, n0 + wk.images);
      for (int64_t ob = ob0, nb; ob < ob1; ob += nb) {
        nb = blocks_together(plan, ob, ob1);
        const OutBlock& o = plan.out[ob];
        if (bias)
          for (int64_t b = 0; b < nb; ++b) {
            const ChannelBlock& ch = plan.out[ob + b].ch;
            for (int l = 0; l < VL; ++l) bias_lanes[b * VL + l] = l < ch.count ? bias[ch.base + l * ch.stride] : T(0);
          }
        const int64_t buf_block = wk.images * img_elems;
        TileArgs<T> args{nullptr, nullptr, XB, nullptr, plan.tap_elems * RS, w_out, 0, VL, taps.data(), RS,
                         nullptr, VL, buf_block, bias ? bias_lanes : nullptr, ep};
        // Row-tap tiles for one output block where rows are tiled one by one (by_row below).
        const bool runs = run_taps && nb == 1;
        args.run_len = s.S;
        args.w_tap = plan.tap_elems;
        const int mt = max_tile(static_cast<int>(nb));
        for (int64_t ps = p0; ps < p1; ps += span) {
          const int64_t ps1 = std::min(p1, ps + span);
          for (int64_t i0 = 0; i0 < o.n_in; i0 += chunk) {
            args.w = wb.data() + ob * w_out + i0 * args.w_block;
            args.n_in = std::min(chunk, o.n_in - i0);
            args.add = i0 > 0;
            args.finish = i0 + args.n_in == o.n_in;
            args.cn_last = args.finish ? o.cn_last : VL;
            for (int64_t n = n0; n < n1; ++n) {  // the task's images, on the same weights
              for (int64_t p = ps; p < ps1; p += band) {
                args.x = xb + n * XI + (o.in_first + i0) * XB;
                const int64_t rows = std::min(band, ps1 - p), npix = rows * s.Q;
                for (int64_t m = 0; m < npix; ++m) pix[m] = ((p + m / s.Q) * s.sh * RL + m % s.Q) * VL;
                // Rows wide enough for tiles of >= kRowTileAccs accumulators are tiled row by row (every
                // tile reads one row: RowPixels); narrower ones are joined into the band's tiles.
                const bool row_taps = runs && s.Q >= kRunMinPixels;
                const bool by_row = row_taps || even_part(s.Q, mt) * nb >= kRowTileAccs;
                const int64_t n_runs = by_row ? rows : 1, run_len = by_row ? s.Q : npix;
                const Tiling tiling(run_len, row_taps ? kRunTile : mt);
                // Plain tiles of one row also leave out the kernel columns that read only padding
                // (ColumnTiles); row-tap tiles need whole kernel rows.
                const ColumnTiles* ct = by_row && !row_taps ? &col_tiles[nb - 1] : nullptr;
                T* out = buf.data() + (n - n0) * img_elems + (p - ps) * s.Q * VL;
                for (int64_t row = 0; row < n_runs; ++row) {
                  // A row's taps (r-major) whose input row lies in the zero padding add nothing: a
                  // tile of one row takes only the run of kernel rows inside the image (pspnet's
                  // dilation-4 3x3 on 9x9 maps: 19 of 27 kernel rows).
                  const auto [r0, r1] = by_row ? rows_inside(s, p + row) : std::pair<int64_t, int64_t>{0, s.R};
                  args.taps = taps.data() + r0 * s.S;
                  args.n_taps = (r1 - r0) * s.S;
                  for (int64_t i = 0; i < (ct ? ct->count() : tiling.count); ++i) {
                    const int64_t m0 = row * run_len + (ct ? ct->start[i] : tiling.begin(i));
                    const int64_t nq = ct ? ct->start[i + 1] - ct->start[i] : tiling.width(i);
                    if (ct) {
                      const auto [c0, c1] = ct->cols[i];
                      if (c1 - c0 == s.S) {
                        args.taps = taps.data() + r0 * s.S;
                        args.n_taps = (r1 - r0) * s.S;
                      } else {
                        args.taps = tile_taps.data();
                        args.n_taps = 0;
                        for (int64_t r = r0; r < r1; ++r)
                          for (int64_t c = c0; c < c1; ++c) tile_taps[args.n_taps++] = taps[r * s.S + c];
                      }
                    }
                    args.pix = pix.data() + m0;
                    args.out = out + m0 * VL;
                    const bool one_row = m0 / s.Q == (m0 + nq - 1) / s.Q;
                    if (row_taps)
                      run_tile_fn<T>(static_cast<int>(nq))(args);
                    else
                      tile_fn<T>(static_cast<int>(nb), static_cast<int>(nq), plan.depthwise, one_row)(args);
                  }
                }
              }
            }
          }
          for (int64_t n = n0; n < n1; ++n)
            for (int64_t b = 0; b < nb; ++b)
              for (int64_t row = 0; row < ps1 - ps; ++row)
                unpack_row(buf.data() + b * buf_block + (n - n0) * img_elems + row * s.Q * VL, s.Q, plan.out[ob + b].ch,
                           y + n * s.K * s.P * s.Q, s.P * s.Q, (ps + row) * s.Q);
        }
      }
    }
  });
}

template <class T>
void forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y, int act_code, T act_param) {
  if (few_channels(s, false)) {
    few_correlate(s, few_weights(s, w, false), x, bias, y, Epilogue{static_cast<Act>(act_code), double(act_param)});
    return;
  }
  if (narrow_copy_pays(s, s.K / s.G, s.C / s.G, Vec<T>::N)) return narrow_copy<T>().forward(s, x, w, bias, y, act_code, act_param);
  const Plan plan = make_plan(s, Vec<T>::N, false);
  correlate(s, plan, pack_weights(plan, s, w), x, bias, y, Epilogue{static_cast<Act>(act_code), double(act_param)});
}

template <class T>
void backward_input(const ConvShape& s, const T* gy, const T* w, T* gx) {
  constexpr int VL = Vec<T>::N;
  if (s.sh == 1 && s.sw == 1 && few_channels(input_gradient_correlation(s), false)) {
    few_correlate(input_gradient_correlation(s), few_weights(input_gradient_correlation(s), w, true), gy,
                  static_cast<const T*>(nullptr), gx, Epilogue{Act::identity, 0.0});
    return;
  }
  if (narrow_copy_pays(s, s.C / s.G, s.K / s.G, VL)) return narrow_copy<T>().backward_input(s, gy, w, gx);
  const Plan plan = make_plan(s, VL, true);
  if (s.sh == 1 && s.sw == 1) {  // the correlation of gy with the flipped weights, padded to span (R-1)*dh
    correlate(input_gradient_correlation(s), plan, pack_weights(plan, s, w, true), gy, static_cast<const T*>(nullptr), gx,
              Epilogue{Act::identity, 0.0});
    return;
  }
  const int64_t RS = s.R * s.S;
  // gy columns read: q = (w + pw - c*dw) / sw over w < W, c < S; beyond [0, Q) they are zeros.
  const int64_t q_lo = std::min<int64_t>(0, floor_div(s.pw - (s.S - 1) * s.dw, s.sw));
  const int64_t q_hi = std::max<int64_t>(s.Q, floor_div(s.W - 1 + s.pw, s.sw) + 1);
  const Blocked g = make_blocked(static_cast<int64_t>(plan.in.size()), s.P, q_hi - q_lo, 0, -q_lo, 1);
  const std::vector<T> gyb = pack_input(gy, s.N, s.K, s.P, s.Q, plan.in, g);
  const std::vector<T> wb = pack_weights(plan, s, w);
  const int64_t XB = g.block_elems<VL>(), XI = XB * g.blocks, RL = g.row_len();
  const int64_t n_ob = static_cast<int64_t>(plan.out.size());
  const int64_t in_row_bytes = plan.n_in * RL * VL * int64_t(sizeof(T));
  const Work wk = split_work(s.N, s.H, std::max<int64_t>(1, kL2Budget / in_row_bytes * s.sh), n_ob,
                             ceil_div(s.W * s.R, s.sh) * plan.n_in * s.S * plan.tap_elems);
  const Epilogue ep{Act::identity, 0.0};
  const int64_t w_out = plan.ob_elems() * RS;

  parallel_for(wk.tasks, wk.grain, [&](int64_t t0, int64_t t1) {
    std::vector<T> rowbuf(static_cast<size_t>(kMaxBlocks * s.W * VL));
    std::vector<Tap> taps(static_cast<size_t>(RS));
    std::vector<std::pair<int64_t, int64_t>> row_taps(static_cast<size_t>(s.R));  // (r, p)
    std::vector<int64_t> pix(static_cast<size_t>(s.W));  // gx column a + j*sw reads gy column j (plus the tap's)
    for (int64_t j = 0; j < s.W; ++j) pix[j] = j * VL;
    for (int64_t t = t0; t < t1; ++t) {
      const auto [n, h0, h1, ob0, ob1] = wk.task(t);
      for (int64_t ob = ob0, nb; ob < ob1; ob += nb) {
        nb = blocks_together(plan, ob, ob1);
        const OutBlock& o = plan.out[ob];
        TileArgs<T> args{gyb.data() + n * XI + o.in_first * XB, nullptr, XB, wb.data() + ob * w_out, plan.tap_elems * RS, w_out, o.n_in, o.cn_last, taps.data(), 0,
                         nullptr, s.sw * VL, s.W * VL, nullptr, ep};
        for (int64_t h = h0; h < h1; ++h) {
          int64_t n_rows = 0;
          for (int64_t r = 0; r < s.R; ++r) {
            const int64_t v = h + s.ph - r * s.dh;
            const int64_t p = floor_div(v, s.sh);
            if (p * s.sh == v && p >= 0 && p < s.P) row_taps[n_rows++] = {r, p};
          }
          for (int64_t a = 0; a < std::min(s.sw, s.W); ++a) {
            int64_t n_taps = 0;
            for (int64_t i = 0; i < n_rows; ++i)
              for (int64_t c = 0; c < s.S; ++c) {
                const int64_t u = a + s.pw - c * s.dw, q = floor_div(u, s.sw);
                if (q * s.sw != u) continue;
                const auto [r, p] = row_taps[i];
                taps[n_taps++] = {(p * RL + g.left + q) * VL, (r * s.S + c) * plan.tap_elems};
              }
            args.n_taps = n_taps;
            const Tiling tiling(ceil_div(s.W - a, s.sw), max_tile(static_cast<int>(nb)));
            for (int64_t i = 0; i < tiling.count; ++i) {
              const int64_t j0 = tiling.begin(i);
              args.pix = pix.data() + j0;
              args.out = rowbuf.data() + (a + s.sw * j0) * VL;
              tile_fn<T>(static_cast<int>(nb), static_cast<int>(tiling.width(i)), plan.depthwise, true)(args);
            }
          }
          for (int64_t b = 0; b < nb; ++b)
            unpack_row(rowbuf.data() + b * s.W * VL, s.W, plan.out[ob + b].ch, gx + n * s.C * s.H * s.W, s.H * s.W, h * s.W);
        }
      }
    }
  });
}

}  // namespace conv_direct

const ConvDirectKernels& conv_direct_kernels() {
  static const ConvDirectKernels table{
      {&conv_direct::forward<float>, &conv_direct::backward_input<float>, &conv_direct::backward_weight<float>},
      {&conv_direct::forward<double>, &conv_direct::backward_input<double>, &conv_direct::backward_weight<double>}};
  return table;
}

FASTCNN_ISA_NAMESPACE_END
