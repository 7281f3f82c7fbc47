#include "nn/dropout.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace chainrule::nn {

namespace {

void check_p(const char* op, double p) {
  if (!(p >= 0 && p <= 1)) throw std::invalid_argument(fmt::format("{}: p must be in [0, 1], got {}", op, p));
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen, const char* op) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", op));
  return dropout(x, p, training, gen, x.shape(), op);
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen, const Shape& mask_shape, const char* op) {
  check_p(op, p);
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", op));
  bool fits = mask_shape.size() == x.dim();
  for (int i = 0; fits && i < mask_shape.size(); ++i) fits = mask_shape[i] == 1 || mask_shape[i] == x.size(i);
  if (!fits)
    throw std::invalid_argument(fmt::format("{}: a mask of shape {} does not cover the input {} (each dim 1 or the input's)",
                                            op, mask_shape.str(), x.shape().str()));
  if (!training || p == 0) return x;
  const double keep = 1 - p, scale = p == 1 ? 0.0 : 1 / keep;
  std::vector<double> mask(static_cast<std::size_t>(mask_shape.numel()));
  // uniform() is in [0, 1): below `keep` with probability keep (never for p = 1, always for p = 0).
  for (double& m : mask) m = gen.uniform(0.0, 1.0) < keep ? scale : 0.0;
  return x * from_vector(mask, mask_shape, x.dtype());
}

DropoutNd::DropoutNd(const char* name, const DropoutOptions& options) : Module(name), options_(options) {
  check_p(name, options.p());
  if (options.seed()) own_.emplace(*options.seed());
}

Tensor DropoutNd::drop(const Tensor& x, const Shape& mask_shape) {
  return dropout(x, options_.p(), is_training(), own_ ? *own_ : default_generator(), mask_shape, name().c_str());
}

std::string DropoutNd::extra_repr() const { return fmt::format("p={}", options_.p()); }

Tensor Dropout::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("Dropout::forward: the input is undefined");
  return drop(x, x.shape());
}

Tensor Dropout1d::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("Dropout1d::forward: the input is undefined");
  if (x.dim() != 2 && x.dim() != 3)
    throw std::invalid_argument(fmt::format(
        "Dropout1d::forward: expected [N, C, L] or [C, L], got {} (Dropout drops single elements)", x.shape().str()));
  std::vector<int64_t> mask_shape = x.shape().to_vector();
  mask_shape.back() = 1;
  return drop(x, Shape(mask_shape));
}

Tensor Dropout2d::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("Dropout2d::forward: the input is undefined");
  if (x.dim() != 3 && x.dim() != 4)
    throw std::invalid_argument(fmt::format(
        "Dropout2d::forward: expected [N, C, H, W] or [N, C, L], got {} (Dropout drops single elements)",
        x.shape().str()));
  std::vector<int64_t> mask_shape(static_cast<std::size_t>(x.dim()), 1);
  mask_shape[0] = x.size(0);
  mask_shape[1] = x.size(1);
  return drop(x, Shape(mask_shape));
}

}  // namespace chainrule::nn
