#include "autograd/pool.h"

#include <cstdlib>
#include <new>
#include <algorithm>
#include <mutex>
#include <vector>

namespace chainrule::detail {

namespace {

constexpr std::size_t kClass = 64;
constexpr std::size_t kClasses = kPoolMaxBytes / kClass;

struct FreeBlock {
  FreeBlock* next;
};

// Slabs are never returned to the system: an object may outlive the thread that allocated it, or be
// destroyed during static destruction. They stay reachable from this registry (not a leak).
std::mutex slab_mutex;
std::vector<void*>* slabs = new std::vector<void*>();

struct Pool {
  FreeBlock* heads[kClasses] = {};
  void refill(std::size_t c) {
    // One slab of ~16 KiB per refill, cut into blocks of this class.
    const std::size_t block = (c + 1) * kClass;
    const std::size_t count = std::max<std::size_t>(4, 16384 / block);
    char* slab = static_cast<char*>(std::aligned_alloc(kClass, block * count));
    if (!slab) throw std::bad_alloc();
    {
      std::lock_guard<std::mutex> lock(slab_mutex);
      slabs->push_back(slab);
    }
    for (std::size_t i = 0; i < count; ++i) {
      auto* b = reinterpret_cast<FreeBlock*>(slab + i * block);
      b->next = heads[c];
      heads[c] = b;
    }
  }
};

Pool& pool() {
  static thread_local Pool p;
  return p;
}

std::size_t class_of(std::size_t bytes) { return bytes == 0 ? 0 : (bytes - 1) / kClass; }

}  // namespace

void* pool_allocate(std::size_t bytes) {
  if (bytes > kPoolMaxBytes) {
    void* p = std::aligned_alloc(kClass, (bytes + kClass - 1) / kClass * kClass);
    if (!p) throw std::bad_alloc();
    return p;
  }
  Pool& p = pool();
  const std::size_t c = class_of(bytes);
  if (!p.heads[c]) p.refill(c);
  FreeBlock* b = p.heads[c];
  p.heads[c] = b->next;
  return b;
}

void pool_free(void* ptr, std::size_t bytes) noexcept {
  if (!ptr) return;
  if (bytes > kPoolMaxBytes) {
    std::free(ptr);
    return;
  }
  Pool& p = pool();
  auto* b = static_cast<FreeBlock*>(ptr);
  const std::size_t c = class_of(bytes);
  b->next = p.heads[c];
  p.heads[c] = b;
}

}  // namespace chainrule::detail
