#pragma once
// Internal: the Tensor engine's reverse sweep, shared by autograd/tensor_engine.cpp (the sweep
// itself, backward() and grad()) and autograd/tensor_update.cpp (backward_and_update: a sweep with
// the parameters' updates fused in). How a sweep runs: autograd/tensor_engine.cpp.
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "autograd/tensor.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"

namespace chainrule::detail {

struct Root {
  Tensor output;
  Tensor seed;
};

using Wanted = std::unordered_map<const void*, int>;  // grad(): leaf impls and nodes asked for

// Sums a gradient back to the shape of the input it belongs to (undoing broadcasting).
Tensor fit_to(const Tensor& g, const Edge& e);
// acc += g elementwise, in acc's buffer (the same shape and dtype).
void add_in_place(Tensor& acc, const Tensor& g);

// Checks shared by the entry points; messages name `op`.
// The seed 1 of a one-element output; otherwise std::invalid_argument naming `op`, y's shape and
// `remedy` (what the caller can do instead).
Tensor default_seed(const Tensor& y, const char* op, const char* remedy);
void check_requires_grad(const Tensor& y, const char* op);

// One reverse sweep. Gradients collect in the nodes (Node::grad) and, for leaves, in this object:
// leaf_grads (backward) or captured (grad). Each is a tensor the sweep accumulates into in place
// when nothing else holds it (the fast sweep), or with recorded additions (create_graph).
class Sweep final : public GradSink {
 public:
  Sweep(bool create_graph, const Wanted* wanted);
  // A sweep that threw leaves gradients in the nodes still waiting: dropped here, so that they
  // neither hold memory nor reach a later sweep.
  ~Sweep();
  Sweep(const Sweep&) = delete;
  Sweep& operator=(const Sweep&) = delete;

  std::unordered_map<const void*, Tensor> captured;            // grad(): keyed by leaf impl or node

  // Runs the reached nodes. The graph is not freed here: free_graph() does that once everything
  // that can throw after the sweep (the leaves' checks, their new .grad, the updates' checks) has
  // succeeded, so that a throw leaves the graph as it was and the call can be repeated.
  void run(const std::vector<Root>& roots);
  void free_graph(bool retain);

  // backward_and_update: the parameters take leaf_grads' first slots, in the order given, before
  // the sweep runs, so that defer() knows them by their slot.
  void fuse(const std::vector<ParamUpdate>& updates);
  bool defer(Edge& e, Product& p) override;
  // After run() succeeded: checks every parameter's gradients, then writes the updates (see
  // backward_and_update) and drops the parameters' .grad.
  void apply_updates(const std::vector<ParamUpdate>& updates);
  // Hands every other leaf reached its gradient, as backward() does, in steps so that a throw
  // changes no .grad: check_leaf_grads and new_leaf_grads compute (and may throw: a dtype changed
  // since the graph was recorded; anomaly mode on .grad + g; each list entry becomes the leaf's new
  // .grad, or undefined), set_leaf_grads only assigns.
  void check_leaf_grads() const;
  void new_leaf_grads(bool create_graph);
  void set_leaf_grads() noexcept;

  void add(Edge& e, const Tensor& g) override {
    if (!g.defined() || !e.defined()) return;
    if (!create_graph_ && sums_into(g, e)) return;
    if (Tensor* slot = slot_of(e)) accumulate(*slot, fit_to(g, e));
  }

  Target target_slow(Edge& e, Tensor* donor) override {
    Tensor* slot = slot_of(e);
    if (!slot) return {};
    if (!slot->defined()) {
      if (donor && sole_owner(*donor)) *slot = std::move(*donor);
      else *slot = detail::empty(e.shape(), e.dtype);
      return {slot->impl()->storage->data, false};
    }
    if (!sole_owner(*slot)) *slot = slot->detach();  // a copy of its own (the seed, a shared grad)
    return {slot->impl()->storage->data, true};
  }

 private:
  // Where input e's gradient collects; null when grad() was not asked for it.
  Tensor* slot_of(Edge& e) {
    if (e.fn) return &node_grad(e.fn.get());
    return leaf_slot(e.leaf);
  }
  template <bool kOwnState>
  Tensor& node_grad(Node* n) { return kOwnState ? node_grads_[n] : n->grad; }
  Tensor& node_grad(Node* n) { return own_state_ ? node_grad<true>(n) : node_grad<false>(n); }
  Tensor* leaf_slot(const Ref<TensorImpl>& leaf) {
    if (wanted_) return wanted_->count(leaf.get()) ? &captured[leaf.get()] : nullptr;
    uint32_t slot;
    if (!seen(*leaf, slot)) {
      slot = static_cast<uint32_t>(leaf_grads.size());
      see(*leaf, slot);
      leaf_grads.emplace_back(leaf, Tensor());
    }
    return &leaf_grads[slot].second;
  }
  // A leaf's slot in leaf_grads, once this sweep has seen it.
  bool seen(const TensorImpl& leaf, uint32_t& slot) const {
    if (!own_state_) {
      slot = leaf.sweep_slot;
      return leaf.sweep == id_;
    }
    const auto it = leaf_slots_.find(&leaf);
    if (it == leaf_slots_.end()) return false;
    slot = it->second;
    return true;
  }
  void see(TensorImpl& leaf, uint32_t slot) {
    if (own_state_) {
      leaf_slots_[&leaf] = slot;
    } else {
      leaf.sweep = id_;
      leaf.sweep_slot = slot;
    }
  }
  // The fast sweep's un-broadcast: sums a broadcast gradient straight into e's buffer, without
  // the tensors sum_to would build. False when g needs no summing or cannot be summed to e.shape()
  // (fit_to then handles it, or reports the mismatch).
  bool sums_into(const Tensor& g, Edge& e) {
    const TensorImpl& gi = *g.impl();
    if (gi.shape == e.shape() || gi.dtype != e.dtype || !(broadcast_shapes(e.shape(), gi.shape, "sum_to") == gi.shape))
      return false;
    const Target t = target(e, nullptr);
    if (!t.data) return true;
    detail::dispatch(gi.dtype, [&]<class T>() {
      detail::sum_onto(gi.data<T>(), gi.shape, static_cast<T*>(t.data), e.shape(), t.add);
    });
    return true;
  }
  void accumulate(Tensor& acc, const Tensor& g) {
    if (!acc.defined()) acc = g;
    else if (!create_graph_ && sole_owner(acc)) add_in_place(acc, g);
    else acc = acc + g;
  }
  template <bool kOwnState>
  void reach(Node* m);
  void reach(Node* m) { own_state_ ? reach<true>(m) : reach<false>(m); }
  Node* take_latest();
  template <bool kOwnState>
  void run_nodes();
  void mark_needed(const std::vector<Root>& roots);
  [[gnu::noinline]] void run_rule(Node& n, Tensor& g);

  static bool recorded_earlier(const Node* a, const Node* b) { return a->sequence < b->sequence; }

  const bool create_graph_;
  const Wanted* wanted_;
  // Reached, not yet run: the latest recorded of them in latest_, the others in waiting_, a
  // max-heap on Node::sequence. In a chain the node to run next is the one just reached, so the
  // heap is seldom touched.
  Node* latest_ = nullptr;
  std::vector<Node*> waiting_;
  std::vector<Node*> ran_;  // their saved tensors are freed once the sweep has succeeded
  std::unordered_set<const Node*> needed_;  // grad(): the nodes that lead to a wanted input
  // own_state_: what Node::sweep, Node::grad, TensorImpl::sweep and sweep_slot hold otherwise.
  std::unordered_set<const Node*> reached_;
  std::unordered_map<const Node*, Tensor> node_grads_;
  std::unordered_map<const TensorImpl*, uint32_t> leaf_slots_;
  // backward_and_update: leaf_grads[0, fused_) are the parameters; the products deferred to them.
  struct Deferred {
    uint32_t slot;
    Product product;
  };
  uint32_t fused_ = 0;
  std::vector<Deferred> deferred_;
};

}  // namespace chainrule::detail
