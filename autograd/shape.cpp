#include "autograd/shape.h"

#include <fmt/format.h>

#include <stdexcept>

namespace chainrule {

namespace {
// Every way of making or changing a Shape passes its dimensions through here.
int64_t checked_dim(int64_t d) {
  if (d < 0) throw std::invalid_argument(fmt::format("Shape: negative dimension {}", d));
  return d;
}

// The product of the dimensions, a 0 counted as 1, must fit in int64: numel() and every stride
// (a product of trailing dimensions, also of a shape with a 0 elsewhere) are computed without
// overflow checks, so a shape such as [2^32, 2^32] would otherwise wrap to a small or zero count
// and size its tensor wrong.
void check_count(const int64_t* d, int n) {
  int64_t count = 1;
  for (int i = 0; i < n; ++i)
    if (d[i] > 1 && __builtin_mul_overflow(count, d[i], &count))
      throw std::invalid_argument(fmt::format(
          "Shape: [{}] is too large: the product of its nonzero dimensions exceeds 2^63 - 1 elements",
          fmt::join(d, d + n, ", ")));
}
}  // namespace

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::span<const int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const int64_t> dims) {
  if (dims.size() > static_cast<size_t>(kMaxDims))
    throw std::invalid_argument(fmt::format("Shape: {} dimensions given, at most {} are supported",
                                            dims.size(), kMaxDims));
  for (int64_t d : dims) d_[n_++] = checked_dim(d);
  check_count(d_, n_);
}

void Shape::push_back(int64_t d) {
  if (n_ == kMaxDims)
    throw std::invalid_argument(fmt::format("Shape: at most {} dimensions are supported", kMaxDims));
  d_[n_] = checked_dim(d);
  check_count(d_, n_ + 1);
  ++n_;
}

void Shape::set(int i, int64_t d) {
  if (i < 0 || i >= n_)
    throw std::out_of_range(fmt::format("Shape::set: dimension {} of a {}-dimensional shape", i, n_));
  const int64_t old = d_[i];
  d_[i] = checked_dim(d);
  try {
    check_count(d_, n_);
  } catch (...) {
    d_[i] = old;  // a refused set leaves the shape as it was
    throw;
  }
}

std::string Shape::str() const { return fmt::format("[{}]", fmt::join(begin(), end(), ", ")); }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  if (a == b) return a;
  const int n = std::max(a.size(), b.size());
  std::vector<int64_t> out(n);
  for (int i = 0; i < n; ++i) {
    const int ia = a.size() - n + i, ib = b.size() - n + i;
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      throw std::invalid_argument(fmt::format(
          "{}: shapes {} and {} cannot be broadcast together (dimension {} from the right: {} vs {})",
          op, a.str(), b.str(), n - i, da, db));
    out[i] = da == 1 ? db : da;
  }
  try {
    return Shape(out);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(
        fmt::format("{}: shapes {} and {} broadcast to a shape that is too large ({})", op, a.str(), b.str(), e.what()));
  }
}

void contiguous_strides(const Shape& s, int64_t* strides) {
  int64_t st = 1;
  for (int i = s.size() - 1; i >= 0; --i) {
    strides[i] = st;
    st *= s[i];
  }
}

int normalize_dim(int64_t dim, int ndim, const char* op) {
  const int64_t d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim)
    throw std::out_of_range(fmt::format("{}: dim {} is out of range for a tensor with {} dimensions", op,
                                        dim, ndim));
  return static_cast<int>(d);
}

int normalize_dim_or_scalar(int64_t dim, int ndim, const char* op) {
  if (ndim == 0 && (dim == 0 || dim == -1)) return 0;
  return normalize_dim(dim, ndim, op);
}

}  // namespace chainrule
