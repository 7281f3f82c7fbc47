#pragma once
// The epoch schedules of torch.optim.lr_scheduler that follow a formula in the epoch count:
// StepLR, ExponentialLR, MultiStepLR, LinearLR (warm-up), CosineAnnealingLR,
// CosineAnnealingWarmRestarts, LambdaLR, ConstantLR and PolynomialLR (SequentialLR and
// ChainedScheduler, which combine them, are in optim/lr_scheduler_sequence.h). Each sets every group's rate from the group's base rate lr_0
// (the rate it had when the first scheduler was built on the optimizer, torch's initial_lr) and the
// epoch count e = last_epoch():
//
//   StepLR(step_size, gamma)                 lr_e = lr_0 * gamma^floor(e / step_size)
//   ExponentialLR(gamma)                     lr_e = lr_0 * gamma^e
//   MultiStepLR(milestones, gamma)           lr_e = lr_0 * gamma^(number of milestones <= e)
//   LinearLR(start, end, total_iters)        lr_e = lr_0 * (start + (end - start) * min(e, total_iters) / total_iters)
//   CosineAnnealingLR(T_max, eta_min)        lr_e = eta_min + (lr_0 - eta_min) * (1 + cos(pi e / T_max)) / 2
//   CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)
//                                            the same within each cycle, e counted from the cycle's
//                                            start; cycle i lasts T_0 * T_mult^i epochs
//   LambdaLR(f)                              lr_e = lr_0 * f(e)   (one f, or one per group)
//   ConstantLR(factor, total_iters)          lr_e = lr_0 * factor for e < total_iters, then lr_0
//   PolynomialLR(total_iters, power)         lr_e = lr_0 * (1 - min(e, total_iters) / total_iters)^power
//
// As in PyTorch, building a scheduler applies epoch 0's rate at once (LinearLR's start factor,
// LambdaLR's f(0), a milestone at 0), and each step() ends an epoch: e += 1, then the new rates.
// StepLR, ExponentialLR, MultiStepLR, LinearLR, CosineAnnealingLR, ConstantLR and PolynomialLR
// update the current rate (PyTorch's chainable forms: a set_lr() between steps, or a second
// scheduler on the same optimizer, is carried along); with nothing else changing the rates they
// follow the formulas above to rounding.
// CosineAnnealingWarmRestarts and LambdaLR set the formula's rate outright, as PyTorch's do.
//
//   optim::SGD opt(model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
//   optim::CosineAnnealingLR cosine(opt, 100);             // 0.1 down to 0 over 100 epochs
//   optim::LambdaLR warmup(opt, [](int64_t e) { return std::min(1.0, (e + 1) / 5.0); });
//   for (int epoch = 0; epoch < 100; ++epoch) {
//     train_one_epoch();                                   // calls opt.step()
//     cosine.step();
//   }
//
// Checkpoints: state_dict() holds "last_epoch" and each group's base rate, "base_lr.<g>". To resume,
// build the optimizer and the scheduler as the first run did, then optim::load(opt, path, &sched)
// (optim/checkpoint.h), which restores the rates, the epoch count and the base rates; building the
// scheduler after the load would apply epoch 0's rate to the loaded one.
//
// Caller mistakes throw std::invalid_argument naming the scheduler and the value. A step whose new
// rate is not finite or is negative (a LambdaLR function's NaN) throws and changes nothing, the
// epoch count included.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "optim/scheduler.h"

namespace chainrule::optim {

// What the formula schedules share (torch's LRScheduler).
class LRScheduler : public Scheduler {
 public:
  // Ends an epoch: last_epoch() += 1 and every group's rate for the new count.
  void step();
  int64_t last_epoch() const { return last_epoch_; }
  // The first group's current rate, and every group's.
  double get_last_lr() const { return optimizer_.get_lr(); }
  std::vector<double> get_last_lrs() const { return optimizer_.get_lrs(); }
  // Each group's base rate: the optimizer's initial_lrs() (its rates when the first scheduler was
  // built on it), or as load_state_dict restored them.
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  const Optimizer& optimizer() const { return optimizer_; }
  Optimizer& optimizer() { return optimizer_; }
  // Starts the schedule again at epoch 0 from the base rates (torch's step(0) with the closed form,
  // which SequentialLR calls at its milestones): last_epoch() = 0 and every group's rate epoch 0's.
  void restart();

  std::string name() const override { return name_; }
  // {"last_epoch", "base_lr.0", "base_lr.1", ...}
  std::map<std::string, double> state_dict() const override;
  // Exactly those entries, one base rate per group of the optimizer, each finite and >= 0.
  void load_state_dict(const std::map<std::string, double>& state) override;

 protected:
  LRScheduler(Optimizer& optimizer, std::string name);
  // Epoch 0's rates; the subclass's constructor calls it once its options are checked.
  void initial_step();
  // Counts `epochs` as done without changing any rate (StepLR's resume argument, an old file).
  void set_last_epoch(int64_t epochs) { last_epoch_ = epochs; }
  // Group g's rate for epoch e, from its current rate `lr` (the one epoch e - 1 left, or the
  // optimizer's at epoch 0) and its base rate.
  virtual double rate(size_t g, double lr, double base, int64_t e) const = 0;

 private:
  void apply(int64_t e);
  // r, unless it is not a finite number >= 0 (std::invalid_argument naming group g and epoch e).
  double checked_rate(size_t g, double r, int64_t e) const;

  Optimizer& optimizer_;
  std::string name_;
  std::vector<double> base_lrs_;
  int64_t last_epoch_ = 0;
};

// torch.optim.lr_scheduler.StepLR: the rate is multiplied by gamma (> 0, finite) every step_size
// (>= 1) epochs. That is Python's timing; LibTorch 1.13's C++ torch::optim::StepLR decays one
// step() later (at e = step_size + 1, 2 step_size + 1, ...), so a schedule ported from C++ LibTorch
// code shifts by one epoch. `last_epoch` (>= 0, below a state dict's largest count 9.2e18): epochs
// the schedule has already counted, to resume one without a scheduler checkpoint; the rate is the
// optimizer's as it is (optim::load restores the decayed rate), and the next decay comes at the
// next multiple of step_size:
//   optim::load(opt, "optimizer.safetensors");      // saved after epoch 45
//   optim::StepLR decay(opt, 30, 0.1, 45);          // decays after epoch 60, as the first run would
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1, int64_t last_epoch = 0);
  // LRScheduler's entries, or {"last_epoch"} alone, as StepLR saved it before it was an
  // LRScheduler (the base rates then stay as built).
  void load_state_dict(const std::map<std::string, double>& state) override;

 private:
  double rate(size_t g, double lr, double base, int64_t e) const override;
  int64_t step_size_;
  double gamma_;
};

// torch.optim.lr_scheduler.ExponentialLR: gamma > 0 and finite.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 private:
  double rate(size_t g, double lr, double base, int64_t e) const override;
  double gamma_;
};

// torch.optim.lr_scheduler.MultiStepLR: the rate is multiplied by gamma at each milestone (epoch
// counts >= 0, in any order; one listed twice decays twice there, as torch's Counter); gamma > 0.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);

 private:
  double rate(size_t g, double lr, double base, int64_t e) const override;
  std::vector<int64_t> milestones_;
  double gamma_;
};

// torch.optim.lr_scheduler.LinearLR: the factor goes linearly from start_factor (in (0, 1]) to
// end_factor (in [0, 1]) over total_iters (>= 1) epochs, then stays. PyTorch's defaults 1/3, 1, 5.
class LinearLR : public LRScheduler {
 public:
  explicit LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
                    int64_t total_iters = 5);

 private:
  double rate(size_t g, double lr, double base, int64_t e) const override;
  double start_, end_;
  int64_t total_;
};

// torch.optim.lr_scheduler.CosineAnnealingLR: from lr_0 down to eta_min (finite, >= 0) over T_max
// (>= 1) epochs along half a cosine; past T_max the cosine goes on (back up by 2 T_max), as torch's.
class CosineAnnealingLR : public LRScheduler {
 public:
  explicit CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0);

 private:
  double rate(size_t g, double lr, double base, int64_t e) const override;
  int64_t t_max_;
  double eta_min_;
};

// torch.optim.lr_scheduler.CosineAnnealingWarmRestarts (SGDR, Loshchilov and Hutter 2017) at whole
// epochs: cycles of T_0, T_0 * T_mult, T_0 * T_mult^2, ... epochs (T_0 >= 1, T_mult >= 1), each a
// half cosine from lr_0 down towards eta_min, restarting at lr_0.
class CosineAnnealingWarmRestarts : public LRScheduler {
 public:
  CosineAnnealingWarmRestarts(Optimizer& optimizer, int64_t T_0, int64_t T_mult = 1, double eta_min = 0);

 private:
  double rate(size_t g, double lr, double base, int64_t e) const override;
  int64_t t0_, t_mult_;
  double eta_min_;
};

// torch.optim.lr_scheduler.LambdaLR: lr_e = lr_0 * f(e), f called once per group and epoch. One
// function for every group, or one per group (std::invalid_argument when the count is neither 1
// nor the optimizer's group count, or a function is empty).
class LambdaLR : public LRScheduler {
 public:
  using Factor = std::function<double(int64_t)>;
  LambdaLR(Optimizer& optimizer, Factor f);
  LambdaLR(Optimizer& optimizer, std::vector<Factor> per_group);

 private:
  double rate(size_t g, double lr, double base, int64_t e) const override;
  std::vector<Factor> f_;
};

// torch.optim.lr_scheduler.ConstantLR: the rate times factor (in (0, 1]) until total_iters (>= 1)
// epochs have passed, then the rate again. PyTorch's defaults 1/3 and 5.
class ConstantLR : public LRScheduler {
 public:
  explicit ConstantLR(Optimizer& optimizer, double factor = 1.0 / 3, int64_t total_iters = 5);

 private:
  double rate(size_t g, double lr, double base, int64_t e) const override;
  double factor_;
  int64_t total_;
};

// torch.optim.lr_scheduler.PolynomialLR: down to 0 at total_iters (>= 1) epochs along
// (1 - e / total_iters)^power (power finite and >= 0), then 0. PyTorch's defaults 5 and 1.
class PolynomialLR : public LRScheduler {
 public:
  explicit PolynomialLR(Optimizer& optimizer, int64_t total_iters = 5, double power = 1.0);

 private:
  double rate(size_t g, double lr, double base, int64_t e) const override;
  int64_t total_;
  double power_;
};

}  // namespace chainrule::optim
