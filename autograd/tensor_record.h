#pragma once
// Internal: recording Tensor ops, inline (autograd/tensor_impl.h is the graph they build): whether
// an op records, the edges and the attach of its node, replays for gradcheck and anomaly checks of
// forwards. The out-of-line parts are in autograd/tensor_record.cpp.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <source_location>
#include <string_view>
#include <utility>
#include <vector>

#include "autograd/anomaly.h"
#include "autograd/grad_mode.h"
#include "autograd/tensor_impl.h"

namespace chainrule::detail {

// While alive, recorded ops also keep what gradcheck needs to re-run their forward (Node::replay).
class ReplayGuard {
 public:
  ReplayGuard() { ++depth_; }
  ~ReplayGuard() { --depth_; }
  ReplayGuard(const ReplayGuard&) = delete;
  ReplayGuard& operator=(const ReplayGuard&) = delete;
  static bool enabled() { return depth_ > 0; }

 private:
  static inline thread_local int depth_ = 0;
};
// Gives `result`'s node a replay (no-op unless ReplayGuard is on: then neither the list of
// inputs nor the std::function is built).
void set_replay_now(const Tensor& result, const std::vector<Tensor>& inputs,
                    std::function<Tensor(const std::vector<Tensor>&)> forward);
// The inputs by reference: with ReplayGuard off (the common case) no handle is copied.
template <class F>
void set_replay(const Tensor& result, std::initializer_list<std::reference_wrapper<const Tensor>> inputs,
                F&& forward) {
  if (ReplayGuard::enabled())
    set_replay_now(result, std::vector<Tensor>(inputs.begin(), inputs.end()), std::forward<F>(forward));
}
template <class F>
void set_replay(const Tensor& result, const std::vector<Tensor>& inputs, F&& forward) {
  if (ReplayGuard::enabled()) set_replay_now(result, inputs, std::forward<F>(forward));
}
// All values finite? (anomaly mode)
bool all_finite(const Tensor& t);
// The first value of `t` that is NaN or infinite (0 if none), for anomaly messages.
double first_non_finite(const Tensor& t);
// Throws AnomalyError if anomaly mode is on and `t` holds NaN or infinity.
void check_forward_now(const Tensor& t, std::string_view op, const Where& where);
inline void check_forward(const Tensor& t, std::string_view op, const Where& where) {
  if (AnomalyMode::enabled()) check_forward_now(t, op, where);
}

// True when an op on these inputs must be recorded.
inline bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->impl() && t->impl()->requires_grad) return true;
  return false;
}
// Recording is inline: a one-element op spends most of its time here and in the sweep.
// Orders nodes for the sweep: per thread, and a node is also above its inputs (add_edge).
inline constinit thread_local uint64_t next_node_sequence = 0;
// kHasRoom: the caller knows node.next has room for this edge (one of a node's first two).
template <bool kHasRoom = false>
[[gnu::always_inline]] inline void add_edge(Node& node, const Tensor& t) {
  const TensorImpl* impl = t.impl();
  Edge& e = kHasRoom ? node.next.emplace_back_in_capacity() : node.next.emplace_back();
  e.dtype = impl->dtype;
  if (!impl->requires_grad) e.constant_shape = ConstantShape(impl->shape);
  else if (impl->grad_fn) {
    e.fn = impl->grad_fn;
    // The counter is per thread: an input recorded on another thread may be ahead of it.
    node.sequence = std::max(node.sequence, e.fn->sequence + 1);
  } else {
    e.leaf = t.impl_ref();
  }
}
// The last step of recording, once node's shape and dtype are result's.
inline void attach_shaped_node(Tensor& result, Ref<Node>& node) {
  TensorImpl& out = *result.impl();
  check_forward(result, node->name, node->where);
  node->sequence = std::max(node->sequence, next_node_sequence);
  next_node_sequence = node->sequence + 1;
  out.grad_fn = std::move(node);
  out.requires_grad = true;
}
inline void finish_attach(Tensor& result, Ref<Node>& node) {
  node->shape = result.impl()->shape;
  node->dtype = result.impl()->dtype;
  attach_shaped_node(result, node);
}
inline void attach_node(Tensor& result, Ref<Node> node, std::initializer_list<const Tensor*> inputs) {
  node->next.reserve(inputs.size());
  for (const Tensor* t : inputs) add_edge(*node, *t);
  finish_attach(result, node);
}
void attach_node(Tensor& result, Ref<Node> node, const std::vector<Tensor>& inputs);

// Records `result = op(inputs)` with backward rule `rule(grad, node) -> std::vector<Tensor>` (one
// gradient per input). Call only when should_record(inputs).
//   Tensor out = ...forward...;
//   if (should_record({&a, &b}))
//     record(out, "mul", {&a, &b}, [sa = SavedTensor::input(a, 0), ...](const Tensor& grad, Node& self) {
//       return std::vector<Tensor>{...};
//     });
template <class F>
void record(Tensor& result, std::string_view name, std::initializer_list<const Tensor*> inputs, F rule,
            std::source_location where = std::source_location::current()) {
  Ref<Node> node(new FunctionNode<F>(std::move(rule)));
  node->name = name;
  node->where = where;
  attach_node(result, std::move(node), inputs);
}
template <class F>
void record(Tensor& result, std::string_view name, const std::vector<Tensor>& inputs, F rule,
            std::source_location where = std::source_location::current()) {
  Ref<Node> node(new FunctionNode<F>(std::move(rule)));
  node->name = name;
  node->where = where;
  attach_node(result, std::move(node), inputs);
}

}  // namespace chainrule::detail
