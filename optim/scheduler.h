#pragma once
// Learning-rate schedules, with PyTorch's semantics (StepLR and the other formula schedules,
// ExponentialLR, CosineAnnealingLR, LambdaLR, ..., are in optim/lr_scheduler.h, included at the
// end). A scheduler changes its optimizer's learning rate through set_lr(); it keeps a reference to
// the optimizer, which must outlive it. Call the scheduler's step() once per epoch, after the
// optimizer's step()s of that epoch.
//
//   optim::SGD opt(params, optim::SGDOptions(0.1));
//   optim::StepLR decay(opt, 30, 0.1);                  // 0.1 for epochs 0-29, 0.01 for 30-59, ...
//   optim::ReduceLROnPlateau plateau(opt, optim::ReduceLROnPlateauOptions().patience(5));
//   for (int epoch = 0; epoch < 100; ++epoch) {
//     train_one_epoch();                                // calls opt.step()
//     decay.step();                                     // or: plateau.step(validation_loss);
//   }
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "optim/optimizer.h"

namespace chainrule::optim {

// What the schedulers share for checkpoints (optim::save / optim::load, optim/checkpoint.h): a
// name and the schedule's position as named numbers (torch's scheduler.state_dict(), without the
// options, which the constructor takes again).
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual std::string name() const = 0;  // "StepLR", "ReduceLROnPlateau"
  virtual std::map<std::string, double> state_dict() const = 0;
  // Restores state_dict()'s numbers. std::invalid_argument naming the scheduler and the entry for a
  // missing, unknown or invalid one (a count that is not a whole number >= 0); nothing changes then.
  virtual void load_state_dict(const std::map<std::string, double>& state) = 0;

 protected:
  // The largest count a state dict holds, exclusive (its doubles convert to int64 below it, and a
  // step from it cannot overflow); a constructor that takes a count (StepLR's last_epoch) keeps to it.
  static constexpr int64_t kMaxCount = 9'200'000'000'000'000'000;
  // `state` when it has exactly the entries `names` lists (name -> whether it is a count), each
  // valid (a count: a whole number >= 0; else: not NaN); else std::invalid_argument naming the
  // scheduler and the entry. load_state_dict checks with it before it assigns anything.
  std::map<std::string, double> checked_state(const std::map<std::string, double>& state,
                                              const std::map<std::string, bool>& names) const;
  // The constructors' checks: std::invalid_argument "<scheduler>: <what> must be finite and > 0,
  // got v" / "... must be >= 1, got v".
  static void check_positive(const char* scheduler, const char* what, double v);
  static void check_count(const char* scheduler, const char* what, int64_t v);
  // One value per group: a single value repeated, or the list when it has one per group
  // (std::invalid_argument "<scheduler>: <option> needs 1 value or one per group (G), got n").
  static std::vector<double> per_group(const char* scheduler, const std::vector<double>& v, size_t groups,
                                       const char* option);
  // The base and max momenta per group of a scheduler that cycles the momentum; std::invalid_argument
  // when the optimizer has none (Optimizer::has_momentum), asking for cycle_momentum(false).
  static std::pair<std::vector<double>, std::vector<double>> cycled_momenta(const char* scheduler,
                                                                            const Optimizer& optimizer,
                                                                            const std::vector<double>& base,
                                                                            const std::vector<double>& max);
  // Every group's rate and (when `momenta` is not null) momentum, both checked by the optimizer
  // before either is kept: a refusal changes nothing (OneCycleLR, CyclicLR).
  static void set_rates_and_momenta(Optimizer& optimizer, const std::vector<double>& rates,
                                    const std::vector<double>* momenta);
};

// Reduce-on-plateau (torch.optim.lr_scheduler.ReduceLROnPlateau): multiplies the learning rate (each
// group's, as below) by `factor` once the monitored metric has not improved for more than `patience` epochs.
//
//   improved (mode Min, threshold_mode Rel): metric < best * (1 - threshold)
//            (mode Min, Abs): metric < best - threshold; (Max, Rel): metric > best * (1 + threshold);
//            (Max, Abs): metric > best + threshold. best starts at +inf (Min) or -inf (Max).
//   each step(metric): improved ? (best = metric, bad = 0) : ++bad;
//                      in cooldown: --cooldown_counter, bad = 0 (bad epochs are ignored);
//                      bad > patience: lr = max(lr * factor, min_lr) (unchanged if that changes it
//                      by no more than eps), cooldown_counter = cooldown, bad = 0.
struct ReduceLROnPlateauOptions {
  enum class Mode { Min, Max };
  enum class ThresholdMode { Rel, Abs };
  // Checked by ReduceLROnPlateau (std::invalid_argument with the value): factor in (0, 1);
  // patience, cooldown >= 0; threshold, min_lr, eps >= 0.
  ReduceLROnPlateauOptions& mode(Mode m) { mode_ = m; return *this; }
  ReduceLROnPlateauOptions& factor(double v) { factor_ = v; return *this; }
  ReduceLROnPlateauOptions& patience(int64_t v) { patience_ = v; return *this; }
  ReduceLROnPlateauOptions& threshold(double v) { threshold_ = v; return *this; }
  ReduceLROnPlateauOptions& threshold_mode(ThresholdMode m) { threshold_mode_ = m; return *this; }
  ReduceLROnPlateauOptions& cooldown(int64_t v) { cooldown_ = v; return *this; }
  ReduceLROnPlateauOptions& min_lr(double v) { min_lr_ = v; return *this; }
  ReduceLROnPlateauOptions& eps(double v) { eps_ = v; return *this; }
  Mode mode() const { return mode_; }
  double factor() const { return factor_; }
  int64_t patience() const { return patience_; }
  double threshold() const { return threshold_; }
  ThresholdMode threshold_mode() const { return threshold_mode_; }
  int64_t cooldown() const { return cooldown_; }
  double min_lr() const { return min_lr_; }
  double eps() const { return eps_; }

 private:
  // PyTorch's defaults.
  Mode mode_ = Mode::Min;
  double factor_ = 0.1;
  int64_t patience_ = 10;
  double threshold_ = 1e-4;
  ThresholdMode threshold_mode_ = ThresholdMode::Rel;
  int64_t cooldown_ = 0;
  double min_lr_ = 0;
  double eps_ = 1e-8;
};

class ReduceLROnPlateau : public Scheduler {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  // Ends an epoch whose monitored value (e.g. the validation loss) was `metric`. Returns true when
  // the learning rate was reduced. A NaN metric counts as not improved.
  bool step(double metric);

  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  int64_t cooldown_counter() const { return cooldown_counter_; }
  bool in_cooldown() const { return cooldown_counter_ > 0; }
  int64_t last_epoch() const { return last_epoch_; }
  double get_last_lr() const { return optimizer_.get_lr(); }
  const ReduceLROnPlateauOptions& options() const { return options_; }
  std::string name() const override { return "ReduceLROnPlateau"; }
  // {"best", "cooldown_counter", "last_epoch", "num_bad_epochs"}; best may be +-inf (no epoch yet).
  std::map<std::string, double> state_dict() const override;
  void load_state_dict(const std::map<std::string, double>& state) override;

 private:
  bool is_better(double metric) const;

  Optimizer& optimizer_;
  ReduceLROnPlateauOptions options_;
  double best_;
  int64_t num_bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
  int64_t last_epoch_ = 0;
};

}  // namespace chainrule::optim

// StepLR is an LRScheduler (so SequentialLR and ChainedScheduler take it, as torch's); code that
// included this header for it keeps compiling.
#include "optim/lr_scheduler.h"
