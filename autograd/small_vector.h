#pragma once
// Internal: a vector that keeps its first N elements inline (no heap allocation for the common
// one- and two-input ops), spilling to the heap beyond that.
#include <cstddef>
#include <utility>
#include <vector>

namespace chainrule::detail {

template <class T, std::size_t N>
class SmallVector {
 public:
  SmallVector() = default;
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void reserve(std::size_t n) {
    if (n > N) extra_.reserve(n - N);
  }
  // A default element appended in place, to be filled by the caller.
  T& emplace_back() {
    if (size_ < N) return inline_[size_++];
    ++size_;
    return extra_.emplace_back();
  }
  void push_back(T v) {
    if (size_ < N) inline_[size_] = std::move(v);
    else extra_.push_back(std::move(v));
    ++size_;
  }
  T& operator[](std::size_t i) { return i < N ? inline_[i] : extra_[i - N]; }
  const T& operator[](std::size_t i) const { return i < N ? inline_[i] : extra_[i - N]; }

  template <class V, class Ref>
  class Iter {
   public:
    Iter(V* v, std::size_t i) : v_(v), i_(i) {}
    Ref operator*() const { return (*v_)[i_]; }
    auto operator->() const { return &(*v_)[i_]; }
    Iter& operator++() { ++i_; return *this; }
    bool operator!=(const Iter& o) const { return i_ != o.i_; }
    bool operator==(const Iter& o) const { return i_ == o.i_; }
   private:
    V* v_;
    std::size_t i_;
  };
  auto begin() { return Iter<SmallVector, T&>(this, 0); }
  auto end() { return Iter<SmallVector, T&>(this, size_); }
  auto begin() const { return Iter<const SmallVector, const T&>(this, 0); }
  auto end() const { return Iter<const SmallVector, const T&>(this, size_); }

 private:
  T inline_[N] = {};
  std::vector<T> extra_;
  std::size_t size_ = 0;
};

}  // namespace chainrule::detail
