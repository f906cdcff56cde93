// Softmax kernels: the per-ISA table. x viewed as [outer, D, inner], contiguous; softmax over D.
#pragma once
#include <cstdint>

#include "common/isa.h"
#include "kernels/dtype_tables.h"

namespace fastcnn {

template <class T>
struct SoftmaxFns {
  // y = softmax(x) or log_softmax(x) over D.
  void (*forward)(const T* x, T* y, int64_t outer, int64_t D, int64_t inner, bool log);
  // softmax: gx = y * (gy - sum_D gy*y); log_softmax: gx = gy - exp(y) * sum_D gy. y is the forward output.
  void (*backward)(const T* gy, const T* y, T* gx, int64_t outer, int64_t D, int64_t inner, bool log);
};

using SoftmaxKernels = DtypeTables<SoftmaxFns>;

template <class T>
inline const SoftmaxFns<T>& pick(const SoftmaxKernels& k) { return k.template get<T>(); }

}  // namespace fastcnn

FASTCNN_ISA_TABLE(SoftmaxKernels, softmax_kernels)
