#include "nn/loss_regression.h"

#include <fmt/format.h>

namespace chainrule::nn {

using detail::check_pair;
using detail::reduce;

// ---- MSE ----

Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossOptions& options) {
  check_pair(input, target, "MSELoss");
  Tensor d = input - target;
  Tensor l = d * d;
  // The lecture's 1/2: its derivative is then the plain error y_hat - y.
  if (options.half()) l = l * 0.5;
  return reduce(l, options.reduction());
}

std::string MSELoss::to_string() const {
  return fmt::format("MSELoss(reduction={}, half={})", reduction_name(options_.reduction()), options_.half());
}

}  // namespace chainrule::nn
