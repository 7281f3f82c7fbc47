#pragma once
// torch.optim.lr_scheduler.OneCycleLR (Smith and Topin 2017, "super-convergence"): per batch, the
// rate climbs from max_lr / div_factor to max_lr over the first pct_start of total_steps, then
// anneals down to max_lr / (div_factor * final_div_factor); the momentum (SGD's and RMSprop's
// momentum, Adam's and AdamW's beta1) moves the other way, from max_momentum down to base_momentum
// and back.
//
//   phases, s = step(), T = total_steps, p = pct_start (torch's, with their end steps):
//     two (default):  initial -> max_lr       up to  p T - 1;   max_lr -> min_lr up to T - 1
//     three_phase:    initial -> max_lr       up to  p T - 1;   max_lr -> initial up to 2 p T - 2;
//                     initial -> min_lr       up to  T - 1
//   within a phase from step a to b, x = (s - a) / (b - a), and from u to v:
//     cos (default):  v + (u - v) (1 + cos(pi x)) / 2          linear:  u + (v - u) x
//   the momentum likewise, max_momentum -> base_momentum where the rate rises, back where it falls
//   (and max_momentum throughout the third phase).
//
//   optim::SGD opt(model->parameters(), optim::SGDOptions(0.01).momentum(0.9));
//   optim::OneCycleLR schedule(opt, optim::OneCycleLROptions(0.1, epochs * batches_per_epoch));
//   for (...) { train_one_batch(); schedule.step(); }   // step() after each batch, as torch's
//
// Building it sets every group's rate (and momentum) to step 0's. A step past total_steps throws
// std::logic_error, as torch's ValueError. At step total_steps itself the linear fall would go
// below zero (torch's rate there, which its loop never uses): it stops at 0. Checkpoints: "last_epoch" (the step count); the rates
// and momenta are the optimizer's own state (Optimizer::state_dict).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "optim/scheduler.h"

namespace chainrule::optim {

enum class AnnealStrategy { Cos, Linear };

struct OneCycleLROptions {
  // The peak rate, one for every group or one per group, and the number of steps (torch's
  // total_steps, or epochs * steps_per_epoch); both checked by OneCycleLR.
  OneCycleLROptions(double max_lr, int64_t total_steps) : max_lr_{max_lr}, total_steps_(total_steps) {}
  OneCycleLROptions(std::vector<double> max_lr, int64_t total_steps) : max_lr_(std::move(max_lr)), total_steps_(total_steps) {}
  OneCycleLROptions& pct_start(double p) { pct_start_ = p; return *this; }                  // [0, 1], 0.3
  OneCycleLROptions& anneal_strategy(AnnealStrategy a) { anneal_ = a; return *this; }       // Cos
  OneCycleLROptions& cycle_momentum(bool on) { cycle_momentum_ = on; return *this; }        // true
  OneCycleLROptions& base_momentum(double m) { base_momentum_ = {m}; return *this; }        // 0.85
  OneCycleLROptions& base_momentum(std::vector<double> m) { base_momentum_ = std::move(m); return *this; }
  OneCycleLROptions& max_momentum(double m) { max_momentum_ = {m}; return *this; }          // 0.95
  OneCycleLROptions& max_momentum(std::vector<double> m) { max_momentum_ = std::move(m); return *this; }
  OneCycleLROptions& div_factor(double d) { div_factor_ = d; return *this; }                // > 0, 25
  OneCycleLROptions& final_div_factor(double d) { final_div_factor_ = d; return *this; }    // > 0, 1e4
  OneCycleLROptions& three_phase(bool on) { three_phase_ = on; return *this; }              // false

  const std::vector<double>& max_lr() const { return max_lr_; }
  int64_t total_steps() const { return total_steps_; }
  double pct_start() const { return pct_start_; }
  AnnealStrategy anneal_strategy() const { return anneal_; }
  bool cycle_momentum() const { return cycle_momentum_; }
  const std::vector<double>& base_momentum() const { return base_momentum_; }
  const std::vector<double>& max_momentum() const { return max_momentum_; }
  double div_factor() const { return div_factor_; }
  double final_div_factor() const { return final_div_factor_; }
  bool three_phase() const { return three_phase_; }

 private:
  std::vector<double> max_lr_;
  int64_t total_steps_;
  double pct_start_ = 0.3;
  AnnealStrategy anneal_ = AnnealStrategy::Cos;
  bool cycle_momentum_ = true;
  std::vector<double> base_momentum_{0.85}, max_momentum_{0.95};
  double div_factor_ = 25, final_div_factor_ = 1e4;
  bool three_phase_ = false;
};

// std::invalid_argument naming the option and the value: a max_lr or momentum list of neither one
// nor the group count, a rate that is not finite and > 0, total_steps < 1, pct_start outside
// [0, 1], a factor not finite and > 0, or cycle_momentum with an optimizer that has none
// (Optimizer::has_momentum). A phase shorter than one step is passed over, as torch's; a step in a
// phase that starts and ends at the same step (where torch divides by zero) throws std::logic_error,
// at construction when it is step 0's (pct_start * total_steps = 1).
class OneCycleLR : public Scheduler {
 public:
  OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& options);
  // One batch: last_epoch() += 1 and the rates (and momenta) for the new count; std::logic_error
  // past total_steps, changing nothing.
  void step();
  int64_t last_epoch() const { return last_epoch_; }
  double get_last_lr() const { return optimizer_.get_lr(); }
  std::vector<double> get_last_lrs() const { return optimizer_.get_lrs(); }

  std::string name() const override { return "OneCycleLR"; }
  std::map<std::string, double> state_dict() const override;  // {"last_epoch"}
  // "last_epoch" at most total_steps.
  void load_state_dict(const std::map<std::string, double>& state) override;

 private:
  struct Phase {
    double end;          // the phase's last step (torch's end_step, a real number)
    int lr_from, lr_to;  // 0 initial, 1 max, 2 min (rates_'s columns)
    int m_from, m_to;    // 0 base, 1 max momentum
  };
  void apply(int64_t step);

  Optimizer& optimizer_;
  OneCycleLROptions options_;
  std::vector<std::vector<double>> rates_;  // per group: initial, max, min
  std::vector<double> base_momentum_, max_momentum_;  // per group
  std::vector<Phase> phases_;
  int64_t last_epoch_ = 0;
};

}  // namespace chainrule::optim
