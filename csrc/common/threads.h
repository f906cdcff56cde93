// Threading for the cpu backend: OpenMP, with the thread count that Python sets from
// torch.get_num_threads() before every kernel call (fastcnn/backends/cpu/_lib.py).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace fastcnn {

int num_threads();
void set_num_threads(int n);

// Splits [0, n) into contiguous chunks of at least `grain` items, one per thread, and calls
// body(begin, end) for each; runs inline when there is one chunk (no OpenMP region cost) and when
// called from inside a parallel region (OpenMP would give a team of one, and a split computed for
// more threads would leave most of the range undone).
template <class Body>
void parallel_for(int64_t n, int64_t grain, Body&& body) {
  if (n <= 0) return;
  if (omp_in_parallel()) {
    body(int64_t{0}, n);
    return;
  }
  const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), max_chunks));
  if (nt <= 1) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();  // team may be smaller than asked
    const int64_t begin = n * t / team, end = n * (t + 1) / team;
    if (begin < end) body(begin, end);
  }
}

}  // namespace fastcnn
