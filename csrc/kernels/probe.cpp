#include "kernels/probe.h"

#include <algorithm>
#include <chrono>

#include "common/simd.h"
#include "common/threads.h"

FASTCNN_ISA_NAMESPACE_BEGIN
namespace {
using V = simd::Vec<float>;
constexpr int kChains = 12;  // independent accumulators: covers FMA latency x 2 pipes

// One thread's FMA chains; returns the FLOPs done.
double fma_chains(int64_t iterations) {
  V acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = V::set1(0.001f * float(c + 1));
  const V a = V::set1(0.999999f), b = V::set1(1e-7f);
  for (int64_t it = 0; it < iterations; ++it)
    for (int c = 0; c < kChains; ++c) acc[c] = fmadd(acc[c], a, b);
  V sum = V::zero();
  for (int c = 0; c < kChains; ++c) sum = sum + acc[c];
  volatile float sink = reduce_add(sum);  // keeps the chains alive
  (void)sink;
  return 2.0 * kChains * V::N * double(iterations);
}

double fma_loop(int64_t iterations) {
  const int nt = num_threads();
  double total = 0;
#pragma omp parallel num_threads(nt) reduction(+ : total)
  total += fma_chains(iterations);
  return total;
}

double fma_rate(int64_t iterations) {
  using Clock = std::chrono::steady_clock;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {  // the best of five: an interrupt only lowers a timing's rate
    const auto t0 = Clock::now();
    const double flops = fma_chains(iterations);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (seconds > 0) best = std::max(best, flops / seconds);
  }
  return best;
}

void copy(const float* src, float* dst, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    int64_t i = b;
    for (; i + V::N <= e; i += V::N) V::load(src + i).store(dst + i);
    if (i < e) V::load(src + i, int(e - i)).store(dst + i, int(e - i));
  });
}
}  // namespace

const ProbeKernels& probe_kernels() {
  static const ProbeKernels t{&fma_loop, &fma_rate, &copy};
  return t;
}
FASTCNN_ISA_NAMESPACE_END
