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

// Blocks no thread holds: spilled from a thread's full list, or left by a thread that ended.
// Guarded by slab_mutex; never destroyed (a thread may end during static destruction).
PoolLists* shared_lists = new PoolLists{};

// The last block of a chain of at least one.
PoolBlock* tail_of(PoolBlock* b) {
  while (b->next) b = b->next;
  return b;
}

// Moves the chain starting at `first` to the shared list of class c.
void give_to_shared(std::size_t c, PoolBlock* first) noexcept {
  PoolBlock* last = tail_of(first);  // before the lock: the chain is this thread's alone
  std::lock_guard<std::mutex> lock(slab_mutex);
  last->next = shared_lists->heads[c];
  shared_lists->heads[c] = first;
}

// The most blocks a thread's list of class c keeps.
uint32_t list_max(std::size_t c) { return static_cast<uint32_t>(kPoolListBytes / ((c + 1) * kPoolClass)); }

// The blocks in a list (the slow paths only).
uint32_t length(const PoolBlock* b) {
  uint32_t n = 0;
  for (; b; b = b->next) ++n;
  return n;
}

thread_local constinit bool lists_returned = false;  // this thread's ListsReturner has run

// Sets the room of this thread's list of class c from its length.
void set_room(std::size_t c) {
  const uint32_t max = list_max(c);
  pool_lists.room[c] = lists_returned ? 0 : max - std::min(max, length(pool_lists.heads[c]));
}

// Hands a thread's lists to the shared ones when the thread ends.
struct ListsReturner {
  ~ListsReturner();
};
thread_local ListsReturner lists_returner;

ListsReturner::~ListsReturner() {
  lists_returned = true;
  for (std::size_t c = 0; c < kPoolClasses; ++c) {
    if (PoolBlock* first = pool_lists.heads[c]) give_to_shared(c, first);
    pool_lists.heads[c] = nullptr;
    pool_lists.room[c] = 0;  // every later free on this thread runs pool_spill
  }
}

// Makes sure this thread hands its lists back when it ends (constructs its ListsReturner).
void note_thread() { [[maybe_unused]] volatile const void* touch = &lists_returner; }

// Refills an empty list of class c: from the shared list when it has blocks (up to a slab's worth),
// else with one new slab of ~16 KiB.
void refill(std::size_t c) {
  if (!lists_returned) note_thread();
  const std::size_t block = (c + 1) * kPoolClass;
  const std::size_t count = std::max<std::size_t>(4, 16384 / block);
  PoolBlock*& head = pool_lists.heads[c];
  {
    std::lock_guard<std::mutex> lock(slab_mutex);
    if (PoolBlock* first = shared_lists->heads[c]) {
      PoolBlock* last = first;
      for (std::size_t n = 1; n < count && last->next; ++n) last = last->next;
      shared_lists->heads[c] = last->next;
      last->next = head;
      head = first;
      set_room(c);
      return;
    }
  }
  char* slab = static_cast<char*>(std::aligned_alloc(kPoolClass, block * count));
  if (!slab) throw std::bad_alloc();
  {
    std::lock_guard<std::mutex> lock(slab_mutex);
    slabs->push_back(slab);
  }
  for (std::size_t i = 0; i < count; ++i) {
    auto* b = reinterpret_cast<PoolBlock*>(slab + i * block);
    b->next = head;
    head = b;
  }
  set_room(c);
}

}  // namespace

void* pool_allocate_out_of_line(std::size_t bytes) { return pool_allocate(bytes); }
void pool_free_out_of_line(void* p, std::size_t bytes) noexcept { pool_free(p, bytes); }

std::size_t pool_slabs() {
  std::lock_guard<std::mutex> lock(slab_mutex);
  return slabs->size();
}

// A free found no room in its list (pool_free): the block is at the head of the list already.
void pool_spill(std::size_t c) noexcept {
  PoolBlock*& head = pool_lists.heads[c];
  pool_lists.room[c] = 0;
  if (lists_returned) {  // the thread is ending and has handed its lists back: this block goes too
    PoolBlock* b = head;
    head = b->next;
    b->next = nullptr;
    give_to_shared(c, b);
    return;
  }
  note_thread();  // the first free of this class on the thread may come before any refill
  const uint32_t max = list_max(c);
  const uint32_t n = length(head);
  if (n <= max) {  // the first free of the class on this thread
    pool_lists.room[c] = max - n;
    return;
  }
  // Keep the most recently freed half (warm in cache); the rest goes.
  PoolBlock* last_kept = head;
  for (uint32_t i = 1; i < max / 2; ++i) last_kept = last_kept->next;
  PoolBlock* first = last_kept->next;
  last_kept->next = nullptr;
  give_to_shared(c, first);
  pool_lists.room[c] = max - max / 2;
}

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
