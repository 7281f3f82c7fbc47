#pragma once
// torch.optim.lr_scheduler.CyclicLR (Smith 2017, "Cyclical learning rates"): per batch, the rate
// goes from base_lr up to max_lr over step_size_up steps and back down over step_size_down, the
// amplitude scaled by the mode; the momentum (SGD's and RMSprop's momentum, Adam's and AdamW's
// beta1) moves the other way, from max_momentum down to base_momentum and back.
//
//   t = last_epoch(), T = step_size_up + step_size_down, r = step_size_up / T
//   cycle = floor(1 + t / T), x = 1 + t / T - cycle, f = x / r where x <= r, else (x - 1) / (r - 1)
//   lr = base_lr + (max_lr - base_lr) * f * scale         momentum = max_m - (max_m - base_m) * f * scale
//   scale: Triangular 1, Triangular2 1 / 2^(cycle - 1), ExpRange gamma^t; or a function of the cycle
//   (or of t, ScaleMode::Iterations) given with scale_fn.
//
//   optim::SGD opt(model->parameters(), optim::SGDOptions(0.01).momentum(0.9));
//   optim::CyclicLR schedule(opt, optim::CyclicLROptions(0.001, 0.1).step_size_up(2000));
//   for (...) { train_one_batch(); schedule.step(); }
//
// Building it sets every group's rate to base_lr (and momentum to max_momentum). Checkpoints:
// "last_epoch"; the rates and momenta are the optimizer's own state.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "optim/scheduler.h"

namespace chainrule::optim {

enum class CyclicMode { Triangular, Triangular2, ExpRange };
enum class ScaleMode { Cycle, Iterations };

struct CyclicLROptions {
  // The rates at the bottom and the top, one for every group or one per group.
  CyclicLROptions(double base_lr, double max_lr) : base_lr_{base_lr}, max_lr_{max_lr} {}
  CyclicLROptions(std::vector<double> base_lr, std::vector<double> max_lr)
      : base_lr_(std::move(base_lr)), max_lr_(std::move(max_lr)) {}
  CyclicLROptions& step_size_up(int64_t s) { up_ = s; return *this; }              // >= 1, 2000
  CyclicLROptions& step_size_down(int64_t s) { down_ = s; return *this; }          // >= 1, step_size_up's
  CyclicLROptions& mode(CyclicMode m) { mode_ = m; return *this; }                 // Triangular
  CyclicLROptions& gamma(double g) { gamma_ = g; return *this; }                   // ExpRange's, finite > 0, 1
  // A scale of your own in place of the mode's (torch's scale_fn and scale_mode).
  CyclicLROptions& scale_fn(std::function<double(double)> f, ScaleMode m = ScaleMode::Cycle) {
    scale_fn_ = std::move(f);
    scale_mode_ = m;
    return *this;
  }
  CyclicLROptions& cycle_momentum(bool on) { cycle_momentum_ = on; return *this; }  // true
  CyclicLROptions& base_momentum(double m) { base_momentum_ = {m}; return *this; }  // 0.8
  CyclicLROptions& base_momentum(std::vector<double> m) { base_momentum_ = std::move(m); return *this; }
  CyclicLROptions& max_momentum(double m) { max_momentum_ = {m}; return *this; }    // 0.9
  CyclicLROptions& max_momentum(std::vector<double> m) { max_momentum_ = std::move(m); return *this; }

  const std::vector<double>& base_lr() const { return base_lr_; }
  const std::vector<double>& max_lr() const { return max_lr_; }
  int64_t step_size_up() const { return up_; }
  int64_t step_size_down() const { return down_.value_or(up_); }
  CyclicMode mode() const { return mode_; }
  double gamma() const { return gamma_; }
  const std::function<double(double)>& scale_fn() const { return scale_fn_; }
  ScaleMode scale_mode() const { return scale_mode_; }
  bool cycle_momentum() const { return cycle_momentum_; }
  const std::vector<double>& base_momentum() const { return base_momentum_; }
  const std::vector<double>& max_momentum() const { return max_momentum_; }

 private:
  std::vector<double> base_lr_, max_lr_;
  int64_t up_ = 2000;
  std::optional<int64_t> down_;
  CyclicMode mode_ = CyclicMode::Triangular;
  double gamma_ = 1.0;
  std::function<double(double)> scale_fn_;
  ScaleMode scale_mode_ = ScaleMode::Cycle;
  bool cycle_momentum_ = true;
  std::vector<double> base_momentum_{0.8}, max_momentum_{0.9};
};

// std::invalid_argument naming the option and the value: a list of neither one value nor one per
// group, a rate not finite and >= 0, a step size < 1, gamma not finite and > 0, or cycle_momentum
// with an optimizer that has none (Optimizer::has_momentum). A step whose rate is negative or not
// finite (a scale function's) throws and changes nothing.
class CyclicLR : public Scheduler {
 public:
  CyclicLR(Optimizer& optimizer, const CyclicLROptions& options);
  void step();  // one batch: last_epoch() += 1, then the rates (and momenta) for it
  int64_t last_epoch() const { return last_epoch_; }
  double get_last_lr() const { return optimizer_.get_lr(); }
  std::vector<double> get_last_lrs() const { return optimizer_.get_lrs(); }

  std::string name() const override { return "CyclicLR"; }
  std::map<std::string, double> state_dict() const override;  // {"last_epoch"}
  void load_state_dict(const std::map<std::string, double>& state) override;

 private:
  void apply(int64_t t);

  Optimizer& optimizer_;
  CyclicLROptions options_;
  std::vector<double> base_lr_, max_lr_, base_momentum_, max_momentum_;  // per group
  int64_t last_epoch_ = 0;
};

}  // namespace chainrule::optim
