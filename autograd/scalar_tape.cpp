// The Scalar tape's cold half: reset and growth of the record array, leaves entering a graph, and the
// reverse sweeps (see autograd/scalar_tape.h for which sweep runs when).
#include "autograd/scalar_tape.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <stdexcept>

#include "autograd/anomaly.h"
#include "autograd/scalar_rules.h"

namespace chainrule::detail {

namespace {
// Record indices stay below kConstantTag (constants' indices are tagged with it); so do constants'.
constexpr uint64_t kMaxRecords = kConstantTag - 1;
}  // namespace

void throw_freed(std::string_view op) {
  if (op == scalar_op_name(ScalarOp::Freed))  // a stale operand (ScalarTape::enter_stale)
    throw std::logic_error(
        "backward: this graph used a Scalar whose own graph is gone: freed by an earlier backward() and "
        "released since, or recorded on another thread (a graph belongs to the thread that recorded "
        "it). Its value was used as a number, but no gradient can flow back through it: use detach() "
        "to say so, or BackwardOptions{.retain_graph = true} to keep a graph for a second backward.");
  throw std::logic_error(fmt::format(
      "backward: trying to backward through the graph a second time: the '{}' node was freed by an "
      "earlier backward(). Pass BackwardOptions{{.retain_graph = true}} to the first backward() if "
      "you need to sweep the same graph twice.",
      op));
}

namespace {
constexpr unsigned kBlockBits = 16;
uint64_t block_of(uint64_t generation) { return (generation - 1) >> kBlockBits; }
}  // namespace

// Handles copied or dropped on a thread other than their tape's: (generation, record, +1 or -1),
// applied by the owner (ScalarTape::apply_foreign_counts) only while that generation is current.
struct ForeignCount {
  uint64_t generation;
  uint32_t record;
  int32_t delta;
};
struct ForeignInbox {
  std::mutex mutex;
  std::vector<ForeignCount> counts;
  std::atomic<bool> pending{false};  // counts wait here
};

namespace {
// Each thread's current block of generations -> its inbox. A handle of an older block is stale
// wherever it is (its generation is over), so a thread registers only its current block. Guarded by
// registry_mutex, which is held while a count goes into an inbox, so that an ending thread cannot
// free its inbox under another's hand. Leaked on purpose: threads may end after static destruction.
std::mutex registry_mutex;
std::unordered_map<uint64_t, ForeignInbox*>& registry() {
  static auto* map = new std::unordered_map<uint64_t, ForeignInbox*>;
  return *map;
}
}  // namespace

void count_foreign(uint64_t generation, uint32_t record, int32_t delta) noexcept {
  const uint64_t block = block_of(generation);
  if (block == block_of(tape_state.generation)) return;  // this thread's own: an older generation
  try {
    const std::lock_guard lock(registry_mutex);
    auto it = registry().find(block);
    if (it == registry().end()) return;  // its thread has ended or moved past that block
    ForeignInbox& inbox = *it->second;
    const std::lock_guard inbox_lock(inbox.mutex);
    // A copy made and dropped here cancels out in place, so that an owner that records nothing
    // (and so never applies its inbox) does not see it grow.
    if (!inbox.counts.empty() && inbox.counts.back().generation == generation &&
        inbox.counts.back().record == record) {
      if ((inbox.counts.back().delta += delta) == 0) inbox.counts.pop_back();
    } else {
      inbox.counts.push_back({generation, record, delta});
    }
    inbox.pending.store(true, std::memory_order_release);
  } catch (...) {
    // Out of memory or a failing mutex: the owner keeps a count too many (its array is then reused
    // only once its other handles are all gone) or too few (a graph of it may go stale early: a
    // backward through it throws). Nothing reads freed memory either way.
  }
}

// Not while a sweep runs: the one-pass sweep moves freed records' counts in one step at its end.
bool ScalarTape::apply_foreign_counts() {
  TapeState& t = state_;
  if (t.sweeping != 0 || !inbox_ || !inbox_->pending.load(std::memory_order_acquire)) return false;
  std::vector<ForeignCount> counts;
  {
    const std::lock_guard lock(inbox_->mutex);
    counts.swap(inbox_->counts);
    inbox_->pending.store(false, std::memory_order_relaxed);
  }
  for (const ForeignCount& c : counts) {
    if (c.generation != t.generation || c.record >= t.size) continue;  // a graph already released
    ScalarRecord& r = t.records[c.record];
    r.handles += static_cast<uint32_t>(c.delta);
    const int64_t unit = r.freed ? static_cast<int64_t>(kFreedHandle) : 1;
    t.handles += static_cast<uint64_t>(c.delta * unit);
  }
  return true;
}

// Generations are unique in the process, not only on one thread, so that a handle used on a thread
// other than the one that recorded it can never name a record of that thread's tape (it is stale
// there: its value is usable, a backward through it throws). Each thread takes blocks of 2^16 from
// one atomic counter; 64 bits do not wrap.
uint64_t ScalarTape::next_generation() {
  constexpr uint64_t kBlock = uint64_t{1} << kBlockBits;
  static std::atomic<uint64_t> blocks{0};
  if (generation_next_ == generation_end_) {
    const uint64_t block = blocks.fetch_add(1, std::memory_order_relaxed);
    {
      const std::lock_guard lock(registry_mutex);
      if (!inbox_) inbox_ = std::make_unique<ForeignInbox>();
      if (generation_end_ != 0) registry().erase(block_of(generation_next_ - 1));
      registry()[block] = inbox_.get();
    }
    generation_next_ = block * kBlock + 1;  // never 0
    generation_end_ = generation_next_ + kBlock - 1;
  }
  return generation_next_++;
}

// A sweep keeps its state in the records (adjoints, the id of the sweep that reached them), so a
// second sweep started from inside the first (a custom op's backward calling backward() or grad())
// would overwrite the first's and silently lose gradients.
void ScalarTape::throw_nested(std::string_view what) {
  throw std::logic_error(fmt::format(
      "{}: called while a backward is running on this thread's Scalar tape (from a custom op's "
      "backward?). A nested backward on Scalars is not supported: compute what the custom op's "
      "backward needs with plain numbers, or run it before or after the outer backward.",
      what));
}

void prepare_op() { ScalarTape::current().prepare_op(); }
void grow_tape() { ScalarTape::current().grow(); }
void grow_constants() { ScalarTape::current().grow_constants(); }
void tape_unused() {
  TapeState& t = tape_state;
  if (t.handles == 0 && t.sweeping == 0) {
    ScalarTape::current().reset_if_unused();
  } else {
    t.cold_at = 0;  // handles to freed records only: at the next op
  }
}

void ScalarTape::rearm() {
  TapeState& t = state_;
  if (seeking_ > 0 || t.capacity <= kOpRoom) {
    t.cold_at = 0;
  } else {
    t.cold_at = t.size < t.capacity / 2 ? t.capacity / 2 : t.capacity - kOpRoom;
  }
}

// begin_op's slow path. It resets the array if no graph on it is alive and makes room for an op's
// records. Most resets come sooner (when the last handle dies, or a sweep frees the last graph
// alive); this one catches what they cannot see: the last handle to an unfreed record dying while
// handles to freed ones remain, and handles dropped on other threads (counted here). It runs at half
// the capacity; if a graph is alive then and one of those two may be why, it runs at each of the
// next kSeekOps ops too: the half mark may fall while a statement's temporaries are alive, at the
// same place of the same loop every time, and without looking on for the moment between two
// statements the array would grow every time. (A plain training loop has neither, and does not
// pay for the look.)
void ScalarTape::prepare_op() {
  constexpr uint32_t kSeekOps = 64;
  TapeState& t = state_;
  if (apply_foreign_counts()) shared_ = true;
  if (t.sweeping == 0 && unfreed_handles(t) == 0 && t.size != 0) {
    reset();
  } else if (seeking_ > 0) {
    --seeking_;
  } else if (t.size >= t.capacity / 2 && (shared_ || t.handles >= kFreedHandle)) {
    seeking_ = kSeekOps;
  }
  if (t.capacity - t.size <= kOpRoom) grow();
  rearm();
}

void ScalarTape::reset_if_unused() {
  apply_foreign_counts();
  if (state_.sweeping == 0 && state_.handles == 0) reset();
}

// The common case saves no register and calls nothing: frozen leaves and growth take the slow path.
uint32_t enter_leaf(LeafCell* cell) {
  TapeState& t = tape_state;
  if (!cell->requires_grad || t.leaf_count == t.leaf_capacity || t.size == t.capacity) [[unlikely]]
    return ScalarTape::current().enter_leaf_slow(cell);
  const uint32_t r = t.size++;
  t.records[r] = ScalarRecord{cell->value, 0.0, t.leaf_count, 0, 0, ScalarOp::Leaf, false, 0};
  t.leaves[t.leaf_count++] = cell;
  ++cell->refs;
  cell->cached_generation = t.generation;
  cell->cached_record = r;
  return r;
}
uint32_t enter_stale(double value) { return ScalarTape::current().enter_stale(value); }

void destroy_cell(LeafCell* cell) noexcept {
  delete cell->grad_graph;
  delete cell;
}

ScalarTape::ScalarTape() = default;

ScalarTape::~ScalarTape() {
  reset();  // first: a reset may take (and register) a new block of generations
  if (inbox_) {
    const std::lock_guard lock(registry_mutex);
    registry().erase(block_of(generation_next_ - 1));
  }
  std::free(state_.records);
  state_.records = nullptr;
  state_.capacity = 0;
  std::free(state_.leaves);
  state_.leaves = nullptr;
  state_.leaf_capacity = 0;
  std::free(state_.constants);
  state_.constants = nullptr;
  state_.constant_capacity = 0;
  rearm();
}

// The generation moves on before any cell is released: a cell may own a recorded gradient
// (backward with create_graph) whose handle would otherwise reach back into the tape being reset.
void ScalarTape::reset() {
  TapeState& t = state_;
  t.size = 0;
  t.constant_count = 0;
  t.handles = 0;
  t.irregular = 0;
  t.generation = next_generation();
  customs_.clear();
  where_.clear();
  if (!labels_.empty()) labels_.clear();
  // Releasing a cell runs no Scalar op (see above), so the leaf table stays put during the loop.
  const uint32_t leaf_count = t.leaf_count;
  t.leaf_count = 0;
  for (uint32_t i = 0; i < leaf_count; ++i) release_cell(t.leaves[i]);
  swept_ = false;
  seeking_ = 0;
  rearm();
}

void ScalarTape::grow() {
  TapeState& t = state_;
  if (t.records == nullptr) t.generation = next_generation();  // this thread's first record
  if (t.capacity >= kMaxRecords)
    throw std::length_error(fmt::format("Scalar: the graph has more than {} nodes", t.size));
  const uint64_t next = t.capacity ? std::min<uint64_t>(uint64_t{t.capacity} * 2, kMaxRecords) : 1024;
  // 64-byte aligned, so that no 32-byte record straddles two cache lines (realloc's 16-byte
  // alignment split every other record, and how often varied from run to run).
  void* p = std::aligned_alloc(64, next * sizeof(ScalarRecord));
  if (!p) throw std::bad_alloc();
  if (t.size != 0) std::memcpy(p, t.records, uint64_t{t.size} * sizeof(ScalarRecord));
  std::free(t.records);
  t.records = static_cast<ScalarRecord*>(p);
  t.capacity = static_cast<uint32_t>(next);
  rearm();
}

namespace {
// Doubles one of the tape's side arrays (256 entries at first), up to kMaxRecords entries.
template <class T>
void grow_side_array(T*& array, uint32_t& capacity, uint32_t count, const char* what) {
  const uint64_t next = capacity ? std::min<uint64_t>(uint64_t{capacity} * 2, kMaxRecords) : 256;
  if (next <= capacity) throw std::length_error(fmt::format("Scalar: the graph has more than {} {}", count, what));
  void* p = std::realloc(array, next * sizeof(T));
  if (!p) throw std::bad_alloc();
  array = static_cast<T*>(p);
  capacity = static_cast<uint32_t>(next);
}
}  // namespace

void ScalarTape::grow_constants() {
  grow_side_array(state_.constants, state_.constant_capacity, state_.constant_count, "constant operands");
}

void ScalarTape::grow_leaves() {
  grow_side_array(state_.leaves, state_.leaf_capacity, state_.leaf_count, "leaves");
}

// A leaf that does not require grad enters as a constant, but keeps its label: an input such as
// "X1" stays named in traces. (Cached like a Leaf record; the tape holds no reference to its cell.)
uint32_t ScalarTape::enter_leaf_slow(LeafCell* c) {
  TapeState& t = state_;
  if (c->requires_grad) {
    if (t.leaf_count == t.leaf_capacity) grow_leaves();
    if (t.size == t.capacity) grow();
    return enter_leaf(c);
  }
  const uint32_t r = append_constant(c->value);
  if (!c->label.empty()) labels_[r] = c->label;
  c->cached_generation = t.generation;
  c->cached_record = r;
  return r;
}

uint32_t ScalarTape::enter_stale(double value) {
  ++state_.irregular;
  return append_record(ScalarOp::Freed, 0, 0, value, 0);
}

void ScalarTape::note_location(ScalarOp op, uint32_t a, double value, const Where& where) {
  if (AnomalyMode::enabled() && !std::isfinite(value)) {
    const std::string name(op == ScalarOp::Custom ? std::string_view(customs_[a].name) : scalar_op_name(op));
    throw_anomaly("forward", name, where, value);
  }
  where_.resize(state_.size);
  where_.push_back(where);
}

uint32_t ScalarTape::add_custom(CustomOpEntry entry) {
  ++state_.irregular;
  customs_.push_back(std::move(entry));
  return static_cast<uint32_t>(customs_.size() - 1);
}

Scalar ScalarTape::handle_to(uint32_t record) {
  if (is_constant(record)) return Scalar(operand_value(state_, record));
  const ScalarRecord& r = state_.records[record];
  Scalar s(r.value);
  s.record_ = record;
  s.generation_ = state_.generation;
  s.acquire();
  return s;
}

// A new sweep id (records keep the id of the last sweep that reached them, so nothing is cleared per
// sweep), and the seeds reached.
uint32_t ScalarTape::begin_sweep(std::span<const Seed> seeds) {
  TapeState& t = state_;
  if (++t.sweep == 0) {  // the 16-bit id wrapped: forget every old id once
    for (uint32_t i = 0; i < t.size; ++i) t.records[i].sweep = 0;
    t.sweep = 1;
  }
  uint32_t top = 0;
  for (const Seed& s : seeds) {
    const ScalarRecord& r = t.records[s.record];
    if (r.freed && r.op != ScalarOp::Leaf) throw_freed(scalar_op_name(r.op));
    top = std::max(top, s.record);
  }
  pending_ = 0;
  for (const Seed& s : seeds) reach(t.records[s.record], s.value);
  swept_ = true;  // adjoints are no longer all 0
  return top;
}

// The one-pass sweep: adjoints, leaves' gradients and freeing in one reverse loop over doubles. Only
// taken when nothing in it can throw (TapeState::irregular == 0, anomaly mode off).
// `fresh`: no sweep has run since the last reset, so every record's adjoint is still the 0 it was
// recorded with. Then reaching a record is one add and a store of the id, and the loop runs down
// to record 0 instead of counting the reached records it has yet to process.
template <bool free_graph, bool fresh>
void ScalarTape::sweep_one_pass(uint32_t top) {
  ScalarRecord* const r = state_.records;
  const double* const constants = state_.constants;
  LeafCell* const* const leaves = state_.leaves;
  const uint16_t id = state_.sweep;
  uint32_t pending = pending_;  // reached records below, not yet processed: 0 ends the sweep
  uint32_t freed_handles = 0;
  uint32_t skipped = 0;  // fresh: records below the top that the sweep did not reach
  auto value = [r, constants](uint32_t i) { return operand_value(r, constants, i); };
  // reach(), on locals: this loop keeps the sweep id and the pending count in registers.
  auto reach_one = [&](ScalarRecord& target, double d) {
    if constexpr (fresh) {
      target.sweep = id;
      target.grad += d;
    } else if (target.sweep != id) {
      target.sweep = id;
      target.grad = d;
      ++pending;
    } else {
      target.grad += d;
    }
  };
  ScalarRecord* n = r + top + 1;
  while (fresh ? n != r : pending > 0) {
    --n;
    if (n->sweep != id) {
      if constexpr (fresh) ++skipped;
      continue;
    }
    if constexpr (!fresh) --pending;
    if constexpr (free_graph) {
      n->freed = true;
      if constexpr (!fresh) freed_handles += n->handles;
    }
    const uint32_t a = n->a, b = n->b;
    apply_rule(
        n->op, n->grad, [&] { return value(a); }, [&] { return value(b); }, n->value, [a] { return !is_constant(a); },
        [b] { return !is_constant(b); }, [&](int k, double d) { reach_one(r[k == 0 ? a : b], d); },
        [&] {
          LeafCell* c = leaves[a];
          c->grad += n->grad;
          if constexpr (free_graph) c->cached_generation = 0;  // a new graph enters it anew
        });
  }
  pending_ = 0;
  if constexpr (free_graph) {
    if constexpr (fresh) {
      // No record was freed before this sweep. If it freed them all, every handle names one of
      // them; else count the handles of those it freed.
      if (skipped == 0 && top + 1 == state_.size) {
        freed_handles = unfreed_handles(state_);
      } else {
        for (uint32_t i = 0; i <= top; ++i)
          if (r[i].sweep == id) freed_handles += r[i].handles;
      }
    }
    note_freed(state_, freed_handles);
    ++state_.irregular;
  }
}

// The checked sweep: only adjoints change, so a throw part-way (a freed node, an anomaly, a custom
// op's bad backward) leaves every leaf's gradient as it was. `check` is anomaly mode. Returns the
// lowest record it reached.
template <bool check>
uint32_t ScalarTape::sweep_checked(uint32_t top) {
  ScalarRecord* r = state_.records;
  std::vector<double> values;
  int64_t i = top;
  for (; i >= 0 && pending_ > 0; --i) {
    ScalarRecord& n = r[i];
    if (!reached(n)) continue;
    --pending_;
    if (n.op == ScalarOp::Leaf) continue;
    if (n.freed || n.op == ScalarOp::Freed) throw_freed(scalar_op_name(n.op));
    auto contribute = [&](ScalarRecord& target, double d) {
      if constexpr (check) {
        if (!std::isfinite(d))
          throw_anomaly("backward", op_name(static_cast<uint32_t>(i)), where_of(static_cast<uint32_t>(i)), d);
      }
      reach(target, d);
    };
    if (n.op == ScalarOp::Custom) {
      const CustomOpEntry& c = customs_[n.a];
      values.clear();
      for (uint32_t j : c.operands) values.push_back(operand_value(state_, j));
      const std::vector<double> d = c.backward(n.grad, values, n.value);
      r = state_.records;  // the user's backward may have recorded Scalar ops, and the array moved
      if (d.size() != c.operands.size())
        throw std::logic_error(fmt::format("custom op '{}': backward returned {} gradients for {} inputs",
                                           c.name, d.size(), c.operands.size()));
      for (size_t k = 0; k < d.size(); ++k)
        if (!is_constant(c.operands[k])) contribute(r[c.operands[k]], d[k]);
      continue;
    }
    apply_rule(n.op, n.grad, operand_value(state_, n.a), operand_value(state_, n.b), n.value, !is_constant(n.a),
               !is_constant(n.b), [&](int k, double d) { contribute(r[k == 0 ? n.a : n.b], d); });
  }
  return static_cast<uint32_t>(i + 1);
}

// The recorded sweep (create_graph): the same rules on Scalars, so the backward is itself a graph.
// Returns the adjoint of every record up to top; `low` receives the lowest record reached.
std::vector<Scalar> ScalarTape::sweep_recorded(uint32_t top, std::span<const Seed> seeds, uint32_t& low) {
  std::vector<Scalar> adjoint(top + 1);
  for (const Seed& s : seeds) adjoint[s.record] += Scalar(s.value);
  int64_t i = top;
  for (; i >= 0 && pending_ > 0; --i) {
    const ScalarRecord n = state_.records[i];  // a copy: recording below may move the array
    if (!reached(n)) continue;
    --pending_;
    if (n.op == ScalarOp::Leaf) continue;
    if (n.freed || n.op == ScalarOp::Freed) throw_freed(scalar_op_name(n.op));
    if (n.op == ScalarOp::Custom)
      throw std::logic_error(fmt::format(
          "create_graph: the custom op '{}' has a first-order backward (on doubles) and cannot be "
          "differentiated twice",
          customs_[n.a].name));
    const bool need_a = !is_constant(n.a);
    const bool need_b = !is_constant(n.b);
    const Scalar a = handle_to(n.a), b = handle_to(n.b), result = handle_to(static_cast<uint32_t>(i));
    const Scalar g = adjoint[i];
    const auto index = static_cast<uint32_t>(i);
    run_backward_rule(op_name(index), where_of(index), [&] {
      apply_rule(n.op, g, a, b, result, need_a, need_b, [&](int k, const Scalar& d) {
        if (AnomalyMode::enabled() && !std::isfinite(d.value()))
          throw_anomaly("backward", op_name(index), where_of(index), d.value());
        const uint32_t j = k == 0 ? n.a : n.b;
        adjoint[j] = adjoint[j] + d;
        reach(record(j), d.value());
      });
    });
  }
  low = static_cast<uint32_t>(i + 1);
  return adjoint;
}

void ScalarTape::finish_sweep(uint32_t low, uint32_t top, bool free_graph) {
  if (!free_graph) return;
  for (uint32_t i = low; i <= top; ++i) {
    ScalarRecord& n = record(i);
    if (!reached(n) || n.freed) continue;
    n.freed = true;
    note_freed(state_, n.handles);
    if (n.op == ScalarOp::Leaf) state_.leaves[n.a]->cached_generation = 0;  // a new graph enters it anew
  }
  ++state_.irregular;
}

void ScalarTape::backward(std::span<const Seed> seeds, BackwardOptions options) {
  if (state_.sweeping != 0) throw_nested("backward");
  const bool free_graph = !options.retain_graph && !options.create_graph;
  {
    SweepGuard guard(state_.sweeping);
    const bool fresh = !swept_;
    const uint32_t top = begin_sweep(seeds);
    if (!options.create_graph && state_.irregular == 0 && !AnomalyMode::enabled()) {
      if (free_graph) {
        if (fresh) sweep_one_pass<true, true>(top);
        else sweep_one_pass<true, false>(top);
      } else {
        if (fresh) sweep_one_pass<false, true>(top);
        else sweep_one_pass<false, false>(top);
      }
    } else {
      std::vector<Scalar> adjoint;
      const uint32_t low = sweep(top, options.create_graph, seeds, adjoint);
      const GradModeGuard recording(true);  // the recorded gradients' sums below (create_graph)
      for (uint32_t i = low; i <= top; ++i) {
        const ScalarRecord& n = record(i);
        if (!reached(n) || n.op != ScalarOp::Leaf) continue;
        LeafCell* c = state_.leaves[n.a];
        c->grad += n.grad;
        if (!options.create_graph) continue;
        if (c->grad_graph == nullptr) c->grad_graph = new Scalar(0.0);
        *c->grad_graph = *c->grad_graph + adjoint[i];
      }
      finish_sweep(low, top, free_graph);
    }
  }
  if (unfreed_handles(state_) == 0) tape_unused();
}

uint32_t ScalarTape::sweep(uint32_t top, bool create_graph, std::span<const Seed> seeds,
                           std::vector<Scalar>& adjoint) {
  if (create_graph) {
    GradModeGuard recording(true);
    uint32_t low = top;
    adjoint = sweep_recorded(top, seeds, low);
    return low;
  }
  return AnomalyMode::enabled() ? sweep_checked<true>(top) : sweep_checked<false>(top);
}

}  // namespace chainrule::detail
