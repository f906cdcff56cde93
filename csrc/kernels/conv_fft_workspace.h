// Reusable scratch memory for the FFT convolution's spectra (tens of MB per call).
//
// Fresh allocations of that size cost a page fault per 4 KiB on first touch, and the transforms
// walk the spectra with strides of 100+ KiB (one frequency after another), which with 4 KiB pages
// is a TLB miss per access. So each calling thread keeps its buffers between calls (they only
// grow; freed when the thread ends) and asks for transparent huge pages on them.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>

FASTCNN_ISA_NAMESPACE_BEGIN
namespace fft {

class Workspace {
 public:
  static constexpr int kSlots = 4;
  // Uninitialised storage for n elements of S in `slot`, valid until the next call for that slot.
  template <class S>
  static S* get(int slot, size_t n) {
    return static_cast<S*>(instance().slots_[slot].reserve(n * sizeof(S)));
  }

 private:
  struct Slot {
    void* data = nullptr;
    size_t capacity = 0;
    ~Slot() { std::free(data); }
    void* reserve(size_t bytes) {
      if (bytes <= capacity) return data;
      constexpr size_t kHuge = size_t(2) << 20;
      const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
      std::free(data);
      data = std::aligned_alloc(kHuge, rounded);
      if (!data) {
        capacity = 0;
        throw std::bad_alloc();
      }
      capacity = rounded;
      madvise(data, rounded, MADV_HUGEPAGE);  // a hint: fine if refused
      return data;
    }
  };
  Slot slots_[kSlots];
  static Workspace& instance() {
    thread_local Workspace w;
    return w;
  }
};

}  // namespace fft
FASTCNN_ISA_NAMESPACE_END
