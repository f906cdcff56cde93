// Dropout kernels: the per-ISA table. The random keep-mask is drawn by torch's generator (Python side).
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {

template <class T>
struct DropoutFns {
  // y[i] = keep[i / group] ? x[i] * scale : 0 for i in [0, n). group = 1: dropout; group = H*W: dropout2d
  // (one keep flag per (n, c) plane). Also the backward, with x = gy.
  void (*masked_scale)(const T* x, const uint8_t* keep, int64_t n, int64_t group, T scale, T* y);
};

struct DropoutKernels {
  DropoutFns<float> f32;
  DropoutFns<double> f64;
};

template <class T>
inline const DropoutFns<T>& pick(const DropoutKernels& k) {
  if constexpr (sizeof(T) == 4) return k.f32; else return k.f64;
}

}  // namespace fastcnn

FASTCNN_ISA_TABLE(DropoutKernels, dropout_kernels)
