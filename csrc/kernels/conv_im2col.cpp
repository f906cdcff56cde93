// im2col convolution: column matrices (im2col / col2im, written here) and the GEMM engine.
//
//   forward          y[n, grp]  = W[grp]   (K/g x C/g*R*S)  @ cols(x[n, grp])   (C/g*R*S x P*Q)
//   backward input   dcols      = W[grp]^T                  @ gy[n, grp];  gx[n, grp] = col2im(dcols)
//   backward weight  gW[grp]   += gy[n, grp]                @ cols(x[n, grp])^T
//
// A 1x1, stride-1, unpadded convolution uses the input plane itself as the column matrix (no copy).
// Threads: with enough images, each thread takes whole images (its own column buffer, single-thread
// GEMMs, partial weight gradients summed at the end); otherwise images run one after another and
// im2col / GEMM / col2im are threaded inside.
#include "kernels/conv_im2col.h"

#include <algorithm>
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

// dst[i] = src[i] (Add = false) or dst[i] += src[i] (Add = true), vectorised.
template <bool Add, class T>
void copy_or_add(T* dst, const T* src, int64_t n) {
  using V = Vec<T>;
  int64_t i = 0;
  for (; i + V::N <= n; i += V::N) (Add ? V::load(dst + i) + V::load(src + i) : V::load(src + i)).store(dst + i);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    (Add ? V::load(dst + i, rest) + V::load(src + i, rest) : V::load(src + i, rest)).store(dst + i, rest);
  }
}

// Walks the R*S*P taps of one channel plane: body(offset, input_row or nullptr, q0, q1, w_offset)
// where offset locates the column-matrix row segment [Q] of (r, s, p) and input_row is the plane's
// row it touches (null when that row is padding); columns q in [q0, q1) map to
// input_row[q*sw + w_offset], the others to padding. Plane is const for im2col, not for col2im.
template <class Plane, class Body>
void for_each_tap_row(const ConvGeometry& g, Plane* plane, int64_t PQ, Body&& body) {
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
void im2col_planes(const ConvGeometry& g, const T* x, T* cols, int64_t planes, int threads) {
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
void col2im_planes(const ConvGeometry& g, const T* cols, T* x, int64_t planes, int threads) {
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
void im2col(const ConvGeometry& g, const T* x, T* cols) {
  const double elems = double(g.N) * g.C * g.R * g.S * g.P * g.Q;
  im2col_planes(g, x, cols, g.N * g.C, useful_threads(16 * elems));
}

template <class T>
void col2im(const ConvGeometry& g, const T* cols, T* x) {
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

inline double conv_flops(const ConvGeometry& g) { return 2.0 * g.N * g.K * g.col_rows() * g.col_cols(); }

// Runs image(n, column buffer, threads) for every image with nt threads, by image or within each.
template <class T, class ImageFn>
void for_each_image(const ConvGeometry& g, bool needs_cols, int nt, ImageFn&& image) {
  const int64_t col_elems = needs_cols ? g.col_rows() * g.col_cols() : 0;
  if (split_by_image(g.N, nt)) {
    parallel_for(nt, 1, [&](int64_t t0, int64_t t1) {
      std::vector<T> cols(col_elems);
      for (int64_t n = g.N * t0 / nt; n < g.N * t1 / nt; ++n) image(n, cols.data(), 1);
    });
  } else {
    std::vector<T> cols(col_elems);
    for (int64_t n = 0; n < g.N; ++n) image(n, cols.data(), nt);
  }
}

template <class T>
void forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, int act, T p0, T p1) {
  const int64_t HW = g.H * g.W, PQ = g.col_cols(), CRS = g.col_rows(), Cg = g.cg(), Kg = g.kg();
  const bool pointwise = g.is_pointwise();
  for_each_image<T>(g, !pointwise, useful_threads(conv_flops(g)), [&](int64_t n, T* cols, int threads) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
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

template <class T>
void backward_input(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
  const int64_t HW = g.H * g.W, PQ = g.col_cols(), CRS = g.col_rows(), Cg = g.cg(), Kg = g.kg();
  const bool pointwise = g.is_pointwise();
  for_each_image<T>(g, !pointwise, useful_threads(conv_flops(g)), [&](int64_t n, T* dcols, int threads) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      T* gxg = gx + (n * g.C + grp * Cg) * HW;
      const T* gyg = gy + (n * g.K + grp * Kg) * PQ;
      gemm<T>(true, false, CRS, PQ, Kg, w + grp * Kg * CRS, CRS, gyg, PQ, T(0), pointwise ? gxg : dcols, PQ, threads);
      if (!pointwise) col2im_planes(g, dcols, gxg, Cg, threads);
    }
  });
}

// gw (+)= sum over images [n0, n1) of gy[n] @ cols(x[n])^T; accumulate says whether gw holds a sum already.
template <class T>
void weight_grad_images(const ConvGeometry& g, const T* x, const T* gy, T* gw, int64_t n0, int64_t n1, bool accumulate,
                        T* cols, int threads) {
  const int64_t HW = g.H * g.W, PQ = g.col_cols(), CRS = g.col_rows(), Cg = g.cg(), Kg = g.kg();
  const bool pointwise = g.is_pointwise();
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* xg = x + (n * g.C + grp * Cg) * HW;
      if (!pointwise) im2col_planes(g, xg, cols, Cg, threads);
      const T beta = (accumulate || n > n0) ? T(1) : T(0);
      gemm<T>(false, true, Kg, CRS, PQ, gy + (n * g.K + grp * Kg) * PQ, PQ, pointwise ? xg : cols, PQ, beta,
              gw + grp * Kg * CRS, CRS, threads);
    }
  }
}

template <class T>
void backward_weight(const ConvGeometry& g, const T* x, const T* gy, T* gw) {
  const int64_t gw_elems = g.K * g.col_rows();
  const int64_t col_elems = g.is_pointwise() ? 0 : g.col_rows() * g.col_cols();
  const int nt = useful_threads(conv_flops(g));
  if (g.N == 0) return fill_zero(gw, gw_elems);
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
