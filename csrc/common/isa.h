// Run-time choice between the three compiled copies of every kernel file (csrc/kernels/*.cpp).
//
// setup.py compiles each kernel file three times with -DFASTCNN_ISA=avx512 / avx2 / generic and the
// matching -m flags, so the same source lands in namespaces fastcnn::avx512, fastcnn::avx2 and
// fastcnn::generic. A kernel family exposes one table of function pointers per copy; host code asks
// for the table of the active ISA with FASTCNN_ISA_TABLE's getter.
#pragma once
#include <string>

namespace fastcnn {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

// Best ISA this CPU supports (cpuid), capped by env FASTCNN_ISA or set_isa() (used by tests to
// exercise the fallbacks on an AVX-512 machine).
Isa active_isa();
Isa best_supported_isa();
void set_isa(Isa isa);  // throws std::invalid_argument if the CPU lacks it
const char* isa_name(Isa isa);
Isa isa_from_name(const std::string& name);

// True where a 512-bit FMA issues at half the rate of a 256-bit one (AMD Zen 4 runs each as two
// 256-bit halves): there the AVX2 copy of a kernel whose 16-lane vectors would sit half empty does
// the same work in about half the time (csrc/kernels/conv_direct_blocks.h narrow_copy_pays).
// Measured once, at first use, by timing one thread's FMA chains at both widths (well under 1 ms);
// env FASTCNN_HALF_RATE_ZMM=0/1 or set_half_rate_zmm() decides instead. False without AVX-512.
bool half_rate_zmm();
void set_half_rate_zmm(bool half_rate);

}  // namespace fastcnn

// Declares Type getter() in each ISA namespace and a dispatching fastcnn::getter().
#define FASTCNN_ISA_TABLE(Type, getter)                                  \
  namespace fastcnn {                                                    \
  namespace avx512 { const Type& getter(); }                             \
  namespace avx2 { const Type& getter(); }                               \
  namespace generic { const Type& getter(); }                            \
  inline const Type& getter() {                                          \
    switch (active_isa()) {                                              \
      case Isa::avx512: return avx512::getter();                         \
      case Isa::avx2: return avx2::getter();                             \
      default: return generic::getter();                                \
    }                                                                    \
  }                                                                      \
  }

// The ISA inline namespace (FASTCNN_ISA_INLINE_BEGIN/END): shared with the CUDA sources, which
// cannot include this file (NVRTC has no <string>); fastcnn/kernels/shared/ is on both include paths.
#include "isa_inline.cuh"

// Inside a kernel file: the namespace of the copy being compiled.
#ifdef FASTCNN_ISA
#define FASTCNN_ISA_NAMESPACE_BEGIN namespace fastcnn { namespace FASTCNN_ISA {
#define FASTCNN_ISA_NAMESPACE_END } }
#endif
