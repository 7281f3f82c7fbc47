#include "nn/sequential.h"

#include <fmt/format.h>

namespace chainrule::nn {

void Sequential::push_back(std::shared_ptr<Module> module) {
  // Named by position, as torch's Sequential.append (str(len(self))).
  push_back(std::to_string(size()), std::move(module));
}

void Sequential::push_back(std::string name, std::shared_ptr<Module> module) {
  register_module(std::move(name), std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, module] : named_children()) y = module->forward(y);
  return y;
}

std::shared_ptr<Module> Sequential::operator[](size_t i) const {
  if (i >= size())
    throw std::out_of_range(fmt::format("Sequential: index {} is out of range for {} modules", i, size()));
  return named_children()[i].second;
}

std::string Sequential::wrong_type_message(size_t i) const {
  return fmt::format("Sequential::at: module {} ('{}') is a {}, not the requested type", i,
                     named_children()[i].first, named_children()[i].second->name());
}

}  // namespace chainrule::nn
