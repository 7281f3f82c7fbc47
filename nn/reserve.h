#pragma once
// Internal to nn/: room for a count the caller gave (a dataset's size, a permutation's length),
// reserved up front, so that an impossible count is an error naming the function and the count
// instead of a bare std::bad_alloc, or of a loop that grows a vector until the process is killed.
#include <fmt/format.h>

#include <cstddef>
#include <new>
#include <stdexcept>

namespace chainrule::nn::detail {

template <class Vector>
void reserve_for(Vector& v, std::size_t n, const char* what) {
  try {
    v.reserve(n);
  } catch (const std::length_error&) {
    throw std::length_error(fmt::format("{}: {} elements are more than a vector can hold", what, n));
  } catch (const std::bad_alloc&) {
    throw std::length_error(fmt::format("{}: {} elements do not fit in memory", what, n));
  }
}

}  // namespace chainrule::nn::detail
