// Where an implicit-GEMM convolution's results go: the epilogues shared by the FMA engine
// (conv_direct.cu, gemm_tile.cuh) and the tensor-core engine (conv_implicit_gemm.cu, mma_tile.cuh). Each gets
// one (m, n, value) of the GEMM and writes it to its place in NCHW.
#pragma once
#include "conv_epilogue.cuh"
#include "conv_geometry.cuh"

namespace fastcnn {
namespace conv {
using geom::ConvShape;

// forward: m = output channel within the group, n = pixel (n, p, q); y = act(v + bias).
template <class T>
struct ForwardEpilogue {
  T* y;
  const T* bias;
  ConvShape g;
  long long k_base;  // g * Kg
  int act;
  T act_param;
  FASTCNN_DEVICE void operator()(long long m, long long pix, T v) const {
    const long long PQ = g.P * g.Q, k = k_base + m;
    long long n, pq;
    divmod(pix, PQ, n, pq);
    y[(n * g.K + k) * PQ + pq] = epi::bias_act(v, bias, k, act, act_param);
  }
};

// backward input: m = input channel within the group, n = input pixel (n, h, w).
template <class T>
struct InputGradEpilogue {
  T* gx;
  ConvShape g;
  long long c_base;  // g * Cg
  FASTCNN_DEVICE void operator()(long long c, long long pix, T v) const {
    const long long HW = g.H * g.W;
    long long n, hw;
    divmod(pix, HW, n, hw);
    gx[(n * g.C + c_base + c) * HW + hw] = v;
  }
};

// backward weight: a row-major M x N slice (gw itself or one split-K slice).
template <class T>
struct StoreEpilogue {  // row-major M x N slice
  T* out;
  long long ld;
  FASTCNN_DEVICE void operator()(long long m, long long n, T v) const { out[m * ld + n] = v; }
};

}  // namespace conv
}  // namespace fastcnn
