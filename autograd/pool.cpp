#include "autograd/pool.h"

#include <cstdint>
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

namespace {

// Big blocks: a training step allocates the same large tensors (activations, gradients) every
// time. Freed ones wait in a per-thread cache and are reused by exact size, so a step neither maps
// fresh pages (which the kernel zero-fills) nor returns them. The cache is bounded; beyond the bound
// the oldest blocks go back to the system, so memory stays flat. A block freed on another thread
// joins that thread's cache, as small blocks do. A block not reused within kBigCacheAge later frees
// is stale (a loop that has ended) and goes back too, so that the cache does not keep what an
// earlier computation freed.
// Blocks up to a quarter of the bound are cached: 8 MiB holds a 1024 x 1024 float64 matrix, whose
// product's backward (seed, two gradients) otherwise faulted in ~6,000 fresh pages per call.
constexpr std::size_t kBigCacheBytes = std::size_t(32) << 20;  // per thread
constexpr int kBigCacheSlots = 32;
constexpr uint64_t kBigCacheAge = 64;

struct BigCache {
  void* blocks[kBigCacheSlots];
  std::size_t sizes[kBigCacheSlots];
  uint64_t freed_at[kBigCacheSlots];  // the value of `frees` when the block came in
  int count = 0;           // blocks[0] is the oldest
  std::size_t total = 0;   // bytes held
  uint64_t frees = 0;      // big blocks freed on this thread so far

  void* take(int i) noexcept {
    void* p = blocks[i];
    total -= sizes[i];
    --count;
    std::copy(blocks + i + 1, blocks + 1 + count, blocks + i);
    std::copy(sizes + i + 1, sizes + 1 + count, sizes + i);
    std::copy(freed_at + i + 1, freed_at + 1 + count, freed_at + i);
    return p;
  }
  void drop_oldest() noexcept { std::free(take(0)); }
  ~BigCache();
};
// Set once this thread's cache is destroyed (thread exit, or exit() for the main thread): blocks
// freed afterwards, e.g. by static destructors, go straight to the system.
thread_local constinit bool big_cache_gone = false;
thread_local BigCache big_cache;

BigCache::~BigCache() {
  big_cache_gone = true;
  while (count > 0) drop_oldest();
}

std::size_t big_size(std::size_t bytes) { return (bytes + kPoolClass - 1) / kPoolClass * kPoolClass; }

}  // namespace

void* pool_allocate_slow(std::size_t bytes) {
  if (bytes > kPoolMaxBytes) {
    const std::size_t size = big_size(bytes);
    if (!big_cache_gone) {
      BigCache& cache = big_cache;
      for (int i = cache.count - 1; i >= 0; --i)  // the most recently freed first: warm in cache
        if (cache.sizes[i] == size) return cache.take(i);
    }
    void* p = std::aligned_alloc(kPoolClass, size);
    if (!p) throw std::bad_alloc();
    return p;
  }
  const std::size_t c = pool_class(bytes);
  if (!pool_lists.heads[c]) refill(c);
  return pool_allocate(bytes);
}

void pool_free_big(void* p, std::size_t bytes) noexcept {
  const std::size_t size = big_size(bytes);
  if (big_cache_gone || size > kBigCacheBytes / 4) return std::free(p);
  BigCache& cache = big_cache;
  const uint64_t now = ++cache.frees;
  while (cache.count > 0 && (cache.count == kBigCacheSlots || cache.total + size > kBigCacheBytes ||
                             cache.freed_at[0] + kBigCacheAge < now))
    cache.drop_oldest();
  cache.blocks[cache.count] = p;
  cache.sizes[cache.count] = size;
  cache.freed_at[cache.count] = now;
  ++cache.count;
  cache.total += size;
}

}  // namespace chainrule::detail
