#pragma once
// nn::Sequential: modules applied one after another, as torch.nn.Sequential; and the containers
// without a forward, nn::ModuleList and nn::ModuleDict, with nn::Identity and nn::Unflatten.
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
#include <cstdint>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace chainrule::nn {

// nn::ModuleList (torch.nn.ModuleList): modules held in order, named "0", "1", ... (or by the name
// given to push_back), so that their parameters are the owner's ("blocks.0.weight", ...), with no
// forward of its own: the owner's forward says how they are used.
//
//   blocks_ = register_module("blocks", std::make_shared<nn::ModuleList>());
//   for (int i = 0; i < 4; ++i) blocks_->push_back(std::make_shared<nn::Dense>(nn::DenseOptions(8, 8)));
//   for (const auto& block : *blocks_) x = relu(block->forward(x)) + x;
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  // Each argument is a std::shared_ptr to a Module subclass, or a module by value (moved into a new
  // shared_ptr): ModuleList(std::make_shared<Dense>(DenseOptions(2, 3)), Sigmoid()). One exception,
  // C++'s: a ModuleList (Sequential) by value as the only argument is moved, not nested; nest one
  // with std::make_shared.
  template <class... Ms>
    requires(sizeof...(Ms) > 0)
  explicit ModuleList(Ms&&... modules) : Module("ModuleList") {
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

  // The modules in order, for range-for: `for (const std::shared_ptr<Module>& m : *list)`.
  class const_iterator {
   public:
    using Inner = std::vector<std::pair<std::string, std::shared_ptr<Module>>>::const_iterator;
    using value_type = std::shared_ptr<Module>;
    using difference_type = std::ptrdiff_t;
    const_iterator() = default;
    explicit const_iterator(Inner it) : it_(it) {}
    const std::shared_ptr<Module>& operator*() const { return it_->second; }
    const std::shared_ptr<Module>* operator->() const { return &it_->second; }
    const_iterator& operator++() { ++it_; return *this; }
    const_iterator operator++(int) { const_iterator old = *this; ++it_; return old; }
    bool operator==(const const_iterator&) const = default;

   private:
    Inner it_;
  };
  const_iterator begin() const { return const_iterator(named_children().begin()); }
  const_iterator end() const { return const_iterator(named_children().end()); }

 protected:
  struct Named {
    std::string type_name;
  };
  // For subclasses (Sequential): the type name printed.
  explicit ModuleList(Named type) : Module(std::move(type.type_name)) {}

 private:
  std::string wrong_type_message(size_t i) const;
};

// nn::Sequential: a ModuleList whose forward applies its modules in order.
class Sequential : public ModuleList {
 public:
  Sequential() : ModuleList(Named{"Sequential"}) {}
  // As ModuleList's: Sequential(std::make_shared<Dense>(DenseOptions(2, 3)), Sigmoid()).
  template <class... Ms>
    requires(sizeof...(Ms) > 0)
  explicit Sequential(Ms&&... modules) : ModuleList(Named{"Sequential"}) {
    (push_back(std::forward<Ms>(modules)), ...);
  }

  // Applies every module in order; an empty Sequential returns x.
  Tensor forward(const Tensor& x) override;
};

// nn::ModuleDict (torch.nn.ModuleDict): modules by name, in insertion order; their parameters are
// the owner's under those names ("heads.policy.weight"). No forward of its own.
//
//   heads_ = register_module("heads", std::make_shared<nn::ModuleDict>());
//   heads_->insert("policy", std::make_shared<nn::Dense>(nn::DenseOptions(64, 4)));
//   Tensor logits = (*heads_)["policy"]->forward(h);
class ModuleDict : public Module {
 public:
  ModuleDict() : Module("ModuleDict") {}
  explicit ModuleDict(std::vector<std::pair<std::string, std::shared_ptr<Module>>> modules);
  // Adds `module` under `name` (non-empty, no '.', unique: else std::invalid_argument; torch's
  // update() would replace, which would leave an optimizer stepping the old module's parameters).
  void insert(std::string name, std::shared_ptr<Module> module);
  bool contains(const std::string& name) const;
  size_t size() const { return named_children().size(); }
  bool empty() const { return size() == 0; }
  std::vector<std::string> keys() const;
  // The module under `name` (std::out_of_range naming it and the keys there are).
  std::shared_ptr<Module> operator[](const std::string& name) const;
  // The module as M (std::invalid_argument if it is not an M).
  template <class M>
  std::shared_ptr<M> at(const std::string& name) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[name]);
    if (!m) throw std::invalid_argument(wrong_type_message(name));
    return m;
  }

 private:
  std::string wrong_type_message(const std::string& name) const;
};

// nn::Identity: forward(x) = x (a placeholder, as torch's, e.g. where a model's head is removed).
class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};

// nn::Unflatten (torch's): dim `dim` of the input becomes the dims `sizes` (their product must be
// its size; one of them may be -1, inferred). Flatten's inverse: [N, C*H*W] -> [N, C, H, W].
class Unflatten : public Module {
 public:
  // sizes non-empty, each >= 1 or -1 (one at most): else std::invalid_argument.
  Unflatten(int64_t dim, std::vector<int64_t> sizes);
  // std::out_of_range for a dim outside x's; std::invalid_argument when the sizes do not fit.
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "dim=1, unflattened_size=[16, 4, 4]"

 private:
  int64_t dim_;
  std::vector<int64_t> sizes_;
};

}  // namespace chainrule::nn
