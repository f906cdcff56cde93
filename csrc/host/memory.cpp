// Huge pages for fresh output buffers.
//
// A buffer torch has just allocated for a large output is untouched virtual memory: the first write
// to each 4 KiB page takes a page fault, and for an out-of-place memory-bound op those faults, not
// the arithmetic or the bandwidth, dominate (a 64 MB relu: about 20 of 25 ms here). Where the
// kernel's transparent-huge-page policy is "madvise" (the common default), advising the buffer's
// 2 MiB-aligned interior as MADV_HUGEPAGE before the kernel writes it makes one fault per 2 MiB.
// Advising memory that is already populated or that the kernel cannot back with huge pages is
// harmless, so a failure is reported but never raised.
#include "common/module.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastcnn {
namespace {

constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;

// Returns true when the kernel accepted the advice for at least one whole huge page.
bool advise_huge_pages(std::uintptr_t address, std::uint64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const std::uintptr_t begin = (address + kHugePage - 1) & ~(kHugePage - 1);
  const std::uintptr_t end = (address + bytes) & ~(kHugePage - 1);
  if (address == 0 || end <= begin) return false;
  return madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0;
#else
  (void)address;
  (void)bytes;
  return false;
#endif
}

}  // namespace

FASTCNN_BIND(memory) {
  m.def("advise_huge_pages", &advise_huge_pages, pybind11::arg("address"), pybind11::arg("bytes"),
        "Advise the 2 MiB-aligned interior of [address, address + bytes) as transparent huge pages.");
}

}  // namespace fastcnn
