#include "nn/dropout.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace chainrule::nn {

Dropout::Dropout(const DropoutOptions& options) : Module("Dropout"), options_(options) {
  if (!(options.p() >= 0 && options.p() <= 1))
    throw std::invalid_argument(fmt::format("Dropout: p must be in [0, 1], got {}", options.p()));
  if (options.seed()) own_.emplace(*options.seed());
}

Tensor Dropout::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("Dropout::forward: the input is undefined");
  const double p = options_.p();
  if (!is_training() || p == 0) return x;
  Generator& gen = own_ ? *own_ : default_generator();
  const double keep = 1 - p, scale = p == 1 ? 0.0 : 1 / keep;
  std::vector<double> mask(static_cast<std::size_t>(x.numel()));
  // uniform() is in [0, 1): below `keep` with probability keep (never for p = 1, always for p = 0).
  for (double& m : mask) m = gen.uniform(0.0, 1.0) < keep ? scale : 0.0;
  return x * from_vector(mask, x.shape(), x.dtype());
}

std::string Dropout::extra_repr() const { return fmt::format("p={}", options_.p()); }

}  // namespace chainrule::nn
