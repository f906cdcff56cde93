// Runs CUDA kernel source on the CPU, for tests on machines without a GPU (tests/cuda_host_emulator.py).
//
// The .cu file is compiled as C++20 after this header: __global__/__device__ vanish, __shared__
// becomes `static` (blocks run one after another, so a block's threads share it), every block runs
// blockDim.x std::threads, and __syncthreads is a std::barrier across them. It executes the very
// kernel source (index math, bounds checks, shared-memory tiling, synchronisation), slowly; it says
// nothing about timing, warps, memory coalescing or compiler-specific behaviour.
#pragma once
#include <barrier>
#include <cmath>
#include <functional>
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
