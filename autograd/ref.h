#pragma once
// Ref<T>: a non-atomic intrusive reference-counted pointer. A graph belongs to one thread, so the
// count needs no atomics; T provides `uint32_t refs` and a static `destroy(T*)`, through which graph
// nodes defer their destruction so that dropping a million-op chain never recurses.
#include <cstdint>
#include <utility>

namespace chainrule {

template <class T>
class Ref {
 public:
  Ref() = default;
  explicit Ref(T* p) : p_(p) { if (p_) ++p_->refs; }
  Ref(const Ref& o) : p_(o.p_) { if (p_) ++p_->refs; }
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  template <class U>
  Ref(Ref<U> o) : p_(o.release_raw()) {}  // NOLINT: upcast
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  [[gnu::always_inline]] ~Ref() { reset(); }
  void swap(Ref& o) noexcept { std::swap(p_, o.p_); }

  // Inline everywhere: a handle dropped in a hot path is usually null or not the last one.
  [[gnu::always_inline]] void reset() {
    if (p_ && --p_->refs == 0) T::destroy(p_);
    p_ = nullptr;
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  bool operator==(const Ref& o) const { return p_ == o.p_; }
  // Gives up ownership without decrementing (for upcasts).
  T* release_raw() { return std::exchange(p_, nullptr); }

 private:
  T* p_ = nullptr;
};

}  // namespace chainrule
