// The eager ops' output pool (output_pool.h): blocks by exact page-rounded size, handed back by the
// storage's deleter when the last tensor on it dies.
#include "torchops/output_pool.h"

#include <ATen/EmptyTensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace fastcnn::eager {
namespace {

constexpr std::size_t kPage = 4096;

struct Block {
  void* data;
  std::size_t bytes;
};

std::size_t limit_from_env() {
  const char* mb = std::getenv("FASTCNN_OUTPUT_CACHE_MB");
  const double v = mb ? std::atof(mb) : 1024.0;
  return v > 0 ? static_cast<std::size_t>(v * double(1 << 20)) : 0;
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
      for (auto& [bytes, blocks] : free_) drop.insert(drop.end(), blocks.begin(), blocks.end());
      free_.clear();
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
    Block* b = it->second.back();
    it->second.pop_back();
    free_bytes_ -= bytes;
    return b;
  }

  // Eager ops take tensors below 4 MiB (fastcnn/ops/_eager.py SMALL_BYTES), so a block spans at most
  // one whole 2 MiB huge page: not advised, as the Python path's larger outputs are.
  static Block* fresh(std::size_t bytes) {
    void* data = nullptr;
    TORCH_CHECK(posix_memalign(&data, 64, bytes) == 0 && data != nullptr,
                "fastcnn output pool: out of memory allocating ", bytes, " bytes");
    return new Block{data, bytes};
  }

  static void destroy(Block* b) {
    std::free(b->data);
    delete b;
  }

  static void give_back(void* ctx);

  void put(Block* b) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_bytes_ + b->bytes <= limit_) {
        free_[b->bytes].push_back(b);
        free_bytes_ += b->bytes;
        return;
      }
    }
    destroy(b);
  }

  const std::size_t limit_ = limit_from_env();
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<Block*>> free_;
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

}  // namespace fastcnn::eager

// For fastcnn.empty_cache() and the tests (no tensor arguments: registered as catch-all functions).
TORCH_LIBRARY_FRAGMENT(fastcnn_eager, m) {
  m.def("output_pool_release() -> int", &fastcnn::eager::output_pool_release);
  m.def("output_pool_free_bytes() -> int", &fastcnn::eager::output_pool_free_bytes);
}
