#include "optim/lr_scheduler_sequence.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <utility>

namespace chainrule::optim {

namespace {

// The schedulers non-empty, none null, all on `optimizer` (the first's when null).
void check_schedulers(const std::vector<std::shared_ptr<LRScheduler>>& schedulers, const Optimizer* optimizer,
                      const char* name) {
  if (schedulers.empty()) throw std::invalid_argument(fmt::format("{}: needs at least one scheduler", name));
  for (size_t k = 0; k < schedulers.size(); ++k) {
    if (!schedulers[k]) throw std::invalid_argument(fmt::format("{}: scheduler {} is null", name, k));
    if (!optimizer) optimizer = &schedulers[k]->optimizer();
    if (&schedulers[k]->optimizer() != optimizer)
      throw std::invalid_argument(
          fmt::format("{}: scheduler {} ({}) is built on another optimizer than the {}", name, k,
                      schedulers[k]->name(), k == 0 ? "given one" : "first scheduler's"));
  }
}

// Each scheduler's entries under "<k>.", after the combination's own `own` entries.
std::map<std::string, double> combined_state(const std::vector<std::shared_ptr<LRScheduler>>& schedulers,
                                             std::map<std::string, double> own) {
  for (size_t k = 0; k < schedulers.size(); ++k)
    for (const auto& [key, value] : schedulers[k]->state_dict()) own[fmt::format("{}.{}", k, key)] = value;
  return own;
}

// A combination's state taken apart: its own entries (no '.'), each scheduler's under "<k>.", and
// the first entry that is neither (a "<k>." past the last scheduler, or not a position).
struct SplitState {
  std::map<std::string, double> own;
  std::vector<std::map<std::string, double>> parts;
  std::optional<std::string> unknown;
};

SplitState split_state(const std::map<std::string, double>& state, size_t schedulers) {
  SplitState out{{}, std::vector<std::map<std::string, double>>(schedulers), std::nullopt};
  for (const auto& [key, value] : state) {
    const size_t dot = key.find('.');
    if (dot == std::string::npos) {
      out.own[key] = value;
      continue;
    }
    // "<k>.<entry>", k a position written in at most 9 digits.
    const std::string prefix = key.substr(0, dot);
    const bool number = !prefix.empty() && prefix.size() <= 9 &&
                        std::all_of(prefix.begin(), prefix.end(), [](char c) { return c >= '0' && c <= '9'; });
    const size_t k = number ? std::stoul(prefix) : schedulers;
    if (k < schedulers) out.parts[k][key.substr(dot + 1)] = value;
    else if (!out.unknown) out.unknown = key;
  }
  return out;
}

// Loads each scheduler's part, all or nothing (a scheduler's refusal puts back the ones loaded
// before it), after refusing an unknown entry.
void load_parts(const std::vector<std::shared_ptr<LRScheduler>>& schedulers, const SplitState& split,
                const char* name) {
  if (split.unknown)
    throw std::invalid_argument(
        fmt::format("{}::load_state_dict: unknown entry \"{}\" ({} schedulers)", name, *split.unknown, schedulers.size()));
  std::vector<std::map<std::string, double>> before;
  for (const auto& s : schedulers) before.push_back(s->state_dict());
  size_t loaded = 0;
  try {
    for (; loaded < schedulers.size(); ++loaded) schedulers[loaded]->load_state_dict(split.parts[loaded]);
  } catch (...) {
    for (size_t k = 0; k < loaded; ++k) schedulers[k]->load_state_dict(before[k]);
    throw;
  }
}

}  // namespace

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones)
    : optimizer_(optimizer), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
  check_schedulers(schedulers_, &optimizer_, "SequentialLR");
  if (milestones_.size() + 1 != schedulers_.size())
    throw std::invalid_argument(fmt::format("SequentialLR: {} scheduler(s) need {} milestone(s), got {}",
                                            schedulers_.size(), schedulers_.size() - 1, milestones_.size()));
  for (size_t k = 0; k < milestones_.size(); ++k)
    if (milestones_[k] < 1 || (k > 0 && milestones_[k] <= milestones_[k - 1]))
      throw std::invalid_argument(fmt::format("SequentialLR: milestones must be increasing and >= 1, got {} at {}",
                                              milestones_[k], k));
  // The rates back to the initial ones, then the first schedule's epoch 0 (torch's constructor).
  optimizer_.set_lr(optimizer_.initial_lrs());
  schedulers_.front()->restart();
}

void SequentialLR::step() {
  const int64_t e = last_epoch_ + 1;
  const size_t k = static_cast<size_t>(std::upper_bound(milestones_.begin(), milestones_.end(), e) - milestones_.begin());
  if (k > 0 && milestones_[k - 1] == e) schedulers_[k]->restart();
  else schedulers_[k]->step();
  last_epoch_ = e;
}

std::map<std::string, double> SequentialLR::state_dict() const {
  return combined_state(schedulers_, {{"last_epoch", static_cast<double>(last_epoch_)}});
}

void SequentialLR::load_state_dict(const std::map<std::string, double>& state) {
  // The own entry is checked before any scheduler loads; a refused load changes nothing.
  const SplitState split = split_state(state, schedulers_.size());
  const auto s = checked_state(split.own, {{"last_epoch", true}});
  load_parts(schedulers_, split, "SequentialLR");
  last_epoch_ = static_cast<int64_t>(s.at("last_epoch"));
}

ChainedScheduler::ChainedScheduler(std::vector<std::shared_ptr<LRScheduler>> schedulers)
    : schedulers_(std::move(schedulers)) {
  check_schedulers(schedulers_, nullptr, "ChainedScheduler");
}

void ChainedScheduler::step() {
  // All or nothing: a scheduler's refusal (a rate that is not finite) puts back the epoch counts
  // and the rates of those that stepped before it.
  Optimizer& optimizer = schedulers_.front()->optimizer();
  const std::vector<double> rates = optimizer.get_lrs();
  std::vector<std::map<std::string, double>> before;
  for (const auto& s : schedulers_) before.push_back(s->state_dict());
  size_t stepped = 0;
  try {
    for (; stepped < schedulers_.size(); ++stepped) schedulers_[stepped]->step();
  } catch (...) {
    for (size_t k = 0; k < stepped; ++k) schedulers_[k]->load_state_dict(before[k]);
    optimizer.set_lr(rates);
    throw;
  }
}

std::map<std::string, double> ChainedScheduler::state_dict() const { return combined_state(schedulers_, {}); }

void ChainedScheduler::load_state_dict(const std::map<std::string, double>& state) {
  const SplitState split = split_state(state, schedulers_.size());
  if (!split.own.empty())
    throw std::invalid_argument(
        fmt::format("ChainedScheduler::load_state_dict: unknown entry \"{}\"", split.own.begin()->first));
  load_parts(schedulers_, split, "ChainedScheduler");
}

}  // namespace chainrule::optim
