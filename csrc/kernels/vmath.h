// The vector math of common/simd.h (exp, log, log1p, pow_nonneg) applied to arrays, so that tests can
// hold each ISA copy against the C library over the whole float range (tests/backends/cpu/test_vmath.py).
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {
struct VmathKernels {
  // out[i] = f(in[i]) for f in "exp", "log", "log1p" (kind 0, 1, 2), or in[i]^e for kind 3 (in >= 0).
  void (*apply_f32)(int kind, const float* in, float* out, int64_t n, float e);
  void (*apply_f64)(int kind, const double* in, double* out, int64_t n, double e);
};
}  // namespace fastcnn

FASTCNN_ISA_TABLE(VmathKernels, vmath_kernels)
