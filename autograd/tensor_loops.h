#pragma once
// Internal: what the Tensor kernels share besides the graph (autograd/tensor_impl.h): the
// broadcast element loop, and the dispatch from a DType to the element type it stores.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "autograd/shape.h"
#include "autograd/tensor.h"

namespace chainrule::detail {

// Element loops shared by the kernels: calls f(out_index, a_index, b_index) over the broadcast
// shape `out` for inputs of shapes a and b.
template <class F>
void for_each_broadcast(const Shape& out, const Shape& a, const Shape& b, F&& f) {
  const int n = out.size();
  int64_t sa[kMaxDims] = {}, sb[kMaxDims] = {};
  {
    int64_t st = 1;
    for (int i = a.size() - 1; i >= 0; --i) { sa[n - a.size() + i] = a[i] == 1 ? 0 : st; st *= a[i]; }
    st = 1;
    for (int i = b.size() - 1; i >= 0; --i) { sb[n - b.size() + i] = b[i] == 1 ? 0 : st; st *= b[i]; }
  }
  const int64_t total = out.numel();
  if (total == 0) return;
  if (n == 0) return f(int64_t{0}, int64_t{0}, int64_t{0});
  // The innermost dim is a plain loop, with the strides of the usual rows (an operand read along
  // the row, or one value of it for the whole row) as constants, so that the compiler vectorises
  // them; an odometer over the outer dims moves from row to row.
  const int64_t row = out[n - 1], ra = sa[n - 1], rb = sb[n - 1];
  int64_t idx[kMaxDims] = {};
  int64_t ia = 0, ib = 0;
  for (int64_t o = 0; o < total; o += row) {
    if (ra == 1 && rb == 1)
      for (int64_t j = 0; j < row; ++j) f(o + j, ia + j, ib + j);
    else if (ra == 1 && rb == 0)
      for (int64_t j = 0; j < row; ++j) f(o + j, ia + j, ib);
    else if (ra == 0 && rb == 1)
      for (int64_t j = 0; j < row; ++j) f(o + j, ia, ib + j);
    else
      for (int64_t j = 0; j < row; ++j) f(o + j, ia + j * ra, ib + j * rb);
    for (int d = n - 2; d >= 0; --d) {
      if (++idx[d] < out[d]) { ia += sa[d]; ib += sb[d]; break; }
      ia -= sa[d] * (out[d] - 1);
      ib -= sb[d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

// dst (+)= src summed down to dst's shape: dst (shape `to`, which broadcasts to src's shape `from`)
// gets, at each element, the sum of the src elements that broadcast from it; `add`: onto what dst
// holds, else over it. float32 sums in double and rounds once (float32 adding a million rows one
// after another is 1% off); float64 adds in place. The reductions' strided path (sum over leading
// dims), the sweep's un-broadcast and linear's bias gradient over many rows share it.
// When the innermost dim is summed away (a bias's gradient over [out, rows] broadcast as
// [out, 1], a convolution's over its positions), each row is one sum, folded in 8 interleaved
// lanes: one running sum per row waits on every add before the next.
template <class T>
double row_sum(const T* p, int64_t n) {
  double lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] += p[i + k];
  for (int k = 0; i < n; ++i, ++k) lane[k] += p[i];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

template <class T>
void sum_onto(const T* src, const Shape& from, T* dst, const Shape& to, bool add) {
  const int64_t n = to.numel();
  double small[64];
  std::vector<double> big;
  double* acc = nullptr;
  if constexpr (std::is_same_v<T, double>) {
    if (!add) std::fill(dst, dst + n, 0.0);
    acc = dst;
  } else {
    acc = n <= 64 ? small : (big.resize(static_cast<size_t>(n)), big.data());
    for (int64_t j = 0; j < n; ++j) acc[j] = add ? dst[j] : 0.0;
  }
  const int64_t row = from.size() > 0 ? from[from.size() - 1] : 1;
  if (row > 1 && (to.size() == 0 || to[to.size() - 1] == 1)) {
    Shape outer, kept;
    for (int i = 0; i + 1 < from.size(); ++i) outer.push_back(from[i]);
    for (int i = 0; i + 1 < to.size(); ++i) kept.push_back(to[i]);
    for_each_broadcast(outer, outer, kept, [&](int64_t i, int64_t, int64_t j) { acc[j] += row_sum(src + i * row, row); });
  } else {
    for_each_broadcast(from, from, to, [&](int64_t i, int64_t, int64_t j) { acc[j] += src[i]; });
  }
  if constexpr (!std::is_same_v<T, double>)
    for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<T>(acc[j]);
}

// The DType of float (float32) and double (float64).
template <class T>
constexpr DType dtype_of() {
  return std::is_same_v<T, float> ? DType::float32 : DType::float64;
}

// Calls f.template operator()<T>() with T = float or double for the dtype.
template <class F>
decltype(auto) dispatch(DType d, F&& f) {
  if (d == DType::float32) return f.template operator()<float>();
  return f.template operator()<double>();
}

// The dtype two operands compute in: numbers adopt the tensor's dtype; two tensors must agree.
DType result_dtype(const Tensor& a, const Tensor& b, const char* op);

}  // namespace chainrule::detail
