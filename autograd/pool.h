#pragma once
// Internal: a per-thread free-list allocator for the small objects a recorded op creates (tensor
// headers, small tensor data, graph nodes). A tiny op allocates several of them; taking them from
// a free list instead of malloc is what keeps a one-element op near 100 ns. Blocks up to
// kPoolMaxBytes come from size classes of 64 bytes; bigger ones go to aligned_alloc. A block freed on
// another thread joins that thread's list (memory is never lost, only moved).
#include <cstddef>

namespace chainrule::detail {

inline constexpr std::size_t kPoolMaxBytes = 1024;

void* pool_allocate(std::size_t bytes);              // 64-byte aligned
void pool_free(void* p, std::size_t bytes) noexcept;  // `bytes` as passed to pool_allocate

// Base for classes whose objects come from the pool.
struct Pooled {
  static void* operator new(std::size_t bytes) { return pool_allocate(bytes); }
  static void operator delete(void* p, std::size_t bytes) noexcept { pool_free(p, bytes); }
};

}  // namespace chainrule::detail
