// Creating tensors: from values (nested lists, vectors), filled (zeros, ones, full), ranges, and
// seeded random numbers (Generator).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "autograd/tensor.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"

namespace chainrule {

namespace {
// A tensor whose elements, in row-major order, are next()'s doubles converted to its dtype, written
// in place: every creation function below is one call (arange, uniform and normal used to build a
// vector of doubles beside the tensor, which for a large one tripled the memory).
template <class F>
Tensor generated(const Shape& shape, const TensorOptions& options, F next) {
  Tensor t = detail::empty(shape, options.dtype_);
  detail::dispatch(options.dtype_, [&]<class T>() {
    T* p = t.impl()->data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(next());
  });
  if (options.requires_grad_) t.set_requires_grad(true);
  return t;
}
}  // namespace

double Generator::uniform(double low, double high) {
  if (!(low <= high) || !std::isfinite(low) || !std::isfinite(high))
    throw std::invalid_argument(
        fmt::format("Generator::uniform: the range [{}, {}) needs finite bounds with low <= high", low, high));
  // 53 random bits -> [0, 1): the same numbers for a seed on every standard library.
  const double u = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
  const double width = high - low;
  if (std::isfinite(width)) return low + width * u;
  return low * (1 - u) + high * u;  // a range wider than the largest double ([-1e308, 1e308])
}

double Generator::normal(double mean, double stddev) {
  if (!(stddev >= 0) || !std::isfinite(mean) || !std::isfinite(stddev))
    throw std::invalid_argument(
        fmt::format("Generator::normal: mean {} and stddev {} must be finite, with stddev >= 0", mean, stddev));
  if (has_spare_) {
    has_spare_ = false;
    return mean + stddev * spare_;
  }
  // Box-Muller; 1 - u keeps the log argument in (0, 1].
  const double u1 = 1.0 - uniform(0, 1), u2 = uniform(0, 1);
  const double r = std::sqrt(-2.0 * std::log(u1)), th = 2.0 * std::numbers::pi * u2;
  spare_ = r * std::sin(th);
  has_spare_ = true;
  return mean + stddev * r * std::cos(th);
}

namespace {
void flatten(const NestedList& l, int depth, std::vector<int64_t>& shape, std::vector<double>& out) {
  if (l.is_number()) {
    if (depth != static_cast<int>(shape.size()))
      throw std::invalid_argument(fmt::format("tensor: ragged nested list (a number at depth {}, expected {})",
                                              depth, shape.size()));
    out.push_back(l.value());
    return;
  }
  if (depth == static_cast<int>(shape.size())) {
    if (!out.empty())
      throw std::invalid_argument(fmt::format("tensor: ragged nested list (a list at depth {})", depth));
    shape.push_back(static_cast<int64_t>(l.items().size()));
  } else if (shape[depth] != static_cast<int64_t>(l.items().size())) {
    throw std::invalid_argument(fmt::format("tensor: ragged nested list: a row of {} items at depth {}, "
                                            "expected {}",
                                            l.items().size(), depth, shape[depth]));
  }
  for (const NestedList& item : l.items()) flatten(item, depth + 1, shape, out);
}
}  // namespace

Tensor tensor(const NestedList& values, TensorOptions options) {
  std::vector<int64_t> shape;
  std::vector<double> flat;
  flatten(values, 0, shape, flat);
  return from_vector(flat, Shape(shape), options);
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions options) {
  if (static_cast<int64_t>(values.size()) != shape.numel())
    throw std::invalid_argument(fmt::format("from_vector: {} values given for shape {} ({} elements)",
                                            values.size(), shape.str(), shape.numel()));
  return generated(shape, options, [&, i = size_t{0}]() mutable { return values[i++]; });
}

Tensor full(const Shape& shape, double value, TensorOptions options) {
  return generated(shape, options, [value] { return value; });
}
Tensor zeros(const Shape& shape, TensorOptions options) { return full(shape, 0.0, options); }
Tensor ones(const Shape& shape, TensorOptions options) { return full(shape, 1.0, options); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }


Tensor arange(double start, double stop, double step, TensorOptions options) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
    throw std::invalid_argument(fmt::format("arange: invalid range start={} stop={} step={}", start, stop, step));
  // As PyTorch: a step that leads away from stop is a mistake (NumPy would return nothing).
  if ((stop - start) * step < 0)
    throw std::invalid_argument(fmt::format(
        "arange: step {} leads away from stop {} (start {}); use a step of the other sign", step, stop, start));
  const double n = std::ceil((stop - start) / step);
  if (n > 1e12) throw std::invalid_argument(fmt::format("arange: {} elements is too many", n));
  return generated(Shape{static_cast<int64_t>(std::max(0.0, n))}, options,
                   [&, i = 0.0]() mutable { return start + step * i++; });
}

Tensor uniform(const Shape& shape, double low, double high, Generator& gen, TensorOptions options) {
  if (!(low <= high)) throw std::invalid_argument(fmt::format("uniform: low {} > high {}", low, high));
  if (!std::isfinite(high - low))  // an infinite bound (or width) would give only NaN and infinities
    throw std::invalid_argument(fmt::format("uniform: the range [{}, {}) must be finite", low, high));
  return generated(shape, options, [&] { return gen.uniform(low, high); });
}

Tensor normal(const Shape& shape, double mean, double stddev, Generator& gen, TensorOptions options) {
  if (!(stddev >= 0)) throw std::invalid_argument(fmt::format("normal: stddev {} < 0", stddev));
  if (!std::isfinite(mean) || !std::isfinite(stddev))
    throw std::invalid_argument(fmt::format("normal: mean {} and stddev {} must be finite", mean, stddev));
  return generated(shape, options, [&] { return gen.normal(mean, stddev); });
}

}  // namespace chainrule
