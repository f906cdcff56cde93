// Direct convolution of few channels per group (FCN-small's 3->4, 4->4, 4->8, 8->8 3x3 layers on
// 262x262 and 131x131 maps): vectors run along the output row (VL pixels of one channel) instead of
// along channels, so no lane is padding. The blocked kernels of conv_direct.cpp fill 16-lane channel
// blocks with 4 channels there (a quarter of every FMA and of the blocked copies' bytes is real).
//
// The input is copied per task (an image's band of rows) into plain rows, [C][rows][row_len] with
// zero padding around, so that every tap of a run of output pixels (stride 1) reads consecutive
// positions: one unaligned load per VL pixels.
//
// Forward (and the stride-1 backward-input: the same correlation of gy with the flipped, transposed
// weights): a tile keeps NK output channels x NV vectors of one output row in registers over all
// (input channel, kernel row, kernel column) taps; per tap NV loads and NK weight broadcasts feed
// NK * NV FMAs. Bias + activation, then masked stores straight into the NCHW output.
// Backward-weight: for one (input channel, kernel row), a tile keeps NK output channels x NS kernel
// columns of vector partial sums over a slice of rows (per VL pixels NS x loads and NK gy loads for
// NK * NS FMAs), adds them to the thread's vector partial sums at the end of the run, and the lanes
// and threads are summed once at the end.
#include "kernels/conv_direct_blocks.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace conv_direct {
namespace {

// Registers: AVX-512 has 32, AVX2 and the generic copy 16. Forward tiles keep NK * NV <= kFewAccs
// accumulators (plus NV input vectors and a broadcast); weight-gradient tiles NK * NS accumulators
// plus NS input vectors and a gy vector within kRegs.
constexpr int kRegs = FASTCNN_HAS_AVX512 ? 32 : 16;
constexpr int kFewAccs = FASTCNN_HAS_AVX512 ? 24 : 12;
constexpr int kFewMaxVecs = 6;
constexpr int kWgradMaxTaps = 7;

// Output channels of one forward tile: 8 with AVX-512's embedded broadcasts; with 16 registers 8
// channels leave one vector (9 loads and broadcasts per 8 FMAs), 4 leave three (7 per 12): FCN's
// 8->8 131x131, AVX2, 1 thread, forward 7.05 ms by 8, against 6.29 by the blocked tiles.
constexpr int kFewTileK = FASTCNN_HAS_AVX512 ? 8 : 4;
constexpr int fwd_vecs(int nk) { return std::min(kFewMaxVecs, std::max(1, kFewAccs / nk)); }
constexpr int wgrad_taps(int nk) { return std::min(kWgradMaxTaps, std::max(1, (kRegs - 1) / (nk + 1))); }
// Output channels of one weight-gradient tile: 8 on AVX-512 (8 x 3 accumulators + 3 + 1), 4 with 16 registers.
constexpr int kWgradMaxK = FASTCNN_HAS_AVX512 ? 8 : 4;
// Bytes of x and gy rows that the weight-gradient tiles of a slice reread (L1 with the partial sums).
constexpr int64_t kFewSliceBytes = 32 * 1024;

// Plain rows of a band of the input: channel c, band row i, padded column j (input column j - left)
// at (c * rows + i) * row_len + j.
struct PlainRows {
  int64_t row_len, rows, left;
  int64_t chan() const { return rows * row_len; }
};

// The rows' geometry for the stride-1 correlation s over a band of `rows` input rows: every output
// pixel of a row, rounded up to whole vectors, reads inside the row (the last vector's spare lanes
// read zeros or real columns); rows of whole vectors.
template <class T>
PlainRows plain_rows(const ConvShape& s, int64_t rows) {
  constexpr int VL = Vec<T>::N;
  return PlainRows{ceil_div(ceil_div(s.Q, VL) * VL + (s.S - 1) * s.dw, VL) * VL, rows, s.pw};
}

// n elements from a 64-byte boundary: with rows of whole vectors, the loads of kernel column 0 and
// of the copied gy never straddle cache lines (a split load costs two).
template <class T>
struct AlignedBuf {
  std::vector<T> v;
  T* p;
  explicit AlignedBuf(int64_t n) : v(static_cast<size_t>(n) + 64 / sizeof(T)) {
    p = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63));
  }
};

// Input rows [y0, y0 + g.rows) of every channel of one image x[C][H][W] into d (zeros outside the image).
template <class T>
void pack_plain(const T* x, int64_t C, int64_t H, int64_t W, int64_t y0, const PlainRows& g, T* d) {
  const int64_t RL = g.row_len;
  const int64_t w0 = std::max<int64_t>(0, -g.left), w1 = std::min<int64_t>(W, RL - g.left);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < g.rows; ++i) {
      T* dr = d + c * g.chan() + i * RL;
      const int64_t h = y0 + i;
      std::memset(dr, 0, sizeof(T) * RL);
      if (h < 0 || h >= H) continue;
      if (w1 > w0) std::memcpy(dr + w0 + g.left, x + (c * H + h) * W + w0, sizeof(T) * (w1 - w0));
    }
}

// Work: an image's band of output rows per task; bands whose plain rows fit L2, and at least
// 4 tasks per thread where the rows allow.
struct Bands {
  int64_t rows_per, count;
};

inline Bands bands(const ConvShape& s, int64_t chan_row_bytes) {
  const int64_t fit = rows_that_fit(chan_row_bytes, (s.R - 1) * s.dh + 1, s.sh);
  const int64_t want = std::min<int64_t>(s.P, ceil_div(4 * num_threads(), std::max<int64_t>(1, s.N)));
  const int64_t rows_per = ceil_div(s.P, std::max(ceil_div(s.P, fit), want));
  return Bands{rows_per, ceil_div(s.P, rows_per)};
}

// ---------------------------------------------------------------------------------------------
// Forward tile.

template <class T>
struct FewArgs {
  const T* x;             // plain rows: input channel 0 of the group, the output row's kernel row 0, padded column of pixel 0
  int64_t x_chan, x_row;  // elements between input channels, between kernel rows
  const int64_t* taps;    // x offset of kernel column s
  int64_t R, S, r0, r1;   // kernel size; kernel rows [r0, r1) read inside the image
  int64_t cg;             // input channels (0: the tile reads only padding)
  const T* w;             // [c][r][s][kFewTileK] of the tile's first output channel
  T* y;                   // output channel 0 at pixel 0
  int64_t y_chan;
  int tail;               // valid pixels of the last vector
  const T* bias;          // of output channel 0, or null
  Epilogue ep;
};

template <class T, int NK, int NV>
void few_tile(const FewArgs<T>& a) {
  using V = Vec<T>;
  constexpr int VL = V::N;
  V acc[NK][NV];
FASTCNN_UNROLL(8)
  for (int k = 0; k < NK; ++k)
FASTCNN_UNROLL(8)
    for (int v = 0; v < NV; ++v) acc[k][v] = V::zero();
  for (int64_t c = 0; c < a.cg; ++c)
    for (int64_t r = a.r0; r < a.r1; ++r) {
      const T* xr = a.x + c * a.x_chan + r * a.x_row;
      const T* wr = a.w + (c * a.R + r) * a.S * kFewTileK;
      for (int64_t t = 0; t < a.S; ++t) {
        const T* xs = xr + a.taps[t];
        const T* ws = wr + t * kFewTileK;
        V xv[NV];
FASTCNN_UNROLL(8)
        for (int v = 0; v < NV; ++v) xv[v] = V::load(xs + v * VL);
FASTCNN_UNROLL(8)
        for (int k = 0; k < NK; ++k) {
          const V wk = V::set1(ws[k]);
FASTCNN_UNROLL(8)
          for (int v = 0; v < NV; ++v) acc[k][v] = fmadd(xv[v], wk, acc[k][v]);
        }
      }
    }
FASTCNN_UNROLL(8)
  for (int k = 0; k < NK; ++k) {
    const V bv = a.bias ? V::set1(a.bias[k]) : V::zero();
    T* yk = a.y + k * a.y_chan;
FASTCNN_UNROLL(8)
    for (int v = 0; v < NV; ++v) {
      const V out = act::forward<T>(a.ep.act, V(acc[k][v] + bv), T(a.ep.param), T(0));
      if (v < NV - 1 || a.tail == VL)
        out.store(yk + v * VL);
      else
        out.store(yk + v * VL, a.tail);
    }
  }
}

// Tile<T, NK, N>'s instantiations for NK in [1, MaxK] and N in [1, MaxN], N capped at limit(NK) (a
// tile too large for the registers maps to the largest that fits), picked by (nk, n) at run time.
template <class T, class Args, int MaxK, int MaxN>
struct TileTable {
  using Fn = void (*)(const Args&);
  template <template <class, int, int> class Tile, int (*limit)(int), int NK, int... I>
  static Fn row(int n, std::integer_sequence<int, I...>) {
    static const Fn table[] = {&Tile<T, NK, std::min(I + 1, limit(NK))>::run...};
    return table[n - 1];
  }
  template <template <class, int, int> class Tile, int (*limit)(int), int... K>
  static Fn pick(int nk, int n, std::integer_sequence<int, K...>) {
    using Row = Fn (*)(int, std::make_integer_sequence<int, MaxN>);
    static const Row rows[] = {&row<Tile, limit, K + 1>...};
    return rows[nk - 1](n, {});
  }
};

template <class T, int NK, int NV>
struct FewTile {
  static void run(const FewArgs<T>& a) { few_tile<T, NK, NV>(a); }
};

// The forward tile of nk <= kFewTileK output channels and nv <= fwd_vecs(nk) vectors.
template <class T>
auto few_fn(int nk, int nv) {
  using Table = TileTable<T, FewArgs<T>, kFewTileK, kFewMaxVecs>;
  return Table::template pick<FewTile, fwd_vecs>(nk, nv, std::make_integer_sequence<int, kFewTileK>{});
}

// ---------------------------------------------------------------------------------------------
// Weight-gradient tile.

template <class T>
struct WArgs {
  const T* x;            // plain rows: the input channel, kernel row r, output row 0 of the run, padded column 0
  int64_t x_row;         // elements between output rows (stride rows)
  const int64_t* taps;   // x offsets of the tile's kernel columns
  const T* gy;           // copied gy (rows of gy_row, zeros past Q): the tile's output channel 0, output row 0 of the run
  int64_t gy_chan, gy_row, Q, rows;
  T* acc;                // VL lanes of partial sums per weight: output channel 0, the tile's first kernel column
  int64_t acc_k;         // elements between output channels' partial sums
};

template <class T, int NK, int NS>
void few_wgrad_tile(const WArgs<T>& a) {
  using V = Vec<T>;
  constexpr int VL = V::N;
  V acc[NK][NS];
FASTCNN_UNROLL(8)
  for (int k = 0; k < NK; ++k)
FASTCNN_UNROLL(8)
    for (int t = 0; t < NS; ++t) acc[k][t] = V::zero();
  int64_t xo[NS];
FASTCNN_UNROLL(8)
  for (int t = 0; t < NS; ++t) xo[t] = a.taps[t];
  const int64_t full = a.Q / VL * VL;
  const int tail = static_cast<int>(a.Q - full);
  for (int64_t i = 0; i < a.rows; ++i) {
    const T* xr = a.x + i * a.x_row;
    const T* gr = a.gy + i * a.gy_row;
    for (int64_t q = 0; q < full; q += VL) {
      V xv[NS];
FASTCNN_UNROLL(8)
      for (int t = 0; t < NS; ++t) xv[t] = V::load(xr + xo[t] + q);
FASTCNN_UNROLL(8)
      for (int k = 0; k < NK; ++k) {
        const V gv = V::load(gr + k * a.gy_chan + q);
FASTCNN_UNROLL(8)
        for (int t = 0; t < NS; ++t) acc[k][t] = fmadd(xv[t], gv, acc[k][t]);
      }
    }
    if (tail) {  // gy is zero past Q, x masked: a column beyond Q may hold an inf that 0 * inf would spread
      V xv[NS];
FASTCNN_UNROLL(8)
      for (int t = 0; t < NS; ++t) xv[t] = V::load(xr + xo[t] + full, tail);
FASTCNN_UNROLL(8)
      for (int k = 0; k < NK; ++k) {
        const V gv = V::load(gr + k * a.gy_chan + full);
FASTCNN_UNROLL(8)
        for (int t = 0; t < NS; ++t) acc[k][t] = fmadd(xv[t], gv, acc[k][t]);
      }
    }
  }
FASTCNN_UNROLL(8)
  for (int k = 0; k < NK; ++k)
FASTCNN_UNROLL(8)
    for (int t = 0; t < NS; ++t) {
      T* am = a.acc + k * a.acc_k + t * VL;
      (V::load(am) + acc[k][t]).store(am);
    }
}

template <class T, int NK, int NS>
struct WgradTile {
  static void run(const WArgs<T>& a) { few_wgrad_tile<T, NK, NS>(a); }
};

// The weight-gradient tile of nk <= kWgradMaxK output channels and ns <= wgrad_taps(nk) kernel columns.
template <class T>
auto few_wgrad_fn(int nk, int ns) {
  using Table = TileTable<T, WArgs<T>, kWgradMaxK, kWgradMaxTaps>;
  return Table::template pick<WgradTile, wgrad_taps>(nk, ns, std::make_integer_sequence<int, kWgradMaxK>{});
}

}  // namespace

// ---------------------------------------------------------------------------------------------

template <class T>
std::vector<T> few_weights(const ConvShape& s, const T* w, bool flip_transposed) {
  const int64_t Cg = s.C / s.G, Kg = s.K / s.G, RS = s.R * s.S;
  const int64_t per = even_part(Kg, kFewTileK), chunks = ceil_div(Kg, per);
  std::vector<T> wf(static_cast<size_t>(s.G * chunks * Cg * RS * kFewTileK), T(0));
  for (int64_t g = 0; g < s.G; ++g)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t rs = 0; rs < RS; ++rs) {
          // Flipped and transposed (the stride-1 backward-input): w is the forward's [G * Cg][Kg][R][S]:
          // this correlation's input channel c is the forward's output channel, its output channel k the input one.
          const T v = flip_transposed ? w[((g * Cg + c) * Kg + k) * RS + (RS - 1 - rs)] : w[((g * Kg + k) * Cg + c) * RS + rs];
          wf[(((g * chunks + k / per) * Cg + c) * RS + rs) * kFewTileK + k % per] = v;
        }
  return wf;
}

template <class T>
void few_correlate(const ConvShape& s, const std::vector<T>& wf, const T* x, const T* bias, T* y, const Epilogue& ep) {
  constexpr int VL = Vec<T>::N;
  const int64_t Cg = s.C / s.G, Kg = s.K / s.G, RS = s.R * s.S;
  const int64_t per = even_part(Kg, kFewTileK), chunks = ceil_div(Kg, per);
  const int vmax = fwd_vecs(static_cast<int>(per));
  const PlainRows row1 = plain_rows<T>(s, 1);
  const Bands bd = bands(s, s.C * row1.row_len * int64_t(sizeof(T)));
  const int64_t band_rows = (bd.rows_per - 1) * s.sh + (s.R - 1) * s.dh + 1;
  const PlainRows pr{row1.row_len, band_rows, row1.left};
  std::vector<int64_t> taps(static_cast<size_t>(s.S));
  for (int64_t t = 0; t < s.S; ++t) taps[t] = t * s.dw;
  const Tiling tiling(ceil_div(s.Q, VL), vmax);
  const int64_t macs = s.Q * RS * s.C * Kg * bd.rows_per;  // per task
  const int64_t tasks = s.N * bd.count;

  parallel_claim(tasks, std::max<int64_t>(1, kMinFlopChunk / std::max<int64_t>(1, macs)), [&](int64_t, auto&& claim) {
    AlignedBuf<T> xbuf(s.C * pr.chan());
    T* buf = xbuf.p;
    for (int64_t task; claim(task);) {
      const int64_t n = task / bd.count, p0 = task % bd.count * bd.rows_per, p1 = std::min<int64_t>(s.P, p0 + bd.rows_per);
      pack_plain(x + n * s.C * s.H * s.W, s.C, s.H, s.W, p0 * s.sh - s.ph, pr, buf);
      FewArgs<T> a{nullptr, pr.chan(), s.dh * pr.row_len, taps.data(), s.R, s.S, 0, 0, Cg, nullptr, nullptr, s.P * s.Q, VL,
                   nullptr, ep};
      for (int64_t p = p0; p < p1; ++p) {
        const auto [r0, r1] = rows_inside(s, p);
        a.r0 = r0;
        a.r1 = r1;
        for (int64_t g = 0; g < s.G; ++g)
          for (int64_t kc = 0; kc < chunks; ++kc) {
            const int64_t k0 = kc * per, nk = std::min(per, Kg - k0);
            a.w = wf.data() + (g * chunks + kc) * Cg * RS * kFewTileK;
            a.bias = bias ? bias + g * Kg + k0 : nullptr;
            for (int64_t i = 0; i < tiling.count; ++i) {
              const int64_t q0 = tiling.begin(i) * VL, q1 = std::min<int64_t>(s.Q, (tiling.begin(i) + tiling.width(i)) * VL);
              // Pixels whose every tap reads padding (FCN's conv1_1 pads 64x64 by 100) get the bias alone.
              const bool touches = (q1 - 1) * s.sw + (s.S - 1) * s.dw - s.pw >= 0 && q0 * s.sw - s.pw < s.W;
              a.cg = touches ? Cg : 0;
              a.x = buf + g * Cg * pr.chan() + (p - p0) * s.sh * pr.row_len + q0;
              a.y = y + ((n * s.K + g * Kg + k0) * s.P + p) * s.Q + q0;
              a.tail = static_cast<int>(q1 - q0 - (tiling.width(i) - 1) * VL);
              few_fn<T>(static_cast<int>(nk), static_cast<int>(tiling.width(i)))(a);
            }
          }
      }
    }
  });
}

template <class T>
void few_backward_weight(const ConvShape& s, const T* x, const T* gy, T* gw) {
  const int64_t Cg = s.C / s.G, Kg = s.K / s.G, RS = s.R * s.S;
  const int64_t per = even_part(Kg, kWgradMaxK), chunks = ceil_div(Kg, per);
  const int64_t ns_max = wgrad_taps(static_cast<int>(per)), ns_per = even_part(s.S, ns_max);
  const PlainRows row1 = plain_rows<T>(s, 1);
  const Bands bd = bands(s, s.C * row1.row_len * int64_t(sizeof(T)));
  const PlainRows pr{row1.row_len, (bd.rows_per - 1) * s.sh + (s.R - 1) * s.dh + 1, row1.left};
  std::vector<int64_t> taps(static_cast<size_t>(s.S));
  for (int64_t t = 0; t < s.S; ++t) taps[t] = t * s.dw;
  constexpr int VL = Vec<T>::N;
  const int64_t units = s.N * bd.count, gw_elems = s.K * Cg * RS;
  const int64_t macs = units * bd.rows_per * s.Q * gw_elems;
  const int64_t n_acc = std::max<int64_t>(1, std::min({int64_t(num_threads()), units, macs / kMinFlopChunk}));
  std::vector<T> accs(static_cast<size_t>(n_acc * gw_elems * VL), T(0));
  // Every tile rereads the band's x and gy rows: they are reduced in slices of rows that stay in L1.
  const int64_t Qv = ceil_div(s.Q, VL) * VL, gy_chan = bd.rows_per * Qv;  // the band's copied gy: [K][rows][Qv]
  // Output rows some kernel row reads inside the image from, [p_lo, p_hi): only their gy is copied
  // (FCN's conv1_1: 66 of 262 rows).
  const int64_t p_lo = ceil_div(std::max<int64_t>(0, s.ph - (s.R - 1) * s.dh), s.sh), p_hi = ceil_div(s.H + s.ph, s.sh);
  const int64_t x_row_bytes = s.C * pr.row_len * int64_t(sizeof(T)), gy_row_bytes = s.K * Qv * int64_t(sizeof(T));
  const int64_t room = kFewSliceBytes - ((s.R - 1) * s.dh + 1 - s.sh) * x_row_bytes;
  const int64_t slice = std::clamp<int64_t>(room / (s.sh * x_row_bytes + gy_row_bytes), 1, bd.rows_per);

  parallel_for(n_acc, 1, [&](int64_t a0, int64_t a1) {
    AlignedBuf<T> xbuf(s.C * pr.chan()), gbuf(s.K * gy_chan);
    T* buf = xbuf.p;
    for (int64_t ai = a0; ai < a1; ++ai) {
      T* acc = accs.data() + ai * gw_elems * VL;
      for (int64_t u = units * ai / n_acc; u < units * (ai + 1) / n_acc; ++u) {
        const int64_t n = u / bd.count, p0 = u % bd.count * bd.rows_per, p1 = std::min<int64_t>(s.P, p0 + bd.rows_per);
        pack_plain(x + n * s.C * s.H * s.W, s.C, s.H, s.W, p0 * s.sh - s.ph, pr, buf);
        for (int64_t k = 0; k < s.K; ++k)
          for (int64_t p = std::max(p0, p_lo); p < std::min(p1, p_hi); ++p) {
            T* d = gbuf.p + k * gy_chan + (p - p0) * Qv;
            std::memcpy(d, gy + ((n * s.K + k) * s.P + p) * s.Q, sizeof(T) * s.Q);
            std::fill(d + s.Q, d + Qv, T(0));
          }
        for (int64_t s0 = p0; s0 < p1; s0 += slice)
        for (int64_t r = 0; r < s.R; ++r) {
          // Output rows of the slice whose kernel row r reads inside the image: pa <= p < pb (others add zeros).
          const int64_t off = r * s.dh - s.ph;
          const int64_t pa = std::max(s0, ceil_div(std::max<int64_t>(0, -off), s.sh));
          const int64_t pb = std::min({p1, s0 + slice, s.H - off <= 0 ? 0 : ceil_div(s.H - off, s.sh)});
          if (pa >= pb) continue;
          for (int64_t g = 0; g < s.G; ++g)
            for (int64_t kc = 0; kc < chunks; ++kc) {
              const int64_t k0 = kc * per, nk = std::min(per, Kg - k0);
              for (int64_t c = 0; c < Cg; ++c)
                for (int64_t t0 = 0; t0 < s.S; t0 += ns_per) {
                  const int64_t ns = std::min<int64_t>(ns_per, s.S - t0);
                  WArgs<T> a{buf + (g * Cg + c) * pr.chan() + ((pa - p0) * s.sh + r * s.dh) * pr.row_len,
                             s.sh * pr.row_len, taps.data() + t0,
                             gbuf.p + (g * Kg + k0) * gy_chan + (pa - p0) * Qv, gy_chan, Qv, s.Q, pb - pa,
                             acc + (((g * Kg + k0) * Cg + c) * RS + r * s.S + t0) * VL, Cg * RS * VL};
                  few_wgrad_fn<T>(static_cast<int>(nk), static_cast<int>(ns))(a);
                }
            }
        }
      }
    }
  });
  for (int64_t i = 0; i < gw_elems; ++i) {
    T sum = 0;
    for (int64_t a = 0; a < n_acc; ++a)
      for (int l = 0; l < VL; ++l) sum += accs[(a * gw_elems + i) * VL + l];
    gw[i] = sum;
  }
}

template std::vector<float> few_weights(const ConvShape&, const float*, bool);
template std::vector<double> few_weights(const ConvShape&, const double*, bool);
template void few_correlate(const ConvShape&, const std::vector<float>&, const float*, const float*, float*, const Epilogue&);
template void few_correlate(const ConvShape&, const std::vector<double>&, const double*, const double*, double*, const Epilogue&);
template void few_backward_weight(const ConvShape&, const float*, const float*, float*);
template void few_backward_weight(const ConvShape&, const double*, const double*, double*);

}  // namespace conv_direct
FASTCNN_ISA_NAMESPACE_END
