// User-defined Tensor ops (custom_op): the user's forward, recorded with the user's backward.
#include <fmt/format.h>

#include <stdexcept>

#include "autograd/tensor_impl.h"
#include "autograd/tensor_record.h"

namespace chainrule {

using detail::SavedTensor;

Tensor custom_op(std::string_view name, const std::vector<Tensor>& inputs, TensorForward forward,
                 TensorBackward backward, Where where) {
  if (!forward || !backward)
    throw std::invalid_argument(fmt::format("custom_op '{}': forward and backward must both be set", name));
  if (name.empty()) throw std::invalid_argument("custom_op: the name is empty (traces, pictures and gradcheck show it)");
  // Every input gets an edge and a saved copy when the op records, which need a tensor.
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined())
      throw std::invalid_argument(fmt::format("custom_op '{}': input {} of {} is undefined", name, i, inputs.size()));
  Tensor out;
  {
    NoGradGuard no_grad;
    out = forward(inputs);
  }
  if (!out.defined())
    throw std::invalid_argument(fmt::format("custom_op '{}': forward returned an undefined tensor", name));
  // A header of our own, even if forward returned an input. Bytes that something else still holds
  // (an input, a tensor forward kept) are copied: every op returns a new tensor, so an in-place
  // change of that other tensor must not change the result (nor trip the result's version check).
  const bool shared = out.impl()->refs > 1 || out.impl()->storage->refs > 1;
  out = shared ? out.detach() : detail::alias_detached(out);
  bool record = GradMode::enabled();
  if (record) {
    record = false;
    for (const Tensor& t : inputs) record = record || t.requires_grad();
  }
  if (!record) {
    detail::check_forward(out, name, where);
    return out;
  }
  std::vector<SavedTensor> saved;
  for (uint32_t i = 0; i < inputs.size(); ++i) saved.push_back(SavedTensor::input(inputs[i], i));
  auto rule = [saved, result = SavedTensor::output(out), backward, n = inputs.size(), op = std::string(name)](
                  const Tensor& grad, detail::Node& self) {
    std::vector<Tensor> in;
    for (const SavedTensor& s : saved) in.push_back(s.unpack(self));
    struct Running {  // see detail::user_backwards_running
      Running() { detail::user_backwards_running.fetch_add(1, std::memory_order_relaxed); }
      ~Running() { detail::user_backwards_running.fetch_sub(1, std::memory_order_relaxed); }
    };
    std::vector<Tensor> g;
    {
      const Running running;
      g = backward(grad, in, result.unpack(self));
    }
    if (g.size() != n)
      throw std::logic_error(fmt::format("custom op '{}': backward returned {} gradients for {} inputs", op,
                                         g.size(), n));
    // A gradient may have the input's shape or one that broadcasting made from it (the engine sums
    // it back); anything else is this backward's mistake, named as such.
    auto fits = [&](const Shape& grad_shape, const Shape& input_shape) {
      try {
        return broadcast_shapes(grad_shape, input_shape, op.c_str()) == grad_shape;
      } catch (const std::invalid_argument&) {
        return false;
      }
    };
    for (size_t i = 0; i < n; ++i)
      if (g[i].defined() && !(g[i].shape() == in[i].shape()) && !fits(g[i].shape(), in[i].shape()))
        throw std::logic_error(fmt::format("custom op '{}': backward returned shape {} for input {} of shape {}",
                                           op, g[i].shape().str(), i, in[i].shape().str()));
    return g;
  };
  Ref<detail::Node> node(new detail::FunctionNode<decltype(rule)>(std::move(rule)));
  node->name = node->extras_or_new().owned_name = std::string(name);
  node->where = where;
  detail::attach_node(out, std::move(node), inputs);
  detail::set_replay(out, inputs, [forward](const std::vector<Tensor>& in) {
    NoGradGuard no_grad;
    return forward(in);
  });
  if (detail::ReplayGuard::enabled())
    out.impl()->grad_fn->extras_or_new().rerecord = [op = std::string(name), forward, backward,
                                                      where](const std::vector<Tensor>& in) {
      return custom_op(op, in, forward, backward, where);
    };
  return out;
}

}  // namespace chainrule
