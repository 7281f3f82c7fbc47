#include "optim/sgd.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace chainrule::optim {

namespace {

// The momentum's range, for the options and for a group's momentum set later (SGD::check_momentum).
void check_momentum_range(double m) {
  if (!(m >= 0.0 && m < 1.0)) throw std::invalid_argument(fmt::format("SGD: momentum must be in [0, 1), got {}", m));
}

// The options only SGD has (the rate and weight decay are checked per group by Optimizer).
const SGDOptions& checked(const SGDOptions& o) {
  check_momentum_range(o.momentum());
  if (!(o.dampening() >= 0.0 && o.dampening() <= 1.0))
    throw std::invalid_argument(fmt::format("SGD: dampening must be in [0, 1], got {}", o.dampening()));
  if (o.nesterov() && (o.momentum() <= 0.0 || o.dampening() != 0.0))
    throw std::invalid_argument(fmt::format("SGD: nesterov needs momentum > 0 and dampening = 0, got momentum={} "
                                            "dampening={}",
                                            o.momentum(), o.dampening()));
  return o;
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer(std::move(groups), checked(options).lr(), options.weight_decay(), "SGD"),
      options_(options),
      buffers_(params_.size()) {
  enable_momentum(options.momentum());
}

void SGD::check_momentum(double m) const {
  check_momentum_range(m);
  if (options_.nesterov() && m <= 0.0)
    throw std::invalid_argument(fmt::format("SGD: nesterov needs momentum > 0, got {}", m));
}

const Tensor& SGD::momentum_buffer(size_t i) const {
  check_index(i, "momentum_buffer");
  return buffers_[i];
}

void SGD::check_states() const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (buffers_[i].defined()) check_state(i, buffers_[i], "momentum buffer");
}

void SGD::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {  // every check first (see Optimizer::check_state)
    const Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    check_grad(i, g);
    if (momentum_of(i) != 0.0 && buffers_[i].defined()) check_state(i, buffers_[i], "momentum buffer");
  }
  update_or_undo(buffers_, [this] { update(); }, [](const Tensor& b, auto add) { add(b); });
}

void SGD::update() {
  const double dampening = options_.dampening();
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const double wd = weight_decay_of(i), momentum = momentum_of(i);
    // Out of place: the gradient tensor belongs to the user (it is read again after step()).
    if (wd != 0.0) g = g + p * wd;
    if (momentum != 0.0) {
      Tensor& b = buffers_[i];
      if (!b.defined()) {
        b = g.detach();  // a copy: the buffer is updated in place from here on
      } else {
        b *= momentum;
        b.add_(g, 1.0 - dampening);
      }
      g = options_.nesterov() ? g + b * momentum : b;
    }
    p.add_(g, -lr_of(i));
  }
}

void SGD::backward_and_step(const Tensor& loss) {
  const std::vector<double> momenta = get_momenta();
  const bool fusable = std::all_of(momenta.begin(), momenta.end(), [](double m) { return m == 0.0; }) &&
                       std::all_of(params_.begin(), params_.end(), [](const Tensor& p) { return p.requires_grad(); });
  if (!fusable) return Optimizer::backward_and_step(loss);
  std::vector<ParamUpdate> updates;
  updates.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i)
    updates.push_back({params_[i], -lr_of(i), 1.0 - lr_of(i) * weight_decay_of(i)});
  backward_and_update(loss, updates);
}

}  // namespace chainrule::optim
