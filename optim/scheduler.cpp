#include "optim/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace chainrule::optim {

void Scheduler::check_positive(const char* scheduler, const char* what, double v) {
  if (!(v > 0 && std::isfinite(v)))
    throw std::invalid_argument(fmt::format("{}: {} must be finite and > 0, got {}", scheduler, what, v));
}

void Scheduler::check_count(const char* scheduler, const char* what, int64_t v) {
  if (v < 1) throw std::invalid_argument(fmt::format("{}: {} must be >= 1, got {}", scheduler, what, v));
}

std::vector<double> Scheduler::per_group(const char* scheduler, const std::vector<double>& v, size_t groups,
                                         const char* option) {
  if (v.size() == 1) return std::vector<double>(groups, v[0]);
  if (v.size() != groups)
    throw std::invalid_argument(
        fmt::format("{}: {} needs 1 value or one per group ({}), got {}", scheduler, option, groups, v.size()));
  return v;
}

std::pair<std::vector<double>, std::vector<double>> Scheduler::cycled_momenta(const char* scheduler,
                                                                              const Optimizer& optimizer,
                                                                              const std::vector<double>& base,
                                                                              const std::vector<double>& max) {
  if (!optimizer.has_momentum())
    throw std::invalid_argument(
        fmt::format("{}: {} has no momentum to cycle (SGD's and RMSprop's momentum, Adam's beta1); pass "
                    "cycle_momentum(false)",
                    scheduler, optimizer.name()));
  return {per_group(scheduler, base, optimizer.num_groups(), "base_momentum"),
          per_group(scheduler, max, optimizer.num_groups(), "max_momentum")};
}

void Scheduler::set_rates_and_momenta(Optimizer& optimizer, const std::vector<double>& rates,
                                      const std::vector<double>* momenta) {
  if (!momenta) return optimizer.set_lr(rates);
  const std::vector<double> before = optimizer.get_momenta();
  optimizer.set_momenta(*momenta);
  try {
    optimizer.set_lr(rates);
  } catch (...) {
    optimizer.set_momenta(before);
    throw;
  }
}

namespace {

const ReduceLROnPlateauOptions& checked(const ReduceLROnPlateauOptions& o) {
  const char* n = "ReduceLROnPlateau";
  if (!(o.factor() > 0.0 && o.factor() < 1.0))
    throw std::invalid_argument(fmt::format("{}: factor must be in (0, 1), got {}", n, o.factor()));
  if (o.patience() < 0) throw std::invalid_argument(fmt::format("{}: patience must be >= 0, got {}", n, o.patience()));
  if (o.cooldown() < 0) throw std::invalid_argument(fmt::format("{}: cooldown must be >= 0, got {}", n, o.cooldown()));
  // Infinite ones would make no epoch an improvement (threshold), or no reduction take (min_lr, eps).
  if (!(o.threshold() >= 0.0 && std::isfinite(o.threshold())))
    throw std::invalid_argument(fmt::format("{}: threshold must be finite and >= 0, got {}", n, o.threshold()));
  if (!(o.min_lr() >= 0.0 && std::isfinite(o.min_lr())))
    throw std::invalid_argument(fmt::format("{}: min_lr must be finite and >= 0, got {}", n, o.min_lr()));
  if (!(o.eps() >= 0.0 && std::isfinite(o.eps())))
    throw std::invalid_argument(fmt::format("{}: eps must be finite and >= 0, got {}", n, o.eps()));
  return o;
}

}  // namespace

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options)
    : optimizer_(optimizer), options_(checked(options)) {
  const double inf = std::numeric_limits<double>::infinity();
  best_ = options_.mode() == ReduceLROnPlateauOptions::Mode::Min ? inf : -inf;
}

bool ReduceLROnPlateau::is_better(double metric) const {
  using M = ReduceLROnPlateauOptions::Mode;
  using T = ReduceLROnPlateauOptions::ThresholdMode;
  const double th = options_.threshold();
  const bool rel = options_.threshold_mode() == T::Rel;
  if (options_.mode() == M::Min) return metric < (rel ? best_ * (1.0 - th) : best_ - th);
  return metric > (rel ? best_ * (1.0 + th) : best_ + th);
}

bool ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (in_cooldown()) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;
  }
  if (num_bad_epochs_ <= options_.patience()) return false;
  cooldown_counter_ = options_.cooldown();
  num_bad_epochs_ = 0;
  // Each group as PyTorch's: a change smaller than eps is not applied (the rate has reached min_lr).
  bool reduced = false;
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) {
    const double old_lr = optimizer_.get_lr(g);
    const double new_lr = std::max(old_lr * options_.factor(), options_.min_lr());
    if (old_lr - new_lr <= options_.eps()) continue;
    optimizer_.set_lr(g, new_lr);
    reduced = true;
  }
  return reduced;
}

std::map<std::string, double> Scheduler::checked_state(const std::map<std::string, double>& state,
                                                      const std::map<std::string, bool>& names) const {
  const std::string scheduler = name();
  for (const auto& [entry, value] : state)
    if (!names.count(entry))
      throw std::invalid_argument(fmt::format("{}::load_state_dict: unknown entry \"{}\"", scheduler, entry));
  for (const auto& [entry, is_count] : names) {
    const auto it = state.find(entry);
    if (it == state.end())
      throw std::invalid_argument(fmt::format("{}::load_state_dict: the entry \"{}\" is missing", scheduler, entry));
    const double v = it->second;
    if (is_count ? !(v >= 0 && v == std::floor(v) && v < static_cast<double>(kMaxCount)) : std::isnan(v))
      throw std::invalid_argument(fmt::format("{}::load_state_dict: \"{}\" must be {}, got {}", scheduler, entry,
                                              is_count ? "a whole number >= 0" : "a number", v));
  }
  return state;
}

std::map<std::string, double> ReduceLROnPlateau::state_dict() const {
  return {{"best", best_},
          {"cooldown_counter", static_cast<double>(cooldown_counter_)},
          {"last_epoch", static_cast<double>(last_epoch_)},
          {"num_bad_epochs", static_cast<double>(num_bad_epochs_)}};
}

void ReduceLROnPlateau::load_state_dict(const std::map<std::string, double>& state) {
  const auto s = checked_state(state,
                               {{"best", false}, {"cooldown_counter", true}, {"last_epoch", true}, {"num_bad_epochs", true}});
  best_ = s.at("best");
  cooldown_counter_ = static_cast<int64_t>(s.at("cooldown_counter"));
  last_epoch_ = static_cast<int64_t>(s.at("last_epoch"));
  num_bad_epochs_ = static_cast<int64_t>(s.at("num_bad_epochs"));
}

}  // namespace chainrule::optim
