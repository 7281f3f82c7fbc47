// The Scalar tape's cold half: reset and growth of the record array, and leaves entering a graph.
// Handles counted on other threads, generations and the tape's lifetime are in
// autograd/scalar_foreign.cpp, the reverse sweeps in autograd/scalar_sweep.cpp, the compaction of
// the array around live graphs in autograd/scalar_compact.cpp.
#include "autograd/scalar_tape.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "autograd/anomaly.h"

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
      "earlier backward() or grad(). Pass .retain_graph = true to the first one (BackwardOptions for "
      "backward(), GradOptions for grad()) if you need to sweep the same graph twice.",
      op));
}

void prepare_op() { ScalarTape::current().prepare_op(); }
void grow_tape() { ScalarTape::current().grow(); }
void grow_constants(uint32_t n) { ScalarTape::current().grow_constants(n); }
void grow_lists(uint32_t n) { ScalarTape::current().grow_lists(n); }

void ScalarTape::rearm() {
  TapeState& t = state_;
  if (seeking_ || t.capacity <= kOpRoom) {
    t.cold_at = 0;
  } else {
    t.cold_at = t.size < t.capacity / 2 ? t.capacity / 2 : t.capacity - kOpRoom;
  }
}

// Does a handle name an unfreed record? Records below dead_below_ are known not to, and none of them
// can come back: a handle is only made by copying another (which would have been counted), by
// handle_to or by another thread's copy (both lower dead_below_). So each record is looked at once
// per generation, and the question costs O(1) amortised.
bool ScalarTape::graph_alive() {
  const TapeState& t = state_;
  while (dead_below_ < t.size) {
    if (named_unfreed(t.records[dead_below_])) return true;
    ++dead_below_;
  }
  return false;
}

// begin_op's slow path. It resets the array if no graph on it is alive, and makes room for an op's
// records. Handles are counted per record only, so nothing tells the tape when its last graph dies;
// it asks here instead: at the first op after a sweep freed a graph (the common case: a training
// loop's next step starts on a reused array, and the sweep that freed every record has already
// said so through dead_below_), and from the half mark of the array on, at every op until the
// array is reused or full. The half mark may fall while a statement's temporaries are alive, or in
// the middle of a loop that records graphs and drops them without a backward (an evaluation loop
// without NoGradGuard); looking on at each op finds the moment between two of them, so the array
// does not grow. Only a graph kept alive across the whole second half makes it grow. And a graph
// that took more than half the array and that a sweep freed whole (a training step's) doubles it
// when the array is reused, so that the next step, as large, stays below the half mark and its ops
// do not come here.
void ScalarTape::prepare_op() {
  TapeState& t = state_;
  apply_foreign_counts();
  // Only a sweep that freed every record leaves dead_below_ at the top before the scan below: the
  // scan itself gets there only when it finds nothing alive, and then the array is reset.
  const bool swept_whole = dead_below_ == t.size;
  if (t.sweeping == 0 && t.size != 0 && !graph_alive()) {
    const bool crowded = swept_whole && t.size > t.capacity / 2;
    reset();
    if (crowded) grow();
  } else {
    seeking_ = t.size >= t.capacity / 2;
  }
  if (t.capacity - t.size <= kOpRoom) {
    if (!compact()) grow();
    seeking_ = false;
  }
  rearm();
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

// The generation moves on before any cell is released: a cell may own a recorded gradient
// (backward with create_graph) whose handle would otherwise reach back into the tape being reset.
void ScalarTape::reset() {
  TapeState& t = state_;
  // The array only grew: one huge graph kept its memory for the thread's life. When the graphs of
  // the last kShrinkWindow resets all used under a quarter of a large array, it is swapped for one
  // twice the largest of them (no record is alive now: nothing to copy).
  window_max_ = std::max(window_max_, t.size);
  if (++window_resets_ >= kShrinkWindow) {
    if (t.capacity > kShrinkAbove && window_max_ < t.capacity / 4) {
      const uint64_t next = std::max<uint64_t>(1024, std::bit_ceil(uint64_t{window_max_} * 2));
      void* p = std::aligned_alloc(64, next * sizeof(ScalarRecord));
      if (p) {  // no memory for the smaller array: keep the large one
        std::free(t.records);
        t.records = static_cast<ScalarRecord*>(p);
        t.capacity = static_cast<uint32_t>(next);
      }
    }
    window_max_ = 0;
    window_resets_ = 0;
  }
  t.size = 0;
  t.constant_count = 0;
  t.list_count = 0;
  t.irregular = 0;
  forget_moves();  // every handle of this tape is stale now
  t.generation = next_generation();
  release_blocks();
  customs_.clear();
  where_.clear();
  if (!labels_.empty()) labels_.clear();
  // Releasing a cell runs no Scalar op (see above), so the leaf table stays put during the loop.
  const uint32_t leaf_count = t.leaf_count;
  t.leaf_count = 0;
  for (uint32_t i = 0; i < leaf_count; ++i) release_cell(t.leaves[i]);
  swept_ = false;
  seeking_ = false;
  dead_below_ = 0;
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
// Doubles one of the tape's side arrays (256 entries at first) until n more entries fit, up to
// kMaxRecords entries.
template <class T>
void grow_side_array(T*& array, uint32_t& capacity, uint32_t count, uint32_t n, const char* what) {
  uint64_t next = capacity ? capacity : 256;
  while (next - count < n) next *= 2;
  next = std::min<uint64_t>(next, kMaxRecords);
  if (next <= capacity || next - count < n)
    throw std::length_error(fmt::format("Scalar: the graph has more than {} {}", count, what));
  void* p = std::realloc(array, next * sizeof(T));
  if (!p) throw std::bad_alloc();
  array = static_cast<T*>(p);
  capacity = static_cast<uint32_t>(next);
}
}  // namespace

void ScalarTape::grow_constants(uint32_t n) {
  grow_side_array(state_.constants, state_.constant_capacity, state_.constant_count, n, "constant operands");
}

void ScalarTape::grow_lists(uint32_t n) {
  grow_side_array(state_.lists, state_.list_capacity, state_.list_count, n, "n-ary operands");
}

void ScalarTape::grow_leaves() {
  grow_side_array(state_.leaves, state_.leaf_capacity, state_.leaf_count, 1, "leaves");
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
  dead_below_ = std::min(dead_below_, record);  // (see graph_alive)
  return s;
}

}  // namespace chainrule::detail
