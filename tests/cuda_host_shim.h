// Runs CUDA kernel source on the CPU, for tests on machines without a GPU (tests/cuda_host_emulator.py).
//
// The .cu file is compiled as C++20 after this header: __global__/__device__ vanish, __shared__
// becomes `static` (blocks run one after another, so a block's threads share it), every block runs
// blockDim.x std::threads, and __syncthreads is a std::barrier across them. It executes the very
// kernel source (index math, bounds checks, shared-memory tiling, synchronisation), slowly; it says
// nothing about timing, warps, memory coalescing or compiler-specific behaviour.
#pragma once
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__
#define __shared__ static
#define __launch_bounds__(n)
#define FASTCNN_DEVICE inline  // common.cuh defines it only for nvcc / NVRTC

struct uint3_ {
  unsigned x = 0, y = 0, z = 0;
};
struct float4 {
  float x, y, z, w;
};
struct double2 {
  double x, y;
};

inline uint3_ blockIdx, blockDim, gridDim;
inline thread_local uint3_ threadIdx;
inline std::barrier<>* fastcnn_emu_barrier = nullptr;

inline void __syncthreads() { fastcnn_emu_barrier->arrive_and_wait(); }

// Warps: threads [32 w, 32 w + 32) of the block. A shuffle writes the lane's value into its warp's
// slots, waits at the warp's barrier, reads the source lane, and waits again before the slots are
// reused. Only full-warp shuffles (every lane of the warp calls them, as mask 0xffffffff demands).
struct fastcnn_emu_warp {
  explicit fastcnn_emu_warp(unsigned n) : lanes(n), bar(n) {}
  unsigned lanes;
  std::barrier<> bar;
  unsigned long long slots[32];
  unsigned mma_a[32][4], mma_b[32][2];  // fastcnn_emu_mma_m16n8k8's operand fragments
};
inline std::vector<std::unique_ptr<fastcnn_emu_warp>>* fastcnn_emu_warps = nullptr;

template <class T>
inline T __shfl_down_sync(unsigned, T v, unsigned delta) {
  static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffle of a type wider than 64 bits");
  fastcnn_emu_warp& w = *(*fastcnn_emu_warps)[threadIdx.x / 32];
  const unsigned lane = threadIdx.x % 32;
  std::memcpy(&w.slots[lane], &v, sizeof(T));
  w.bar.arrive_and_wait();
  T out = v;  // a source lane past the warp's end returns the caller's own value, as CUDA
  if (lane + delta < w.lanes) std::memcpy(&out, &w.slots[lane + delta], sizeof(T));
  w.bar.arrive_and_wait();
  return out;
}

inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline double __longlong_as_double(long long i) {
  double d;
  std::memcpy(&d, &i, sizeof d);
  return d;
}

// The threads of a block run in parallel here, as on the GPU: atomicAdd must be a real atomic
// (std::atomic_ref, floating-point fetch_add in C++20). Returns the old value, as CUDA's.
template <class T>
inline T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}

// cvt.rna.tf32.f32: float32 rounded to 10 mantissa bits, to nearest with ties away from zero (the low
// 13 bits of the result are zero). Finite inputs only (the tests use no inf / NaN).
inline unsigned fastcnn_emu_to_tf32(float x) {
  unsigned u;
  std::memcpy(&u, &x, sizeof u);
  return (u + 0x1000u) & 0xffffe000u;
}

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 d, a, b, d for the calling warp, written from the
// PTX ISA's fragment table (lane = 4 * group + t): A[16][8] row g / g+8, column t / t+4 in registers
// a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); B[8][8] b0 (k=t, n=g), b1 (k=t+4, n=g);
// D[16][8] d0 (g, 2t), d1 (g, 2t+1), d2 (g+8, 2t), d3 (g+8, 2t+1). Every lane of the warp must call it.
inline void fastcnn_emu_mma_m16n8k8(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  fastcnn_emu_warp& w = *(*fastcnn_emu_warps)[threadIdx.x / 32];
  const unsigned lane = threadIdx.x % 32;
  for (int r = 0; r < 4; ++r) w.mma_a[lane][r] = a[r];
  for (int r = 0; r < 2; ++r) w.mma_b[lane][r] = b[r];
  w.bar.arrive_and_wait();
  auto A = [&](int row, int k) { return __uint_as_float(w.mma_a[(row % 8) * 4 + k % 4][(row / 8) + 2 * (k / 4)]); };
  auto B = [&](int k, int col) { return __uint_as_float(w.mma_b[col * 4 + k % 4][k / 4]); };
  const int g = lane / 4, t = lane % 4;
  const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  for (int r = 0; r < 4; ++r) {
    float sum = d[r];
    for (int k = 0; k < 8; ++k) sum = std::fma(A(rows[r], k), B(k, cols[r]), sum);
    d[r] = sum;
  }
  w.bar.arrive_and_wait();  // the fragments stay until every lane has read them
}

using std::cos;
using std::exp;
using std::expm1;
using std::fma;
using std::sin;
using std::tanh;

// Runs body for every thread of every block of a 3-D grid of 1-D blocks.
inline void fastcnn_emu_run(unsigned gx, unsigned gy, unsigned gz, unsigned bx, const std::function<void()>& body) {
  gridDim = {gx, gy, gz};
  blockDim = {bx, 1, 1};
  for (unsigned z = 0; z < gz; ++z)
    for (unsigned y = 0; y < gy; ++y)
      for (unsigned x = 0; x < gx; ++x) {
        blockIdx = {x, y, z};
        std::barrier<> bar(bx);
        fastcnn_emu_barrier = &bar;
        std::vector<std::unique_ptr<fastcnn_emu_warp>> warps;
        for (unsigned w0 = 0; w0 < bx; w0 += 32) warps.push_back(std::make_unique<fastcnn_emu_warp>(bx - w0 < 32 ? bx - w0 : 32));
        fastcnn_emu_warps = &warps;
        std::vector<std::thread> threads;
        threads.reserve(bx);
        for (unsigned t = 0; t < bx; ++t)
          threads.emplace_back([t, &body] {
            threadIdx = {t, 0, 0};
            body();
          });
        for (auto& th : threads) th.join();
      }
}
