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

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, std::string name)
    : name_(std::move(name)) {
  checked_lr(lr, name_);
  if (groups.empty()) throw std::invalid_argument(fmt::format("{}: got no parameter groups", name_));
  for (size_t g = 0; g < groups.size(); ++g) {
    ParamGroup& group = groups[g];
    if (group.params.empty())
      throw std::invalid_argument(fmt::format("{}: got an empty parameter list{} (did the model register its "
                                              "parameters?)",
                                              name_, groups.size() > 1 ? fmt::format(" in group {}", g) : ""));
    const double group_lr = group.lr().value_or(lr), group_decay = group.weight_decay().value_or(weight_decay);
    checked_lr(group_lr, groups.size() > 1 ? fmt::format("{} group {}", name_, g) : name_);
    if (!(group_decay >= 0.0 && std::isfinite(group_decay)))
      throw std::invalid_argument(fmt::format("{}: weight_decay must be finite and >= 0, got {}{}", name_, group_decay,
                                              groups.size() > 1 ? fmt::format(" (group {})", g) : ""));
    groups_.push_back({group_lr, group_decay});
    group_momenta_.push_back(group.momentum());
    for (Tensor& p : group.params) {
      params_.push_back(std::move(p));
      group_of_.push_back(g);
    }
  }
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

void Optimizer::set_lr(double lr) { set_lr(std::vector<double>(groups_.size(), lr)); }

void Optimizer::check_group(size_t group, const char* accessor) const {
  if (group >= groups_.size())
    throw std::out_of_range(fmt::format("{}::{}: group {} of {}", name_, accessor, group, groups_.size()));
}

double Optimizer::get_lr(size_t group) const {
  check_group(group, "get_lr");
  return groups_[group].lr;
}

void Optimizer::set_lr(size_t group, double lr) {
  check_group(group, "set_lr");
  groups_[group].lr = checked_lr(lr, name_);
}

void Optimizer::set_lr(const std::vector<double>& rates) {
  if (rates.size() != groups_.size())
    throw std::invalid_argument(fmt::format("{}::set_lr: {} rate(s) for {} group(s)", name_, rates.size(),
                                            groups_.size()));
  for (double lr : rates) checked_lr(lr, name_);
  for (size_t g = 0; g < groups_.size(); ++g) groups_[g].lr = rates[g];
}

std::vector<double> Optimizer::get_lrs() const {
  std::vector<double> rates;
  for (const Group& g : groups_) rates.push_back(g.lr);
  return rates;
}

void Optimizer::enable_momentum(double m) {
  check_momentum(m);
  std::vector<double> momenta(groups_.size(), m);
  for (size_t g = 0; g < momenta.size(); ++g) {
    if (!group_momenta_[g]) continue;
    momenta[g] = *group_momenta_[g];
    try {
      check_momentum(momenta[g]);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("{} (the momentum of group {})", e.what(), g));
    }
  }
  momenta_ = std::move(momenta);
}

void Optimizer::refuse_group_momenta() const {
  for (size_t g = 0; g < group_momenta_.size(); ++g)
    if (group_momenta_[g])
      throw std::invalid_argument(
          fmt::format("{}: group {} sets a momentum ({}), and {} has none", name_, g, *group_momenta_[g], name_));
}

void Optimizer::check_momentum(double m) const {
  if (!(m >= 0.0 && m < 1.0)) throw std::invalid_argument(fmt::format("{}: momentum must be in [0, 1), got {}", name_, m));
}

double Optimizer::get_momentum(size_t group) const {
  if (!has_momentum()) throw std::logic_error(fmt::format("{}::get_momentum: {} has no momentum", name_, name_));
  check_group(group, "get_momentum");
  return momenta_[group];
}

std::vector<double> Optimizer::get_momenta() const {
  if (!has_momentum()) throw std::logic_error(fmt::format("{}::get_momenta: {} has no momentum", name_, name_));
  return momenta_;
}

void Optimizer::set_momentum(size_t group, double momentum) {
  if (!has_momentum()) throw std::logic_error(fmt::format("{}::set_momentum: {} has no momentum", name_, name_));
  check_group(group, "set_momentum");
  check_momentum(momentum);
  momenta_[group] = momentum;
}

void Optimizer::set_momenta(const std::vector<double>& momenta) {
  if (!has_momentum()) throw std::logic_error(fmt::format("{}::set_momenta: {} has no momentum", name_, name_));
  if (momenta.size() != groups_.size())
    throw std::invalid_argument(
        fmt::format("{}::set_momenta: {} momenta for {} group(s)", name_, momenta.size(), groups_.size()));
  for (double m : momenta) check_momentum(m);
  momenta_ = momenta;
}

double Optimizer::weight_decay(size_t group) const {
  check_group(group, "weight_decay");
  return groups_[group].weight_decay;
}

size_t Optimizer::group_of(size_t i) const {
  check_index(i, "group_of");
  return group_of_[i];
}

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
  const std::vector<double> rates = get_lrs();
  out.emplace("lr", from_vector(rates, {static_cast<int64_t>(rates.size())}, DType::float64));
  if (has_momentum()) out.emplace("momentum", from_vector(momenta_, {static_cast<int64_t>(momenta_.size())}, DType::float64));
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
  std::vector<double> rates = get_lrs();
  std::optional<std::vector<double>> momenta;
  std::vector<std::vector<Tensor>> values(params_.size(), std::vector<Tensor>(fields.size()));
  if (!state.contains("lr")) problem("missing \"lr\"");
  for (const auto& [name, t] : state) {
    if (!t.defined()) {
      problem(fmt::format("\"{}\" is undefined", name));
      continue;
    }
    if (name == "momentum" && has_momentum()) {  // one per group
      if (t.dim() != 1 || t.size(0) != static_cast<int64_t>(groups_.size()) || t.dtype() != DType::float64) {
        problem(fmt::format("\"momentum\" must hold {} float64 number(s), one per group, got {} {}", groups_.size(),
                            dtype_name(t.dtype()), t.shape().str()));
        continue;
      }
      momenta = t.to_vector();
      for (double m : *momenta) {
        try {
          check_momentum(m);
        } catch (const std::invalid_argument& e) {
          problem(fmt::format("\"momentum\": {}", e.what()));
        }
      }
      continue;
    }
    if (name == "lr") {  // one rate per group
      if (t.dim() != 1 || t.size(0) != static_cast<int64_t>(groups_.size()) || t.dtype() != DType::float64) {
        problem(fmt::format("\"lr\" must hold {} float64 number(s), one per group, got {} {}", groups_.size(),
                            dtype_name(t.dtype()), t.shape().str()));
        continue;
      }
      const std::vector<double> given = t.to_vector();
      for (size_t g = 0; g < given.size(); ++g) {
        if (given[g] >= 0.0 && std::isfinite(given[g])) rates[g] = given[g];
        else problem(fmt::format("\"lr\" must be finite and >= 0, got {}{}", given[g],
                                 given.size() > 1 ? fmt::format(" (group {})", g) : ""));
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
    std::vector<std::string> have, lack, extra;  // extra: optional fields given
    for (size_t f = 0; f < fields.size(); ++f) {
      if (fields[f].optional) {
        if (values[i][f].defined()) extra.push_back(fields[f].name);
      } else {
        (values[i][f].defined() ? have : lack).push_back(fields[f].name);
      }
    }
    if (!lack.empty() && !(have.empty() && extra.empty())) {
      have.insert(have.end(), extra.begin(), extra.end());
      problem(fmt::format("parameter {} has {} but not {}", i, fmt::join(have, ", "), fmt::join(lack, ", ")));
    }
  }
  if (!problems.empty())
    throw std::invalid_argument(fmt::format("{}::load_state_dict: nothing was loaded: {}", name_,
                                            fmt::join(problems, "; ")));
  set_lr(rates);
  if (momenta) momenta_ = *momenta;
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
