// Transparent huge pages for fresh output buffers (the Python kernel path's through
// csrc/host/memory.cpp, the output pool's blocks in csrc/torchops/output_pool.cpp).
//
// A buffer just allocated for a large output is untouched virtual memory: the first write to each
// 4 KiB page takes a page fault, and for an out-of-place memory-bound op those faults, not the
// arithmetic or the bandwidth, dominate (a 64 MB relu: about 20 of 25 ms here). Where the kernel's
// transparent-huge-page policy is "madvise" (the common default), advising the buffer's 2 MiB-aligned
// interior as MADV_HUGEPAGE before it is written makes one fault per 2 MiB. Advising memory that is
// already populated or that the kernel cannot back with huge pages is harmless, so a refusal is
// reported, never raised.
#pragma once
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastcnn {

constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;

// Advises the whole huge pages inside [address, address + bytes); true when the kernel accepted the
// advice for at least one.
inline bool advise_huge_pages(std::uintptr_t address, std::uint64_t bytes) {
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

}  // namespace fastcnn
