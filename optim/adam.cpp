#include "optim/adam.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace chainrule::optim {

namespace {

// The options only Adam has (the rate and weight decay are checked per group by Optimizer).
// beta1 is also the per-group momentum (Adam::check_momentum).
void check_beta1(const std::string& name, double beta1) {
  if (!(beta1 >= 0.0 && beta1 < 1.0))
    throw std::invalid_argument(fmt::format("{}: beta1 must be in [0, 1), got {}", name, beta1));
}

void check(const char* name, std::pair<double, double> betas, double eps) {
  check_beta1(name, betas.first);
  if (!(betas.second >= 0.0 && betas.second < 1.0))
    throw std::invalid_argument(fmt::format("{}: beta2 must be in [0, 1), got {}", name, betas.second));
  // An infinite eps makes every update 0: training would silently stand still.
  if (!(eps > 0.0 && std::isfinite(eps)))
    throw std::invalid_argument(fmt::format("{}: eps must be finite and > 0, got {}", name, eps));
}

}  // namespace

Adam::Adam(std::vector<ParamGroup> groups, double lr, std::pair<double, double> betas, double eps, double weight_decay,
           bool amsgrad, bool decoupled, const char* name)
    : Optimizer((check(name, betas, eps), std::move(groups)), lr, weight_decay, name),
      betas_(betas),
      eps_(eps),
      amsgrad_(amsgrad),
      decoupled_(decoupled),
      state_(params_.size()) {
  enable_momentum(betas.first);
}

void Adam::check_momentum(double beta1) const { check_beta1(name(), beta1); }

Adam::Adam(std::vector<Tensor> params, const AdamOptions& o)
    : Adam(std::vector<ParamGroup>{ParamGroup(std::move(params))}, o) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& o)
    : Adam(std::move(groups), o.lr(), o.betas(), o.eps(), o.weight_decay(), o.amsgrad(), false, "Adam") {}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& o)
    : AdamW(std::vector<ParamGroup>{ParamGroup(std::move(params))}, o) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& o)
    : Adam(std::move(groups), o.lr(), o.betas(), o.eps(), o.weight_decay(), o.amsgrad(), true, "AdamW") {}

const Adam::State& Adam::state(size_t i) const {
  check_index(i, "state");
  return state_[i];
}

std::vector<Optimizer::StateField> Adam::state_fields() const {
  std::vector<StateField> fields{{"step", true}, {"exp_avg"}, {"exp_avg_sq"}};
  if (amsgrad_) fields.push_back({"max_exp_avg_sq"});
  return fields;
}

std::vector<Tensor> Adam::get_state(size_t i) const {
  const State& s = state_[i];
  if (s.step == 0) return std::vector<Tensor>(state_fields().size());
  std::vector<Tensor> fields{full({1}, static_cast<double>(s.step), DType::float64), s.exp_avg, s.exp_avg_sq};
  if (amsgrad_) fields.push_back(s.max_exp_avg_sq);
  return fields;
}

void Adam::set_state(size_t i, std::vector<Tensor> fields) {
  State s;
  if (fields[0].defined()) {
    s.step = static_cast<int64_t>(fields[0].item());
    s.exp_avg = std::move(fields[1]);
    s.exp_avg_sq = std::move(fields[2]);
    if (amsgrad_) s.max_exp_avg_sq = std::move(fields[3]);
  }
  state_[i] = std::move(s);
}

const Tensor* Adam::state_of(size_t i) const { return state_[i].step != 0 ? &state_[i].exp_avg : nullptr; }

void Adam::check_states() const {
  check_all_states([this](size_t i) { return state_of(i); });
}

void Adam::step() {
  NoGradGuard no_grad;
  check_grads_and_states([this](size_t i) { return state_of(i); });  // every check first
  update_or_undo(state_, [this] { update(); }, [](const State& s, auto add) {
    add(s.exp_avg);
    add(s.exp_avg_sq);
    add(s.max_exp_avg_sq);
  });
}

void Adam::update() {
  const double beta2 = betas_.second;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const double beta1 = momentum_of(i);  // the group's (OneCycleLR cycles it)
    State& s = state_[i];
    if (s.step == 0) {
      s.exp_avg = zeros_like(p);
      s.exp_avg_sq = zeros_like(p);
      if (amsgrad_) s.max_exp_avg_sq = zeros_like(p);
    }
    ++s.step;
    const double lr = lr_of(i), weight_decay = weight_decay_of(i);
    if (weight_decay != 0.0) {
      if (decoupled_) p *= 1.0 - lr * weight_decay;
      else g = g + p * weight_decay;
    }
    s.exp_avg *= beta1;
    s.exp_avg.add_(g, 1.0 - beta1);
    s.exp_avg_sq *= beta2;
    // (1 - beta2) g first, then times g, as PyTorch's addcmul_: g * g overflows float32 for
    // |g| > 1.8e19, and an infinite second moment froze the parameter (every later step 0).
    s.exp_avg_sq.add_(g * (1.0 - beta2) * g);
    const double t = static_cast<double>(s.step);
    const double bias_correction1 = 1.0 - std::pow(beta1, t);
    const double bias_correction2 = 1.0 - std::pow(beta2, t);
    Tensor second = s.exp_avg_sq;
    if (amsgrad_) {
      // The elementwise maximum, exactly (as torch.maximum): a + relu(b - a) rounded, and made NaN
      // of two infinite moments (inf - inf), destroying the weights.
      s.max_exp_avg_sq = where(chainrule::step(s.exp_avg_sq - s.max_exp_avg_sq), s.exp_avg_sq, s.max_exp_avg_sq);
      second = s.max_exp_avg_sq;
    }
    // PyTorch's arrangement of the same formula: lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
    Tensor denom = sqrt(second) / std::sqrt(bias_correction2) + eps_;
    p.add_(s.exp_avg / denom, -lr / bias_correction1);
  }
}

}  // namespace chainrule::optim
