// Outputs of fastcnn's cpu ops (the eager ops' and, through the op fastcnn_eager::output_pool_empty,
// the Python kernel path's) from a pool of reused blocks.
//
// torch's CPU allocator hands a large buffer back to the OS when its tensor dies (glibc unmaps it, or
// trims the heap top), so the next output of that size page-faults every 4 KiB page in again. On
// these VMs a fault costs about 0.9 us: a 2.4 MB activation output took 680 us in a training step,
// 500 us of them faults, against 180 us when its buffer was warm. A training step allocates the same
// sizes every step, so an output's block is kept when its tensor dies and handed to the next output
// of that size, as a GPU caching allocator does. Blocks below kPoolMinBytes come from torch: glibc
// serves those from its heap, which stays resident, and pooling them only spread a step over more
// distinct memory (dcgan_discriminator's step at 2 threads: 3.30-3.38 ms unpooled, 3.60-3.73 ms with
// a 64 KiB threshold, 3.22-3.39 ms with 2 MiB; docs/performance.md). A tensor or view still holding a
// block keeps it out of the pool. Blocks of 4 MiB and more are 2 MiB aligned and advised as
// transparent huge pages (FASTCNN_HUGE_PAGES=0: not advised).
//
// FASTCNN_OUTPUT_CACHE_MB (default 1024; 0 turns pooling off) caps the free bytes kept; beyond it
// the blocks freed longest ago go back to the OS first. fastcnn.empty_cache() releases every free block.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace fastcnn::eager {

constexpr std::size_t kPoolMinBytes = std::size_t{2} << 20;  // 2 MiB

// at::empty(sizes, options.memory_format(format)) for an eager op's output (CPU).
at::Tensor output_empty(at::IntArrayRef sizes, const at::TensorOptions& options,
                        at::MemoryFormat format = at::MemoryFormat::Contiguous);

// at::empty_strided(t.sizes(), t.strides(), t.options()): an output laid out exactly as t.
at::Tensor output_empty_as(const at::Tensor& t);

}  // namespace fastcnn::eager
