#include "optim/rmsprop.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace chainrule::optim {

namespace {

// The options only these optimizers have (the rate and weight decay are checked per group by
// Optimizer); each check returns its value so that it can run before the base is built.
double in_range(const char* name, const char* what, double v, double low, double high) {
  if (!(v >= low && v <= high))
    throw std::invalid_argument(fmt::format("{}: {} must be in [{}, {}], got {}", name, what, low, high, v));
  return v;
}
double finite_positive(const char* name, const char* what, double v) {
  // An infinite eps makes every update 0: training would silently stand still.
  if (!(v > 0.0 && std::isfinite(v))) throw std::invalid_argument(fmt::format("{}: {} must be finite and > 0, got {}", name, what, v));
  return v;
}
double finite_non_negative(const char* name, const char* what, double v) {
  if (!(v >= 0.0 && std::isfinite(v))) throw std::invalid_argument(fmt::format("{}: {} must be finite and >= 0, got {}", name, what, v));
  return v;
}

const RMSpropOptions& checked(const RMSpropOptions& o) {
  in_range("RMSprop", "alpha", o.alpha(), 0.0, 1.0);
  finite_positive("RMSprop", "eps", o.eps());
  return o;
}

const AdagradOptions& checked(const AdagradOptions& o) {
  finite_non_negative("Adagrad", "lr_decay", o.lr_decay());
  finite_non_negative("Adagrad", "initial_accumulator_value", o.initial_accumulator_value());
  finite_positive("Adagrad", "eps", o.eps());
  return o;
}

Tensor counter(int64_t step) { return full({1}, static_cast<double>(step), DType::float64); }

}  // namespace

RMSprop::RMSprop(std::vector<Tensor> params, const RMSpropOptions& o)
    : RMSprop(std::vector<ParamGroup>{ParamGroup(std::move(params))}, o) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& o)
    : Optimizer(std::move(groups), checked(o).lr(), o.weight_decay(), "RMSprop"), options_(o), state_(params_.size()) {
  enable_momentum(o.momentum());
}

void RMSprop::check_momentum(double m) const { finite_non_negative("RMSprop", "momentum", m); }

const RMSprop::State& RMSprop::state(size_t i) const {
  check_index(i, "state");
  return state_[i];
}

std::vector<Optimizer::StateField> RMSprop::state_fields() const {
  std::vector<StateField> fields{{"step", true}, {"square_avg"}, {"momentum_buffer", false, true}};
  if (options_.centered()) fields.push_back({"grad_avg"});
  return fields;
}

std::vector<Tensor> RMSprop::get_state(size_t i) const {
  const State& s = state_[i];
  if (s.step == 0) return std::vector<Tensor>(state_fields().size());
  std::vector<Tensor> fields{counter(s.step), s.square_avg, s.momentum_buffer};
  if (options_.centered()) fields.push_back(s.grad_avg);
  return fields;
}

void RMSprop::set_state(size_t i, std::vector<Tensor> fields) {
  State s;
  if (fields[0].defined()) {
    s.step = static_cast<int64_t>(fields[0].item());
    s.square_avg = std::move(fields[1]);
    s.momentum_buffer = std::move(fields[2]);  // optional: undefined until a step had momentum
    if (options_.centered()) s.grad_avg = std::move(fields[3]);
  }
  state_[i] = std::move(s);
}

const Tensor* RMSprop::state_of(size_t i) const { return state_[i].step != 0 ? &state_[i].square_avg : nullptr; }

void RMSprop::check_states() const {
  check_all_states([this](size_t i) { return state_of(i); });
}

void RMSprop::step() {
  NoGradGuard no_grad;
  check_grads_and_states([this](size_t i) { return state_of(i); });  // every check first
  update_or_undo(state_, [this] { update(); }, [](const State& s, auto add) {
    add(s.square_avg);
    add(s.momentum_buffer);
    add(s.grad_avg);
  });
}

void RMSprop::update() {
  const double alpha = options_.alpha();
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    State& s = state_[i];
    const double momentum = momentum_of(i);
    if (s.step == 0) {
      s.square_avg = zeros_like(p);
      if (options_.centered()) s.grad_avg = zeros_like(p);
    }
    // torch makes the buffer at a parameter's first step when its group's momentum is > 0 (and
    // fails on a later step whose momentum was raised from 0); here it starts at 0 whenever the
    // momentum first is > 0, which is the same update: b = m * 0 + g / d.
    if (momentum > 0 && !s.momentum_buffer.defined()) s.momentum_buffer = zeros_like(p);
    ++s.step;
    if (const double weight_decay = weight_decay_of(i); weight_decay != 0.0) g = g + p * weight_decay;
    s.square_avg *= alpha;
    s.square_avg.add_(g * (1.0 - alpha) * g);  // (1 - alpha) g first, as torch's addcmul_ (no g^2 overflow)
    Tensor denom;
    if (options_.centered()) {
      s.grad_avg *= alpha;
      s.grad_avg.add_(g, 1.0 - alpha);
      denom = sqrt(s.square_avg - s.grad_avg * s.grad_avg) + options_.eps();
    } else {
      denom = sqrt(s.square_avg) + options_.eps();
    }
    const double lr = lr_of(i);
    if (momentum > 0) {
      s.momentum_buffer *= momentum;
      s.momentum_buffer.add_(g / denom);
      p.add_(s.momentum_buffer, -lr);
    } else {
      p.add_(g / denom, -lr);
    }
  }
}

Adagrad::Adagrad(std::vector<Tensor> params, const AdagradOptions& o)
    : Adagrad(std::vector<ParamGroup>{ParamGroup(std::move(params))}, o) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& o)
    : Optimizer(std::move(groups), checked(o).lr(), o.weight_decay(), "Adagrad"), options_(o), state_(params_.size()) {
  refuse_group_momenta();
}

const Adagrad::State& Adagrad::state(size_t i) const {
  check_index(i, "state");
  return state_[i];
}

std::vector<Optimizer::StateField> Adagrad::state_fields() const { return {{"step", true}, {"sum"}}; }

std::vector<Tensor> Adagrad::get_state(size_t i) const {
  const State& s = state_[i];
  if (s.step == 0) return std::vector<Tensor>(2);
  return {counter(s.step), s.sum};
}

void Adagrad::set_state(size_t i, std::vector<Tensor> fields) {
  State s;
  if (fields[0].defined()) {
    s.step = static_cast<int64_t>(fields[0].item());
    s.sum = std::move(fields[1]);
  }
  state_[i] = std::move(s);
}

const Tensor* Adagrad::state_of(size_t i) const { return state_[i].step != 0 ? &state_[i].sum : nullptr; }

void Adagrad::check_states() const {
  check_all_states([this](size_t i) { return state_of(i); });
}

void Adagrad::step() {
  NoGradGuard no_grad;
  check_grads_and_states([this](size_t i) { return state_of(i); });  // every check first
  update_or_undo(state_, [this] { update(); }, [](const State& s, auto add) { add(s.sum); });
}

void Adagrad::update() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    State& s = state_[i];
    if (s.step == 0) s.sum = full(p.shape(), options_.initial_accumulator_value(), p.dtype());
    ++s.step;
    if (const double weight_decay = weight_decay_of(i); weight_decay != 0.0) g = g + p * weight_decay;
    const double clr = lr_of(i) / (1.0 + static_cast<double>(s.step - 1) * options_.lr_decay());
    s.sum.add_(g * g);
    p.add_(g / (sqrt(s.sum) + options_.eps()), -clr);
  }
}

}  // namespace chainrule::optim
