#include "autograd/pool.h"

#include <cstdlib>
#include <new>
#include <algorithm>
#include <mutex>
#include <vector>

namespace chainrule::detail {

thread_local constinit PoolLists pool_lists{};

namespace {

// Slabs are never returned to the system: an object may outlive the thread that allocated it, or be
// destroyed during static destruction. They stay reachable from this registry (not a leak).
std::mutex slab_mutex;
std::vector<void*>* slabs = new std::vector<void*>();

// One slab of ~16 KiB per refill, cut into blocks of class c.
void refill(std::size_t c) {
  const std::size_t block = (c + 1) * kPoolClass;
  const std::size_t count = std::max<std::size_t>(4, 16384 / block);
  char* slab = static_cast<char*>(std::aligned_alloc(kPoolClass, block * count));
  if (!slab) throw std::bad_alloc();
  {
    std::lock_guard<std::mutex> lock(slab_mutex);
    slabs->push_back(slab);
  }
  PoolBlock*& head = pool_lists.heads[c];
  for (std::size_t i = 0; i < count; ++i) {
    auto* b = reinterpret_cast<PoolBlock*>(slab + i * block);
    b->next = head;
    head = b;
  }
}

}  // namespace

void* pool_allocate_slow(std::size_t bytes) {
  if (bytes > kPoolMaxBytes) {
    void* p = std::aligned_alloc(kPoolClass, (bytes + kPoolClass - 1) / kPoolClass * kPoolClass);
    if (!p) throw std::bad_alloc();
    return p;
  }
  const std::size_t c = pool_class(bytes);
  if (!pool_lists.heads[c]) refill(c);
  return pool_allocate(bytes);
}

void pool_free_big(void* p, std::size_t) noexcept { std::free(p); }

}  // namespace chainrule::detail
