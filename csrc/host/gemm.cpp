// fastcnn._C.gemm: the GEMM engine (csrc/kernels/gemm.cpp) for Python, and the plain C++ entries
// fastcnn::gemm_f32 / gemm_f64 for other host code.
#include "kernels/gemm.h"

#include "common/module.h"
#include <utility>

#include "common/threads.h"

namespace fastcnn {

void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads) {
  gemm_kernels().f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
}

void gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
              int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc, int threads) {
  gemm_kernels().f64(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
}

namespace {

void gemm_py(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, std::uintptr_t a, int64_t lda,
             std::uintptr_t b, int64_t ldb, double beta, std::uintptr_t c, int64_t ldc, int dtype) {
  dispatch_float(static_cast<Dtype>(dtype), [&](auto t) {
    using T = decltype(t);
    if constexpr (sizeof(T) == 4)
      gemm_f32(trans_a, trans_b, M, N, K, float(alpha), as_ptr<const float>(a), lda, as_ptr<const float>(b), ldb,
               float(beta), as_ptr<float>(c), ldc);
    else
      gemm_f64(trans_a, trans_b, M, N, K, alpha, as_ptr<const double>(a), lda, as_ptr<const double>(b), ldb, beta,
               as_ptr<double>(c), ldc);
  });
}

}  // namespace
}  // namespace fastcnn

FASTCNN_BIND(gemm) {
  namespace py = pybind11;
  m.def("gemm", &fastcnn::gemm_py, FASTCNN_NOGIL,
        "C = alpha * op(A) @ op(B) + beta * C on row-major matrices given by address and row stride;\n"
        "dtype: 0 = float32, 1 = float64 (fastcnn.backends.cpu._lib.DTYPE_CODE).");
  m.def("micro_tile", [] { return std::make_pair(fastcnn::gemm_kernels().mr, fastcnn::gemm_kernels().nr); },
        "MR, NR of the active ISA's float micro-kernel.");
}
