// Machine probes for the benchmark harness: the FMA peak and the copy bandwidth this machine
// reaches with fastcnn's own threads and vector width, so reports can show fractions of the limit.
#pragma once
#include <cstdint>

#include "common/isa.h"

namespace fastcnn {
struct ProbeKernels {
  // Runs `iterations` rounds of independent FMA chains per thread; returns the FLOPs done.
  double (*fma_loop)(int64_t iterations);
  // FLOP/s of `iterations` rounds of the same chains on the calling thread alone (best of a few
  // timings): how fast this copy's vector width multiplies (common/isa.cpp compares the widths).
  double (*fma_rate)(int64_t iterations);
  // dst[i] = src[i] for n floats, vectorised and threaded.
  void (*copy)(const float* src, float* dst, int64_t n);
};
}  // namespace fastcnn

FASTCNN_ISA_TABLE(ProbeKernels, probe_kernels)
