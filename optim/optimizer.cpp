#include "optim/optimizer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <optional>
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

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  out.emplace("lr", full({1}, lr_, DType::float64));
  const std::vector<StateField> fields = state_fields();
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::vector<Tensor> values = get_state(i);
    for (size_t f = 0; f < fields.size(); ++f)
      if (values[f].defined()) out.emplace(fmt::format("{}.{}", i, fields[f].name), values[f].detach().clone());
  }
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  const std::vector<StateField> fields = state_fields();
  std::vector<std::string> problems;
  const auto problem = [&](std::string text) { problems.push_back(std::move(text)); };
  // A one-element float64 tensor's value, or a problem.
  const auto number = [&](const std::string& name, const Tensor& t) -> std::optional<double> {
    if (t.numel() != 1 || t.dtype() != DType::float64) {
      problem(fmt::format("\"{}\" must be one float64 number, got {} {}", name, dtype_name(t.dtype()), t.shape().str()));
      return std::nullopt;
    }
    return t.item();
  };
  double lr = lr_;
  std::vector<std::vector<Tensor>> values(params_.size(), std::vector<Tensor>(fields.size()));
  if (!state.contains("lr")) problem("missing \"lr\"");
  for (const auto& [name, t] : state) {
    if (!t.defined()) {
      problem(fmt::format("\"{}\" is undefined", name));
      continue;
    }
    if (name == "lr") {
      if (const auto v = number(name, t)) {
        if (*v >= 0.0 && std::isfinite(*v)) lr = *v;
        else problem(fmt::format("\"lr\" must be finite and >= 0, got {}", *v));
      }
      continue;
    }
    // "<i>.<field>", i written as state_dict() writes it.
    const size_t dot = name.find('.');
    size_t i = 0, f = fields.size();
    const bool digits = dot != std::string::npos && dot > 0 && dot <= 9 &&
                        name.find_first_not_of("0123456789") == dot;
    if (digits) {
      i = std::stoul(name.substr(0, dot));
      for (size_t k = 0; k < fields.size(); ++k)
        if (name.compare(dot + 1, std::string::npos, fields[k].name) == 0) f = k;
    }
    if (!digits || f == fields.size() || fmt::format("{}.{}", i, fields[f].name) != name) {
      problem(fmt::format("unexpected \"{}\"", name));
      continue;
    }
    if (i >= params_.size()) {
      problem(fmt::format("\"{}\": parameter {} of {}", name, i, params_.size()));
      continue;
    }
    const Tensor& p = params_[i];
    if (fields[f].counter) {
      const auto v = number(name, t);
      if (!v) continue;
      if (!(*v >= 1.0 && *v <= 9007199254740992.0 && std::floor(*v) == *v)) {
        problem(fmt::format("\"{}\" must be a whole number >= 1, got {}", name, *v));
        continue;
      }
    } else if (!(t.shape() == p.shape()) || t.dtype() != p.dtype()) {
      problem(fmt::format("\"{}\": {} {} in the state vs {} {} for parameter {}", name, dtype_name(t.dtype()),
                          t.shape().str(), dtype_name(p.dtype()), p.shape().str(), i));
      continue;
    }
    values[i][f] = t;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    std::vector<std::string> have, lack;
    for (size_t f = 0; f < fields.size(); ++f) (values[i][f].defined() ? have : lack).push_back(fields[f].name);
    if (!have.empty() && !lack.empty())
      problem(fmt::format("parameter {} has {} but not {}", i, fmt::join(have, ", "), fmt::join(lack, ", ")));
  }
  if (!problems.empty())
    throw std::invalid_argument(fmt::format("{}::load_state_dict: nothing was loaded: {}", name_,
                                            fmt::join(problems, "; ")));
  lr_ = lr;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (Tensor& t : values[i])
      if (t.defined()) t = t.detach().clone();
    set_state(i, std::move(values[i]));
  }
}

void Optimizer::check_index(size_t i, const char* accessor) const {
  if (i >= params_.size())
    throw std::out_of_range(fmt::format("{}::{}: parameter {} of {}", name_, accessor, i, params_.size()));
}

}  // namespace chainrule::optim
