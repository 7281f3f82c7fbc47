#pragma once
// Internal: what a Tensor handle points to, and the recorded graph behind Tensors.
//
// Graph layout: every recorded op creates one Node (its grad_fn) that holds an Edge per input and
// the tensors its rule needs (SavedTensor, with the storage version seen at save time). A Node is
// reference counted by the tensors it produced and by the Nodes downstream; it dies when nothing
// can reach it any more, and its destruction is deferred to a loop (Node::destroy) so that a chain
// of a million ops is released without recursion. backward() runs the Nodes from a heap in
// reverse creation order (tensor_engine.cpp), never recursively. Recording an op (should_record,
// the edges and the attach of its node) is in autograd/tensor_record.h.
#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <optional>
#include <source_location>
#include <string_view>
#include <vector>
#include <utility>

#include "autograd/pool.h"
#include "autograd/ref.h"
#include "autograd/shape.h"
#include "autograd/small_vector.h"
#include "autograd/tensor.h"

namespace chainrule::detail {

inline TensorImpl::TensorImpl(DType d, const Shape& s, int64_t n) : dtype(d), shape(s), numel(n) {}

// A small tensor's pool block: its TensorImpl at 0, its Storage at kBlockStorage, its bytes at
// kBlockData (32-byte aligned), so that a small result takes one allocation. TensorImpl::destroy
// and Storage::destroy free it when both are gone (Storage::block_users).
inline constexpr std::size_t kBlockStorage = (sizeof(TensorImpl) + alignof(Storage) - 1) / alignof(Storage) * alignof(Storage);
inline constexpr std::size_t kBlockData = (kBlockStorage + sizeof(Storage) + 31) / 32 * 32;
inline constexpr int64_t kBlockMaxBytes = static_cast<int64_t>(kPoolMaxBytes - kBlockData);

// A new tensor with uninitialised data: inline for small tensors (one pool block), else
// empty_large (a header, and a storage of its own).
Tensor empty_large(const Shape& shape, DType dtype);
// `numel` is shape.numel(), which the callers that have it pass on (an op's operand knows its own).
inline Tensor empty(const Shape& shape, DType dtype, int64_t numel) {
  // Unsigned, so that the size below is known to lie in the pool's range (no test for 0 bytes);
  // the count is tested first, so that the product cannot wrap.
  const auto n = static_cast<std::size_t>(numel);
  const std::size_t bytes = n * static_cast<std::size_t>(dtype_size(dtype));
  if (n > static_cast<std::size_t>(kBlockMaxBytes) || bytes > static_cast<std::size_t>(kBlockMaxBytes))
    return empty_large(shape, dtype);
  char* block = static_cast<char*>(pool_allocate(kBlockData + bytes));
  auto* s = ::new (block + kBlockStorage) Storage;
  s->bytes = static_cast<int64_t>(bytes);
  s->data = block + kBlockData;
  s->block_users = 2;
  auto* t = ::new (block) TensorImpl(dtype, shape, numel);
  t->in_block = true;
  t->storage = Ref<Storage>(s);
  return Tensor(Ref<TensorImpl>(t));
}
inline Tensor empty(const Shape& shape, DType dtype) { return empty(shape, dtype, shape.numel()); }
// A new handle on the same storage, without history (shares the version counter).
Tensor alias_detached(const Tensor& t);

// The shape of an input that takes no gradient (for DOT pictures), in a pool block of its own:
// the edges of the other inputs find theirs in the node or leaf they point to.
class ConstantShape {
 public:
  ConstantShape() = default;
  explicit ConstantShape(const Shape& s) : p_(::new (pool_allocate(sizeof(Shape))) Shape(s)) {}
  ConstantShape(ConstantShape&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ConstantShape& operator=(ConstantShape o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~ConstantShape() { pool_free(p_, sizeof(Shape)); }  // Shape is trivially destructible
  const Shape& operator*() const { return *p_; }

 private:
  Shape* p_ = nullptr;
};

// One input of a recorded op: where its gradient goes.
struct Edge {
  Ref<Node> fn;           // the input's grad_fn (interior input)
  Ref<TensorImpl> leaf;   // the input itself (leaf that requires grad)
  DType dtype = DType::float32;  // the input's, when recorded (a leaf may change: Module::to)
  ConstantShape constant_shape;  // neither fn nor leaf: the input's shape
  bool defined() const { return fn || leaf; }
  // The input's shape: gradients are summed back to it (un-broadcast). A tensor's grad_fn has
  // the tensor's shape (Node::shape), and a leaf's shape never changes.
  inline const Shape& shape() const;
};

// A tensor kept for a backward rule: its bytes (the Storage, counted) and the version they had,
// never its TensorImpl. Input k of the op keeps only that: its shape, dtype and history are those
// of the node's edge k (Node::next[k]), so unpack() gives back the input as it was when saved. A
// kept TensorImpl would tie the node to the tensor's later history: an in-place update of the input
// (`y *= log(y)`, `c *= w * c`) makes the tensor's new grad_fn reach this node, a cycle of counted
// references that is never freed (the graph leaked whenever it was dropped without a backward).
// The op's own output is kept the same way, its shape and dtype being the node's (Node::shape,
// Node::dtype); unpack gives it this node as its history, for create_graph.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const SavedTensor& o) : p_(o.p_), version_(o.version_), what_(o.what_) {
    if (p_) ++p_->refs;
  }
  SavedTensor(SavedTensor&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), version_(o.version_), what_(o.what_) {}
  SavedTensor& operator=(SavedTensor o) noexcept {
    std::swap(p_, o.p_);
    std::swap(version_, o.version_);
    std::swap(what_, o.what_);
    return *this;
  }
  ~SavedTensor() { reset(); }
  // t, which is input `index` of the op (its edge in the node's `next`; added after this).
  static SavedTensor input(const Tensor& t, uint32_t index) {
    assert(index < kFloat64);
    const TensorImpl* impl = t.impl();
    return SavedTensor(impl->storage.get(), index | (impl->wrapped_number ? kWrapped : 0) |
                                                (impl->dtype == DType::float64 ? kFloat64 : 0));
  }
  static SavedTensor output(const Tensor& t) { return SavedTensor(t.impl()->storage.get(), kOutput); }
  bool saved() const { return p_ != nullptr; }
  void reset() {
    if (!p_) return;  // first: a node's destructor finds its saved tensors already released
    if (--p_->refs == 0) Storage::destroy(p_);
    p_ = nullptr;
  }
  // Throws std::logic_error naming `node` (the node that saved it) if the tensor was modified in
  // place since it was saved.
  Tensor unpack(Node& node) const;
  // The saved bytes, after the same check as unpack (for rules that run on plain numbers).
  const Storage& storage(const Node& node) const {
    if (p_->version != version_) throw_modified(node);
    return *p_;
  }
  inline const Shape& shape(const Node& node) const;
  inline int64_t numel(const Node& node) const { return shape(node).numel(); }
  inline DType dtype(const Node& node) const;

 private:
  static constexpr uint32_t kOutput = UINT32_MAX;
  static constexpr uint32_t kWrapped = uint32_t{1} << 31;  // an input made from a plain number
  static constexpr uint32_t kFloat64 = uint32_t{1} << 30;  // an input's dtype (the edge's too, kept
                                                           // here: a tiny op's rule reads it)
  Storage* p_ = nullptr;  // one counted reference; null when nothing is saved
  uint32_t version_ = 0;
  uint32_t what_ = kOutput;  // kOutput, or the input's edge index | kWrapped | kFloat64
  SavedTensor(Storage* s, uint32_t what) : p_(s), version_(s->version), what_(what) { ++s->refs; }
  bool is_output() const { return what_ == kOutput; }
  uint32_t edge() const { return what_ & ~(kWrapped | kFloat64); }
  [[noreturn]] void throw_modified(const Node& node) const;
};

class GradSink;

struct NodeExtras {
  std::function<Tensor(const std::vector<Tensor>&)> replay;  // set only while ReplayGuard is on
  std::vector<Tensor> replay_inputs;                          // detached copies, for replay
  // Custom ops, also only while ReplayGuard is on: the whole op again, recorded with its backward,
  // so that gradgradcheck's localisation can check that backward's own derivatives.
  std::function<Tensor(const std::vector<Tensor>&)> rerecord;
  std::string owned_name;                                     // custom ops: Node::name points here
};

// The small fields sit together, and a dead node links destroy's queue through a field it no longer
// needs: an elementwise node fits in four 64-byte lines (one pool block of 256 bytes).
struct Node : Pooled {
  uint32_t refs = 0;
  DType dtype = DType::float32;  // of the op's output
  bool freed = false;
  std::string_view name;
  std::source_location where;
  // Above every input's: the sweep runs nodes in reverse of it. Once the node is dead (queued by
  // Node::destroy), nothing orders it any more and the same word links destroy's queue.
  union {
    uint64_t sequence = 0;
    Node* pending;
  };
  Shape shape;                   // of the op's output
  SmallVector<Edge, 2> next;     // one per input of the op, in order
  uint64_t sweep = 0;            // id of the last sweep that reached this node
  Tensor grad;                   // the gradient collecting here while that sweep runs
  // What few nodes need, kept apart so that the common node carries one null pointer: allocated
  // only for a replay (recorded while ReplayGuard is on) or a custom op's name.
  std::unique_ptr<NodeExtras> extras;

  Node() = default;
  // A node whose output is known when it is made (the elementwise ops): its shape is copied once,
  // not zeroed here and copied again when it is attached (attach_shaped_node), and its name and
  // source location are set once too.
  Node(const Shape& s, DType d, std::string_view op, std::source_location at)
      : dtype(d), name(op), where(at), shape(s) {}
  virtual ~Node() = default;
  // The gradient for each input (an undefined Tensor where !next[i].defined()); shapes may be
  // broadcast: the engine sums them back to next[i].shape().
  virtual std::vector<Tensor> apply(const Tensor& grad) = 0;
  // The fast sweep's rule (no create_graph, no observer, no anomaly mode): hands each input's
  // gradient to `sink` without building Tensor expressions, and may reuse `grad`'s buffer (the
  // sweep owns it). Returns false when this node has none, or not for these dtypes: the sweep then
  // calls apply().
  virtual bool apply_fast(Tensor& grad, GradSink& sink) { (void)grad; (void)sink; return false; }
  virtual void release_saved() = 0;
  bool needs(size_t i) const { return i < next.size() && next[i].defined(); }
  // The replay (gradcheck's localisation): re-runs this op's forward on new input values. Only
  // ops recorded while ReplayGuard was on have one.
  bool has_replay() const { return extras && extras->replay; }
  Tensor replay(const std::vector<Tensor>& inputs) const { return extras->replay(inputs); }  // has_replay()
  // The inputs as they were when a replay was recorded (empty without one).
  const std::vector<Tensor>& replay_inputs() const;
  NodeExtras& extras_or_new();
  // Nodes die through a loop (destroy_all): a node's destructor may release the next node, which is
  // queued (linked through Node::pending) instead of being destroyed inside the first one's
  // destructor. Inline, because queueing is what nearly every call does (a chain's nodes release
  // each other one by one).
  static void destroy(Node* n) {
    if (!destroy_draining) return destroy_all(n);
    n->pending = destroy_pending;
    destroy_pending = n;
  }

 private:
  static void destroy_all(Node* n);  // deletes n and every node queued meanwhile
  static inline constinit thread_local Node* destroy_pending = nullptr;
  static inline constinit thread_local bool destroy_draining = false;
};

template <class F>
struct FunctionNode final : Node {
  explicit FunctionNode(F f) : rule(std::move(f)) {}
  std::optional<F> rule;
  std::vector<Tensor> apply(const Tensor& grad) override { return (*rule)(grad, *this); }
  void release_saved() override { rule.reset(); }
};

inline const Shape& Edge::shape() const { return fn ? fn->shape : leaf ? leaf->shape : *constant_shape; }

inline const Shape& SavedTensor::shape(const Node& node) const {
  return is_output() ? node.shape : node.next[edge()].shape();
}
inline DType SavedTensor::dtype(const Node& node) const {
  if (is_output()) return node.dtype;
  return (what_ & kFloat64) != 0 ? DType::float64 : DType::float32;
}

// Nobody but the holder can see t's values: a sweep may change them in place.
inline bool sole_owner(const Tensor& t) {
  const TensorImpl* impl = t.impl();
  return impl->refs == 1 && impl->storage->refs == 1 && !impl->requires_grad;
}

// Where a rule's gradients go during a sweep; the sweep (tensor_engine.cpp) implements it. All
// accumulation passes through here, which also sums gradients back to each input's shape.
class GradSink {
 public:
  // Adds `g` (any shape that broadcasts to e.shape()) to the gradient of input `e`.
  virtual void add(Edge& e, const Tensor& g) = 0;
  // A buffer of e.shape() and e.dtype for the rule to write input e's gradient into, and whether to
  // add to what it holds (`add`) or overwrite it. `donor`, a tensor the sweep owns with e's shape
  // and dtype, may become that buffer (the rule then overwrites the donor's values). data is null
  // when no gradient is wanted for e.
  struct Target {
    void* data = nullptr;
    bool add = false;
  };
  // Inline for the two cases of nearly every call (the donor becomes the buffer; the sweep's own
  // buffer is added to), once the input's slot is known without a lookup: an interior input's
  // Node::grad, or a leaf this sweep has seen. The rest (a first sight of a leaf, grad()'s
  // filter, a buffer to allocate or to copy) in target_slow, which decides every case.
  [[gnu::always_inline]] Target target(Edge& e, Tensor* donor) {
    Tensor* slot = nullptr;
    if (own_state_) return target_slow(e, donor);
    if (e.fn) slot = &e.fn->grad;
    else if (e.leaf && e.leaf->sweep == id_) slot = &leaf_grads[e.leaf->sweep_slot].second;
    if (slot) {
      if (!slot->defined()) {
        if (donor && sole_owner(*donor)) {
          swap(*slot, *donor);  // the slot is empty: a move without a drop of its old value
          return {slot->impl()->storage->data, false};
        }
      } else if (sole_owner(*slot)) {
        return {slot->impl()->storage->data, true};
      }
    }
    return target_slow(e, donor);
  }

  // A product for input e's gradient, alpha * op(a) @ op(b) ([n, m], summed over k; a is stored
  // [n, k], or [k, n] when ta; b [k, m], or [m, k] when tb), that the sink may apply itself later
  // instead of the rule computing it now: backward_and_update adds it straight into a parameter
  // with one gemm (beta = 1), so the gradient is never stored. True when the sink took it; false
  // (the rule computes it) otherwise.
  struct Product {
    Tensor a, b;
    bool ta = false, tb = false;
    int64_t n = 0, m = 0, k = 0;
  };
  virtual bool defer(Edge& e, Product& p) { (void)e; (void)p; return false; }

  // backward(): the gradient of each leaf reached, in the order first reached; a leaf's
  // TensorImpl::sweep_slot indexes it while TensorImpl::sweep == id_.
  std::vector<std::pair<Ref<TensorImpl>, Tensor>> leaf_grads;

 protected:
  explicit GradSink(uint64_t id) : id_(id) {}
  ~GradSink() = default;
  virtual Target target_slow(Edge& e, Tensor* donor) = 0;

  const uint64_t id_;  // unique over all threads' sweeps
  // A sweep started while another runs on the thread (a custom op's backward calling grad() or
  // backward()) keeps its gradients and marks in maps of its own, not in Node::grad and the sweep
  // stamps that the outer sweep is using for nodes and leaves they may share.
  bool own_state_ = false;
};

// c += alpha * op(p.a) @ op(p.b) (one gemm with beta = 1; a rank-one update when p.k is 1), for
// a product the sink took (GradSink::defer). c is contiguous [p.n, p.m] of the operands' dtype.
void add_product(TensorImpl& c, const GradSink::Product& p, double alpha);

// User-defined backwards (custom_op) running now, on any thread. A sweep paused inside one may
// have its state in nodes that the user's code sweeps again from another thread (a thread it
// starts and joins); a sweep that starts while any runs keeps its state apart (own_state_), as one
// nested on the same thread does.
inline std::atomic<int> user_backwards_running{0};

// Sees every node a backward sweep runs on its thread (chain-rule traces of Tensor graphs): the
// gradient the node received and the gradients its rule returned, one per input (undefined where
// none flows; not yet summed back to the inputs' shapes). Unset (nullptr) by default: one branch.
struct BackwardObserver {
  virtual ~BackwardObserver() = default;
  virtual void on_node(const Node& node, const Tensor& grad, const std::vector<Tensor>& input_grads) = 0;
  static inline thread_local BackwardObserver* current = nullptr;
};

}  // namespace chainrule::detail
