#pragma once
// Internal: a per-thread free-list allocator for the small objects a recorded op creates (tensor
// headers, small tensor data, graph nodes). A tiny op allocates several of them; taking them from
// a free list instead of malloc is what keeps a one-element op near 100 ns. Blocks up to
// kPoolMaxBytes come from size classes of 64 bytes; bigger ones from aligned_alloc through a bounded
// per-thread cache of freed blocks (pool.cpp). A block freed on another thread joins that thread's
// list or cache (memory is never lost, only moved). A thread's lists are bounded: past
// kPoolListBytes of blocks of a class, half of them go to a shared list that every thread refills
// from before it cuts a new slab, and so do all of them when the thread ends. (Without that, a
// thread that frees what another allocates, or threads that come and go, held blocks nobody could
// reuse.)
//
// The common case (a block of a class whose list is not empty) is inline: a few instructions.
#include <cstddef>
#include <cstdint>

namespace chainrule::detail {

inline constexpr std::size_t kPoolMaxBytes = 1024;
inline constexpr std::size_t kPoolClass = 64;

inline constexpr std::size_t kPoolClasses = kPoolMaxBytes / kPoolClass;
inline constexpr std::size_t kPoolListBytes = std::size_t(1) << 20;  // per class and thread

struct PoolBlock {
  PoolBlock* next;
};
// This thread's free lists, one per size class (constant-initialised: no guard on access).
struct PoolLists {
  PoolBlock* heads[kPoolClasses];
  // Blocks each list may still take before pool_spill runs (0 on a thread that has not used it:
  // its first free runs pool_spill, which sets it).
  uint32_t room[kPoolClasses];
};
extern thread_local constinit PoolLists pool_lists;

void* pool_allocate_slow(std::size_t bytes);              // refills a list, or a big block
void pool_free_big(void* p, std::size_t bytes) noexcept;  // blocks above kPoolMaxBytes
void pool_spill(std::size_t c) noexcept;                  // see pool_free
std::size_t pool_slabs();                                 // slabs cut so far (for tests)
// pool_allocate and pool_free, out of line, for the tests: GCC 12's -fsanitize=undefined reports
// a null store when it inlines the small-block path into a test's thread lambda (the address,
// %fs-relative, is valid; the library's own inlined uses do not trip it).
void* pool_allocate_out_of_line(std::size_t bytes);
void pool_free_out_of_line(void* p, std::size_t bytes) noexcept;

inline std::size_t pool_class(std::size_t bytes) { return bytes == 0 ? 0 : (bytes - 1) / kPoolClass; }

// 64-byte aligned.
inline void* pool_allocate(std::size_t bytes) {
  if (bytes <= kPoolMaxBytes) {
    const std::size_t c = pool_class(bytes);
    PoolBlock*& head = pool_lists.heads[c];
    if (PoolBlock* b = head) {
      head = b->next;
      ++pool_lists.room[c];
      return b;
    }
  }
  return pool_allocate_slow(bytes);
}

// `bytes` as passed to pool_allocate.
inline void pool_free(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  if (bytes > kPoolMaxBytes) return pool_free_big(p, bytes);
  const std::size_t c = pool_class(bytes);
  PoolBlock*& head = pool_lists.heads[c];
  auto* b = static_cast<PoolBlock*>(p);
  b->next = head;
  head = b;
  if (pool_lists.room[c]-- == 0) [[unlikely]] pool_spill(c);
}

// Base for classes whose objects come from the pool.
struct Pooled {
  static void* operator new(std::size_t bytes) { return pool_allocate(bytes); }
  static void operator delete(void* p, std::size_t bytes) noexcept { pool_free(p, bytes); }
};

}  // namespace chainrule::detail
