// The eager ops' output pool (output_pool.h): blocks by exact page-rounded size, handed back by the
// storage's deleter when the last tensor on it dies.
#include "torchops/output_pool.h"

#include "common/huge_pages.h"

#include <ATen/EmptyTensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace fastcnn::eager {
namespace {

constexpr std::size_t kPage = 4096;

struct Block {
  void* data;
  std::size_t bytes;
  std::list<Block*>::iterator age;  // its place in OutputPool::by_age_ while it is free
};

std::size_t limit_from_env() {
  const char* mb = std::getenv("FASTCNN_OUTPUT_CACHE_MB");
  const double v = mb ? std::atof(mb) : 1024.0;
  return v > 0 ? static_cast<std::size_t>(v * double(1 << 20)) : 0;
}

bool huge_pages_from_env() {
  const char* v = std::getenv("FASTCNN_HUGE_PAGES");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

class OutputPool final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t n) override {
    if (n < kPoolMinBytes || limit_ == 0) return c10::GetCPUAllocator()->allocate(n);
    const std::size_t bytes = (n + kPage - 1) / kPage * kPage;
    Block* block = take(bytes);
    if (block == nullptr) block = fresh(bytes);
    return {block->data, block, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    std::memcpy(dest, src, count);
  }

  // Frees every pooled block; returns the bytes given back.
  std::int64_t release() {
    std::vector<Block*> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      drop.assign(by_age_.begin(), by_age_.end());
      free_.clear();
      by_age_.clear();
      free_bytes_ = 0;
    }
    std::int64_t total = 0;
    for (Block* b : drop) total += static_cast<std::int64_t>(b->bytes), destroy(b);
    return total;
  }

  std::int64_t free_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<std::int64_t>(free_bytes_);
  }

 private:
  Block* take(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) return nullptr;
    Block* b = it->second.back();  // the most recently freed of its size: likeliest still in cache
    it->second.pop_back();
    by_age_.erase(b->age);
    free_bytes_ -= bytes;
    return b;
  }

  // 64-byte aligned; a block of 4 MiB and more starts on a 2 MiB boundary and is advised as
  // transparent huge pages (common/huge_pages.h): one fault per 2 MiB on its first use instead of
  // one per 4 KiB, and fewer TLB misses for the kernels that stream it. FASTCNN_HUGE_PAGES=0: no advice.
  Block* fresh(std::size_t bytes) const {
    const bool huge = huge_pages_ && bytes >= 2 * kHugePage;
    void* data = nullptr;
    TORCH_CHECK(posix_memalign(&data, huge ? kHugePage : 64, bytes) == 0 && data != nullptr,
                "fastcnn output pool: out of memory allocating ", bytes, " bytes");
    if (huge) advise_huge_pages(reinterpret_cast<std::uintptr_t>(data), bytes);  // advice only
    return new Block{data, bytes, {}};
  }

  static void destroy(Block* b) {
    std::free(b->data);
    delete b;
  }

  static void give_back(void* ctx);

  // Keeps b for the next output of its size; over the cap, the blocks freed longest ago (likely of
  // sizes no longer asked for: shapes that changed) go back to the OS first.
  void put(Block* b) {
    if (b->bytes > limit_) return destroy(b);
    std::vector<Block*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (free_bytes_ + b->bytes > limit_) {
        Block* old = by_age_.front();
        by_age_.pop_front();
        auto& same = free_[old->bytes];
        same.erase(std::find(same.begin(), same.end(), old));
        free_bytes_ -= old->bytes;
        evicted.push_back(old);
      }
      free_[b->bytes].push_back(b);
      b->age = by_age_.insert(by_age_.end(), b);
      free_bytes_ += b->bytes;
    }
    for (Block* old : evicted) destroy(old);
  }

  const std::size_t limit_ = limit_from_env();
  const bool huge_pages_ = huge_pages_from_env();
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<Block*>> free_;  // free blocks by size
  std::list<Block*> by_age_;                                    // the same blocks, oldest freed first
  std::size_t free_bytes_ = 0;
};

// Never destroyed: tensors on its blocks may die after static destructors have run.
OutputPool& pool() {
  static OutputPool* instance = new OutputPool;
  return *instance;
}

void OutputPool::give_back(void* ctx) { pool().put(static_cast<Block*>(ctx)); }

const c10::DispatchKeySet kCpu{c10::DispatchKey::CPU};

std::int64_t output_pool_release() { return pool().release(); }
std::int64_t output_pool_free_bytes() { return pool().free_bytes(); }

}  // namespace

at::Tensor output_empty(at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat format) {
  const auto dtype = options.dtype().toScalarType();
  if (static_cast<std::size_t>(c10::multiply_integers(sizes)) * c10::elementSize(dtype) < kPoolMinBytes) {
    return at::empty(sizes, options.memory_format(format));
  }
  return at::detail::empty_generic(sizes, &pool(), kCpu, dtype, format);
}

at::Tensor output_empty_as(const at::Tensor& t) {
  if (t.nbytes() < kPoolMinBytes) return at::empty_strided(t.sizes(), t.strides(), t.options());
  return at::detail::empty_strided_generic(t.sizes(), t.strides(), &pool(), kCpu, t.scalar_type());
}

namespace {

// The Python kernel path's outputs (fastcnn/backends/cpu/_lib.py empty()): one pool for both paths.
at::Tensor output_pool_empty(at::IntArrayRef sizes, at::ScalarType dtype, bool channels_last) {
  return output_empty(sizes, at::TensorOptions().dtype(dtype).device(at::kCPU),
                      channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
}

}  // namespace
}  // namespace fastcnn::eager

// For the Python kernel path, fastcnn.empty_cache() and the tests (no tensor arguments: registered as
// catch-all functions).
TORCH_LIBRARY_FRAGMENT(fastcnn_eager, m) {
  m.def("output_pool_empty(int[] sizes, ScalarType dtype, bool channels_last) -> Tensor",
        &fastcnn::eager::output_pool_empty);
  m.def("output_pool_release() -> int", &fastcnn::eager::output_pool_release);
  m.def("output_pool_free_bytes() -> int", &fastcnn::eager::output_pool_free_bytes);
}
