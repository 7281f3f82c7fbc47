#include "optim/one_cycle_lr.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <tuple>

namespace chainrule::optim {

namespace {

double anneal(AnnealStrategy a, double from, double to, double x) {
  if (a == AnnealStrategy::Linear) return from + (to - from) * x;
  return to + (from - to) / 2.0 * (std::cos(std::numbers::pi * x) + 1);
}

}  // namespace

OneCycleLR::OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& options) : optimizer_(optimizer), options_(options) {
  const size_t groups = optimizer.num_groups();
  const int64_t t = options.total_steps();
  check_count("OneCycleLR", "total_steps", t);
  const double p = options.pct_start();
  if (!(p >= 0 && p <= 1)) throw std::invalid_argument(fmt::format("OneCycleLR: pct_start must be in [0, 1], got {}", p));
  check_positive("OneCycleLR", "div_factor", options.div_factor());
  check_positive("OneCycleLR", "final_div_factor", options.final_div_factor());
  for (double max : per_group("OneCycleLR", options.max_lr(), groups, "max_lr")) {
    check_positive("OneCycleLR", "max_lr", max);
    const double initial = max / options.div_factor();
    rates_.push_back({initial, max, initial / options.final_div_factor()});
  }
  const double total = static_cast<double>(t);
  if (options.three_phase())
    phases_ = {{p * total - 1, 0, 1, 1, 0}, {2 * p * total - 2, 1, 0, 0, 1}, {total - 1, 0, 2, 1, 1}};
  else
    phases_ = {{p * total - 1, 0, 1, 1, 0}, {total - 1, 1, 2, 0, 1}};
  if (options.cycle_momentum())
    std::tie(base_momentum_, max_momentum_) =
        cycled_momenta("OneCycleLR", optimizer, options.base_momentum(), options.max_momentum());
  apply(0);
}

void OneCycleLR::apply(int64_t step) {
  const size_t groups = rates_.size();
  std::vector<double> rates(groups), momenta(groups);
  const double s = static_cast<double>(step);
  double start = 0;
  for (size_t k = 0; k < phases_.size(); ++k) {
    const Phase& ph = phases_[k];
    if (s <= ph.end || k + 1 == phases_.size()) {
      // A phase that ends where it starts has no steps to anneal over (torch divides by zero there);
      // one that ends before it starts is passed over, as torch's.
      if (ph.end == start)
        throw std::logic_error(fmt::format(
            "OneCycleLR: step {} falls in phase {} of {}, which has no steps (it starts and ends at {}): pct_start {} "
            "of total_steps {} leaves it empty",
            step, k + 1, phases_.size(), start, options_.pct_start(), options_.total_steps()));
      const double x = (s - start) / (ph.end - start);
      for (size_t g = 0; g < groups; ++g) {
        // Past the last phase's end (step total_steps, allowed as torch's) the linear fall goes on
        // below zero in torch, a rate its loop steps to after the last batch and never uses; an
        // optimizer here takes no negative rate, so it is 0.
        rates[g] = std::max(0.0, anneal(options_.anneal_strategy(), rates_[g][static_cast<size_t>(ph.lr_from)],
                                        rates_[g][static_cast<size_t>(ph.lr_to)], x));
        if (options_.cycle_momentum()) {
          const double from = ph.m_from == 0 ? base_momentum_[g] : max_momentum_[g];
          const double to = ph.m_to == 0 ? base_momentum_[g] : max_momentum_[g];
          momenta[g] = anneal(options_.anneal_strategy(), from, to, x);
        }
      }
      break;
    }
    start = ph.end;
  }
  set_rates_and_momenta(optimizer_, rates, options_.cycle_momentum() ? &momenta : nullptr);
}

void OneCycleLR::step() {
  const int64_t next = last_epoch_ + 1;
  if (next > options_.total_steps())
    throw std::logic_error(fmt::format("OneCycleLR: tried to step {} times; the specified number of total steps is {}",
                                       next, options_.total_steps()));
  apply(next);
  last_epoch_ = next;
}

std::map<std::string, double> OneCycleLR::state_dict() const {
  return {{"last_epoch", static_cast<double>(last_epoch_)}};
}

void OneCycleLR::load_state_dict(const std::map<std::string, double>& state) {
  const auto s = checked_state(state, {{"last_epoch", true}});
  const double e = s.at("last_epoch");
  if (e > static_cast<double>(options_.total_steps()))
    throw std::invalid_argument(fmt::format("OneCycleLR::load_state_dict: \"last_epoch\" {} is past total_steps {}", e,
                                            options_.total_steps()));
  last_epoch_ = static_cast<int64_t>(e);
}

}  // namespace chainrule::optim
