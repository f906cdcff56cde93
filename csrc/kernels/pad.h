// 2-D spatial padding (constant, reflect, replicate, circular) of x[P, H, W, K] -> y[P, Ho, Wo, K]:
// K = 1 for NCHW (P = N*C planes), K = C for channels_last (P = N). Output position (i, j) reads
// source (map(i - top, H), map(j - left, W)); constant mode writes `value` outside the source.
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {

enum class PadMode : int { constant = 0, reflect = 1, replicate = 2, circular = 3 };

// Source index of padded index o (output coordinates) along a dimension of n, or -1 (constant pad).
inline int64_t pad_source(int64_t o, int64_t lo, int64_t n, PadMode mode) {
  const int64_t i = o - lo;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::reflect: return i < 0 ? -i : 2 * (n - 1) - i;
    case PadMode::replicate: return i < 0 ? 0 : n - 1;
    case PadMode::circular: return ((i % n) + n) % n;
    default: return -1;
  }
}

template <class T>
struct PadFns {
  void (*forward)(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t K, int64_t top, int64_t bottom,
                  int64_t left, int64_t right, PadMode mode, T value);
  // gx = the sum of gy over the output positions that read each source position; one thread per
  // plane, a fixed order inside it (deterministic).
  void (*backward)(const T* gy, T* gx, int64_t P, int64_t H, int64_t W, int64_t K, int64_t top, int64_t bottom,
                   int64_t left, int64_t right, PadMode mode);
};

struct PadKernels {
  PadFns<float> f32;
  PadFns<double> f64;
};

template <class T>
inline const PadFns<T>& pick(const PadKernels& k) {
  if constexpr (sizeof(T) == 4) return k.f32; else return k.f64;
}

}  // namespace fastcnn

FASTCNN_ISA_TABLE(PadKernels, pad_kernels)
