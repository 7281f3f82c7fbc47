#pragma once
// optim::Adam and optim::AdamW, with torch.optim.Adam's / AdamW's update (Kingma & Ba 2015;
// Loshchilov & Hutter 2019 for AdamW; Reddi et al. 2018 for AMSGrad). For each parameter p with
// gradient g, its own step count t = 1, 2, ... (counted only on steps where p has a gradient):
//
//   Adam:  g <- g + weight_decay * p                 (L2 penalty, through the moments)
//   AdamW: p <- p * (1 - lr * weight_decay)          (decoupled decay, before the moments)
//   m <- beta1 * m + (1 - beta1) * g                 (m_0 = 0)
//   v <- beta2 * v + (1 - beta2) * g^2               (v_0 = 0)
//   v_max <- max(v_max, v)                           (amsgrad only; v_max,0 = 0)
//   m_hat = m / (1 - beta1^t)
//   v_hat = v / (1 - beta2^t)     (amsgrad: v_max / (1 - beta2^t), as PyTorch's implementation)
//   p <- p - lr * m_hat / (sqrt(v_hat) + eps)
//
//   optim::Adam adam(model->parameters(), optim::AdamOptions(1e-3));
//   optim::AdamW adamw(model->parameters(), optim::AdamWOptions(1e-3).weight_decay(0.05).amsgrad(true));
#include <cstdint>
#include <utility>
#include <vector>

#include "optim/optimizer.h"

namespace chainrule::optim {

// The options shared by Adam and AdamW; `Self` keeps the fluent setters returning the derived type.
// Checked by the optimizer's constructor (std::invalid_argument with the bad value):
//   lr >= 0; each beta in [0, 1); eps > 0; weight_decay >= 0.
template <class Self>
struct AdamOptionsBase {
  explicit AdamOptionsBase(double lr, double weight_decay) : lr_(lr), weight_decay_(weight_decay) {}
  Self& lr(double v) { lr_ = v; return self(); }
  Self& betas(std::pair<double, double> b) { betas_ = b; return self(); }
  Self& eps(double v) { eps_ = v; return self(); }
  Self& weight_decay(double v) { weight_decay_ = v; return self(); }
  Self& amsgrad(bool on) { amsgrad_ = on; return self(); }
  double lr() const { return lr_; }
  std::pair<double, double> betas() const { return betas_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }

 private:
  Self& self() { return static_cast<Self&>(*this); }
  double lr_;
  std::pair<double, double> betas_{0.9, 0.999};
  double eps_ = 1e-8;
  double weight_decay_;
  bool amsgrad_ = false;
};

// PyTorch's Adam defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, amsgrad false.
struct AdamOptions : AdamOptionsBase<AdamOptions> {
  explicit AdamOptions(double lr = 1e-3) : AdamOptionsBase(lr, 0.0) {}
};
// PyTorch's AdamW defaults: as Adam's, but weight_decay 1e-2.
struct AdamWOptions : AdamOptionsBase<AdamWOptions> {
  explicit AdamWOptions(double lr = 1e-3) : AdamOptionsBase(lr, 1e-2) {}
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options);
  // Groups with their own lr and weight_decay (ParamGroup); the options give the rest.
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options);
  void step() override;

  // Per-parameter state: step count t and the moments m, v (and v_max with amsgrad); undefined
  // tensors and t = 0 before the parameter's first step.
  struct State {
    int64_t step = 0;
    Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;
  };
  // std::out_of_range naming i and the parameter count past the last parameter.
  const State& state(size_t i) const;

 protected:
  void check_states() const override;
  void check_momentum(double beta1) const override;  // [0, 1)
  std::vector<StateField> state_fields() const override;
  std::vector<Tensor> get_state(size_t i) const override;
  void set_state(size_t i, std::vector<Tensor> fields) override;
  // The shared implementation: `decoupled` selects AdamW's decay.
  Adam(std::vector<ParamGroup> groups, double lr, std::pair<double, double> betas, double eps, double weight_decay,
       bool amsgrad, bool decoupled, const char* name);

 private:
  std::pair<double, double> betas_;
  double eps_;
  bool amsgrad_, decoupled_;
  std::vector<State> state_;

  const Tensor* state_of(size_t i) const;  // for the checks (Optimizer::check_grads_and_states)
  void update();  // step()'s writes, after its checks
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options);
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options);
};

}  // namespace chainrule::optim
