#include "common/threads.h"

#include <atomic>

namespace fastcnn {
namespace {
std::atomic<int> g_threads{1};
}
int num_threads() { return g_threads.load(std::memory_order_relaxed); }
void set_num_threads(int n) { g_threads.store(n < 1 ? 1 : n, std::memory_order_relaxed); }
}  // namespace fastcnn
