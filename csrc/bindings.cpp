// The fastcnn._C extension: one submodule per kernel family (each host file registers its own
// with FASTCNN_BIND), plus the process-wide knobs: threads and the active ISA.
#include <pybind11/stl.h>

#include <utility>
#include <vector>

#include "common/isa.h"
#include "common/module.h"
#include "common/threads.h"

namespace py = pybind11;

namespace fastcnn {
namespace {
std::vector<std::pair<const char*, BindFn>>& registry() {
  static std::vector<std::pair<const char*, BindFn>> r;
  return r;
}
}  // namespace

RegisterBinding::RegisterBinding(const char* family, BindFn fn) { registry().emplace_back(family, fn); }

void bind_all(py::module_& root) {
  for (auto& [family, fn] : registry()) {
    py::module_ sub = root.def_submodule(family);
    fn(sub);
  }
}
}  // namespace fastcnn

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastcnn cpu backend kernels (C++, OpenMP, AVX-512/AVX2 with a portable fallback)";
  m.def("set_num_threads", &fastcnn::set_num_threads, "Threads the kernels use (fastcnn sets it from torch.get_num_threads()).");
  m.def("num_threads", &fastcnn::num_threads);
  m.def("isa", [] { return std::string(fastcnn::isa_name(fastcnn::active_isa())); }, "ISA whose kernel copy is in use.");
  m.def("best_isa", [] { return std::string(fastcnn::isa_name(fastcnn::best_supported_isa())); });
  m.def("set_isa", [](const std::string& name) { fastcnn::set_isa(fastcnn::isa_from_name(name)); },
        "Use the avx512, avx2 or generic copy of every kernel (at most what the CPU supports).");
  m.def("half_rate_zmm", &fastcnn::half_rate_zmm,
        "Whether 512-bit FMAs issue at half the 256-bit rate here (Zen 4), measured at first use.");
  m.def("set_half_rate_zmm", &fastcnn::set_half_rate_zmm,
        "Overrides half_rate_zmm() (tests: run the AVX-512 kernels with and without their AVX2 hand-offs).");
  // Registered once here: pybind11 types are global to the extension, so a family must not define it.
  py::enum_<fastcnn::Dtype>(m, "Dtype").value("float32", fastcnn::Dtype::float32).value("float64", fastcnn::Dtype::float64);
  fastcnn::bind_all(m);
}
