// Batched, strided GEMM with a fused epilogue, plus the small reductions the convolutions need.
//
//   for z = (b1, b2, split):  C_z[m][n] (+)= act(sum_k A_z(m, k) B_z(k, n) + bias_z[m])
//   A_z(m, k) = A[b1*sa1 + b2*sa2 + m*sam + k*sak]     (likewise B with sbk, sbn; C with scm, scn)
//
// Two batch levels cover "image x group" (im2col convolution) and "group" alone. With splits > 1
// every split writes its partial sum to its own slice C + split*sc_split (no bias/activation) and
// sum_slices adds the slices in a fixed order: deterministic split-K.
//
// Instantiations gemm_<a><b>_<dtype>: a = 'n' when A is read along k (row-major A, k contiguous),
// 't' when along m; b = 'n' when B is read along n (row-major B), 't' when along k. Choosing the
// contiguous direction keeps every warp's global reads coalesced.
#include "conv_epilogue.cuh"
#include "gemm_tile.cuh"

using namespace fastcnn;

namespace {

template <class T>
struct GemmEpilogue {
  T* c;
  long long scm, scn;
  const T* bias;  // per row m, may be null
  bool accumulate;
  int act;
  T act_param;
  FASTCNN_DEVICE void operator()(long long m, long long n, T v) const {
    T* dst = c + m * scm + n * scn;
    if (accumulate) v += *dst;
    *dst = epi::bias_act(v, bias, m, act, act_param);
  }
};

template <class T, bool A_ALONG_K, bool B_ALONG_K>
__device__ void gemm_body(const T* A, const T* B, T* C, const T* bias, long long M, long long N, long long K,
                          long long sam, long long sak, long long sbk, long long sbn, long long scm, long long scn,
                          long long nb2, long long splits, long long kchunk, long long sa1, long long sa2,
                          long long sb1, long long sb2, long long sc1, long long sc2, long long sc_split,
                          long long sbias1, long long sbias2, long long accumulate, long long act, T act_param,
                          long long vec_a, long long vec_b) {
  using Cfg = tile::RealConfig<T>;
  const tile::TileCoords t = tile::tile_coords<Cfg>(K, splits, kchunk);
  const long long b1 = t.batch / nb2, b2 = t.batch % nb2;
  tile::DenseLoader<T, A_ALONG_K> la{A + b1 * sa1 + b2 * sa2, M, t.ke, sam, sak, vec_a != 0 && sak == 1};
  tile::DenseLoader<T, B_ALONG_K> lb{B + b1 * sb1 + b2 * sb2, N, t.ke, sbn, sbk, vec_b != 0 && sbk == 1};
  GemmEpilogue<T> epi{C + b1 * sc1 + b2 * sc2 + t.split * sc_split, scm, scn,
                      (bias != nullptr && splits == 1) ? bias + b1 * sbias1 + b2 * sbias2 : nullptr,
                      accumulate != 0, splits == 1 ? static_cast<int>(act) : 0, act_param};
  tile::run_tile<Cfg>(la, lb, epi, M, N, t.m0, t.n0, t.kb, t.ke);
}

// out[i] (+)= sum_s src[s * len + i], s = 0 .. splits-1 in order (deterministic split-K reduction;
// accumulate adds to what out holds, for reductions done in several passes).
template <class T>
__device__ void sum_slices_body(const T* src, T* out, long long len, long long splits, long long accumulate) {
  FASTCNN_GRID_LOOP(i, len) {
    T s = accumulate ? out[i] : T(0);
    for (long long k = 0; k < splits; ++k) s += src[k * len + i];
    out[i] = s;
  }
}

// out[k] = sum over n, j of x[(n*K + k)*L + j]: one block per channel, fixed-order tree reduction.
template <class T>
__device__ void channel_sum_body(const T* x, T* out, long long N, long long K, long long L) {
  __shared__ T partial[256];
  const long long k = blockIdx.x;
  T s = T(0);
  for (long long n = 0; n < N; ++n) {
    const T* row = x + (n * K + k) * L;
    for (long long j = threadIdx.x; j < L; j += blockDim.x) s += row[j];
  }
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (static_cast<int>(threadIdx.x) < w) partial[threadIdx.x] += partial[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[k] = partial[0];
}

}  // namespace

#define FASTCNN_GEMM(NAME, T, AK, BK)                                                                           \
  extern "C" __global__ void __launch_bounds__(256) NAME(                                                       \
      const T* A, const T* B, T* C, const T* bias, long long M, long long N, long long K, long long sam,         \
      long long sak, long long sbk, long long sbn, long long scm, long long scn, long long nb2, long long splits, \
      long long kchunk, long long sa1, long long sa2, long long sb1, long long sb2, long long sc1, long long sc2,  \
      long long sc_split, long long sbias1, long long sbias2, long long accumulate, long long act, T act_param,   \
      long long vec_a, long long vec_b) {                                                                        \
    gemm_body<T, AK, BK>(A, B, C, bias, M, N, K, sam, sak, sbk, sbn, scm, scn, nb2, splits, kchunk, sa1, sa2,    \
                         sb1, sb2, sc1, sc2, sc_split, sbias1, sbias2, accumulate, act, act_param, vec_a, vec_b); \
  }

FASTCNN_GEMM(gemm_nn_f32, float, true, false)
FASTCNN_GEMM(gemm_nt_f32, float, true, true)
FASTCNN_GEMM(gemm_tn_f32, float, false, false)
FASTCNN_GEMM(gemm_tt_f32, float, false, true)
FASTCNN_GEMM(gemm_nn_f64, double, true, false)
FASTCNN_GEMM(gemm_nt_f64, double, true, true)
FASTCNN_GEMM(gemm_tn_f64, double, false, false)
FASTCNN_GEMM(gemm_tt_f64, double, false, true)

extern "C" __global__ void sum_slices_f32(const float* src, float* out, long long len, long long splits,
                                          long long accumulate) {
  sum_slices_body(src, out, len, splits, accumulate);
}
extern "C" __global__ void sum_slices_f64(const double* src, double* out, long long len, long long splits,
                                          long long accumulate) {
  sum_slices_body(src, out, len, splits, accumulate);
}
extern "C" __global__ void __launch_bounds__(256) channel_sum_f32(const float* x, float* out, long long N, long long K,
                                                                  long long L) {
  channel_sum_body(x, out, N, K, L);
}
extern "C" __global__ void __launch_bounds__(256) channel_sum_f64(const double* x, double* out, long long N,
                                                                  long long K, long long L) {
  channel_sum_body(x, out, N, K, L);
}
