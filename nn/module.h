#pragma once
// nn::Module: the base of every layer and model. A module owns named parameters (leaf tensors that
// require grad), named buffers (tensors that are part of the model's state but not trained: a
// fixed mask, running statistics, a standardiser's constants) and named child modules; everything
// else (forward, printing, saving) builds on that.
//
// Modules are held by std::shared_ptr, as in LibTorch; a parameter is a Tensor handle, so the
// tensor a module registers, the one its forward uses and the one an optimizer updates are the same
// tensor (copies of a Tensor are shallow).
//
//   class TwoLayer : public nn::Module {
//    public:
//     TwoLayer() : Module("TwoLayer") {
//       hidden_ = register_module("hidden", std::make_shared<nn::Dense>(nn::DenseOptions(2, 3)));
//       out_ = register_module("out", std::make_shared<nn::Dense>(nn::DenseOptions(3, 1)));
//     }
//     Tensor forward(const Tensor& x) override { return sigmoid(out_->forward(sigmoid(hidden_->forward(x)))); }
//    private:
//     std::shared_ptr<nn::Dense> hidden_, out_;
//   };
//   auto model = std::make_shared<TwoLayer>();
//   model->named_parameters();  // hidden.weight, hidden.bias, out.weight, out.bias
//   std::cout << *model;        // TwoLayer(\n  (hidden): Dense(...)\n  (out): Dense(...)\n)
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace chainrule::nn {

// A name with its tensor or module, in registration order.
using NamedTensor = std::pair<std::string, Tensor>;

class Module {
 public:
  // `type_name` is what printing shows ("Dense", "Sequential", your class's name).
  explicit Module(std::string type_name = "Module");
  virtual ~Module() = default;
  // Copying would share parameters silently (Tensor copies are shallow); move or share a pointer.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  // The module's computation. The base version throws std::logic_error: a module used as a
  // container only (no forward) says so when called.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }

  // This module's parameters, then (recurse) its children's, depth first in registration order.
  std::vector<Tensor> parameters(bool recurse = true) const;
  // The same with dotted names: "weight", "0.weight", "hidden.bias", "block.1.weight". A tensor
  // reachable twice (a layer shared by two parents) is listed once, under its first name.
  std::vector<NamedTensor> named_parameters(bool recurse = true) const;
  // Buffers (see register_buffer), the same way: this module's, then its children's, with dotted
  // names, a tensor reachable twice listed once. Not in parameters(), so no optimizer steps them.
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<NamedTensor> named_buffers(bool recurse = true) const;
  // The state that nn::save writes and nn::load reads: named_parameters(), then the persistent
  // named_buffers() (as torch's state_dict()).
  std::vector<NamedTensor> named_state() const;
  // The dotted names in named_state() that a saved file may lack (nn::load and load_state_dict
  // then leave those tensors as they are): buffers a layer gained after files were written with
  // it, as torch's versioned state dicts allow (BatchNorm's num_batches_tracked).
  std::vector<std::string> optional_state() const;
  // The direct children, in registration order.
  std::vector<std::shared_ptr<Module>> children() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }

  // Training / evaluation mode, set on this module and all its descendants (as torch's train()).
  // Dropout (and the layers with dropout inside: RNN, LSTM, GRU, MultiheadAttention, the
  // Transformer layers, stacks and model) drop only in training; BatchNorm normalises with the batch's statistics
  // in training and its running ones in evaluation. Custom modules may read it too.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops the accumulated gradient of every parameter (grad() becomes undefined, as
  // torch's zero_grad(set_to_none=True)); the next backward() starts from zero.
  void zero_grad();

  // Converts every parameter and buffer to `dtype` in place: each keeps its identity (handles held
  // by the module, by subclasses and by user code stay valid) and gets the converted values;
  // gradients are dropped. Call it before building an optimizer (whose state has the old dtype) and before
  // recording graphs: a graph recorded earlier refers to the old values (its backward throws).
  //   model->to(DType::float64);
  void to(DType dtype);

  // The type name given at construction.
  const std::string& name() const { return name_; }
  // The text inside the parentheses when printed, e.g. "in_features=2, out_features=3, bias=true".
  virtual std::string extra_repr() const { return ""; }
  // One line per module, children indented by two spaces, as PyTorch prints models:
  //   Sequential(
  //     (0): Dense(in_features=2, out_features=3, bias=true)
  //     (1): Sigmoid()
  //   )
  std::string to_string() const;

 protected:
  // Registers `tensor` as parameter `name` (non-empty, no '.', unique in this module: else
  // std::invalid_argument), marks it requires_grad and returns the same handle.
  //   weight_ = register_parameter("weight", zeros({3, 2}));
  Tensor register_parameter(std::string name, Tensor tensor, bool requires_grad = true);

  // Registers `tensor` as buffer `name` (the same naming rules; a leaf, else std::invalid_argument)
  // and returns the same handle; its requires_grad is left as it is. A buffer is saved and loaded
  // with the parameters unless `persistent` is false (torch's register_buffer(..., persistent)).
  //   mask_ = register_buffer("mask", from_vector({1, 0, 1}, {3}));
  Tensor register_buffer(std::string name, Tensor tensor, bool persistent = true);
  // Marks this module's persistent buffer `name` as one a saved file may lack (see optional_state);
  // std::invalid_argument if there is no such buffer.
  void mark_optional_in_files(const std::string& name);

  // Replaces this module's parameter `name` by `tensor`, a defined leaf of the same shape and dtype
  // (std::invalid_argument naming the module, the parameter and the shapes otherwise), and returns
  // it: two modules then share one tensor (weight tying), listed once by parameters(). A subclass
  // that keeps the parameter in a member updates it too (Dense::set_weight).
  Tensor replace_parameter(const std::string& name, const Tensor& tensor);

  // Registers `module` as child `name` (same naming rules) and returns it, typed.
  //   hidden_ = register_module("hidden", std::make_shared<Dense>(DenseOptions(2, 3)));
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    if (!module) throw std::invalid_argument(name_ + "::register_module: module '" + name + "' is null");
    add_child(std::move(name), module);
    return module;
  }

  // Throws std::invalid_argument (naming `what`) unless `name` is non-empty, has no '.' and is not
  // a parameter's, a buffer's or a child's name here yet.
  void check_new_name(const std::string& name, const char* what) const;

 private:
  // Throws std::invalid_argument (naming `what` and `name`) unless `tensor` is a defined leaf.
  void check_leaf(const std::string& name, const Tensor& tensor, const char* what) const;
  void add_child(std::string name, std::shared_ptr<Module> module);
  bool contains(const Module* m) const;  // m is a child of this, or of a child, at any depth
  struct Buffer {
    std::string name;
    Tensor tensor;
    bool persistent;
    bool optional_in_files = false;
  };
  enum class Which { parameters, buffers, persistent_buffers, optional_buffers };
  // (dotted name, tensor) of `which`, here and (recurse) below; collect then lists each tensor once.
  std::vector<NamedTensor> collect(Which which, bool recurse) const;
  void append_named(const std::string& prefix, std::vector<NamedTensor>& out, Which which, bool recurse) const;
  void print(std::string& out, int indent) const;

  std::string name_;
  bool training_ = true;
  std::vector<NamedTensor> parameters_;
  std::vector<Buffer> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Prints module.to_string().
std::ostream& operator<<(std::ostream& os, const Module& module);

// For a layer's forward (`op`, e.g. "Dense::forward"): std::invalid_argument saying how to convert
// when x's dtype is not the layer's parameter's (nothing to check when the parameter is undefined).
void check_input_dtype(const char* op, const Tensor& x, const Tensor& parameter);

}  // namespace chainrule::nn
