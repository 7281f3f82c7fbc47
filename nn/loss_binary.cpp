#include "nn/loss_binary.h"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace chainrule::nn {

using detail::check_pair;
using detail::constant;
using detail::reduce;

namespace {

// max(log p, -100) as torch's BCELoss, built so that no NaN or inf reaches the gradient: below
// the threshold the log is taken of 1 instead of p (masked out afterwards) and replaced by -100.
Tensor clamped_log(const Tensor& p) {
  // In float32, 1/p overflows below the smallest normal float, so the clamp starts there (log = -87.3).
  const double floor = p.dtype() == DType::float32 ? std::max(std::exp(-100.0), double(FLT_MIN)) : std::exp(-100.0);
  const Tensor keep = constant([&] { return step(p.detach() - floor); });  // 1 where p > floor
  const Tensor safe = p * keep + (1.0 - keep);
  return log(safe) * keep + (keep - 1.0) * 100.0;
}

}  // namespace

// ---- BCE ----

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BCELossOptions& options) {
  check_pair(input, target, "BCELoss");
  const std::vector<double> p = input.to_vector();
  for (size_t i = 0; i < p.size(); ++i)
    if (!(p[i] >= 0.0 && p[i] <= 1.0))
      throw std::invalid_argument(fmt::format(
          "BCELoss: the input must hold probabilities in [0, 1], got {} at flat index {} (shape {}); apply "
          "Sigmoid first, or use BCEWithLogitsLoss on logits",
          p[i], i, input.shape().str()));
  Tensor l = -(target * clamped_log(input) + (1.0 - target) * clamped_log(1.0 - input));
  return reduce(l, options.reduction());
}

std::string BCELoss::to_string() const {
  return fmt::format("BCELoss(reduction={})", reduction_name(options_.reduction()));
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const BCELossOptions& options) {
  check_pair(input, target, "BCEWithLogitsLoss");
  // max(z, 0) = z * m and |z| = z * (2m - 1) with the constant mask m = [z > 0]. Unlike relu(z) and
  // abs(z), whose derivatives at 0 are both taken as 0, these keep the sum smooth: at z = 0 the
  // gradient is sigmoid(0) - y = 1/2 - y, not -y.
  const Tensor m = constant([&] { return step(input.detach()); });
  const Tensor z_abs = input * (m * 2.0 - 1.0);
  // z (m - y), not z m - z y: at z = +inf with y < 1 that is inf - inf = NaN (PyTorch gives inf).
  Tensor l = input * (m - target) + log1p(exp(-z_abs));  // log1p: e^-|z| may be tiny
  return reduce(l, options.reduction());
}

std::string BCEWithLogitsLoss::to_string() const {
  return fmt::format("BCEWithLogitsLoss(reduction={})", reduction_name(options_.reduction()));
}

}  // namespace chainrule::nn
