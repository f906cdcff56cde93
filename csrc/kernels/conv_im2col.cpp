// im2col convolution: column matrices (im2col / col2im, written here) and the GEMM engine.
//
//   forward          y[n, grp]  = W[grp]   (K/g x C/g*R*S)  @ cols(x[n, grp])   (C/g*R*S x P*Q)
//   backward input   dcols      = W[grp]^T                  @ gy[n, grp];  gx[n, grp] = col2im(dcols)
//   backward weight  gW[grp]   += gy[n, grp]                @ cols(x[n, grp])^T
//
// A 1x1, stride-1, unpadded convolution uses the input plane itself as the column matrix (no copy);
// so does a kernel covering the whole unpadded input (one output pixel), whose passes are then one
// GEMM over the batch each: y[N x K] = x[N x CRS] @ W^T, gx = gy[N x K] @ W, gW = gy^T @ x.
// Threads: with enough images, each thread takes whole images (its own column buffer, single-thread
// GEMMs, partial weight gradients summed at the end); otherwise images run one after another and
// im2col / GEMM / col2im are threaded inside.
#include "kernels/conv_im2col.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "common/activation_math.h"
#include "common/simd.h"
#include "common/threads.h"
#include "kernels/gemm.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {
using simd::Vec;

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
          T beta, T* C, int64_t ldc, int threads) {
  if constexpr (sizeof(T) == 4)
    gemm_kernels().f32(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, threads);
  else
    gemm_kernels().f64(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc, threads);
}

// Output positions o in [0, n_out) whose tap o*stride + offset lies in [0, size): [lo, hi).
inline void valid_range(int64_t offset, int64_t stride, int64_t size, int64_t n_out, int64_t& lo, int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t last = size - 1 - offset;  // o*stride <= last
  hi = last < 0 ? 0 : last / stride + 1;
  lo = std::min(lo, n_out);
  hi = std::max(lo, std::min(hi, n_out));
}

template <class T>
void fill_zero(T* p, int64_t n) {
  if (n > 0) std::fill(p, p + n, T(0));
}

// dst[i] = src[i] (Add = false) or dst[i] += src[i] (Add = true), vectorised. Rows are short
// (13 wide on AlexNet's last layers), so the tail matters: no masked store there (microcoded on
// AMD); a copy re-copies the last full vector's worth, an add finishes per element.
template <bool Add, class T>
void copy_or_add(T* dst, const T* src, int64_t n) {
  using V = Vec<T>;
  int64_t i = 0;
  for (; i + V::N <= n; i += V::N) (Add ? V::load(dst + i) + V::load(src + i) : V::load(src + i)).store(dst + i);
  if (i == n) return;
  if (!Add && n >= V::N) {
    V::load(src + n - V::N).store(dst + n - V::N);
    return;
  }
  for (; i < n; ++i) dst[i] = Add ? dst[i] + src[i] : src[i];
}

// Walks the R*S*P taps of one channel plane: body(offset, input_row or nullptr, q0, q1, w_offset)
// where offset locates the column-matrix row segment [Q] of (r, s, p) and input_row is the plane's
// row it touches (null when that row is padding); columns q in [q0, q1) map to
// input_row[q*sw + w_offset], the others to padding. Plane is const for im2col, not for col2im.
template <class Plane, class Body>
void for_each_tap_row(const ConvShape& g, Plane* plane, int64_t PQ, Body&& body) {
  for (int64_t r = 0; r < g.R; ++r)
    for (int64_t s = 0; s < g.S; ++s) {
      const int64_t w_off = s * g.dw - g.pw;
      int64_t q0, q1;
      valid_range(w_off, g.sw, g.W, g.Q, q0, q1);
      const int64_t row = (r * g.S + s) * PQ;
      for (int64_t p = 0; p < g.P; ++p) {
        const int64_t ih = p * g.sh - g.ph + r * g.dh;
        const bool inside = ih >= 0 && ih < g.H;
        body(row + p * g.Q, inside ? plane + ih * g.W : nullptr, q0, q1, w_off);
      }
    }
}

// cols rows of `planes` consecutive channel planes (each H x W) -> R*S rows each.
template <class T>
void im2col_planes(const ConvShape& g, const T* x, T* cols, int64_t planes, int threads) {
  const int64_t HW = g.H * g.W, PQ = g.P * g.Q, rows = g.R * g.S * PQ;
  auto run = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      T* out = cols + c * rows;
      for_each_tap_row(g, x + c * HW, PQ, [&](int64_t o, const T* in, int64_t q0, int64_t q1, int64_t w_off) {
        T* dst = out + o;
        if (!in) return fill_zero(dst, g.Q);
        fill_zero(dst, q0);
        if (g.sw == 1) {
          copy_or_add<false>(dst + q0, in + q0 + w_off, q1 - q0);
        } else {
          for (int64_t q = q0; q < q1; ++q) dst[q] = in[q * g.sw + w_off];
        }
        fill_zero(dst + q1, g.Q - q1);
      });
    }
  };
  if (threads > 1) parallel_for(planes, 1, run); else run(0, planes);
}

// x planes = adjoint of im2col_planes (each plane overwritten).
template <class T>
void col2im_planes(const ConvShape& g, const T* cols, T* x, int64_t planes, int threads) {
  const int64_t HW = g.H * g.W, PQ = g.P * g.Q, rows = g.R * g.S * PQ;
  auto run = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      T* plane = x + c * HW;
      const T* in = cols + c * rows;
      fill_zero(plane, HW);
      for_each_tap_row(g, plane, PQ, [&](int64_t o, T* dst, int64_t q0, int64_t q1, int64_t w_off) {
        if (!dst) return;
        const T* src = in + o;
        if (g.sw == 1) {
          copy_or_add<true>(dst + q0 + w_off, src + q0, q1 - q0);
        } else {
          for (int64_t q = q0; q < q1; ++q) dst[q * g.sw + w_off] += src[q];
        }
      });
    }
  };
  if (threads > 1) parallel_for(planes, 1, run); else run(0, planes);
}

// Threads worth waking for `work` (flops or elements moved): about 4 M per thread (some 40 us), so
// small calls do not pay for a parallel region's wake-up and barrier.
inline int useful_threads(double work) {
  return static_cast<int>(std::clamp<double>(work / 4e6, 1.0, static_cast<double>(num_threads())));
}

template <class T>
void im2col(const ConvShape& g, const T* x, T* cols) {
  const double elems = double(g.N) * g.C * g.R * g.S * g.P * g.Q;
  im2col_planes(g, x, cols, g.N * g.C, useful_threads(16 * elems));
}

template <class T>
void col2im(const ConvShape& g, const T* cols, T* x) {
  const double elems = double(g.N) * g.C * g.R * g.S * g.P * g.Q;
  col2im_planes(g, cols, x, g.N * g.C, useful_threads(16 * elems));
}

template <class T>
void channel_sum(const T* t, T* out, int64_t N, int64_t K, int64_t L) {
  using V = Vec<T>;
  parallel_for(K, std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, N * L)), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      V acc0 = V::zero(), acc1 = V::zero();
      T tail = T(0);
      for (int64_t n = 0; n < N; ++n) {
        const T* row = t + (n * K + k) * L;
        int64_t l = 0;
        for (; l + 2 * V::N <= L; l += 2 * V::N) {
          acc0 = acc0 + V::load(row + l);
          acc1 = acc1 + V::load(row + l + V::N);
        }
        for (; l < L; ++l) tail += row[l];
      }
      out[k] = reduce_add(acc0 + acc1) + tail;
    }
  });
}

// y rows [row0, row1) of [rows, L] (row index n*K + k): act(y + bias[k]).
template <class T>
void bias_act_rows(T* y, const T* bias, int64_t K, int64_t L, int64_t row0, int64_t row1, int act, T p0, T p1) {
  using V = Vec<T>;
  const Act kind = static_cast<Act>(act);
  for (int64_t row = row0; row < row1; ++row) {
    T* v = y + row * L;
    const V b = V::set1(bias ? bias[row % K] : T(0));
    int64_t l = 0;
    for (; l + V::N <= L; l += V::N) act::forward<T>(kind, V(V::load(v + l) + b), p0, p1).store(v + l);
    if (l < L) {
      const int rest = static_cast<int>(L - l);
      act::forward<T>(kind, V(V::load(v + l, rest) + b), p0, p1).store(v + l, rest);
    }
  }
}

template <class T>
void bias_act(T* y, const T* bias, int64_t N, int64_t K, int64_t L, int act, T p0, T p1) {
  if (!bias && static_cast<Act>(act) == Act::identity) return;
  parallel_for(N * K, std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(L, 1)),
               [&](int64_t r0, int64_t r1) { bias_act_rows(y, bias, K, L, r0, r1, act, p0, p1); });
}

// Whether to give each thread whole images rather than thread inside each image.
inline bool split_by_image(int64_t N, int nt) { return nt > 1 && (N % nt == 0 || N >= 4 * nt); }

inline double conv_flops(const ConvShape& g) { return 2.0 * g.N * g.K * col_rows(g) * col_cols(g); }

// Runs run(n0, n1, buffer, threads) over runs of at most `per` of the N images with nt threads: each
// thread its own images (and its own buffer of buf_elems), or every thread inside each run.
template <class T, class RunFn>
void for_each_image_run(int64_t N, int64_t per, int64_t buf_elems, int nt, RunFn&& run) {
  auto runs = [&](int64_t n0, int64_t n1, T* buf, int threads) {
    for (int64_t n = n0; n < n1; n += per) run(n, std::min(n1, n + per), buf, threads);
  };
  if (split_by_image(N, nt)) {
    parallel_for(nt, 1, [&](int64_t t0, int64_t t1) {
      std::vector<T> buf(buf_elems);
      runs(N * t0 / nt, N * t1 / nt, buf.data(), 1);
    });
  } else {
    std::vector<T> buf(buf_elems);
    runs(0, N, buf.data(), nt);
  }
}

// Runs image(n, column buffer, threads) for every image with nt threads, by image or within each.
template <class T, class ImageFn>
void for_each_image(const ConvShape& g, bool needs_cols, int nt, ImageFn&& image) {
  for_each_image_run<T>(g.N, 1, needs_cols ? col_rows(g) * col_cols(g) : 0, nt,
                        [&](int64_t n, int64_t, T* cols, int threads) { image(n, cols, threads); });
}

template <class T>
void forward(const ConvShape& g, const T* x, const T* w, const T* bias, T* y, int act, T p0, T p1) {
  const int64_t HW = g.H * g.W, PQ = col_cols(g), CRS = col_rows(g), Cg = cg(g), Kg = kg(g);
  if (covers_image(g)) {
    gemm<T>(false, true, g.N, g.K, CRS, x, CRS, w, CRS, T(0), y, g.K, useful_threads(conv_flops(g)));
    if (bias || static_cast<Act>(act) != Act::identity) bias_act_rows(y, bias, g.K, 1, 0, g.N * g.K, act, p0, p1);
    return;
  }
  const bool pointwise = is_pointwise(g);
  for_each_image<T>(g, !pointwise, useful_threads(conv_flops(g)), [&](int64_t n, T* cols, int threads) {
    for (int64_t grp = 0; grp < g.G; ++grp) {
      const T* xg = x + (n * g.C + grp * Cg) * HW;
      if (!pointwise) im2col_planes(g, xg, cols, Cg, threads);
      gemm<T>(false, false, Kg, PQ, CRS, w + grp * Kg * CRS, CRS, pointwise ? xg : cols, PQ, T(0),
              y + (n * g.K + grp * Kg) * PQ, PQ, threads);
    }
    if (bias || static_cast<Act>(act) != Act::identity) {
      if (threads > 1)
        parallel_for(g.K, 1, [&](int64_t k0, int64_t k1) {
          bias_act_rows(y, bias, g.K, PQ, n * g.K + k0, n * g.K + k1, act, p0, p1);
        });
      else
        bias_act_rows(y, bias, g.K, PQ, n * g.K, (n + 1) * g.K, act, p0, p1);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Strided backward-input by phases (sub-pixel decomposition). gx pixel (h, w) gathers gy(p, q) *
// w(r, c) where h + ph = p*sh + r*dh and w + pw = q*sw + c*dw. The gx rows of one class
// h = a + i*sh are reached only by the taps r with r*dh = a + ph (mod sh), a run r0, r0 + step, ...
// (step = sh / gcd(sh, dh)), and tap r reads gy row i + (a + ph - r*dh) / sh: a stride-1
// correlation of gy with those taps in reverse order, dilation dh / gcd(sh, dh). Columns likewise.
// So each of the sh*sw phases is one GEMM of the phase's sub-kernel (C/g x K/g * taps) with its
// column matrix, gathered from a zero-padded copy of gy (images side by side for a wide GEMM): no
// zero taps, no col2im. The result is interleaved into gx; gx pixels no tap reaches get zero.

// One axis (rows or columns) of one phase.
struct PhaseAxis {
  int64_t first, count;  // gx indices first + i*stride, i < count
  int64_t r0, step, taps;  // kernel taps r0 + t*step, t < taps (taps = 0: nothing reaches them)
  int64_t pad, dil;      // correlation tap t (kernel tap r0 + (taps-1-t)*step) reads gy index i - pad + t*dil
};

inline PhaseAxis phase_axis(int64_t a, int64_t size, int64_t stride, int64_t pad, int64_t dil, int64_t kernel) {
  const int64_t common = std::gcd(stride, dil);
  PhaseAxis ax{a, (size - a + stride - 1) / stride, 0, stride / common, 0, 0, dil / common};
  auto reaches = [&](int64_t r) { return ((r * dil - a - pad) % stride + stride) % stride == 0; };
  while (ax.r0 < std::min(kernel, ax.step) && !reaches(ax.r0)) ++ax.r0;
  if (ax.r0 >= std::min(kernel, ax.step)) return ax;
  ax.taps = (kernel - 1 - ax.r0) / ax.step + 1;
  ax.pad = -(a + pad - (ax.r0 + (ax.taps - 1) * ax.step) * dil) / stride;  // an exact division
  return ax;
}

struct Phase {
  PhaseAxis rows, cols;
  int64_t depth;      // K/g * taps: the GEMM's inner dimension
  int64_t weights;    // where the phase's GEMM operand starts in the packed weights (phase_weights)
  int64_t pixels() const { return rows.count * cols.count; }
};

inline std::vector<Phase> make_phases(const ConvShape& g) {
  std::vector<Phase> phases;
  for (int64_t a = 0; a < std::min(g.sh, g.H); ++a)
    for (int64_t b = 0; b < std::min(g.sw, g.W); ++b) {
      Phase f{phase_axis(a, g.H, g.sh, g.ph, g.dh, g.R), phase_axis(b, g.W, g.sw, g.pw, g.dw, g.S), 0, 0};
      f.depth = kg(g) * f.rows.taps * f.cols.taps;
      f.weights = phases.empty() ? 0 : phases.back().weights + g.G * cg(g) * phases.back().depth;
      phases.push_back(f);
    }
  return phases;
}

// The phases' GEMM operands A[phase][group][c][k, t, u] = w[group*K/g + k][c][r(t)][s(u)], one
// block of groups * C/g * depth per phase, from phase.weights on.
template <class T>
std::vector<T> phase_weights(const ConvShape& g, const T* w, const std::vector<Phase>& phases) {
  const int64_t Cg = cg(g), Kg = kg(g);
  std::vector<T> packed(static_cast<size_t>(phases.back().weights + g.G * Cg * phases.back().depth));
  const int64_t rows = static_cast<int64_t>(phases.size()) * g.G * Cg;
  parallel_for(rows, std::max<int64_t>(1, (1 << 14) / (Kg * g.R * g.S)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const Phase& f = phases[i / (g.G * Cg)];
      const int64_t grp = i / Cg % g.G, c = i % Cg, RT = f.rows.taps, ST = f.cols.taps;
      T* dst = packed.data() + f.weights + (grp * Cg + c) * f.depth;
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t t = 0; t < RT; ++t)
          for (int64_t u = 0; u < ST; ++u) {
            const int64_t r = f.rows.r0 + (RT - 1 - t) * f.rows.step, s = f.cols.r0 + (ST - 1 - u) * f.cols.step;
            *dst++ = w[(((grp * Kg + k) * Cg + c) * g.R + r) * g.S + s];
          }
    }
  });
  return packed;
}

// gx[m][c][first_row + i*sh][first_col + j*sw] = res[c][m][i][j] for the images m of one run and
// the C/g channels of one group (res rows ld apart); res = null writes zeros.
template <class T>
void interleave(const ConvShape& g, const Phase& f, const T* res, int64_t ld, T* gx, int64_t images, int threads) {
  const int64_t HW = g.H * g.W, count = f.cols.count;
  auto run = [&](int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t m = 0; m < images; ++m)
      for (int64_t i = 0; i < f.rows.count; ++i) {
        T* dst = gx + (m * g.C + c) * HW + (f.rows.first + i * g.sh) * g.W + f.cols.first;
        const T* src = res ? res + c * ld + (m * f.rows.count + i) * count : nullptr;
        if (g.sw == 1) {
          if (src) copy_or_add<false>(dst, src, count); else fill_zero(dst, count);
        } else {
          for (int64_t j = 0; j < count; ++j) dst[j * g.sw] = src ? src[j] : T(0);
        }
      }
  };
  if (threads > 1) parallel_for(cg(g), 1, run); else run(0, cg(g));
}

// gy planes of a run of images, zero-padded so that every phase's taps read inside:
// [image][K/g channel][rows][cols], source (p, q) at (p + top, q + left).
struct PaddedGy {
  int64_t top, left, rows, cols;
  int64_t plane() const { return rows * cols; }
};

inline PaddedGy padded_gy(const ConvShape& g, const std::vector<Phase>& phases) {
  int64_t top = 0, left = 0, bottom = 0, right = 0;  // beyond gy on each side
  for (const Phase& f : phases) {
    if (f.depth == 0) continue;
    top = std::max(top, f.rows.pad);
    left = std::max(left, f.cols.pad);
    bottom = std::max<int64_t>(bottom, f.rows.count - 1 - f.rows.pad + (f.rows.taps - 1) * f.rows.dil - (g.P - 1));
    right = std::max<int64_t>(right, f.cols.count - 1 - f.cols.pad + (f.cols.taps - 1) * f.cols.dil - (g.Q - 1));
  }
  return PaddedGy{top, left, top + g.P + bottom, left + g.Q + right};
}

// dst[m][k] = gy planes of images n0 + m, channels [k0, k0 + K/g), inside zero borders.
template <class T>
void pad_gy(const ConvShape& g, const PaddedGy& pg, const T* gy, int64_t images, T* dst, int threads) {
  const int64_t Kg = kg(g);
  auto run = [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {  // i = m * K/g + k
      T* d = dst + i * pg.plane();
      const T* src = gy + ((i / Kg) * g.K + i % Kg) * g.P * g.Q;
      fill_zero(d, pg.top * pg.cols);
      for (int64_t p = 0; p < g.P; ++p) {
        T* row = d + (pg.top + p) * pg.cols;
        fill_zero(row, pg.left);
        copy_or_add<false>(row + pg.left, src + p * g.Q, g.Q);
        fill_zero(row + pg.left + g.Q, pg.cols - pg.left - g.Q);
      }
      fill_zero(d + (pg.top + g.P) * pg.cols, (pg.rows - pg.top - g.P) * pg.cols);
    }
  };
  if (threads > 1) parallel_for(images * Kg, 1, run); else run(0, images * Kg);
}

// The phase's column matrix: row (k, t, u), column (m, i, j) = padded gy of image m, channel k at
// (i - rows.pad + t*rows.dil, j - cols.pad + u*cols.dil); rows ld = images * pixels apart.
template <class T>
void phase_cols(const ConvShape& g, const PaddedGy& pg, const Phase& f, const T* padded, int64_t images, T* cols,
                int threads) {
  const int64_t Kg = kg(g), RT = f.rows.taps, ST = f.cols.taps, ld = images * f.pixels();
  auto run = [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t t = 0; t < RT; ++t)
        for (int64_t u = 0; u < ST; ++u) {
          T* dst = cols + ((k * RT + t) * ST + u) * ld;
          const int64_t first = (pg.top - f.rows.pad + t * f.rows.dil) * pg.cols + pg.left - f.cols.pad + u * f.cols.dil;
          for (int64_t m = 0; m < images; ++m) {
            const T* src = padded + (m * Kg + k) * pg.plane() + first;
            for (int64_t i = 0; i < f.rows.count; ++i, dst += f.cols.count)
              copy_or_add<false>(dst, src + i * pg.cols, f.cols.count);
          }
        }
  };
  if (threads > 1) parallel_for(Kg, 1, run); else run(0, Kg);
}

// Images per GEMM: enough columns (some 512) for full-speed panels.
constexpr int64_t kPhaseColumns = 512;

template <class T>
void backward_input_phases(const ConvShape& g, const T* gy, const T* w, T* gx) {
  const std::vector<Phase> phases = make_phases(g);
  const std::vector<T> wp = phase_weights<T>(g, w, phases);
  const PaddedGy pg = padded_gy(g, phases);
  const int64_t Cg = cg(g), Kg = kg(g), widest = phases.front().pixels();
  const int64_t per = std::max<int64_t>(1, std::min<int64_t>(g.N, kPhaseColumns / widest));
  int64_t deepest = 0;
  for (const Phase& f : phases) deepest = std::max(deepest, f.depth);
  const int64_t pad_elems = per * Kg * pg.plane(), cols_elems = deepest * per * widest;
  for_each_image_run<T>(g.N, per, pad_elems + cols_elems + Cg * per * widest, useful_threads(conv_flops(g)),
                        [&](int64_t n0, int64_t n1, T* buf, int threads) {
    const int64_t images = n1 - n0;
    T* padded = buf;
    T* cols = buf + pad_elems;
    T* res = cols + cols_elems;
    for (int64_t grp = 0; grp < g.G; ++grp) {
      T* gxg = gx + (n0 * g.C + grp * Cg) * g.H * g.W;
      pad_gy(g, pg, gy + (n0 * g.K + grp * Kg) * g.P * g.Q, images, padded, threads);
      for (const Phase& f : phases) {
        if (f.depth == 0) {
          interleave<T>(g, f, nullptr, 0, gxg, images, threads);
          continue;
        }
        const int64_t ld = images * f.pixels();
        phase_cols(g, pg, f, padded, images, cols, threads);
        gemm<T>(false, false, Cg, ld, f.depth, wp.data() + f.weights + grp * Cg * f.depth, f.depth, cols, ld, T(0),
                res, ld, threads);
        interleave<T>(g, f, res, ld, gxg, images, threads);
      }
    }
  });
}

// Phases pay where col2im would add overlapping taps (a kernel wider than its stride) and the
// phase GEMM has enough rows (gx channels per group) to amortise the two copies of its columns
// (gather + GEMM packing). Measured (2 threads, float32): DCGAN G 256->128 (C/g = 128) 30 ms by
// phases against 38 by col2im; at C/g = 64 the two are within 6% either way (DCGAN G 128->64,
// HardNet 64->128 s2); at C/g = 3 (DCGAN's convT to RGB) phases are 5x slower.
constexpr int64_t kPhaseMinChannels = 128;

inline bool phases_pay(const ConvShape& g) {
  const bool overlap = (g.R - 1) * g.dh + 1 > g.sh || (g.S - 1) * g.dw + 1 > g.sw;
  return (g.sh > 1 || g.sw > 1) && overlap && cg(g) >= kPhaseMinChannels;
}

template <class T>
void backward_input(const ConvShape& g, const T* gy, const T* w, T* gx) {
  if (phases_pay(g)) return backward_input_phases(g, gy, w, gx);
  const int64_t HW = g.H * g.W, PQ = col_cols(g), CRS = col_rows(g), Cg = cg(g), Kg = kg(g);
  if (covers_image(g))
    return gemm<T>(false, false, g.N, CRS, g.K, gy, g.K, w, CRS, T(0), gx, CRS, useful_threads(conv_flops(g)));
  const bool pointwise = is_pointwise(g);
  for_each_image<T>(g, !pointwise, useful_threads(conv_flops(g)), [&](int64_t n, T* dcols, int threads) {
    for (int64_t grp = 0; grp < g.G; ++grp) {
      T* gxg = gx + (n * g.C + grp * Cg) * HW;
      const T* gyg = gy + (n * g.K + grp * Kg) * PQ;
      gemm<T>(true, false, CRS, PQ, Kg, w + grp * Kg * CRS, CRS, gyg, PQ, T(0), pointwise ? gxg : dcols, PQ, threads);
      if (!pointwise) col2im_planes(g, dcols, gxg, Cg, threads);
    }
  });
}

// gw (+)= sum over images [n0, n1) of gy[n] @ cols(x[n])^T; accumulate says whether gw holds a sum already.
template <class T>
void weight_grad_images(const ConvShape& g, const T* x, const T* gy, T* gw, int64_t n0, int64_t n1, bool accumulate,
                        T* cols, int threads) {
  const int64_t HW = g.H * g.W, PQ = col_cols(g), CRS = col_rows(g), Cg = cg(g), Kg = kg(g);
  const bool pointwise = is_pointwise(g);
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t grp = 0; grp < g.G; ++grp) {
      const T* xg = x + (n * g.C + grp * Cg) * HW;
      if (!pointwise) im2col_planes(g, xg, cols, Cg, threads);
      const T beta = (accumulate || n > n0) ? T(1) : T(0);
      gemm<T>(false, true, Kg, CRS, PQ, gy + (n * g.K + grp * Kg) * PQ, PQ, pointwise ? xg : cols, PQ, beta,
              gw + grp * Kg * CRS, CRS, threads);
    }
  }
}

template <class T>
void backward_weight(const ConvShape& g, const T* x, const T* gy, T* gw) {
  const int64_t gw_elems = g.K * col_rows(g);
  const int64_t col_elems = is_pointwise(g) ? 0 : col_rows(g) * col_cols(g);
  const int nt = useful_threads(conv_flops(g));
  if (g.N == 0) return fill_zero(gw, gw_elems);
  if (covers_image(g)) return gemm<T>(true, false, g.K, col_rows(g), g.N, gy, g.K, x, col_rows(g), T(0), gw, col_rows(g), nt);
  if (!split_by_image(g.N, nt)) {
    std::vector<T> cols(col_elems);
    weight_grad_images(g, x, gy, gw, 0, g.N, false, cols.data(), nt);
    return;
  }
  // Each thread sums its images into its own partial gradient; the partials are added at the end.
  std::vector<T> partial(static_cast<size_t>(nt - 1) * gw_elems);
  parallel_for(nt, 1, [&](int64_t t0, int64_t t1) {
    std::vector<T> cols(col_elems);
    for (int64_t t = t0; t < t1; ++t) {
      T* dst = t == 0 ? gw : partial.data() + (t - 1) * gw_elems;
      const int64_t n0 = g.N * t / nt, n1 = g.N * (t + 1) / nt;
      if (n0 == n1) fill_zero(dst, gw_elems);
      weight_grad_images(g, x, gy, dst, n0, n1, false, cols.data(), 1);
    }
  });
  parallel_for(gw_elems, 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int t = 1; t < nt; ++t) copy_or_add<true>(gw + i0, partial.data() + (t - 1) * gw_elems + i0, i1 - i0);
  });
}

template <class T>
Im2colTable<T> table() {
  return {&im2col<T>, &col2im<T>, &channel_sum<T>, &bias_act<T>, &forward<T>, &backward_input<T>,
          &backward_weight<T>};
}

}  // namespace

const ConvIm2colKernels& conv_im2col_kernels() {
  static const ConvIm2colKernels t{table<float>(), table<double>()};
  return t;
}

FASTCNN_ISA_NAMESPACE_END
