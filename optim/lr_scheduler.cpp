#include "optim/lr_scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <utility>

namespace chainrule::optim {

namespace {

void check_eta_min(const char* scheduler, double eta_min) {
  if (!(eta_min >= 0 && std::isfinite(eta_min)))
    throw std::invalid_argument(fmt::format("{}: eta_min must be finite and >= 0, got {}", scheduler, eta_min));
}

// Half a cosine from `base` (t = 0) down to eta_min (t = period).
double cosine(double base, double eta_min, double t, double period) {
  return eta_min + (base - eta_min) * (1 + std::cos(std::numbers::pi * t / period)) / 2;
}

}  // namespace

// ---- the shared part ----

LRScheduler::LRScheduler(Optimizer& optimizer, std::string name)
    : optimizer_(optimizer), name_(std::move(name)), base_lrs_(optimizer.initial_lrs()) {}

void LRScheduler::initial_step() {
  // Built (the options passed their checks): the optimizer's initial rates are recorded now, if no
  // scheduler did before.
  if (optimizer_.initial_lrs_.empty()) optimizer_.initial_lrs_ = base_lrs_;
  apply(0);
}

void LRScheduler::restart() {
  // Epoch 0's rate from the base rate, as if the optimizer's rate were the base: every schedule's
  // epoch 0 is its base rate times a factor (torch's closed forms at 0).
  std::vector<double> rates(base_lrs_.size());
  for (size_t g = 0; g < rates.size(); ++g) rates[g] = checked_rate(g, rate(g, base_lrs_[g], base_lrs_[g], 0), 0);
  optimizer_.set_lr(rates);
  last_epoch_ = 0;
}

double LRScheduler::checked_rate(size_t g, double r, int64_t e) const {
  if (!(r >= 0 && std::isfinite(r)))
    throw std::invalid_argument(fmt::format(
        "{}: epoch {} gives group {} the rate {}, which is not a finite number >= 0; no rate was changed", name_, e, g,
        r));
  return r;
}

void LRScheduler::step() {
  apply(last_epoch_ + 1);
  ++last_epoch_;  // only once every group took its new rate
}

void LRScheduler::apply(int64_t e) {
  std::vector<double> rates = optimizer_.get_lrs();
  for (size_t g = 0; g < rates.size(); ++g) rates[g] = checked_rate(g, rate(g, rates[g], base_lrs_[g], e), e);
  optimizer_.set_lr(rates);
}

std::map<std::string, double> LRScheduler::state_dict() const {
  std::map<std::string, double> state{{"last_epoch", static_cast<double>(last_epoch_)}};
  for (size_t g = 0; g < base_lrs_.size(); ++g) state[fmt::format("base_lr.{}", g)] = base_lrs_[g];
  return state;
}

void LRScheduler::load_state_dict(const std::map<std::string, double>& state) {
  std::map<std::string, bool> names{{"last_epoch", true}};
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) names[fmt::format("base_lr.{}", g)] = false;
  const auto s = checked_state(state, names);
  std::vector<double> bases(optimizer_.num_groups());
  for (size_t g = 0; g < bases.size(); ++g) {
    bases[g] = s.at(fmt::format("base_lr.{}", g));
    if (!(bases[g] >= 0 && std::isfinite(bases[g])))
      throw std::invalid_argument(
          fmt::format("{}::load_state_dict: \"base_lr.{}\" must be finite and >= 0, got {}", name_, g, bases[g]));
  }
  base_lrs_ = std::move(bases);
  last_epoch_ = static_cast<int64_t>(s.at("last_epoch"));
}

// ---- the schedules: each rate() is PyTorch's get_lr() for one group ----

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma, int64_t last_epoch)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  check_count("StepLR", "step_size", step_size);
  if (last_epoch < 0) throw std::invalid_argument(fmt::format("StepLR: last_epoch must be >= 0, got {}", last_epoch));
  // Beyond it step() would overflow the count, and state_dict() would hold what load_state_dict refuses.
  if (last_epoch >= kMaxCount)
    throw std::invalid_argument(fmt::format(
        "StepLR: last_epoch must be below {} (a state dict's largest count), got {}", kMaxCount, last_epoch));
  check_positive("StepLR", "gamma", gamma);
  initial_step();  // epoch 0 keeps the rate
  set_last_epoch(last_epoch);
}

double StepLR::rate(size_t, double lr, double, int64_t e) const {
  return e > 0 && e % step_size_ == 0 ? lr * gamma_ : lr;
}

void StepLR::load_state_dict(const std::map<std::string, double>& state) {
  if (state.size() != 1 || !state.contains("last_epoch")) return LRScheduler::load_state_dict(state);
  set_last_epoch(static_cast<int64_t>(checked_state(state, {{"last_epoch", true}}).at("last_epoch")));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  check_positive("ExponentialLR", "gamma", gamma);
  initial_step();
}

double ExponentialLR::rate(size_t, double lr, double, int64_t e) const { return e == 0 ? lr : lr * gamma_; }

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
  check_positive("MultiStepLR", "gamma", gamma);
  for (int64_t m : milestones_)
    if (m < 0) throw std::invalid_argument(fmt::format("MultiStepLR: milestones must be >= 0, got {}", m));
  initial_step();
}

double MultiStepLR::rate(size_t, double lr, double, int64_t e) const {
  const auto hits = std::count(milestones_.begin(), milestones_.end(), e);
  return hits == 0 ? lr : lr * std::pow(gamma_, static_cast<double>(hits));
}

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer, "LinearLR"), start_(start_factor), end_(end_factor), total_(total_iters) {
  if (!(start_factor > 0 && start_factor <= 1))
    throw std::invalid_argument(fmt::format("LinearLR: start_factor must be in (0, 1], got {}", start_factor));
  if (!(end_factor >= 0 && end_factor <= 1))
    throw std::invalid_argument(fmt::format("LinearLR: end_factor must be in [0, 1], got {}", end_factor));
  check_count("LinearLR", "total_iters", total_iters);
  initial_step();
}

double LinearLR::rate(size_t, double lr, double, int64_t e) const {
  if (e == 0) return lr * start_;
  if (e > total_) return lr;
  // The ratio of this epoch's factor to the last one's; the denominator is total * the last
  // factor, > 0 since start > 0 (at e = total with end = 0 it is start).
  const double step = end_ - start_;
  return lr * (1 + step / (static_cast<double>(total_) * start_ + static_cast<double>(e - 1) * step));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), t_max_(T_max), eta_min_(eta_min) {
  check_count("CosineAnnealingLR", "T_max", T_max);
  check_eta_min("CosineAnnealingLR", eta_min);
  initial_step();
}

double CosineAnnealingLR::rate(size_t, double lr, double base, int64_t e) const {
  if (e == 0) return lr;
  const double t = static_cast<double>(t_max_), pi = std::numbers::pi;
  // At the bottom of the cosine the ratio below would divide by 1 + cos(pi) = 0: the step up from
  // eta_min is the closed form's instead. That is torch's (e - 1 - T_max) % (2 T_max) == 0, without
  // forming 2 T_max (it overflows for T_max past 2^62): d >= -T_max here, so no negative d counts.
  if (const int64_t d = e - 1 - t_max_; d >= 0 && d % t_max_ == 0 && (d / t_max_) % 2 == 0)
    return lr + (base - eta_min_) * (1 - std::cos(pi / t)) / 2;
  return (1 + std::cos(pi * static_cast<double>(e) / t)) / (1 + std::cos(pi * static_cast<double>(e - 1) / t)) *
             (lr - eta_min_) +
         eta_min_;
}

CosineAnnealingWarmRestarts::CosineAnnealingWarmRestarts(Optimizer& optimizer, int64_t T_0, int64_t T_mult,
                                                         double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingWarmRestarts"), t0_(T_0), t_mult_(T_mult), eta_min_(eta_min) {
  check_count("CosineAnnealingWarmRestarts", "T_0", T_0);
  check_count("CosineAnnealingWarmRestarts", "T_mult", T_mult);
  check_eta_min("CosineAnnealingWarmRestarts", eta_min);
  initial_step();
}

double CosineAnnealingWarmRestarts::rate(size_t, double, double base, int64_t e) const {
  // The cycle epoch e falls in: t epochs into a cycle of `period` epochs.
  int64_t t = e, period = t0_;
  if (t_mult_ == 1) {
    t = e % t0_;
  } else {
    // Cycles grow geometrically, so this runs about log(e / T_0) / log(T_mult) times.
    while (t >= period) {
      t -= period;
      // Past int64's range the cycle is longer than any epoch count: t is in it.
      period = period > std::numeric_limits<int64_t>::max() / t_mult_ ? std::numeric_limits<int64_t>::max()
                                                                       : period * t_mult_;
    }
  }
  return cosine(base, eta_min_, static_cast<double>(t), static_cast<double>(period));
}

LambdaLR::LambdaLR(Optimizer& optimizer, Factor f) : LambdaLR(optimizer, std::vector<Factor>{std::move(f)}) {}

LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<Factor> per_group)
    : LRScheduler(optimizer, "LambdaLR"), f_(std::move(per_group)) {
  if (f_.size() != 1 && f_.size() != optimizer.num_groups())
    throw std::invalid_argument(fmt::format("LambdaLR: expected 1 function or one per group ({}), got {}",
                                            optimizer.num_groups(), f_.size()));
  for (size_t i = 0; i < f_.size(); ++i)
    if (!f_[i]) throw std::invalid_argument(fmt::format("LambdaLR: function {} is empty", i));
  initial_step();
}

double LambdaLR::rate(size_t g, double, double base, int64_t e) const { return base * f_[f_.size() == 1 ? 0 : g](e); }

ConstantLR::ConstantLR(Optimizer& optimizer, double factor, int64_t total_iters)
    : LRScheduler(optimizer, "ConstantLR"), factor_(factor), total_(total_iters) {
  if (!(factor > 0 && factor <= 1))
    throw std::invalid_argument(fmt::format("ConstantLR: factor must be in (0, 1], got {}", factor));
  check_count("ConstantLR", "total_iters", total_iters);
  initial_step();
}

double ConstantLR::rate(size_t, double lr, double, int64_t e) const {
  if (e == 0) return lr * factor_;
  return e == total_ ? lr / factor_ : lr;
}

PolynomialLR::PolynomialLR(Optimizer& optimizer, int64_t total_iters, double power)
    : LRScheduler(optimizer, "PolynomialLR"), total_(total_iters), power_(power) {
  check_count("PolynomialLR", "total_iters", total_iters);
  if (!(power >= 0 && std::isfinite(power)))
    throw std::invalid_argument(fmt::format("PolynomialLR: power must be finite and >= 0, got {}", power));
  initial_step();
}

double PolynomialLR::rate(size_t, double lr, double, int64_t e) const {
  if (e == 0 || e > total_) return lr;
  // The ratio of this epoch's factor to the last one's; at e = total it is 0 (0^0 = 1 for power 0).
  const double t = static_cast<double>(total_), now = 1 - static_cast<double>(e) / t,
               before = 1 - static_cast<double>(e - 1) / t;
  return lr * std::pow(now / before, power_);
}

}  // namespace chainrule::optim
