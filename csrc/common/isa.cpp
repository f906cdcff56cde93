#include "common/isa.h"

#include "kernels/probe.h"

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

// A 512-bit FMA at under 1.5x the 256-bit FLOP rate runs at half rate (the ratio is ~1 on Zen 4, ~2
// on the Xeons with two 512-bit FMA units).
constexpr double kFullRateRatio = 1.5;
constexpr int64_t kProbeIterations = 20000;  // 240k FMAs per timing: ~0.1 ms at either width

std::atomic<int>& half_rate_state() {
  static std::atomic<int> state{[] {
    if (const char* env = std::getenv("FASTCNN_HALF_RATE_ZMM"); env && *env) return env[0] == '1' ? 1 : 0;
    if (best_supported_isa() != Isa::avx512) return 0;
    const double wide = avx512::probe_kernels().fma_rate(kProbeIterations);
    const double narrow = avx2::probe_kernels().fma_rate(kProbeIterations);
    return wide < kFullRateRatio * narrow ? 1 : 0;
  }()};
  return state;
}

}  // namespace

bool half_rate_zmm() { return half_rate_state().load(std::memory_order_relaxed) != 0; }

void set_half_rate_zmm(bool half_rate) { half_rate_state().store(half_rate ? 1 : 0); }

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
