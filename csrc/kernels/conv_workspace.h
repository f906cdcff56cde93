// Reusable scratch memory of the convolutions: the FFT's spectra and the direct convolution's
// blocked copies of its inputs (tens of MB per call).
//
// Fresh allocations of that size cost a page fault per 4 KiB on first touch, and the FFT transforms
// walk the spectra with strides of 100+ KiB (one frequency after another), which with 4 KiB pages
// is a TLB miss per access. So each calling thread keeps its buffers between calls (they only
// grow; freed when the thread ends) and asks for transparent huge pages on them. Slots: 0-2 the
// FFT's (conv_fft.cpp) and the Winograd convolution's (conv_winograd.cpp), 3-4 the direct
// convolution's (conv_direct_blocks.h).
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

FASTCNN_ISA_NAMESPACE_BEGIN
namespace conv {

class Workspace {
 public:
  static constexpr int kSlots = 5;
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

}  // namespace conv
FASTCNN_ISA_NAMESPACE_END
