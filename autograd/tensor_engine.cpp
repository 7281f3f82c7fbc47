// The Tensor engine: recording (attach_node), saved tensors, node lifetime and the reverse sweep.
//
// backward runs in three iterative phases: discover the nodes reachable from the outputs (explicit
// stack) and count each node's consumers; then run nodes from a ready list as soon as every
// consumer has delivered its gradient (Kahn's order, so a node shared by many consumers runs once
// with the sum); finally hand the leaves their gradients. Leaves are only written after the whole
// sweep succeeded, so an error part-way changes no .grad().
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <unordered_map>

#include "autograd/anomaly.h"
#include "autograd/tensor_impl.h"

namespace chainrule {

using detail::Edge;
using detail::Node;
using detail::TensorImpl;

namespace detail {

namespace {
thread_local uint64_t next_sequence = 0;  // per thread: a graph belongs to one thread
thread_local uint64_t next_sweep = 0;
}  // namespace

// Nodes die through this loop: a node's destructor may release the next node, which is queued
// here instead of being destroyed inside the first one's destructor.
void Node::destroy(Node* n) {
  static thread_local std::vector<Node*> pending;
  static thread_local bool draining = false;
  pending.push_back(n);
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    Node* p = pending.back();
    pending.pop_back();
    delete p;
  }
  draining = false;
}

SavedTensor SavedTensor::input(const Tensor& t) {
  SavedTensor s;
  s.tensor_ = t;
  s.version_ = t.impl()->storage->version;
  return s;
}

SavedTensor SavedTensor::output(const Tensor& t) {
  SavedTensor s;
  const TensorImpl* impl = t.impl();
  s.storage_ = impl->storage;
  s.shape_ = impl->shape;
  s.dtype_ = impl->dtype;
  s.version_ = impl->storage->version;
  return s;
}

Tensor SavedTensor::unpack(Node& node) const {
  const Storage* storage = storage_ ? storage_.get() : tensor_.impl()->storage.get();
  const Shape& shape = storage_ ? shape_ : tensor_.shape();
  if (storage->version != version_)
    throw std::logic_error(fmt::format(
        "backward of '{}': a tensor it saved (shape {}) was modified in place after it was saved "
        "(version {}, expected {}). Use an out-of-place op, or clone() the tensor before changing it.",
        node.name, shape.str(), storage->version, version_));
  if (!storage_) return tensor_;
  // The op's own output: the same bytes, with its history (this node) back, for create_graph.
  Ref<TensorImpl> impl(new TensorImpl);
  impl->dtype = dtype_;
  impl->shape = shape_;
  impl->numel = shape_.numel();
  impl->storage = storage_;
  impl->grad_fn = Ref<Node>(&node);
  impl->requires_grad = true;
  return Tensor(std::move(impl));
}

void set_replay(const Tensor& result, const std::vector<Tensor>& inputs,
                std::function<Tensor(const std::vector<Tensor>&)> forward) {
  if (!ReplayGuard::enabled() || !result.impl()->grad_fn) return;
  Node& n = *result.impl()->grad_fn;
  n.replay = std::move(forward);
  n.replay_inputs.clear();
  for (const Tensor& t : inputs) n.replay_inputs.push_back(t.defined() ? t.detach() : t);
}

bool all_finite(const Tensor& t) {
  return dispatch(t.dtype(), [&]<class T>() {
    const T* p = t.impl()->data<T>();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(p[i])) return false;
    return true;
  });
}

namespace {
double first_non_finite(const Tensor& t) {
  for (double v : t.to_vector())
    if (!std::isfinite(v)) return v;
  return 0.0;
}
}  // namespace

void check_forward(const Tensor& t, std::string_view op, const Where& where) {
  if (AnomalyMode::enabled() && !all_finite(t))
    throw_anomaly("forward", op, where, first_non_finite(t), fmt::format("a tensor of shape {}", t.shape().str()));
}

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->requires_grad()) return true;
  return false;
}

namespace {
Edge edge_to(const Tensor& t) {
  Edge e;
  const TensorImpl* impl = t.impl();
  e.shape = impl->shape;
  e.dtype = impl->dtype;
  if (!impl->requires_grad) return e;
  if (impl->grad_fn) e.fn = impl->grad_fn;
  else e.leaf = t.impl_ref();
  return e;
}
void finish_attach(Tensor& result, Ref<Node>& node) {
  check_forward(result, node->name, node->where);
  node->sequence = next_sequence++;
  result.impl()->grad_fn = std::move(node);
  result.impl()->requires_grad = true;
}
}  // namespace

void attach_node(Tensor& result, Ref<Node> node, std::initializer_list<const Tensor*> inputs) {
  node->next.reserve(inputs.size());
  for (const Tensor* t : inputs) node->next.push_back(edge_to(*t));
  finish_attach(result, node);
}

void attach_node(Tensor& result, Ref<Node> node, const std::vector<Tensor>& inputs) {
  node->next.reserve(inputs.size());
  for (const Tensor& t : inputs) node->next.push_back(edge_to(t));
  finish_attach(result, node);
}

}  // namespace detail

namespace {

[[noreturn]] void throw_freed(const Node& n) {
  throw std::logic_error(fmt::format(
      "backward: trying to backward through the graph a second time: the '{}' node's saved tensors "
      "were freed by an earlier backward(). Pass BackwardOptions{{.retain_graph = true}} to the first "
      "backward() if you need to sweep the same graph twice.",
      n.name));
}

Tensor add_grads(const Tensor& a, const Tensor& b) { return a.defined() ? a + b : b; }

// Sums a gradient back to the shape of the input it belongs to (undoing broadcasting): the one
// place where un-broadcasting happens.
Tensor fit_to(const Tensor& g, const Edge& e) {
  Tensor out = g.shape() == e.shape ? g : sum_to(g, e.shape);
  if (out.dtype() != e.dtype) out = out.to(e.dtype);
  return out;
}

struct Root {
  Tensor output;
  Tensor seed;
};

// What a sweep produces: gradients for leaves (backward) or for requested inputs (grad).
struct SweepResult {
  std::vector<std::pair<Ref<TensorImpl>, Tensor>> leaf_grads;
  std::unordered_map<const void*, Tensor> captured;  // keyed by leaf impl or by node
};

SweepResult sweep(const std::vector<Root>& roots, bool retain, bool create_graph,
                  const std::unordered_map<const void*, int>* wanted) {
  GradModeGuard recording(create_graph);
  const uint64_t id = ++detail::next_sweep;
  SweepResult result;

  // Phase 1: discovery with an explicit stack; counts consumers per node.
  std::vector<Node*> order;  // discovery order
  std::vector<Node*> stack;
  for (const Root& r : roots) {
    Node* fn = r.output.impl()->grad_fn.get();
    if (fn && fn->sweep != id) {
      fn->sweep = id;
      fn->dependencies = 0;
      fn->grad = Tensor();
      stack.push_back(fn);
    }
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->freed) throw_freed(*n);
    order.push_back(n);
    for (Edge& e : n->next) {
      Node* m = e.fn.get();
      if (!m) continue;
      if (m->sweep != id) {
        m->sweep = id;
        m->dependencies = 0;
        m->grad = Tensor();
        stack.push_back(m);
      }
      ++m->dependencies;
    }
  }

  // For grad(inputs): a node runs only if some wanted input lies below it. A dry run of Kahn's
  // order (consumers before producers) reversed visits producers first.
  if (wanted) {
    std::unordered_map<Node*, uint32_t> remaining;
    for (Node* n : order) remaining[n] = n->dependencies;
    std::vector<Node*> topo, queue;
    for (Node* n : order)
      if (n->dependencies == 0) queue.push_back(n);
    while (!queue.empty()) {
      Node* n = queue.back();
      queue.pop_back();
      topo.push_back(n);
      for (const Edge& e : n->next)
        if (e.fn && --remaining[e.fn.get()] == 0) queue.push_back(e.fn.get());
    }
    for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
      Node* n = *it;
      n->needed = false;
      for (const Edge& e : n->next) {
        if ((e.fn && (e.fn->needed || wanted->count(e.fn.get()))) || (e.leaf && wanted->count(e.leaf.get()))) {
          n->needed = true;
          break;
        }
      }
    }
  } else {
    for (Node* n : order) n->needed = true;
  }

  // Seeds.
  std::vector<Node*> ready;
  for (const Root& r : roots) {
    TensorImpl* out = r.output.impl();
    if (Node* fn = out->grad_fn.get()) {
      fn->grad = add_grads(fn->grad, r.seed);
    } else if (wanted) {
      auto& slot = result.captured[out];
      slot = add_grads(slot, r.seed);
    } else {
      result.leaf_grads.emplace_back(r.output.impl_ref(), r.seed);
    }
  }
  for (Node* n : order)
    if (n->dependencies == 0) ready.push_back(n);

  // Phase 2: run nodes once all their consumers have delivered.
  std::vector<Node*> ran;
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    Tensor g = std::move(n->grad);
    n->grad = Tensor();
    if (wanted && wanted->count(n) && g.defined()) {
      auto& slot = result.captured[n];
      slot = add_grads(slot, g);
    }
    std::vector<Tensor> grads;
    if (g.defined() && n->needed) {
      grads = detail::run_backward_rule(n->name, n->where, [&] { return n->apply(g); });
      ran.push_back(n);
      if (AnomalyMode::enabled())
        for (size_t i = 0; i < grads.size(); ++i)
          if (grads[i].defined() && !detail::all_finite(grads[i]))
            detail::throw_anomaly("backward", n->name, n->where, detail::first_non_finite(grads[i]),
                                  fmt::format("the gradient for input {} (shape {})", i, grads[i].shape().str()));
      if (detail::BackwardObserver::current) detail::BackwardObserver::current->on_node(*n, g, grads);
    }
    for (size_t i = 0; i < n->next.size(); ++i) {
      Edge& e = n->next[i];
      Tensor gi = i < grads.size() && grads[i].defined() && e.defined() ? fit_to(grads[i], e) : Tensor();
      if (e.fn) {
        if (gi.defined()) e.fn->grad = add_grads(e.fn->grad, gi);
        if (--e.fn->dependencies == 0) ready.push_back(e.fn.get());
      } else if (e.leaf && gi.defined()) {
        if (wanted) {
          if (wanted->count(e.leaf.get())) {
            auto& slot = result.captured[e.leaf.get()];
            slot = add_grads(slot, gi);
          }
        } else {
          result.leaf_grads.emplace_back(e.leaf, gi);
        }
      }
    }
  }
  if (!retain) {
    for (Node* n : ran) {
      n->release_saved();
      n->freed = true;
    }
  }
  return result;
}

Tensor default_seed(const Tensor& y, const char* op) {
  if (y.numel() != 1)
    throw std::invalid_argument(fmt::format(
        "{}: the output has shape {} ({} elements); a seed gradient is required for a non-scalar "
        "output: pass one of the same shape",
        op, y.shape().str(), y.numel()));
  return ones(y.shape(), y.dtype());
}

void check_seed(const Tensor& y, const Tensor& seed, const char* op) {
  if (!seed.defined()) throw std::invalid_argument(fmt::format("{}: the seed gradient is undefined", op));
  if (!(seed.shape() == y.shape()))
    throw std::invalid_argument(fmt::format("{}: seed shape {} does not match output shape {}", op,
                                            seed.shape().str(), y.shape().str()));
  if (seed.dtype() != y.dtype())
    throw std::invalid_argument(fmt::format("{}: seed dtype {} does not match output dtype {}", op,
                                            dtype_name(seed.dtype()), dtype_name(y.dtype())));
}

void check_requires_grad(const Tensor& y, const char* op) {
  if (!y.defined()) throw std::invalid_argument(fmt::format("{}: the tensor is undefined", op));
  if (!y.requires_grad())
    throw std::logic_error(fmt::format(
        "{}: the tensor (shape {}) does not require grad and has no grad_fn: no leaf with "
        "requires_grad contributed to it, or it was computed under NoGradGuard",
        op, y.shape().str()));
}

}  // namespace

void Tensor::backward(BackwardOptions options) const {
  check_requires_grad(*this, "backward");
  backward(default_seed(*this, "backward"), options);
}

void Tensor::backward(const Tensor& seed, BackwardOptions options) const {
  check_requires_grad(*this, "backward");
  check_seed(*this, seed, "backward");
  SweepResult r = sweep({{*this, seed}}, options.retain_graph || options.create_graph, options.create_graph,
                        nullptr);
  GradModeGuard recording(options.create_graph);
  for (auto& [leaf, g] : r.leaf_grads) {
    Tensor sum = leaf->grad ? Tensor(leaf->grad) + g : (options.create_graph ? g : g.detach());
    leaf->grad = sum.impl_ref();
  }
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, GradOptions options) {
  if (outputs.empty()) throw std::invalid_argument("grad: no outputs given");
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw std::invalid_argument(fmt::format("grad: got {} outputs but {} grad_outputs", outputs.size(),
                                            grad_outputs.size()));
  std::vector<Root> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    check_requires_grad(outputs[i], "grad");
    Tensor seed = grad_outputs.empty() ? default_seed(outputs[i], "grad") : grad_outputs[i];
    check_seed(outputs[i], seed, "grad");
    roots.push_back({outputs[i], seed});
  }
  std::unordered_map<const void*, int> wanted;
  std::vector<const void*> keys;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad())
      throw std::invalid_argument(fmt::format("grad: input {} does not require grad", k));
    const void* key = x.impl()->grad_fn ? static_cast<const void*>(x.impl()->grad_fn.get())
                                        : static_cast<const void*>(x.impl());
    wanted[key] = static_cast<int>(k);
    keys.push_back(key);
  }
  SweepResult r = sweep(roots, options.retain_graph || options.create_graph, options.create_graph, &wanted);
  std::vector<Tensor> out;
  for (size_t k = 0; k < inputs.size(); ++k) {
    auto it = r.captured.find(keys[k]);
    if (it == r.captured.end() || !it->second.defined()) {
      if (!options.allow_unused)
        throw std::invalid_argument(fmt::format(
            "grad: input {} (shape {}) is not used to compute the outputs (pass allow_unused = true "
            "to get zeros)",
            k, inputs[k].shape().str()));
      out.push_back(zeros(inputs[k].shape(), inputs[k].dtype()));
      continue;
    }
    Tensor g = it->second;
    if (!(g.shape() == inputs[k].shape())) g = sum_to(g, inputs[k].shape());
    out.push_back(options.create_graph ? g : g.detach());
  }
  return out;
}

}  // namespace chainrule
