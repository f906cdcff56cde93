// fastcnn._C.probe: the machine probes the benchmark harness runs (see kernels/probe.h).
#include "common/module.h"
#include "kernels/probe.h"

FASTCNN_BIND(probe) {
  using namespace fastcnn;
  m.def("fma_loop", [](int64_t iterations) { return probe_kernels().fma_loop(iterations); }, FASTCNN_NOGIL,
        "FLOPs done by a vector FMA loop on every thread (time it to get the FMA peak).");
  m.def("copy", [](std::uintptr_t src, std::uintptr_t dst, int64_t n) {
        probe_kernels().copy(as_ptr<const float>(src), as_ptr<float>(dst), n); }, FASTCNN_NOGIL,
        "Copies n floats (time it to get the copy bandwidth).");
}
