#pragma once
// optim::RMSprop and optim::Adagrad, with torch.optim.RMSprop's and torch.optim.Adagrad's updates.
// For each parameter p with gradient g, its own step count t = 1, 2, ... (counted only on steps
// where p has a gradient):
//
//   RMSprop (Hinton's lecture 6e; centered: Graves 2013):
//     g <- g + weight_decay * p                          (L2 penalty)
//     v <- alpha * v + (1 - alpha) * g^2                 (square_avg, v_0 = 0)
//     centered: a <- alpha * a + (1 - alpha) * g         (grad_avg, a_0 = 0)
//               d = sqrt(v - a^2) + eps;   else d = sqrt(v) + eps
//     momentum > 0: b <- momentum * b + g / d;  p <- p - lr * b   (momentum_buffer, b_0 = 0)
//     else:         p <- p - lr * g / d
//
//   Adagrad (Duchi et al. 2011):
//     g <- g + weight_decay * p
//     s <- s + g^2                                       (sum, s_0 = initial_accumulator_value)
//     p <- p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
//
//   optim::RMSprop rms(model->parameters(), optim::RMSpropOptions(1e-2).momentum(0.9).centered(true));
//   optim::Adagrad ada(model->parameters(), optim::AdagradOptions(1e-2).lr_decay(1e-4));
#include <cstdint>
#include <vector>

#include "optim/optimizer.h"

namespace chainrule::optim {

// PyTorch's defaults: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered false.
// Checked by RMSprop (std::invalid_argument with the value): lr >= 0, alpha in [0, 1], eps finite
// and > 0, weight_decay >= 0, momentum >= 0 and finite. The momentum is each group's
// (Optimizer::set_momentum; OneCycleLR and CyclicLR cycle it, as torch's): a parameter's buffer
// is made at its first step whose group momentum is > 0, as torch makes it at the first step.
struct RMSpropOptions {
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  RMSpropOptions& lr(double v) { lr_ = v; return *this; }
  RMSpropOptions& alpha(double v) { alpha_ = v; return *this; }
  RMSpropOptions& eps(double v) { eps_ = v; return *this; }
  RMSpropOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  RMSpropOptions& momentum(double v) { momentum_ = v; return *this; }
  RMSpropOptions& centered(bool on) { centered_ = on; return *this; }
  double lr() const { return lr_; }
  double alpha() const { return alpha_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  double momentum() const { return momentum_; }
  bool centered() const { return centered_; }

 private:
  double lr_, alpha_ = 0.99, eps_ = 1e-8, weight_decay_ = 0.0, momentum_ = 0.0;
  bool centered_ = false;
};

class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Tensor> params, const RMSpropOptions& options);
  // Groups with their own lr and weight_decay (ParamGroup); the options give the rest.
  RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& options);
  void step() override;

  // Per-parameter state (torch's names in state_dict: "<i>.step", "<i>.square_avg", and
  // "<i>.momentum_buffer" once a step had momentum, "<i>.grad_avg" when centered); undefined
  // tensors and t = 0 before the parameter's first step.
  struct State {
    int64_t step = 0;
    Tensor square_avg, momentum_buffer, grad_avg;
  };
  // std::out_of_range naming i and the parameter count past the last parameter.
  const State& state(size_t i) const;

 protected:
  void check_states() const override;
  void check_momentum(double m) const override;
  std::vector<StateField> state_fields() const override;
  std::vector<Tensor> get_state(size_t i) const override;
  void set_state(size_t i, std::vector<Tensor> fields) override;

 private:
  RMSpropOptions options_;
  std::vector<State> state_;
  const Tensor* state_of(size_t i) const;  // for the checks (Optimizer::check_grads_and_states)
  void update();
};

// PyTorch's defaults: lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0, eps 1e-10.
// Checked by Adagrad: lr >= 0, lr_decay >= 0 and finite, weight_decay >= 0,
// initial_accumulator_value >= 0 and finite, eps finite and > 0.
struct AdagradOptions {
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  AdagradOptions& lr(double v) { lr_ = v; return *this; }
  AdagradOptions& lr_decay(double v) { lr_decay_ = v; return *this; }
  AdagradOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdagradOptions& initial_accumulator_value(double v) { initial_accumulator_value_ = v; return *this; }
  AdagradOptions& eps(double v) { eps_ = v; return *this; }
  double lr() const { return lr_; }
  double lr_decay() const { return lr_decay_; }
  double weight_decay() const { return weight_decay_; }
  double initial_accumulator_value() const { return initial_accumulator_value_; }
  double eps() const { return eps_; }

 private:
  double lr_, lr_decay_ = 0.0, weight_decay_ = 0.0, initial_accumulator_value_ = 0.0, eps_ = 1e-10;
};

class Adagrad : public Optimizer {
 public:
  Adagrad(std::vector<Tensor> params, const AdagradOptions& options);
  Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& options);
  void step() override;

  // Per-parameter state ("<i>.step", "<i>.sum" in state_dict, as torch's); undefined and t = 0
  // before the parameter's first step (torch fills sum at construction; the first step here
  // starts it at initial_accumulator_value, which is the same update).
  struct State {
    int64_t step = 0;
    Tensor sum;
  };
  const State& state(size_t i) const;

 protected:
  void check_states() const override;
  std::vector<StateField> state_fields() const override;
  std::vector<Tensor> get_state(size_t i) const override;
  void set_state(size_t i, std::vector<Tensor> fields) override;

 private:
  AdagradOptions options_;
  std::vector<State> state_;
  const Tensor* state_of(size_t i) const;  // for the checks (Optimizer::check_grads_and_states)
  void update();
};

}  // namespace chainrule::optim
