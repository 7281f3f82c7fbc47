// The Tensor engine: the reverse sweep behind backward() and grad() (recording: tensor_record.cpp).
//
// backward runs in two iterative phases: run the nodes reached from the outputs in reverse creation
// order (Node::sequence: a node's inputs were all recorded before it, so by the time a node is the
// latest one waiting, every consumer has delivered its gradient and a node shared by many consumers
// runs once with the sum); then hand the leaves their gradients. Leaves are only written, and saved
// tensors only freed, after the whole sweep succeeded, so an error part-way changes no .grad().
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "autograd/anomaly.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_loops.h"
#include "autograd/tensor_record.h"
#include "autograd/tensor_sweep.h"

namespace chainrule {

using detail::Edge;
using detail::Node;
using detail::TensorImpl;
using detail::Root;
using detail::Sweep;
using detail::Wanted;
using detail::check_requires_grad;
using detail::default_seed;

namespace {

[[noreturn]] void throw_freed(const Node& n) {
  throw std::logic_error(fmt::format(
      "backward: trying to backward through the graph a second time: the '{}' node's saved tensors "
      "were freed by an earlier backward() or grad(). Pass .retain_graph = true to the first one "
      "(BackwardOptions for backward(), GradOptions for grad()) if you need to sweep the same graph twice.",
      n.name));
}

// Ids of sweeps, unique over all threads: a leaf stamped by one thread's sweep is never mistaken
// for a leaf of another's.
std::atomic<uint64_t> next_sweep{0};

// The list of nodes a sweep ran (Sweep::ran_) is reused from one sweep to the next on a thread, so
// that a backward neither grows a fresh vector (a copy and an allocation at every doubling) nor
// frees it. A sweep started inside another's rule (a custom backward calling grad()) finds the
// spare taken and starts an empty list of its own. Lists longer than this are not kept, so that
// one huge graph does not pin its list's memory for the thread's lifetime.
constexpr std::size_t kSpareRanMax = std::size_t(1) << 16;  // 512 KiB of pointers
thread_local std::vector<Node*> spare_ran;

// Sweeps running on this thread. One started inside another's rule keeps its state apart
// (GradSink::own_state_): a custom op's backward may call grad() on a graph that shares nodes with
// the graph being swept (its own inputs, say), and writing that state into the shared nodes
// overwrote the gradient the outer sweep had collected there (a wrong gradient, silently). The
// same from a thread that backward starts: detail::user_backwards_running.
thread_local int running_sweeps = 0;

void check_seed(const Tensor& y, const Tensor& seed, const char* op) {
  if (!seed.defined()) throw std::invalid_argument(fmt::format("{}: the seed gradient is undefined", op));
  if (!(seed.shape() == y.shape()))
    throw std::invalid_argument(fmt::format("{}: seed shape {} does not match output shape {}", op,
                                            seed.shape().str(), y.shape().str()));
  if (seed.dtype() != y.dtype())
    throw std::invalid_argument(fmt::format("{}: seed dtype {} does not match output dtype {}", op,
                                            dtype_name(seed.dtype()), dtype_name(y.dtype())));
}

}  // namespace

namespace detail {

// Sums a gradient back to the shape of the input it belongs to (undoing broadcasting).
Tensor fit_to(const Tensor& g, const Edge& e) {
  Tensor out = g.shape() == e.shape() ? g : sum_to(g, e.shape());
  if (out.dtype() != e.dtype) out = out.to(e.dtype);
  return out;
}

void add_in_place(Tensor& acc, const Tensor& g) {
  detail::dispatch(acc.dtype(), [&]<class T>() {
    T* out = acc.impl()->data<T>();
    const T* in = g.impl()->data<T>();
    for (int64_t i = 0, n = acc.numel(); i < n; ++i) out[i] += in[i];
  });
}

Sweep::Sweep(bool create_graph, const Wanted* wanted)
    : GradSink(++next_sweep), create_graph_(create_graph), wanted_(wanted), ran_(std::exchange(spare_ran, {})) {
  ran_.clear();
  own_state_ = running_sweeps++ > 0 || detail::user_backwards_running.load(std::memory_order_relaxed) > 0;
}

Sweep::~Sweep() {
  --running_sweeps;
  if (!own_state_) {
    if (latest_) latest_->grad = Tensor();
    for (Node* n : waiting_) n->grad = Tensor();
  }
  if (ran_.capacity() <= kSpareRanMax && ran_.capacity() > spare_ran.capacity()) spare_ran = std::move(ran_);
}

// A node's first sight in this sweep: it waits to run.
template <bool kOwnState>
inline void Sweep::reach(Node* m) {
  if (kOwnState) {
    if (!reached_.insert(m).second) return;
  } else {
    if (m->sweep == id_) return;
    m->sweep = id_;
  }
  if (!latest_) {
    latest_ = m;
    return;
  }
  if (recorded_earlier(latest_, m)) std::swap(latest_, m);
  waiting_.push_back(m);
  std::push_heap(waiting_.begin(), waiting_.end(), recorded_earlier);
}

// The latest recorded of the waiting nodes (null when none waits).
inline Node* Sweep::take_latest() {
  Node* n = latest_;
  if (waiting_.empty()) {
    latest_ = nullptr;
  } else {
    std::pop_heap(waiting_.begin(), waiting_.end(), recorded_earlier);
    latest_ = waiting_.back();
    waiting_.pop_back();
  }
  return n;
}

// For grad(inputs): a node runs only if some wanted input lies below it. Decided for every node
// reachable from the outputs, producers first (creation order).
void Sweep::mark_needed(const std::vector<Root>& roots) {
  std::unordered_set<Node*> seen;
  std::vector<Node*> nodes;
  for (const Root& r : roots)
    if (Node* fn = r.output.impl()->grad_fn.get(); fn && seen.insert(fn).second) nodes.push_back(fn);
  for (size_t k = 0; k < nodes.size(); ++k)
    for (const Edge& e : nodes[k]->next)
      if (e.fn && seen.insert(e.fn.get()).second) nodes.push_back(e.fn.get());
  std::sort(nodes.begin(), nodes.end(), recorded_earlier);
  for (Node* n : nodes) {
    for (const Edge& e : n->next) {
      if ((e.fn && (needed_.count(e.fn.get()) || wanted_->count(e.fn.get()))) ||
          (e.leaf && wanted_->count(e.leaf.get()))) {
        needed_.insert(n);
        break;
      }
    }
  }
}

// Runs n's Tensor rule on its gradient g and hands the results to the inputs (the fast rule did
// not apply). Out of line, so that the sweep's loop keeps its registers for the fast rules.
void Sweep::run_rule(Node& n, Tensor& g) {
  // The observer (a trace) sees this sweep's nodes only: not those of a backward that a rule runs
  // itself (a custom op's backward may), which would be mixed into this graph's.
  struct Suspend {
    detail::BackwardObserver* saved = std::exchange(detail::BackwardObserver::current, nullptr);
    ~Suspend() { detail::BackwardObserver::current = saved; }
  };
  std::vector<Tensor> grads;
  {
    const Suspend outside;
    grads = detail::run_backward_rule(n.name, n.where, [&] { return n.apply(g); });
  }
  if (AnomalyMode::enabled())
    for (size_t i = 0; i < grads.size(); ++i)
      if (grads[i].defined() && !detail::all_finite(grads[i]))
        detail::throw_anomaly("backward", n.name, n.where, detail::first_non_finite(grads[i]),
                              fmt::format("the gradient for input {} (shape {})", i, grads[i].shape().str()));
  if (detail::BackwardObserver::current) detail::BackwardObserver::current->on_node(n, g, grads);
  for (size_t i = 0; i < n.next.size() && i < grads.size(); ++i) add(n.next[i], grads[i]);
}

// Runs the reached nodes, latest recorded first. kOwnState is own_state_, a constant here so that
// the common sweep's loop does not test it at every node.
template <bool kOwnState>
void Sweep::run_nodes() {
  // The fast rules serve plain backward passes; traces, anomaly mode and create_graph use the
  // Tensor rules.
  const bool fast = !create_graph_ && !AnomalyMode::enabled() && !detail::BackwardObserver::current;
  while (Node* n = take_latest()) {
    Tensor g = std::move(node_grad<kOwnState>(n));
    if (wanted_) {
      if (g.defined() && wanted_->count(n)) accumulate(captured[n], g);
      // No wanted input lies below n: it is neither run nor checked, nor are the nodes below it
      // (grad() with respect to h needs nothing of h's producer, which a backward may have freed).
      if (!needed_.count(n)) continue;
    }
    if (n->freed) throw_freed(*n);
    for (Edge& e : n->next)
      if (e.fn) reach<kOwnState>(e.fn.get());
    if (!g.defined()) continue;
    ran_.push_back(n);
    if (!fast || !n->apply_fast(g, *this)) run_rule(*n, g);
  }
}

void Sweep::run(const std::vector<Root>& roots) {
  GradModeGuard recording(create_graph_);
  if (wanted_) mark_needed(roots);
  for (const Root& r : roots) {
    TensorImpl* out = r.output.impl();
    if (Node* fn = out->grad_fn.get()) {
      reach(fn);
      accumulate(node_grad(fn), r.seed);
    } else if (Tensor* slot = leaf_slot(r.output.impl_ref())) {
      accumulate(*slot, r.seed);
    }
  }

  if (own_state_) run_nodes<true>();
  else run_nodes<false>();
}

void Sweep::free_graph(bool retain) {
  if (retain) return;
  for (Node* n : ran_) {
    n->release_saved();
    n->freed = true;
  }
}

// A graph recorded before a leaf was converted to another dtype (nn::Module::to) computes its
// gradient in the old dtype; adding it to the leaf's .grad, or making it the .grad of a leaf of the
// new dtype, would fail half-way through the leaves or leave a .grad that does not match its leaf.
void Sweep::check_leaf_grads() const {
  for (size_t i = fused_; i < leaf_grads.size(); ++i) {
    const auto& [leaf, g] = leaf_grads[i];
    if (!g.defined() || g.dtype() == leaf->dtype) continue;
    throw std::logic_error(fmt::format(
        "backward: a leaf of shape {} is now {} but this graph computed its gradient as {}: the leaf was "
        "converted (e.g. by Module::to) after the graph was recorded. Run the forward again after converting.",
        leaf->shape.str(), dtype_name(leaf->dtype), dtype_name(g.dtype())));
  }
}

void Sweep::new_leaf_grads(bool create_graph) {
  GradModeGuard recording(create_graph);
  for (size_t i = fused_; i < leaf_grads.size(); ++i) {
    auto& [leaf, g] = leaf_grads[i];
    // A leaf whose requires_grad was turned off after this graph was recorded takes nothing (as
    // PyTorch's AccumulateGrad).
    if (!g.defined()) continue;
    if (!leaf->requires_grad) {
      g = Tensor();
      continue;
    }
    // A gradient the sweep alone holds becomes .grad as it is; others are copied (detach), or with
    // create_graph copied as recorded (clone): a rule may hand the same tensor to several inputs
    // (add's), or the seed itself, and an in-place change of one leaf's .grad (clipping it) must
    // not change another's, nor the caller's seed.
    const bool alone = g.impl()->refs == 1 && g.impl()->storage->refs == 1;
    if (leaf->grad) {
      // A .grad recorded by an earlier create_graph backward keeps its history when a plain
      // backward adds to it (the new part a constant), as PyTorch's in-place accumulation does.
      const Tensor old(leaf->grad);
      GradModeGuard keep_history(create_graph || old.requires_grad());
      g = old + g;
      continue;
    }
    if (sole_owner(g)) continue;
    g = !create_graph ? g.detach() : alone ? g : g.clone();
  }
}

void Sweep::set_leaf_grads() noexcept {
  for (size_t i = fused_; i < leaf_grads.size(); ++i)
    if (leaf_grads[i].second.defined()) leaf_grads[i].first->grad = leaf_grads[i].second.impl_ref();
}

Tensor default_seed(const Tensor& y, const char* op, const char* remedy) {
  if (y.numel() != 1)
    throw std::invalid_argument(fmt::format(
        "{}: the output has shape {} ({} elements); a seed gradient is required for a non-scalar "
        "output: {}",
        op, y.shape().str(), y.numel(), remedy));
  return ones(y.shape(), y.dtype());
}

void check_requires_grad(const Tensor& y, const char* op) {
  if (!y.defined()) throw std::invalid_argument(fmt::format("{}: the tensor is undefined", op));
  if (!y.requires_grad())
    throw std::logic_error(fmt::format(
        "{}: the tensor (shape {}) does not require grad and has no grad_fn: no leaf with "
        "requires_grad contributed to it, or it was computed under NoGradGuard",
        op, y.shape().str()));
}

}  // namespace detail

void Tensor::backward(BackwardOptions options) const {
  check_requires_grad(*this, "backward");
  backward(default_seed(*this, "backward", "pass one of the same shape, backward(seed)"), options);
}

void Tensor::backward(const Tensor& seed, BackwardOptions options) const {
  check_requires_grad(*this, "backward");
  check_seed(*this, seed, "backward");
  Sweep sweep(options.create_graph, nullptr);
  sweep.run({{*this, seed}});
  sweep.check_leaf_grads();
  sweep.new_leaf_grads(options.create_graph);
  sweep.free_graph(options.retain_graph || options.create_graph);
  sweep.set_leaf_grads();
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, GradOptions options) {
  if (outputs.empty()) throw std::invalid_argument("grad: no outputs given");
  // As PyTorch: a sweep for no input would only free the graph.
  if (inputs.empty()) throw std::invalid_argument("grad: no inputs given");
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw std::invalid_argument(fmt::format("grad: got {} outputs but {} grad_outputs", outputs.size(),
                                            grad_outputs.size()));
  std::vector<Root> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    check_requires_grad(outputs[i], "grad");
    Tensor seed = grad_outputs.empty() ? default_seed(outputs[i], "grad", "pass grad_outputs, one of each output's shape") : grad_outputs[i];
    check_seed(outputs[i], seed, "grad");
    roots.push_back({outputs[i], seed});
  }
  Wanted wanted;
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
  Sweep sweep(options.create_graph, &wanted);
  sweep.run(roots);
  // Each input's gradient (null: unused). An unused input throws before the graph is freed: the
  // call can be repeated (allow_unused).
  std::vector<const Tensor*> found(inputs.size(), nullptr);
  for (size_t k = 0; k < inputs.size(); ++k) {
    auto it = sweep.captured.find(keys[k]);
    if (it != sweep.captured.end() && it->second.defined()) found[k] = &it->second;
    else if (!options.allow_unused)
      throw std::invalid_argument(fmt::format(
          "grad: input {} (shape {}) is not used to compute the outputs (pass allow_unused = true "
          "to get zeros)",
          k, inputs[k].shape().str()));
  }
  std::vector<Tensor> out;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!found[k]) {
      out.push_back(zeros(inputs[k].shape(), inputs[k].dtype()));
      continue;
    }
    const Tensor& captured = *found[k];
    // As for backward's leaves: with create_graph, a gradient held elsewhere too (by another input's
    // result, the caller's grad_outputs) is cloned, so that changing one result in place changes
    // nothing else.
    const bool alone = captured.impl()->refs == 1 && captured.impl()->storage->refs == 1;
    Tensor g = captured;
    if (!(g.shape() == inputs[k].shape())) {
      g = sum_to(g, inputs[k].shape());
    } else if (options.create_graph && !alone) {
      GradModeGuard recording(true);
      g = g.clone();
    }
    out.push_back(options.create_graph ? g : g.detach());
  }
  sweep.free_graph(options.retain_graph || options.create_graph);
  return out;
}

}  // namespace chainrule
