#include "nn/loss_regression.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace chainrule::nn {

using detail::check_pair;
using detail::constant;
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

// ---- L1, smooth L1, Huber ----

Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossOptions& options) {
  check_pair(input, target, "L1Loss");
  // abs'(0) = 0: torch's sign(0) at the kink.
  return reduce(abs(input - target), options.reduction());
}

std::string L1Loss::to_string() const {
  return fmt::format("L1Loss(reduction={})", reduction_name(options_.reduction()));
}

namespace {

// 0.5 d^2 / k where |d| < k, else |d| - 0.5 k: torch's smooth L1 with beta = k > 0. The mask is
// strict, so the joint |d| = k takes the linear branch (second derivative 0 there, as torch's).
// The quadratic reads d only where it is taken (0 elsewhere): an infinite d in the linear branch
// would otherwise send 0 * inf = NaN back through the untaken square.
Tensor smooth_abs(const Tensor& d, double k) {
  const Tensor inner = constant([&] { return step(k - abs(d.detach())); });
  const Tensor q = where(inner, d, 0.0);
  return where(inner, q * q * (0.5 / k), abs(d) - 0.5 * k);
}

}  // namespace

SmoothL1LossOptions& SmoothL1LossOptions::beta(double b) {
  if (!(b >= 0.0))
    throw std::invalid_argument(fmt::format("SmoothL1LossOptions::beta: beta must be >= 0 (0 is L1Loss), got {}", b));
  beta_ = b;
  return *this;
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossOptions& options) {
  check_pair(input, target, "SmoothL1Loss");
  const Tensor d = input - target;
  // beta = 0 leaves no quadratic region (and 1/beta would be inf): torch's l1_loss.
  const Tensor l = options.beta() == 0.0 ? abs(d) : smooth_abs(d, options.beta());
  return reduce(l, options.reduction());
}

std::string SmoothL1Loss::to_string() const {
  return fmt::format("SmoothL1Loss(reduction={}, beta={})", reduction_name(options_.reduction()), options_.beta());
}

HuberLossOptions& HuberLossOptions::delta(double d) {
  if (!(d > 0.0)) throw std::invalid_argument(fmt::format("HuberLossOptions::delta: delta must be > 0, got {}", d));
  delta_ = d;
  return *this;
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossOptions& options) {
  check_pair(input, target, "HuberLoss");
  const double k = options.delta();
  return reduce(smooth_abs(input - target, k) * k, options.reduction());
}

std::string HuberLoss::to_string() const {
  return fmt::format("HuberLoss(reduction={}, delta={})", reduction_name(options_.reduction()), options_.delta());
}

}  // namespace chainrule::nn
