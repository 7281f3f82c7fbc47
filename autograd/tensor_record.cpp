// Recording Tensor ops: attaching a node to a result, saved tensors (with their version check),
// replays for gradcheck, anomaly checks of forwards, and node lifetime.
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "autograd/anomaly.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"
#include "autograd/tensor_record.h"

namespace chainrule {

using detail::Edge;
using detail::Node;
using detail::TensorImpl;

namespace detail {

void Node::destroy_all(Node* n) {
  destroy_draining = true;
  delete n;
  while (Node* p = destroy_pending) {
    destroy_pending = p->pending;
    delete p;
  }
  destroy_draining = false;
}

void SavedTensor::throw_modified(const Node& node) const {
  throw std::logic_error(fmt::format(
      "backward of '{}': a tensor it saved (shape {}) was modified in place after it was saved "
      "(version {}, expected {}). Use an out-of-place op, or clone() the tensor before changing it.",
      node.name, shape(node).str(), p_->version, version_));
}

Tensor SavedTensor::unpack(Node& node) const {
  storage(node);  // the version check
  Ref<TensorImpl> impl;
  if (is_output()) {
    // The op's own output: the same bytes, with its history (this node) back, for create_graph.
    impl = Ref<TensorImpl>(new TensorImpl(node.dtype, node.shape, node.shape.numel()));
    impl->grad_fn = Ref<Node>(&node);
  } else {
    const Edge& e = node.next[edge()];
    // A leaf is itself (a gradient taken through it under create_graph reaches it); its bytes are
    // the saved ones unless Module::to gave it new ones, which also moved the saved bytes' version.
    if (e.leaf) {
      assert(e.leaf->storage.get() == p_);
      return Tensor(e.leaf);
    }
    // Another input: its bytes with the history it had when saved (none for a constant).
    const Shape& s = e.shape();
    impl = Ref<TensorImpl>(new TensorImpl(e.dtype, s, s.numel()));
    impl->grad_fn = e.fn;
    impl->wrapped_number = (what_ & kWrapped) != 0;
  }
  impl->storage = Ref<Storage>(p_);
  impl->requires_grad = static_cast<bool>(impl->grad_fn);
  return Tensor(std::move(impl));
}

void set_replay_now(const Tensor& result, const std::vector<Tensor>& inputs,
                    std::function<Tensor(const std::vector<Tensor>&)> forward) {
  if (!result.impl()->grad_fn) return;
  NodeExtras& x = result.impl()->grad_fn->extras_or_new();
  x.replay = std::move(forward);
  x.replay_inputs.clear();
  for (const Tensor& t : inputs) x.replay_inputs.push_back(t.defined() ? t.detach() : t);
}

const std::vector<Tensor>& Node::replay_inputs() const {
  static const std::vector<Tensor> none;
  return extras ? extras->replay_inputs : none;
}

NodeExtras& Node::extras_or_new() {
  if (!extras) extras = std::make_unique<NodeExtras>();
  return *extras;
}

bool all_finite(const Tensor& t) {
  return dispatch(t.dtype(), [&]<class T>() {
    const T* p = t.impl()->data<T>();
    const int64_t n = t.numel();  // once: numel() is out of line
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
    return true;
  });
}

double first_non_finite(const Tensor& t) {
  for (double v : t.to_vector())
    if (!std::isfinite(v)) return v;
  return 0.0;
}

void check_forward_now(const Tensor& t, std::string_view op, const Where& where) {
  if (!all_finite(t))
    throw_anomaly("forward", op, where, first_non_finite(t), fmt::format("a tensor of shape {}", t.shape().str()));
}

void attach_node(Tensor& result, Ref<Node> node, const std::vector<Tensor>& inputs) {
  node->next.reserve(inputs.size());
  for (const Tensor& t : inputs) add_edge(*node, t);
  finish_attach(result, node);
}

}  // namespace detail

}  // namespace chainrule
