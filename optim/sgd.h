#pragma once
// optim::SGD: stochastic gradient descent with optional momentum, dampening, Nesterov momentum and
// weight decay, with torch.optim.SGD's exact update. For each parameter p with gradient g, step t:
//
//   g <- g + weight_decay * p                        (if weight_decay != 0; L2 penalty)
//   if momentum != 0:
//     b <- g                                         (t = 1)
//     b <- momentum * b + (1 - dampening) * g        (t > 1)
//     g <- g + momentum * b    if nesterov,  else  g <- b
//   p <- p - lr * g
//
// With the defaults (no momentum, no decay) this is the lecture's update w <- w - lr * dC/dw:
//
//   optim::SGD opt(net->parameters(), optim::SGDOptions(0.5));                 // the slides' lr
//   optim::SGD opt2(net->parameters(), optim::SGDOptions(0.1).momentum(0.9).nesterov(true));
#include <vector>

#include "optim/optimizer.h"

namespace chainrule::optim {

struct SGDOptions {
  // Checked by SGD's constructor (std::invalid_argument with the bad value):
  //   lr >= 0; momentum in [0, 1); dampening in [0, 1]; weight_decay >= 0;
  //   nesterov needs momentum > 0 and dampening == 0 (as PyTorch).
  explicit SGDOptions(double lr) : lr_(lr) {}
  SGDOptions& lr(double v) { lr_ = v; return *this; }
  SGDOptions& momentum(double v) { momentum_ = v; return *this; }
  SGDOptions& dampening(double v) { dampening_ = v; return *this; }
  SGDOptions& nesterov(bool on) { nesterov_ = on; return *this; }
  SGDOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  bool nesterov() const { return nesterov_; }
  double weight_decay() const { return weight_decay_; }

 private:
  double lr_;
  double momentum_ = 0;
  double dampening_ = 0;
  bool nesterov_ = false;
  double weight_decay_ = 0;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  // Groups with their own lr and weight_decay (ParamGroup); the options give the rest.
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  void step() override;
  // Fused (see Optimizer::backward_and_step) when there is no momentum and every parameter
  // requires grad: parameter = (1 - lr * weight_decay) * parameter - lr * gradient, with a Dense
  // weight's gradient product added into the parameter by one gemm. Otherwise the three calls.
  void backward_and_step(const Tensor& loss) override;
  // The options, with lr() the current learning rate (the first group's; see get_lr(group)).
  SGDOptions options() const { return SGDOptions(options_).lr(get_lr()).momentum(get_momentum(0)); }
  // The momentum buffer b of parameter i (undefined before its first step with momentum).
  // std::out_of_range naming i and the parameter count past the last parameter.
  const Tensor& momentum_buffer(size_t i) const;

 protected:
  void check_states() const override;
  void check_momentum(double m) const override;  // [0, 1), and > 0 with nesterov
  std::vector<StateField> state_fields() const override { return {{"momentum_buffer"}}; }
  std::vector<Tensor> get_state(size_t i) const override { return {buffers_[i]}; }
  void set_state(size_t i, std::vector<Tensor> fields) override { buffers_[i] = std::move(fields[0]); }

 private:
  SGDOptions options_;
  std::vector<Tensor> buffers_;

  void update();  // step()'s writes, after its checks
};

}  // namespace chainrule::optim
