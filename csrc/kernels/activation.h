// Activation kernels: element-wise forward/backward for every Act kind, PReLU and Maxout.
// Tensors are viewed as (outer, C, inner) where a channel matters (PReLU, Maxout).
#pragma once
#include <cstdint>

#include "common/activation_math.h"
#include "common/isa.h"
#include "kernels/dtype_tables.h"

namespace fastcnn {

template <class T>
struct ActivationTable {
  // y = f(x) over n elements (y may equal x: in place).
  void (*forward)(Act kind, const T* x, T* y, int64_t n, T p0, T p1);
  // gx = gy * f'(.) from the saved output (from_output) or input; gx may equal gy.
  void (*backward)(Act kind, const T* gy, const T* saved, T* gx, int64_t n, bool from_output, T p0, T p1);
  // y[o,c,i] = x > 0 ? x : w[c % nw] * x, with nw = 1 (shared slope) or C.
  void (*prelu_forward)(const T* x, const T* w, T* y, int64_t outer, int64_t C, int64_t inner, int64_t nw);
  // gx and gw[nw] (overwritten) from gy.
  void (*prelu_backward)(const T* gy, const T* x, const T* w, T* gx, T* gw, int64_t outer, int64_t C,
                         int64_t inner, int64_t nw);
  // y[o,j,i] = max_{p<k} x[o, j*k+p, i]; NaN propagates; the first maximum wins the gradient.
  void (*maxout_forward)(const T* x, T* y, int64_t outer, int64_t cout, int64_t k, int64_t inner);
  void (*maxout_backward)(const T* gy, const T* x, T* gx, int64_t outer, int64_t cout, int64_t k, int64_t inner);
};

using ActivationKernels = DtypeTables<ActivationTable>;

}  // namespace fastcnn

FASTCNN_ISA_TABLE(ActivationKernels, activation_kernels)
