// fastcnn._C.memory: huge-page advice for the Python kernel path's fresh outputs (common/huge_pages.h).
#include "common/huge_pages.h"
#include "common/module.h"

namespace fastcnn {

FASTCNN_BIND(memory) {
  m.def("advise_huge_pages", &advise_huge_pages, pybind11::arg("address"), pybind11::arg("bytes"),
        "Advise the 2 MiB-aligned interior of [address, address + bytes) as transparent huge pages.");
}

}  // namespace fastcnn
