// Compaction of the Scalar tape's record array around the graphs still alive when it is full
// (ScalarTape::compact, called by prepare_op in autograd/scalar_tape.cpp), and the handles that
// name a moved record: followed to its new place, or counted when copied or dropped before that.
#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/scalar_tape.h"

namespace chainrule::detail {

// The array is full and a graph on it is alive, so it cannot be reused whole. A graph kept across
// the iterations of a loop (a handle declared outside it, a prediction kept for later, a graph
// retained for a second backward) would make it grow with every iteration, although most of its
// records are dead: freed by backward() or named by no handle. Compaction keeps the records that a
// live handle still needs (named and unfreed, and every record such a record reads, found top down
// since operands sit below), moves them to the bottom of the array in their order (still a
// topological one), with their constants, n-ary operand lists, leaves, custom ops, labels and
// locations, and the array is reused above them. It runs only when it frees at least half of the
// array (else the array grows, as before), so its cost, one pass over the array, is amortised over
// the records it frees.
//
// Handles carry the record's index, so the records move under a new generation, and the handles
// that name a moved record are followed from their old place (generation, record) to the new one
// in moves_, each updated in place at its first use (follow) and counted when copied or dropped
// before that (count_moved); a place no handle names any more is forgotten at the next compaction
// (which applies the inbox first: a copy made on another thread may still be on its way). Handles
// of dropped records (freed, and read by no kept record) become stale, as at a reset: their value is
// a number, a backward through them throws. A leaf whose Leaf record moved keeps entering through
// it (its cache follows), so that its gradient sums as without the move; a leaf whose Leaf record
// was dropped enters anew.
bool ScalarTape::compact(bool force) {
  TapeState& t = state_;
  if (t.size == 0 || t.sweeping != 0) return false;  // a sweep holds record indices
  apply_foreign_counts();  // copies made on other threads keep their records too
  const uint32_t n = t.size;
  std::vector<uint8_t> keep(n, 0);
  uint32_t kept = 0;
  auto mark = [&](uint32_t operand) {
    if (!is_constant(operand)) keep[operand] = 1;
  };
  for (uint32_t i = n; i-- > 0;) {
    const ScalarRecord& r = t.records[i];
    if (!keep[i] && !named_unfreed(r)) continue;
    keep[i] = 1;
    ++kept;
    switch (r.op) {
      case ScalarOp::Leaf:
      case ScalarOp::Freed:
        break;
      case ScalarOp::Dot:
        for (uint32_t k = 0; k < r.b; ++k) mark(t.lists[r.a + k]);
        break;
      case ScalarOp::Custom:
        for (uint32_t o : customs_[r.a].operands) mark(o);
        break;
      default:
        mark(r.a);
        mark(r.b);
    }
  }
  if (kept > n / 2 && !force) return false;

  // First everything that allocates (and may throw), with the tape untouched: the kept records in
  // their new form, and what they use, renumbered in first-use order.
  constexpr uint32_t kGone = UINT32_MAX;
  std::vector<uint32_t> moved(n, kGone), origin;  // old index -> new, new -> old
  origin.reserve(kept);
  for (uint32_t i = 0; i < n; ++i) {
    if (!keep[i]) continue;
    moved[i] = static_cast<uint32_t>(origin.size());
    origin.push_back(i);
  }
  std::vector<uint32_t> constant_moved(t.constant_count, kGone);
  std::vector<double> constants;
  constants.reserve(t.constant_count);
  auto move_operand = [&](uint32_t o) -> uint32_t {
    if (!is_constant(o)) return moved[o];
    uint32_t& m = constant_moved[o & ~kConstantTag];
    if (m == kGone) {
      m = static_cast<uint32_t>(constants.size());
      constants.push_back(t.constants[o & ~kConstantTag]);
    }
    return m | kConstantTag;
  };
  std::vector<ScalarRecord> records;
  records.reserve(kept);
  std::vector<uint32_t> lists;
  lists.reserve(t.list_count);
  std::vector<LeafCell*> leaves, released;
  leaves.reserve(t.leaf_count);
  released.reserve(t.leaf_count);
  std::vector<uint32_t> custom_kept;                 // old indices, in order
  std::vector<std::vector<uint32_t>> custom_operands;  // their operands, renumbered
  std::vector<Where> where;
  if (!where_.empty()) where.reserve(kept);
  uint32_t irregular = 0;
  for (uint32_t i = 0; i < n; ++i) {
    ScalarRecord r = t.records[i];
    if (!keep[i]) {
      if (r.op == ScalarOp::Leaf) released.push_back(t.leaves[r.a]);
      continue;
    }
    switch (r.op) {
      case ScalarOp::Leaf:
        leaves.push_back(t.leaves[r.a]);
        r.a = static_cast<uint32_t>(leaves.size() - 1);
        break;
      case ScalarOp::Freed:
        break;
      case ScalarOp::Dot: {
        const auto start = static_cast<uint32_t>(lists.size());
        for (uint32_t k = 0; k < r.b; ++k) lists.push_back(move_operand(t.lists[r.a + k]));
        r.a = start;
        break;
      }
      case ScalarOp::Custom: {
        custom_kept.push_back(r.a);
        custom_operands.emplace_back();
        for (uint32_t o : customs_[r.a].operands) custom_operands.back().push_back(move_operand(o));
        r.a = r.b = static_cast<uint32_t>(custom_kept.size() - 1);
        break;
      }
      default:
        r.a = move_operand(r.a);
        r.b = move_operand(r.b);
    }
    if (!where_.empty()) where.push_back(i < where_.size() ? where_[i] : Where());
    irregular += r.freed || r.op == ScalarOp::Freed || r.op == ScalarOp::Custom;
    records.push_back(r);
  }
  std::unordered_map<uint32_t, std::string> labels;
  for (const auto& [key, label] : labels_) {
    const uint32_t index = key & ~kConstantTag;
    if (is_constant(key)) {
      if (index < constant_moved.size() && constant_moved[index] != kGone)
        labels.emplace(constant_moved[index] | kConstantTag, label);
    } else if (index < n && moved[index] != kGone) {
      labels.emplace(moved[index], label);
    }
  }
  // The old places that handles name: earlier compactions' places lead to the new place too, and
  // each kept record's own handles get its place in this generation.
  decltype(moves_) moves;
  std::vector<uint32_t> followed(kept, 0);  // new record -> its handles at older places
  for (const auto& [place, to] : moves_) {
    if (to.handles == 0) continue;  // no handle names the old place any more
    if (to.record >= n || moved[to.record] == kGone) continue;  // its handles are stale now
    moves.emplace(place, NewPlace{moved[to.record], to.handles});
    followed[moved[to.record]] += to.handles;
  }
  for (uint32_t k = 0; k < kept; ++k)
    if (records[k].handles > followed[k]) moves.emplace(OldPlace{t.generation, origin[k]}, NewPlace{k, records[k].handles - followed[k]});
  std::vector<CustomOpEntry> dropped;  // destroyed last: their functions may hold handles
  dropped.reserve(customs_.size() - custom_kept.size());
  // The seeds of recent backwards (trace's "did the backward start here"), moved along.
  std::array<BackwardSeeds, 8> seeds = backward_seeds_;
  for (BackwardSeeds& b : seeds) {
    if (b.generation != t.generation) continue;
    std::vector<uint32_t> records;
    for (uint32_t r : b.records)
      if (r < n && moved[r] != kGone) records.push_back(moved[r]);
    b.records.swap(records);
  }
  const uint64_t old_generation = t.generation;
  const uint64_t generation = next_generation();
  for (BackwardSeeds& b : seeds)
    if (b.generation == old_generation) b.generation = generation;

  // Then the commit, which cannot throw.
  std::copy(records.begin(), records.end(), t.records);
  t.size = kept;
  std::copy(constants.begin(), constants.end(), t.constants);
  t.constant_count = static_cast<uint32_t>(constants.size());
  std::copy(lists.begin(), lists.end(), t.lists);
  t.list_count = static_cast<uint32_t>(lists.size());
  std::copy(leaves.begin(), leaves.end(), t.leaves);
  t.leaf_count = static_cast<uint32_t>(leaves.size());
  std::size_t next = 0;  // customs_ compacted in place, in order
  for (std::size_t c = 0; c < customs_.size(); ++c) {
    if (next < custom_kept.size() && custom_kept[next] == c) {
      if (next != c) customs_[next] = std::move(customs_[c]);
      customs_[next].operands.swap(custom_operands[next]);
      ++next;
    } else {
      dropped.push_back(std::move(customs_[c]));
    }
  }
  customs_.resize(next);
  where_.swap(where);
  labels_.swap(labels);
  moves_.swap(moves);
  t.irregular = irregular;
  t.generation = generation;
  t.moved = static_cast<uint32_t>(moves_.size());
  backward_seeds_.swap(seeds);
  // A leaf whose Leaf record moved goes on entering through it (as without the move), so that its
  // gradient sums in the same order: one record, not a second one for the ops recorded from now.
  for (uint32_t k = 0; k < kept; ++k) {
    if (records[k].op != ScalarOp::Leaf) continue;
    LeafCell* c = t.leaves[records[k].a];
    if (c->cached_generation == old_generation && c->cached_record == origin[k]) {
      c->cached_generation = generation;
      c->cached_record = k;
    }
  }
  swept_ = true;  // kept records keep their adjoints: the next sweep is not a fresh one
  seeking_ = false;
  dead_below_ = 0;
  ++compactions_;
  release_blocks();
  // Last, with the moves known: dropping a cell may drop a recorded gradient's handle, and a
  // dropped custom op's functions may hold handles; both are followed to their records' new places.
  for (LeafCell* c : released) release_cell(c);
  dropped.clear();
  return true;
}

bool ScalarTape::follow(const Scalar& handle) {
  const auto it = moves_.find({handle.generation_, handle.record_});
  if (it == moves_.end()) return false;
  handle.record_ = it->second.record;
  handle.generation_ = state_.generation;
  // Kept at 0 until the next compaction: a copy made on another thread may still be on its way.
  if (it->second.handles > 0) --it->second.handles;
  return true;
}

bool ScalarTape::count_moved(uint64_t generation, uint32_t record, int32_t delta) {
  const auto it = moves_.find({generation, record});
  if (it == moves_.end()) return false;
  state_.records[it->second.record].handles += static_cast<uint32_t>(delta);  // mod 2^32
  if (delta > 0) dead_below_ = std::min(dead_below_, it->second.record);     // (see graph_alive)
  // At 0 the place is kept until the next compaction, which applies the inbox first: a copy made
  // on another thread before this drop may still be waiting there.
  if (delta > 0 || it->second.handles > 0) it->second.handles += static_cast<uint32_t>(delta);
  return true;
}

std::size_t ScalarTape::moved_handles() const {
  std::size_t count = 0;
  for (const auto& [place, to] : moves_) count += to.handles;
  return count;
}

void ScalarTape::forget_moves() {
  moves_.clear();
  state_.moved = 0;
  release_blocks();
}

bool follow_move(const Scalar& handle) { return ScalarTape::current().follow(handle); }

}  // namespace chainrule::detail
