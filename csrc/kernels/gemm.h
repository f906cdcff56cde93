// GEMM engine of the cpu backend: C = alpha * op(A) * op(B) + beta * C on row-major matrices.
//
// op(A) is M x K, op(B) is K x N, C is M x N with row stride ldc. A is stored row-major with row
// stride lda as M x K (trans_a = false) or K x M (trans_a = true); likewise B. beta == 0 never reads
// C (so C may hold garbage or NaN). The transposes cost nothing extra: they only change how the
// packing routines read A and B.
//
// Other kernel files call it through the table of their own ISA copy (`gemm_kernels().f32(...)`
// inside FASTCNN_ISA_NAMESPACE) or, from host code, through fastcnn::gemm_f32 / gemm_f64, which
// pick the active ISA. `threads` is how many threads the call may use (1 inside a parallel region:
// fastcnn::parallel_for does not nest).
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {

template <class T>
using GemmFn = void (*)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                        int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int threads);

struct GemmKernels {
  GemmFn<float> f32;
  GemmFn<double> f64;
  int mr, nr;  // float micro-tile of this ISA copy (for the record / benchmarks)
};

// Picks the active ISA's copy; threads <= 0 means fastcnn::num_threads().
void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads = 0);
void gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
              int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc, int threads = 0);

}  // namespace fastcnn

FASTCNN_ISA_TABLE(GemmKernels, gemm_kernels)
