#pragma once
// Shape: the dimensions of a tensor, row-major, up to kMaxDims, stored inline (no heap allocation).
// Every Shape holds dimensions >= 0 whose product (a 0 counted as 1) fits in int64, however it is
// built or changed: the constructors, push_back and set throw std::invalid_argument otherwise, so
// numel() and strides never overflow.
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace chainrule {

inline constexpr int kMaxDims = 8;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);  // NOLINT(google-explicit-constructor)
  explicit Shape(std::span<const int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims) : Shape(std::span<const int64_t>(dims)) {}

  int size() const { return n_; }  // number of dimensions
  int64_t operator[](int i) const { return d_[i]; }
  // Sets dimension i (< size()) to d; throws std::invalid_argument for a negative d, as the
  // constructors and push_back do, so that no Shape holds one (a tensor of it would be sized wrong).
  void set(int i, int64_t d);
  const int64_t* begin() const { return d_; }
  const int64_t* end() const { return d_ + n_; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < n_; ++i) n *= d_[i];
    return n;
  }
  std::vector<int64_t> to_vector() const { return {begin(), end()}; }
  void push_back(int64_t d);
  bool operator==(const Shape& o) const {
    if (n_ != o.n_) return false;
    for (int i = 0; i < n_; ++i)
      if (d_[i] != o.d_[i]) return false;
    return true;
  }
  std::string str() const;  // "[2, 3]"

 private:
  int64_t d_[kMaxDims] = {};
  int n_ = 0;
};

// NumPy broadcasting of two shapes; throws std::invalid_argument naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Row-major strides of a contiguous tensor of this shape.
void contiguous_strides(const Shape& s, int64_t* strides);
// Normalises a possibly negative dim against `ndim`; throws std::out_of_range naming `op`.
int normalize_dim(int64_t dim, int ndim, const char* op);
// The same, except that a 0-d tensor takes dim 0 and -1 (returned as 0), as PyTorch's reductions
// and transpose do: there is nothing to reduce or to swap.
int normalize_dim_or_scalar(int64_t dim, int ndim, const char* op);

}  // namespace chainrule
