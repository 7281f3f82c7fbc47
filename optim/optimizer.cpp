#include "optim/optimizer.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace chainrule::optim {

namespace {

double checked_lr(double lr, const std::string& name) {
  if (!(lr >= 0.0 && std::isfinite(lr)))
    throw std::invalid_argument(fmt::format("{}: learning rate must be finite and >= 0, got {}", name, lr));
  return lr;
}

}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params, double lr, std::string name)
    : params_(std::move(params)), lr_(checked_lr(lr, name)), name_(std::move(name)) {
  if (params_.empty())
    throw std::invalid_argument(fmt::format("{}: got an empty parameter list (did the model register its "
                                            "parameters?)",
                                            name_));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].defined())
      throw std::invalid_argument(fmt::format("{}: parameter {} is undefined", name_, i));
    if (!params_[i].is_leaf())
      throw std::invalid_argument(fmt::format("{}: parameter {} (shape {}) is the result of '{}', not a leaf; "
                                              "optimizers update leaf tensors",
                                              name_, i, params_[i].shape().str(), params_[i].grad_fn_name()));
    for (size_t j = 0; j < i; ++j)
      if (params_[j].impl() == params_[i].impl())
        throw std::invalid_argument(fmt::format("{}: parameter {} appears twice (also at {})", name_, i, j));
  }
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::backward_and_step(const Tensor& loss) {
  check_states();
  loss.backward();
  step();
  zero_grad();
}

void Optimizer::set_lr(double lr) { lr_ = checked_lr(lr, name_); }

void Optimizer::check_grad(size_t i, const Tensor& grad) const {
  const Tensor& p = params_[i];
  if (!(grad.shape() == p.shape()) || grad.dtype() != p.dtype())
    throw std::invalid_argument(fmt::format("{}: parameter {} is {} {} but its gradient is {} {}", name_, i,
                                            dtype_name(p.dtype()), p.shape().str(), dtype_name(grad.dtype()),
                                            grad.shape().str()));
}

void Optimizer::check_state(size_t i, const Tensor& state, const char* what) const {
  const Tensor& p = params_[i];
  if (state.dtype() != p.dtype())
    throw std::invalid_argument(fmt::format("{}: parameter {} is now {} but its {} is {}; build the optimizer "
                                            "after converting the model",
                                            name_, i, dtype_name(p.dtype()), what, dtype_name(state.dtype())));
}

void Optimizer::Snapshot::add(const Tensor& t) {
  if (!t.defined()) return;
  const detail::Storage& s = *t.impl()->storage;
  const auto* data = static_cast<const std::byte*>(s.data);
  saved_.push_back({t, std::vector<std::byte>(data, data + t.numel() * dtype_size(t.dtype())), s.version});
}

void Optimizer::Snapshot::restore() noexcept {
  for (Saved& s : saved_) {
    detail::Storage& storage = *s.tensor.impl()->storage;
    std::memcpy(storage.data, s.bytes.data(), s.bytes.size());
    storage.version = s.version;
  }
}

void Optimizer::check_index(size_t i, const char* accessor) const {
  if (i >= params_.size())
    throw std::out_of_range(fmt::format("{}::{}: parameter {} of {}", name_, accessor, i, params_.size()));
}

}  // namespace chainrule::optim
