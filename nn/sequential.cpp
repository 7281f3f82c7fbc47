#include "nn/sequential.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace chainrule::nn {

void ModuleList::push_back(std::shared_ptr<Module> module) {
  // Named by position, as torch's Sequential.append (str(len(self))).
  push_back(std::to_string(size()), std::move(module));
}

void ModuleList::push_back(std::string name, std::shared_ptr<Module> module) {
  register_module(std::move(name), std::move(module));
}

std::shared_ptr<Module> ModuleList::operator[](size_t i) const {
  if (i >= size())
    throw std::out_of_range(fmt::format("{}: index {} is out of range for {} modules", name(), i, size()));
  return named_children()[i].second;
}

std::string ModuleList::wrong_type_message(size_t i) const {
  return fmt::format("{}::at: module {} ('{}') is a {}, not the requested type", name(), i, named_children()[i].first,
                     named_children()[i].second->name());
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, module] : named_children()) y = module->forward(y);
  return y;
}

ModuleDict::ModuleDict(std::vector<std::pair<std::string, std::shared_ptr<Module>>> modules) : Module("ModuleDict") {
  for (auto& [name, module] : modules) insert(std::move(name), std::move(module));
}

void ModuleDict::insert(std::string name, std::shared_ptr<Module> module) {
  register_module(std::move(name), std::move(module));
}

bool ModuleDict::contains(const std::string& name) const {
  for (const auto& child : named_children())
    if (child.first == name) return true;
  return false;
}

std::vector<std::string> ModuleDict::keys() const {
  std::vector<std::string> out;
  for (const auto& child : named_children()) out.push_back(child.first);
  return out;
}

std::shared_ptr<Module> ModuleDict::operator[](const std::string& name) const {
  for (const auto& child : named_children())
    if (child.first == name) return child.second;
  throw std::out_of_range(fmt::format("ModuleDict: no module named '{}' (the keys are [{}])", name,
                                      fmt::join(keys(), ", ")));
}

std::string ModuleDict::wrong_type_message(const std::string& name) const {
  return fmt::format("ModuleDict::at: module '{}' is a {}, not the requested type", name, (*this)[name]->name());
}

Unflatten::Unflatten(int64_t dim, std::vector<int64_t> sizes) : Module("Unflatten"), dim_(dim), sizes_(std::move(sizes)) {
  if (sizes_.empty()) throw std::invalid_argument("Unflatten: the unflattened size is empty");
  int inferred = 0;
  for (int64_t s : sizes_) {
    if (s == -1) ++inferred;
    else if (s < 1) throw std::invalid_argument(fmt::format("Unflatten: sizes must be >= 1 or -1, got [{}]", fmt::join(sizes_, ", ")));
  }
  if (inferred > 1)
    throw std::invalid_argument(fmt::format("Unflatten: at most one size may be -1, got [{}]", fmt::join(sizes_, ", ")));
}

Tensor Unflatten::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("Unflatten::forward: the input is undefined");
  const int d = normalize_dim(dim_, x.dim(), "Unflatten::forward");
  int64_t known = 1;
  for (int64_t s : sizes_)
    if (s != -1 && __builtin_mul_overflow(known, s, &known))
      throw std::invalid_argument(fmt::format("Unflatten::forward: the sizes [{}] overflow 64-bit arithmetic",
                                              fmt::join(sizes_, ", ")));
  const int64_t size = x.size(d);
  const bool infer = std::find(sizes_.begin(), sizes_.end(), -1) != sizes_.end();
  if (infer ? size % known != 0 : known != size)
    throw std::invalid_argument(fmt::format("Unflatten::forward: dim {} of the input {} has size {}, which [{}] does not unflatten",
                                            dim_, x.shape().str(), size, fmt::join(sizes_, ", ")));
  std::vector<int64_t> shape;
  for (int i = 0; i < d; ++i) shape.push_back(x.size(i));
  for (int64_t s : sizes_) shape.push_back(s == -1 ? size / known : s);
  for (int i = d + 1; i < x.dim(); ++i) shape.push_back(x.size(i));
  return reshape(x, shape);
}

std::string Unflatten::extra_repr() const {
  return fmt::format("dim={}, unflattened_size=[{}]", dim_, fmt::join(sizes_, ", "));
}

}  // namespace chainrule::nn
