#pragma once
// Internal: a vector that keeps its first N elements inline (no heap allocation for the common
// one- and two-input ops), moving them to the heap beyond that. Elements are contiguous either
// way, so indexing and iteration are plain pointer arithmetic, and the inline slots stay
// unconstructed until used (a node's edges cost nothing before they are recorded).
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace chainrule::detail {

template <class T, std::size_t N>
class SmallVector {
 public:
  SmallVector() = default;
  SmallVector(const SmallVector&) = delete;
  SmallVector& operator=(const SmallVector&) = delete;
  ~SmallVector() {
    std::destroy_n(data_, size_);
    if (!is_inline()) std::allocator<T>().deallocate(data_, heap_capacity());
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t capacity() const { return is_inline() ? N : heap_capacity(); }
  void reserve(std::size_t n) {
    if (n <= capacity()) return;
    T* bigger = std::allocator<T>().allocate(n);
    std::uninitialized_move_n(data_, size_, bigger);
    std::destroy_n(data_, size_);
    if (!is_inline()) std::allocator<T>().deallocate(data_, heap_capacity());
    data_ = bigger;
    ::new (static_cast<void*>(inline_)) std::size_t(n);  // the inline slots are free from here on
  }
  // An element built in place from `args` (none: a default element for the caller to fill).
  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == capacity()) grow();
    T* slot = ::new (static_cast<void*>(data_ + size_)) T(std::forward<Args>(args)...);
    ++size_;
    return *slot;
  }
  void push_back(T v) { emplace_back() = std::move(v); }
  // emplace_back where the caller knows there is room (size() < capacity()): no test, no growth.
  template <class... Args>
  T& emplace_back_in_capacity(Args&&... args) {
    T* slot = ::new (static_cast<void*>(data_ + size_)) T(std::forward<Args>(args)...);
    ++size_;
    return *slot;
  }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  T* inline_data() { return reinterpret_cast<T*>(inline_); }
  bool is_inline() const { return data_ == reinterpret_cast<const T*>(inline_); }
  // Once the elements live on the heap, the unused inline slots hold the heap block's capacity:
  // a graph node (whose edges are one SmallVector) is a word smaller than with a capacity field.
  std::size_t heap_capacity() const { return *std::launder(reinterpret_cast<const std::size_t*>(inline_)); }
  // Out of line, so that emplace_back stays small enough to inline.
  [[gnu::noinline]] void grow() { reserve(2 * capacity()); }

  static_assert(N * sizeof(T) >= sizeof(std::size_t) && alignof(T) >= alignof(std::size_t));
  alignas(T) unsigned char inline_[N * sizeof(T)];
  T* data_ = inline_data();
  std::size_t size_ = 0;
};

}  // namespace chainrule::detail
