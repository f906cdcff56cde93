// im2col / col2im for a chunk of images, the data movement of the im2col convolution (the
// multiplication is gemm.cu).
//
//   col[n][(c*R + r)*S + s][p*Q + q] = x[n][c][p*sh - ph + r*dh][q*sw - pw + s*dw]   (0 outside)
//
// col2im is written as a gather (one thread per input element sums the column entries that read
// it), so it needs no atomics and is deterministic.
#include "conv_geometry.cuh"

using namespace fastcnn;

namespace {

using Geometry = geom::ConvShape;  // N, K, G unused here: nb images of C channels

// One thread per column element, grid-stride over nb images (64-bit flat index).
template <class T>
__device__ void im2col_body(const T* x, T* col, long long nb, Geometry g) {
  const long long PQ = g.P * g.Q, RS = g.R * g.S;
  const long long total = nb * g.C * RS * PQ;
  FASTCNN_GRID_LOOP(i, total) {
    long long n_row, pq, n, row, c, rs, r, s, p, q;
    divmod(i, PQ, n_row, pq);
    divmod(n_row, g.C * RS, n, row);
    divmod(row, RS, c, rs);
    divmod(rs, g.S, r, s);
    divmod(pq, g.Q, p, q);
    const long long ih = geom::conv_in_coord(p, r, g.sh, g.ph, g.dh);
    const long long iw = geom::conv_in_coord(q, s, g.sw, g.pw, g.dw);
    const bool inside = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
    col[i] = inside ? x[((n * g.C + c) * g.H + ih) * g.W + iw] : T(0);
  }
}

// One thread per input element: x[n][c][h][w] = sum over taps (r, s) whose output reads (h, w).
template <class T>
__device__ void col2im_body(const T* col, T* x, long long nb, Geometry g) {
  const long long HW = g.H * g.W, PQ = g.P * g.Q, RS = g.R * g.S;
  const long long total = nb * g.C * HW;
  FASTCNN_GRID_LOOP(i, total) {
    long long nc, hw, h, w;  // nc = n*C + c
    divmod(i, HW, nc, hw);
    divmod(hw, g.W, h, w);
    const T* base = col + nc * RS * PQ;  // rows (c*R + r)*S + s of image n
    T sum = T(0);
    for (long long r = 0; r < g.R; ++r) {
      const long long p = geom::conv_out_coord(h, r, g.sh, g.ph, g.dh, g.P);
      if (p < 0) continue;
      for (long long s = 0; s < g.S; ++s) {
        const long long q = geom::conv_out_coord(w, s, g.sw, g.pw, g.dw, g.Q);
        if (q >= 0) sum += base[(r * g.S + s) * PQ + p * g.Q + q];
      }
    }
    x[i] = sum;
  }
}

}  // namespace

#define FASTCNN_IM2COL(SUF, T)                                                                                \
  extern "C" __global__ void im2col_##SUF(const T* x, T* col, long long nb, long long C, long long H, long long W, \
                                          long long R, long long S, long long P, long long Q, long long sh,       \
                                          long long sw, long long ph, long long pw, long long dh, long long dw) {  \
    im2col_body(x, col, nb, Geometry{nb, C, H, W, 0, R, S, P, Q, sh, sw, ph, pw, dh, dw, 1});                           \
  }                                                                                                           \
  extern "C" __global__ void col2im_##SUF(const T* col, T* x, long long nb, long long C, long long H, long long W, \
                                          long long R, long long S, long long P, long long Q, long long sh,       \
                                          long long sw, long long ph, long long pw, long long dh, long long dw) {  \
    col2im_body(col, x, nb, Geometry{nb, C, H, W, 0, R, S, P, Q, sh, sw, ph, pw, dh, dw, 1});                           \
  }

FASTCNN_IM2COL(f32, float)
FASTCNN_IM2COL(f64, double)
