#include "optim/cyclic_lr.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <tuple>

namespace chainrule::optim {

namespace {

void check_rate(const char* option, double v) {
  if (!(v >= 0 && std::isfinite(v)))
    throw std::invalid_argument(fmt::format("CyclicLR: {} must be finite and >= 0, got {}", option, v));
}

}  // namespace

CyclicLR::CyclicLR(Optimizer& optimizer, const CyclicLROptions& options) : optimizer_(optimizer), options_(options) {
  const size_t groups = optimizer.num_groups();
  base_lr_ = per_group("CyclicLR", options.base_lr(), groups, "base_lr");
  max_lr_ = per_group("CyclicLR", options.max_lr(), groups, "max_lr");
  for (size_t g = 0; g < groups; ++g) {
    check_rate("base_lr", base_lr_[g]);
    check_rate("max_lr", max_lr_[g]);
  }
  check_count("CyclicLR", "step_size_up", options.step_size_up());
  check_count("CyclicLR", "step_size_down", options.step_size_down());
  check_positive("CyclicLR", "gamma", options.gamma());
  if (options.cycle_momentum())
    std::tie(base_momentum_, max_momentum_) =
        cycled_momenta("CyclicLR", optimizer, options.base_momentum(), options.max_momentum());
  apply(0);
}

void CyclicLR::apply(int64_t t) {
  // Summed as doubles: the two step sizes may each be up to int64's largest.
  const double total = static_cast<double>(options_.step_size_up()) + static_cast<double>(options_.step_size_down());
  const double ratio = static_cast<double>(options_.step_size_up()) / total, e = static_cast<double>(t);
  const double cycle = std::floor(1 + e / total), x = 1 + e / total - cycle;
  const double f = x <= ratio ? x / ratio : (x - 1) / (ratio - 1);
  double scale = 1;
  if (options_.scale_fn()) scale = options_.scale_fn()(options_.scale_mode() == ScaleMode::Cycle ? cycle : e);
  else if (options_.mode() == CyclicMode::Triangular2) scale = 1 / std::pow(2.0, cycle - 1);
  else if (options_.mode() == CyclicMode::ExpRange) scale = std::pow(options_.gamma(), e);
  std::vector<double> rates(base_lr_.size()), momenta(base_momentum_.size());
  for (size_t g = 0; g < rates.size(); ++g) {
    rates[g] = base_lr_[g] + (max_lr_[g] - base_lr_[g]) * f * scale;
    if (!(rates[g] >= 0 && std::isfinite(rates[g])))
      throw std::invalid_argument(fmt::format(
          "CyclicLR: step {} gives group {} the rate {}, which is not a finite number >= 0; nothing was changed", t, g,
          rates[g]));
  }
  for (size_t g = 0; g < momenta.size(); ++g)
    momenta[g] = max_momentum_[g] - (max_momentum_[g] - base_momentum_[g]) * f * scale;
  set_rates_and_momenta(optimizer_, rates, options_.cycle_momentum() ? &momenta : nullptr);
}

void CyclicLR::step() {
  apply(last_epoch_ + 1);
  ++last_epoch_;
}

std::map<std::string, double> CyclicLR::state_dict() const { return {{"last_epoch", static_cast<double>(last_epoch_)}}; }

void CyclicLR::load_state_dict(const std::map<std::string, double>& state) {
  last_epoch_ = static_cast<int64_t>(checked_state(state, {{"last_epoch", true}}).at("last_epoch"));
}

}  // namespace chainrule::optim
