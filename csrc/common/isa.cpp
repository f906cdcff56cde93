#include "common/isa.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace fastcnn {
namespace {

Isa detect() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("fma"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
  return Isa::generic;
}

std::atomic<int>& chosen() {
  static std::atomic<int> isa{[] {
    Isa best = detect();
    if (const char* env = std::getenv("FASTCNN_ISA")) {
      try {
        Isa wanted = isa_from_name(env);
        if (static_cast<int>(wanted) < static_cast<int>(best)) best = wanted;
      } catch (const std::invalid_argument&) {
        // An unknown name leaves the detected ISA in force.
      }
    }
    return static_cast<int>(best);
  }()};
  return isa;
}

}  // namespace

Isa best_supported_isa() {
  static const Isa best = detect();
  return best;
}

Isa active_isa() { return static_cast<Isa>(chosen().load(std::memory_order_relaxed)); }

void set_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(best_supported_isa()))
    throw std::invalid_argument(std::string("isa: this CPU does not support ") + isa_name(isa));
  chosen().store(static_cast<int>(isa));
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

Isa isa_from_name(const std::string& name) {
  if (name == "avx512") return Isa::avx512;
  if (name == "avx2") return Isa::avx2;
  if (name == "generic") return Isa::generic;
  throw std::invalid_argument("isa: expected 'avx512', 'avx2' or 'generic', got '" + name + "'");
}

}  // namespace fastcnn
