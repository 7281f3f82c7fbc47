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
    if (data_ != inline_data()) std::allocator<T>().deallocate(data_, capacity_);
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void reserve(std::size_t n) {
    if (n <= capacity_) return;
    T* bigger = std::allocator<T>().allocate(n);
    std::uninitialized_move_n(data_, size_, bigger);
    std::destroy_n(data_, size_);
    if (data_ != inline_data()) std::allocator<T>().deallocate(data_, capacity_);
    data_ = bigger;
    capacity_ = n;
  }
  // An element built in place from `args` (none: a default element for the caller to fill).
  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == capacity_) grow();
    T* slot = ::new (static_cast<void*>(data_ + size_)) T(std::forward<Args>(args)...);
    ++size_;
    return *slot;
  }
  void push_back(T v) { emplace_back() = std::move(v); }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  T* inline_data() { return reinterpret_cast<T*>(inline_); }
  // Out of line, so that emplace_back stays small enough to inline.
  [[gnu::noinline]] void grow() { reserve(2 * capacity_); }

  alignas(T) unsigned char inline_[N * sizeof(T)];
  T* data_ = inline_data();
  std::size_t size_ = 0;
  std::size_t capacity_ = N;
};

}  // namespace chainrule::detail
