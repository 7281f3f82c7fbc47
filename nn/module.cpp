#include "nn/module.h"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "autograd/tensor_impl.h"

namespace chainrule::nn {
namespace {

// Appends `entry` unless its tensor is listed already: a layer shared by two parents is listed once,
// under its first name (as torch's remove_duplicate=True), so that an optimizer does not step the
// same tensor twice.
void append_unique(std::vector<NamedTensor>& out, NamedTensor entry) {
  for (const auto& kept : out)
    if (kept.second.impl() == entry.second.impl()) return;
  out.push_back(std::move(entry));
}

std::vector<Tensor> tensors_of(std::vector<NamedTensor> named) {
  std::vector<Tensor> out;
  for (auto& [n, t] : named) out.push_back(std::move(t));
  return out;
}

}  // namespace

Module::Module(std::string type_name) : name_(std::move(type_name)) {}

Tensor Module::forward(const Tensor&) {
  throw std::logic_error(fmt::format("{}::forward: this module defines no forward(); override "
                                     "Tensor forward(const Tensor&) in the subclass",
                                     name_));
}

void Module::check_new_name(const std::string& name, const char* what) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw std::invalid_argument(fmt::format("{}::{}: invalid name '{}' (must be non-empty and contain no '.')",
                                            name_, what, name));
  for (const auto& [n, p] : parameters_)
    if (n == name)
      throw std::invalid_argument(fmt::format("{}::{}: a parameter named '{}' already exists", name_, what, name));
  for (const Buffer& b : buffers_)
    if (b.name == name)
      throw std::invalid_argument(fmt::format("{}::{}: a buffer named '{}' already exists", name_, what, name));
  for (const auto& [n, c] : children_)
    if (n == name)
      throw std::invalid_argument(fmt::format("{}::{}: a module named '{}' already exists", name_, what, name));
}

void Module::check_leaf(const std::string& name, const Tensor& tensor, const char* what) const {
  if (!tensor.defined())
    throw std::invalid_argument(fmt::format("{}::{}: tensor '{}' is undefined", name_, what, name));
  if (!tensor.is_leaf())
    throw std::invalid_argument(fmt::format("{}::{}: tensor '{}' is the result of '{}', not a leaf; pass t.detach()",
                                            name_, what, name, tensor.grad_fn_name()));
}

Tensor Module::register_parameter(std::string name, Tensor tensor, bool requires_grad) {
  check_new_name(name, "register_parameter");
  check_leaf(name, tensor, "register_parameter");
  tensor.set_requires_grad(requires_grad);
  parameters_.emplace_back(std::move(name), tensor);
  return tensor;
}

Tensor Module::replace_parameter(const std::string& name, const Tensor& tensor) {
  auto it = std::find_if(parameters_.begin(), parameters_.end(), [&](const NamedTensor& p) { return p.first == name; });
  if (it == parameters_.end())
    throw std::invalid_argument(fmt::format("{}::replace_parameter: no parameter named '{}'", name_, name));
  check_leaf(name, tensor, "replace_parameter");
  const Tensor& old = it->second;
  if (!(tensor.shape() == old.shape()) || tensor.dtype() != old.dtype())
    throw std::invalid_argument(fmt::format("{}::replace_parameter: '{}' is {} {}, the tensor given is {} {}", name_,
                                            name, dtype_name(old.dtype()), old.shape().str(),
                                            dtype_name(tensor.dtype()), tensor.shape().str()));
  it->second = tensor;
  return tensor;
}

Tensor Module::register_buffer(std::string name, Tensor tensor, bool persistent) {
  check_new_name(name, "register_buffer");
  check_leaf(name, tensor, "register_buffer");
  buffers_.push_back({std::move(name), tensor, persistent});
  return tensor;
}

void Module::mark_optional_in_files(const std::string& name) {
  const auto it = std::find_if(buffers_.begin(), buffers_.end(), [&](const Buffer& b) { return b.name == name; });
  if (it == buffers_.end() || !it->persistent)
    throw std::invalid_argument(
        fmt::format("{}::mark_optional_in_files: '{}' is not a persistent buffer of this module", name_, name));
  it->optional_in_files = true;
}

void Module::add_child(std::string name, std::shared_ptr<Module> module) {
  check_new_name(name, "register_module");
  if (module.get() == this)
    throw std::invalid_argument(fmt::format("{}::register_module: a module cannot contain itself", name_));
  // A cycle would make every walk of the tree (parameters, printing, train()) recurse forever, and
  // the modules own each other, so they would never be freed.
  if (module->contains(this))
    throw std::invalid_argument(fmt::format("{}::register_module: '{}' ({}) contains this module already; a "
                                            "module cannot contain itself",
                                            name_, name, module->name()));
  children_.emplace_back(std::move(name), std::move(module));
}

bool Module::contains(const Module* m) const {
  for (const auto& [n, c] : children_)
    if (c.get() == m || c->contains(m)) return true;
  return false;
}

void Module::append_named(const std::string& prefix, std::vector<NamedTensor>& out, Which which, bool recurse) const {
  if (which == Which::parameters) {
    for (const auto& [n, p] : parameters_) out.emplace_back(prefix + n, p);
  } else {
    for (const Buffer& b : buffers_)
      if (which == Which::buffers || (b.persistent && (which != Which::optional_buffers || b.optional_in_files)))
        out.emplace_back(prefix + b.name, b.tensor);
  }
  if (!recurse) return;
  for (const auto& [n, c] : children_) c->append_named(prefix + n + ".", out, which, true);
}

std::vector<NamedTensor> Module::collect(Which which, bool recurse) const {
  std::vector<NamedTensor> all;
  append_named("", all, which, recurse);
  std::vector<NamedTensor> out;
  for (auto& entry : all) append_unique(out, std::move(entry));
  return out;
}

std::vector<NamedTensor> Module::named_parameters(bool recurse) const {
  return collect(Which::parameters, recurse);
}

std::vector<Tensor> Module::parameters(bool recurse) const { return tensors_of(named_parameters(recurse)); }

std::vector<NamedTensor> Module::named_buffers(bool recurse) const {
  return collect(Which::buffers, recurse);
}

std::vector<Tensor> Module::buffers(bool recurse) const { return tensors_of(named_buffers(recurse)); }

std::vector<NamedTensor> Module::named_state() const {
  std::vector<NamedTensor> out = named_parameters();
  for (auto& entry : collect(Which::persistent_buffers, true)) append_unique(out, std::move(entry));
  return out;
}

std::vector<std::string> Module::optional_state() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : collect(Which::optional_buffers, true)) out.push_back(name);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [n, c] : children_) out.push_back(c);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

void Module::to(DType dtype) {
  // Every parameter is converted before the first is changed: a conversion that throws (anomaly
  // mode on a float64 value beyond float32's range) leaves the whole model as it was.
  std::vector<NamedTensor> named = named_parameters();
  for (auto& entry : named_buffers()) append_unique(named, std::move(entry));
  std::vector<Tensor> params = tensors_of(std::move(named));
  std::vector<Tensor> converted(params.size());
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].dtype() != dtype) converted[i] = params[i].detach().to(dtype);
  for (size_t i = 0; i < params.size(); ++i) {
    if (!converted[i].defined()) continue;
    // The autograd API has no way to change a tensor's dtype in place (torch's param.data = ...),
    // and replacing the handle would leave subclasses' members pointing at the old tensor. So the
    // converted storage is moved into the parameter's own TensorImpl. Its version and the old bytes'
    // (which a graph may have saved) move on, so that such a graph refuses to run backward afterwards.
    const Tensor& p = params[i];
    detail::TensorImpl* impl = p.impl();
    const uint32_t version = ++impl->storage->version;  // the old bytes too: graphs saved them
    impl->storage = converted[i].impl()->storage;
    impl->storage->version = version;
    impl->dtype = dtype;
    impl->grad.reset();
  }
}

void Module::print(std::string& out, int indent) const {
  out += name_ + "(" + extra_repr();
  if (children_.empty()) {
    out += ")";
    return;
  }
  const std::string pad(static_cast<size_t>(indent + 2), ' ');
  out += "\n";
  for (const auto& [n, c] : children_) {
    out += pad + "(" + n + "): ";
    c->print(out, indent + 2);
    out += "\n";
  }
  out += std::string(static_cast<size_t>(indent), ' ') + ")";
}

std::string Module::to_string() const {
  std::string out;
  print(out, 0);
  return out;
}

std::ostream& operator<<(std::ostream& os, const Module& module) { return os << module.to_string(); }

void check_input_dtype(const char* op, const Tensor& x, const Tensor& parameter) {
  if (parameter.defined() && x.dtype() != parameter.dtype())
    throw std::invalid_argument(fmt::format(
        "{}: the input is {} but the layer's parameters are {}; convert with x.to(DType::{}) or module->to(DType::{})",
        op, dtype_name(x.dtype()), dtype_name(parameter.dtype()), dtype_name(parameter.dtype()),
        dtype_name(x.dtype())));
}

}  // namespace chainrule::nn
