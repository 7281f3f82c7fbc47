#pragma once
// nn::Sequential: modules applied one after another, as torch.nn.Sequential.
//
//   forward(x) = m_{n-1}( ... m_1(m_0(x)) ... )
//
// Children are named "0", "1", ... by position (so parameters are "0.weight", "2.bias", ...), or
// by the name given to push_back(name, module). The lecture's 2-3-1 network:
//
//   auto net = std::make_shared<nn::Sequential>(
//       std::make_shared<nn::Dense>(nn::DenseOptions(2, 3).dtype(DType::float64)),
//       std::make_shared<nn::Sigmoid>(),
//       std::make_shared<nn::Dense>(nn::DenseOptions(3, 1).dtype(DType::float64)),
//       std::make_shared<nn::Sigmoid>());
//   Tensor y_hat = net->forward(x);  // x: [N, 2] -> [N, 1]
//   std::cout << *net;
//   // Sequential(
//   //   (0): Dense(in_features=2, out_features=3, bias=true, dtype=float64)
//   //   (1): Sigmoid()
//   //   ...
//   // )
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "nn/module.h"

namespace chainrule::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  // Each argument is a std::shared_ptr to a Module subclass, or a module by value (moved into a new
  // shared_ptr): Sequential(std::make_shared<Dense>(DenseOptions(2, 3)), Sigmoid()). One exception,
  // C++'s: a Sequential by value as the only argument is moved (the result is that Sequential, as
  // `Sequential b = std::move(a)`), not nested; nest one with std::make_shared<Sequential>(...).
  template <class... Ms>
    requires(sizeof...(Ms) > 0)
  explicit Sequential(Ms&&... modules) : Module("Sequential") {
    (push_back(std::forward<Ms>(modules)), ...);
  }

  // Appends a module named by its position ("0", "1", ...).
  void push_back(std::shared_ptr<Module> module);
  // Appends a module under `name` (non-empty, no '.', unique: else std::invalid_argument).
  void push_back(std::string name, std::shared_ptr<Module> module);
  // Appends a module given by value (moved).
  template <class M>
    requires(std::is_base_of_v<Module, std::decay_t<M>> && !std::is_lvalue_reference_v<M>)
  void push_back(M&& module) {
    // The name is checked before the module is moved from: a throw leaves the caller's module whole.
    check_new_name(std::to_string(size()), "register_module");
    push_back(std::shared_ptr<Module>(std::make_shared<std::decay_t<M>>(std::forward<M>(module))));
  }
  template <class M>
    requires std::is_base_of_v<Module, M>
  void push_back(std::shared_ptr<M> module) {
    push_back(std::shared_ptr<Module>(std::move(module)));
  }

  // Applies every module in order; an empty Sequential returns x.
  Tensor forward(const Tensor& x) override;

  size_t size() const { return named_children().size(); }
  bool empty() const { return size() == 0; }
  // The i-th module (std::out_of_range naming i and size()).
  std::shared_ptr<Module> operator[](size_t i) const;
  // The i-th module as M (std::invalid_argument if it is not an M).
  //   net->at<nn::Dense>(0)->weight()
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    if (!m) throw std::invalid_argument(wrong_type_message(i));
    return m;
  }

 private:
  std::string wrong_type_message(size_t i) const;
};

}  // namespace chainrule::nn
