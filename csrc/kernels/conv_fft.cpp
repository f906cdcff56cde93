// Tiled FFT convolution on the cpu backend, compiled once per ISA (see setup.py).
//
// A correlation of an [N, C, H, W] input with [K, C/g, R, S] kernels is cut into T x T input tiles
// that overlap by R-1 rows / S-1 columns (overlap-save: each tile yields (T-R+1) x (T-S+1) outputs).
// Per call:
//   1. kernel spectra: every (k, c) kernel zero-padded to T x T and transformed once;
//   2. for a chunk of tiles (bounded so the spectra stay in the last-level cache's neighbourhood):
//      a. input spectra: each (tile, c) transformed, L tiles at a time (one per SIMD lane);
//      b. the channel reduction as a complex GEMM per frequency: [tiles x C/g] x [C/g x K/g];
//      c. output tiles inverse-transformed, scaled, bias + activation applied, cropped into y.
// The weight gradient uses the same pieces with gy tiles in the kernels' place, the GEMM reducing
// over tiles and batch instead of channels. Threads split (tile-vector, channel) items in the
// transforms and frequencies in the GEMM.
#include "kernels/conv_fft.h"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "common/activation_math.h"
#include "common/simd.h"
#include "common/threads.h"
#include "kernels/conv_fft_gemm.h"
#include "kernels/conv_fft_transform.h"
#include "kernels/conv_workspace.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {

using simd::Vec;
using fft::Cx;
using fft::TileGrid;
using fft::TileRef;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Bytes of tile spectra (input + output) per chunk: keeps a chunk's working set near the L3
// (32 MiB here) while leaving enough tile-vectors per frequency for the GEMM.
constexpr int64_t kChunkBytes = int64_t(32) << 20;
// Kernel spectra beyond this size are written with non-temporal stores.
constexpr int64_t kStreamBytes = int64_t(16) << 20;

// Tile-vectors per chunk: as few chunks as fit kChunkBytes, of near-equal size.
int64_t chunk_size(int64_t NTV, int64_t per_tv) {
  const int64_t chunks = std::max<int64_t>(1, ceil_div(NTV * per_tv, kChunkBytes));
  return ceil_div(NTV, chunks);
}

// Per-thread scratch for one 2-D transform.
template <class S, int T>
struct Scratch {
  static constexpr int L = Vec<S>::N, U = T / 2 + 1;
  std::vector<Vec<S>> rb = std::vector<Vec<S>>(T * T);
  std::vector<Cx<Vec<S>>> H = std::vector<Cx<Vec<S>>>(T * U);
  S* rbs() { return reinterpret_cast<S*>(rb.data()); }
};

// Spectra of tiles of `src` ([N, C, Hp, Wp]) for channels [0, C) and tile-vectors [tv0, tv0+nt):
// dst[f][tvl][c] complex vectors. Tile t reads plane rows oy+dy.., columns ox+dx.. (eh x ew of them).
template <class S, int T>
void transform_tiles(const S* src, int64_t C, int64_t Hp, int64_t Wp, const TileGrid& grid, int64_t dy, int64_t dx,
                     int eh, int ew, int64_t tv0, int64_t nt, S* dst) {
  constexpr int L = Vec<S>::N;
  const int64_t fstride = nt * C * 2 * L;
  parallel_for(nt * C, 1, [&](int64_t b, int64_t e) {
    Scratch<S, T> s;
    TileRef<const S> lanes[L];
    for (int64_t item = b; item < e; ++item) {
      const int64_t tvl = item / C, c = item % C;
      grid.lanes<const S, L>(tv0 + tvl, src, C, c, Hp * Wp, dy, dx, lanes);
      fft::load_tiles<T>(s.rbs(), lanes, Hp, Wp, eh, ew);
      fft::rfft2<T>(s.rb.data(), eh, s.H.data(), dst + (tvl * C + c) * 2 * L, fstride);
    }
  });
}

// Spectra of the kernels w[kc][R][S] (kc < KC), conjugated for correlation, as complex scalars
// out[f][kc].
template <class S, int T>
void transform_kernels(const S* w, int64_t KC, int64_t R, int64_t Sk, S* out) {
  using V = Vec<S>;
  constexpr int L = V::N, U = T / 2 + 1, F = T * U;
  // Spectra larger than the cache go straight to memory: written once here, read once per chunk.
  const bool stream = int64_t(F) * KC * 2 * int64_t(sizeof(S)) > kStreamBytes;
  parallel_for(ceil_div(KC, L), 1, [&](int64_t b, int64_t e) {
    Scratch<S, T> s;
    std::vector<S> spec(size_t(F) * 2 * L);
    TileRef<const S> lanes[L];
    for (int64_t kv = b; kv < e; ++kv) {
      for (int l = 0; l < L; ++l) {
        const int64_t kc = kv * L + l;
        lanes[l] = {kc < KC ? w + kc * R * Sk : nullptr, 0, 0};
      }
      fft::load_tiles<T>(s.rbs(), lanes, R, Sk, int(R), int(Sk));
      fft::rfft2<T>(s.rb.data(), int(R), s.H.data(), spec.data(), 2 * L);
      const int n = int(std::min<int64_t>(L, KC - kv * L));
      for (int f = 0; f < F; ++f)
        fft::store_interleaved<S>(V::load(spec.data() + f * 2 * L), V::zero() - V::load(spec.data() + f * 2 * L + L), n,
                                  out + (f * KC + kv * L) * 2, stream);
    }
    simd::stream_fence();
  });
}

// Epilogue on the valid Mh x Mw corner of an output tile: y = act(scale * y + bias), with the
// activation kind a compile-time constant inside the loop (no per-vector dispatch).
template <class S, int T, Act kKind>
void epilogue_kind(Vec<S>* rb, int Mh, int Mw, S scale, S bias, S param) {
  using V = Vec<S>;
  const V vs = V::set1(scale), vb = V::set1(bias);
  for (int i = 0; i < Mh; ++i)
    for (int j = 0; j < Mw; ++j) {
      const V v = fmadd(rb[i * T + j], vs, vb);
      rb[i * T + j] = kKind == Act::identity ? v : act::forward<S>(kKind, v, param, S(0));
    }
}

template <class S, int T>
void epilogue(Vec<S>* rb, int Mh, int Mw, S scale, S bias, Act kind, S param) {
  switch (kind) {
    case Act::relu: return epilogue_kind<S, T, Act::relu>(rb, Mh, Mw, scale, bias, param);
    case Act::leaky_relu: return epilogue_kind<S, T, Act::leaky_relu>(rb, Mh, Mw, scale, bias, param);
    case Act::elu: return epilogue_kind<S, T, Act::elu>(rb, Mh, Mw, scale, bias, param);
    case Act::sigmoid: return epilogue_kind<S, T, Act::sigmoid>(rb, Mh, Mw, scale, bias, param);
    case Act::tanh: return epilogue_kind<S, T, Act::tanh>(rb, Mh, Mw, scale, bias, param);
    default: return epilogue_kind<S, T, Act::identity>(rb, Mh, Mw, scale, bias, param);
  }
}

// Non-finite inputs: a NaN or inf anywhere in an input tile reaches every frequency of its spectrum
// and so every output of the tile (NaN, even for +inf), where a direct convolution spreads it over
// R x S outputs only. Output tiles whose inverse transform holds a non-finite value are therefore
// recomputed by direct summation (a plain loop: only tiles that met a non-finite value pay for it),
// which gives torch's NaN/inf pattern. Finite inputs cost one check per output tile vector.
template <class S, int T>
unsigned nonfinite_lanes(const Vec<S>* rb, int Mh, int Mw) {
  using V = Vec<S>;
  V acc = V::zero();
  for (int i = 0; i < Mh; ++i)
    for (int j = 0; j < Mw; ++j) acc = acc + (rb[i * T + j] - rb[i * T + j]);  // 0, or NaN if inf/NaN
  alignas(64) S lane[V::N];
  acc.store(lane);
  unsigned mask = 0;
  for (int l = 0; l < V::N; ++l)
    if (lane[l] != lane[l]) mask |= 1u << l;
  return mask;
}

// Overwrites lane l's Mh x Mw outputs of channel k in rb (tile-lane layout, before scaling by
// `scale`) with the direct correlation of x and the effective kernels w.
template <class S, int T>
void direct_tile(const FftConvArgs& a, const S* x, const S* w, const TileGrid& grid, int64_t t, int64_t k, int l,
                 int Mh, int Mw, S scale, S* rb) {
  constexpr int L = Vec<S>::N;
  const int64_t G = a.shape.G, Cg = a.shape.C / G, Kg = a.shape.K / G, g = k / Kg;
  int64_t n, oy, ox;
  grid.locate(t, n, oy, ox);
  for (int i = 0; i < Mh && oy + i < a.shape.P; ++i)
    for (int j = 0; j < Mw && ox + j < a.shape.Q; ++j) {
      S sum = S(0);
      for (int64_t c = 0; c < Cg; ++c) {
        const S* plane = x + (n * a.shape.C + g * Cg + c) * a.shape.H * a.shape.W;
        const S* wk = w + (k * Cg + c) * a.shape.R * a.shape.S;
        for (int64_t r = 0; r < a.shape.R; ++r) {
          const int64_t yy = oy + i - a.shape.ph + r;
          if (yy < 0 || yy >= a.shape.H) continue;
          for (int64_t s = 0; s < a.shape.S; ++s) {
            const int64_t xx = ox + j - a.shape.pw + s;
            if (xx >= 0 && xx < a.shape.W) sum += plane[yy * a.shape.W + xx] * wk[r * a.shape.S + s];
          }
        }
      }
      rb[(i * T + j) * L + l] = sum / scale;  // scale is a power of two: the epilogue's product is exact
    }
}

// What the forward and weight-gradient passes share for one call: the group sizes, the overlap-save
// tile grid (Mh x Mw outputs per T x T tile), the chunking of tile-vectors and the two chunk buffers
// of spectra (workspace slots 1 and 2: the input's C channels, the output's K channels per tile).
template <class S, int T>
struct TilePlan {
  static constexpr int L = Vec<S>::N, F = T * (T / 2 + 1);
  const ConvShape& shape;
  int64_t G, Cg, Kg, KC;
  int Mh, Mw;
  TileGrid grid;
  int64_t NTV, chunk;
  S* Xs;  // [F][chunk tiles][C] complex, L lanes
  S* Os;  // [F][chunk tiles][K] complex, L lanes: y spectra (forward) or gy spectra (weight gradient)

  explicit TilePlan(const ConvShape& sh)
      : shape(sh), G(sh.G), Cg(sh.C / sh.G), Kg(sh.K / sh.G), KC(sh.K * Cg), Mh(int(T - sh.R + 1)),
        Mw(int(T - sh.S + 1)), grid{sh.N, ceil_div(sh.P, Mh), ceil_div(sh.Q, Mw), Mh, Mw},
        NTV(ceil_div(grid.count(), L)), chunk(chunk_size(NTV, (sh.C + sh.K) * F * 2 * L * int64_t(sizeof(S)))),
        Xs(conv::Workspace::get<S>(1, size_t(F * chunk * sh.C * 2 * L))),
        Os(conv::Workspace::get<S>(2, size_t(F * chunk * sh.K * 2 * L))) {}

  // Spectra of the input tiles of tile-vectors [tv0, tv0 + nt), into Xs.
  void transform_input(const S* x, int64_t tv0, int64_t nt) const {
    transform_tiles<S, T>(x, shape.C, shape.H, shape.W, grid, -shape.ph, -shape.pw, T, T, tv0, nt, Xs);
  }
};

template <class S, int T>
void forward_tiled(const FftConvArgs& a) {
  using Plan = TilePlan<S, T>;
  const Plan plan(a.shape);
  constexpr int L = Plan::L, F = Plan::F;
  const S* x = static_cast<const S*>(a.x);
  const S* bias = static_cast<const S*>(a.bias);
  S* y = static_cast<S*>(a.y);
  const int64_t G = plan.G, Cg = plan.Cg, Kg = plan.Kg, KC = plan.KC, RS = a.shape.R * a.shape.S;
  const int Mh = plan.Mh, Mw = plan.Mw;
  const TileGrid& grid = plan.grid;
  S* Xs = plan.Xs;
  S* Ys = plan.Os;

  // Effective kernels [K][Cg][R][S]: as given, or flipped and channel-transposed (backward input).
  const S* w = static_cast<const S*>(a.w);
  std::vector<S> wflip;
  if (a.flip_transpose) {
    wflip.resize(size_t(KC * RS));
    for (int64_t k = 0; k < a.shape.K; ++k) {
      const int64_t g = k / Kg, kl = k % Kg;
      for (int64_t c = 0; c < Cg; ++c) {
        const S* src = w + ((g * Cg + c) * Kg + kl) * RS;
        S* dst = wflip.data() + (k * Cg + c) * RS;
        for (int64_t i = 0; i < RS; ++i) dst[i] = src[RS - 1 - i];
      }
    }
    w = wflip.data();
  }
  S* Ws = conv::Workspace::get<S>(0, size_t(F) * KC * 2);
  transform_kernels<S, T>(w, KC, a.shape.R, a.shape.S, Ws);

  const S scale = S(1) / S(4 * T * T);
  const Act kind = static_cast<Act>(a.act);
  const S param = S(a.act_param);

  for (int64_t tv0 = 0; tv0 < plan.NTV; tv0 += plan.chunk) {
    const int64_t nt = std::min(plan.chunk, plan.NTV - tv0);
    plan.transform_input(x, tv0, nt);

    // Complex GEMM per (frequency, group): Y[f][t][k] = sum_c X[f][t][c] * conj(W[f][k][c]).
    parallel_for(F * G, 1, [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        const int64_t f = item / G, g = item % G;
        const S* xf = Xs + f * nt * a.shape.C * 2 * L + g * Cg * 2 * L;
        S* yf = Ys + f * nt * a.shape.K * 2 * L + g * Kg * 2 * L;
        const S* wf = Ws + (f * KC + g * Kg * Cg) * 2;
        for (int64_t k0 = 0; k0 < Kg; k0 += fft::kFwdNR) {
          const int nr = int(std::min<int64_t>(fft::kFwdNR, Kg - k0));
          for (int64_t t = 0; t < nt; ++t)
            fft::cgemm_forward_n<fft::kFwdNR, S>(nr, xf + t * a.shape.C * 2 * L, wf + k0 * Cg * 2, Cg * 2, Cg,
                                                 yf + (t * a.shape.K + k0) * 2 * L);
        }
      }
    });

    parallel_for(nt * a.shape.K, 1, [&](int64_t b, int64_t e) {
      Scratch<S, T> s;
      TileRef<S> lanes[L];
      for (int64_t item = b; item < e; ++item) {
        const int64_t tvl = item / a.shape.K, k = item % a.shape.K;
        fft::irfft2<T>(Ys + (tvl * a.shape.K + k) * 2 * L, nt * a.shape.K * 2 * L, s.H.data(), Mh, s.rb.data());
        if (const unsigned bad = nonfinite_lanes<S, T>(s.rb.data(), Mh, Mw))
          for (int l = 0; l < L; ++l)
            if ((bad >> l) & 1u) direct_tile<S, T>(a, x, w, grid, (tv0 + tvl) * L + l, k, l, Mh, Mw, scale, s.rbs());
        epilogue<S, T>(s.rb.data(), Mh, Mw, scale, bias ? bias[k] : S(0), kind, param);
        grid.lanes<S, L>(tv0 + tvl, y, a.shape.K, k, a.shape.P * a.shape.Q, 0, 0, lanes);
        fft::store_tiles<T>(s.rbs(), lanes, a.shape.P, a.shape.Q, Mh, Mw);
      }
    });
  }
}

template <class S, int T>
void weight_grad_tiled(const FftWeightGradArgs& a) {
  using V = Vec<S>;
  using Plan = TilePlan<S, T>;
  const Plan plan(a.shape);
  constexpr int L = Plan::L, F = Plan::F;
  const S* x = static_cast<const S*>(a.x);
  const S* gy = static_cast<const S*>(a.gy);
  S* gw = static_cast<S*>(a.gw);
  const int64_t G = plan.G, Cg = plan.Cg, Kg = plan.Kg, KC = plan.KC;
  const S* Xs = plan.Xs;
  S* Gs = plan.Os;
  S* GW = conv::Workspace::get<S>(0, size_t(F) * KC * 2);  // [f][k][c] complex scalars, summed over tiles
  std::fill(GW, GW + size_t(F) * KC * 2, S(0));

  for (int64_t tv0 = 0; tv0 < plan.NTV; tv0 += plan.chunk) {
    const int64_t nt = std::min(plan.chunk, plan.NTV - tv0);
    plan.transform_input(x, tv0, nt);
    transform_tiles<S, T>(gy, a.shape.K, a.shape.P, a.shape.Q, plan.grid, 0, 0, plan.Mh, plan.Mw, tv0, nt, Gs);
    // GW[f][k][c] += sum over tiles of conj(G[f][t][k]) * X[f][t][c].
    parallel_for(F * G, 1, [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        const int64_t f = item / G, g = item % G;
        const S* xf = Xs + f * nt * a.shape.C * 2 * L + g * Cg * 2 * L;
        const S* gf = Gs + f * nt * a.shape.K * 2 * L + g * Kg * 2 * L;
        S* of = GW + (f * KC + g * Kg * Cg) * 2;
        for (int64_t k0 = 0; k0 < Kg; k0 += fft::kGradKB)
          for (int64_t c0 = 0; c0 < Cg; c0 += fft::kGradCB)
            fft::cgemm_weight_grad_n<fft::kGradKB, fft::kGradCB, S>(
                int(std::min<int64_t>(fft::kGradKB, Kg - k0)), int(std::min<int64_t>(fft::kGradCB, Cg - c0)),
                gf + k0 * 2 * L, a.shape.K * 2 * L, xf + c0 * 2 * L, a.shape.C * 2 * L, nt, of + (k0 * Cg + c0) * 2,
                Cg * 2);
      }
    });
  }

  // Inverse transforms, L (k, c) kernels at a time, cropped to R x S.
  const S scale = S(1) / S(4 * T * T);
  parallel_for(ceil_div(KC, L), 1, [&](int64_t b, int64_t e) {
    Scratch<S, T> s;
    std::vector<S> spec(size_t(F) * 2 * L);
    TileRef<S> lanes[L];
    for (int64_t kv = b; kv < e; ++kv) {
      const int n = int(std::min<int64_t>(L, KC - kv * L));
      for (int f = 0; f < F; ++f) {
        V re, im;
        fft::load_interleaved<S>(GW + (f * KC + kv * L) * 2, n, re, im);
        re.store(spec.data() + f * 2 * L);
        im.store(spec.data() + f * 2 * L + L);
      }
      fft::irfft2<T>(spec.data(), 2 * L, s.H.data(), int(a.shape.R), s.rb.data());
      for (int64_t i = 0; i < a.shape.R; ++i)
        for (int64_t j = 0; j < a.shape.S; ++j) s.rb[i * T + j] = s.rb[i * T + j] * V::set1(scale);
      for (int l = 0; l < L; ++l) {
        const int64_t kc = kv * L + l;
        lanes[l] = {kc < KC ? gw + kc * a.shape.R * a.shape.S : nullptr, 0, 0};
      }
      fft::store_tiles<T>(s.rbs(), lanes, a.shape.R, a.shape.S, int(a.shape.R), int(a.shape.S));
    }
  });
}

// f(std::integral_constant<int, T>) for the transform size T = tile (8, 16 or 32).
template <class Fn>
void with_tile(int tile, Fn&& f) {
  switch (tile) {
    case 8: return f(std::integral_constant<int, 8>{});
    case 16: return f(std::integral_constant<int, 16>{});
    case 32: return f(std::integral_constant<int, 32>{});
  }
  throw std::invalid_argument("tile: fft transform size must be 8, 16 or 32");
}

template <class S>
void forward(const FftConvArgs& a) {
  with_tile(a.tile, [&](auto T) { forward_tiled<S, decltype(T)::value>(a); });
}

template <class S>
void weight_grad(const FftWeightGradArgs& a) {
  with_tile(a.tile, [&](auto T) { weight_grad_tiled<S, decltype(T)::value>(a); });
}

}  // namespace

const ConvFftKernels& conv_fft_kernels() {
  static const ConvFftKernels table{&forward<float>, &forward<double>, &weight_grad<float>, &weight_grad<double>};
  return table;
}

FASTCNN_ISA_NAMESPACE_END
