#pragma once
// Internal: the cold half of the per-thread Scalar tape (the hot half, the record array and its
// counters, is detail::TapeState in autograd/scalar_record.h). Not part of the public API.
//
// ScalarTape owns what recording rarely touches: the leaf table behind Leaf records, custom ops,
// labels, source locations, and the record array's memory (freed at thread exit). It runs the
// reverse sweeps:
//   - the one-pass sweep: plain doubles, leaves' gradients accumulated and records freed in the same
//     loop; taken when nothing on the tape can make a sweep throw half-way (no freed or stale
//     records, no custom op, anomaly mode off);
//   - the checked sweep: the same rules, but leaves' gradients are only touched once the whole sweep
//     has succeeded, so a throw (a freed node, an anomaly, a custom op's bad backward) changes nothing;
//   - the recorded sweep (create_graph): the same rules on Scalars, so the backward is itself a graph.
// Every sweep starts at its highest seed and stops once no reached record is left below it, so its
// cost is the size of the graph it walks, not the size of the tape; except the first one-pass sweep
// after a reset, which knows every adjoint is 0 and walks down to record 0 instead of counting.
#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "autograd/scalar.h"

namespace chainrule::detail {

std::string_view scalar_op_name(ScalarOp op);
// "trying to backward through the graph a second time: the '<op>' node was freed ..."
[[noreturn]] void throw_freed(std::string_view op);

struct ForeignInbox;  // autograd/scalar_foreign.cpp

struct CustomOpEntry {
  std::string name;
  ScalarForward forward;
  ScalarBackward backward;
  std::vector<uint32_t> operands;  // operand records
};

// The recorded sweep's adjoints (create_graph), by record index, for the records from `top` down
// to the lowest one the sweep reaches: sized by the graph swept, not by the tape below it (a
// Hessian-vector product of a small graph recorded above a large live one allocated a Scalar per
// record of the whole tape). A record not reached reads as the constant 0.
class RecordedAdjoints {
 public:
  explicit RecordedAdjoints(uint32_t top = 0) : top_(top) {}
  Scalar& operator[](uint32_t record) {
    const std::size_t k = top_ - record;
    if (k >= values_.size()) values_.resize(k + 1);
    return values_[k];
  }

 private:
  uint32_t top_;
  std::vector<Scalar> values_;  // values_[k]: record top_ - k
};

class ScalarTape {
 public:
  static ScalarTape& current() {
    static thread_local ScalarTape tape;
    return tape;
  }
  ScalarTape();  // defined where ForeignInbox is complete
  ScalarTape(const ScalarTape&) = delete;
  ScalarTape& operator=(const ScalarTape&) = delete;
  ~ScalarTape();

  // Recording (the inline fast path is in autograd/scalar_inline.h; these serve its cold branches).
  void reset();
  void prepare_op();  // begin_op's slow path (see detail::prepare_op)
  void grow();
  void grow_leaves();
  void grow_constants(uint32_t n = 1);
  void grow_lists(uint32_t n);
  uint32_t enter_leaf_slow(LeafCell* c);  // a frozen leaf (a tagged constant), or room to grow first
  uint32_t enter_stale(double value);
  void note_location(ScalarOp op, uint32_t a, double value, const Where& where);
  uint32_t add_custom(CustomOpEntry entry);
  // Handles of records that a compaction moved (see compact): follow(h) updates h to name its
  // record's new place and returns true, or returns false (h is stale); count_moved applies a copy
  // (+1) or a drop (-1) of such a handle, here or reported by another thread, to the record's count
  // and returns true, or returns false when the handle is not one of them.
  bool follow(const Scalar& handle);
  bool count_moved(uint64_t generation, uint32_t record, int32_t delta);
  std::size_t compactions() const { return compactions_; }
  bool compact_now() { return compact(true); }  // for tests: whatever it frees
  std::size_t moved_handles() const;

  // Reading the graph.
  ScalarRecord& record(uint32_t i) { return state_.records[i]; }
  const ScalarRecord& record(uint32_t i) const { return state_.records[i]; }
  uint32_t size() const { return state_.size; }
  uint32_t capacity() const { return state_.capacity; }
  uint64_t generation() const { return state_.generation; }
  const CustomOpEntry& custom(uint32_t i) const { return customs_[i]; }
  std::string_view op_name(uint32_t record) const;
  Where where_of(uint32_t record) const { return record < where_.size() ? where_[record] : Where(); }
  void set_label(uint32_t record, std::string label) { labels_[record] = std::move(label); }
  std::string label_of(uint32_t record) const;
  LeafCell* leaf_cell(uint32_t leaf_record) const { return state_.leaves[record(leaf_record).a]; }
  // The operand records of `record`, and d record / d operand_k at the recorded values.
  std::vector<uint32_t> operands(uint32_t record) const;
  std::vector<double> local_derivatives(uint32_t record) const;
  Scalar handle_to(uint32_t record);  // a handle naming an existing record (for recorded sweeps)
  std::vector<ScalarNodeView> view(const Scalar& root);
  // Did the backward() whose gradients root's record holds start at root (is root's gradient that
  // backward's seed)? False for a leaf, for a root reached by a backward that started elsewhere, and
  // when the sweep is no longer known (a functional grad() since, or many backwards).
  bool backward_started_at(const Scalar& root) const;
  // Handle counts other threads left in this tape's inbox, not applied yet (scalar_tape_stats).
  std::size_t foreign_counts() const;

  // Sweeps. Seeds are (record, seed) pairs.
  // A seed: d(output)/d(output) as a number, and as a Scalar for a recorded sweep when the caller
  // gave one (grad's grad_outputs: d(result)/d(grad_outputs) is then part of the recorded graph).
  struct Seed {
    uint32_t record;
    double value;
    const Scalar* scalar = nullptr;
  };
  void backward(std::span<const Seed> seeds, BackwardOptions options);
  // Gradients of the seeds w.r.t. `wrt` (record indices; for a leaf, kNoRecord and the cell).
  struct Wrt { uint32_t record; LeafCell* leaf; };
  std::vector<Scalar> gradients(std::span<const Seed> seeds, const std::vector<Wrt>& wrt,
                                GradOptions options);
  std::vector<Scalar> functional_grad(const std::vector<Scalar>& outputs, const std::vector<Scalar>& inputs,
                                      const std::vector<Scalar>& grad_outputs, GradOptions options);

  // A record reached by the current sweep (with `d` as its first contribution) or reached again.
  void reach(ScalarRecord& r, double d) {
    if (r.sweep != state_.sweep) {
      if (undo_) undo_->push_back({static_cast<uint32_t>(&r - state_.records), r.grad});
      r.sweep = state_.sweep;
      r.grad = d;
      ++pending_;
    } else {
      r.grad += d;
    }
  }
  bool reached(const ScalarRecord& r) const { return r.sweep == state_.sweep; }

 private:
  // While alive, the sweeps (not the one-pass one) log each record's adjoint before they first
  // change it, and the destructor puts them back unless kept: interior nodes' .grad is then as
  // before a grad() call, or a backward that threw.
  class KeepInteriorGrads {
   public:
    explicit KeepInteriorGrads(ScalarTape& tape) : tape_(tape) { tape_.undo_ = &log_; }
    ~KeepInteriorGrads() {
      tape_.undo_ = nullptr;
      if (keep_) return;
      for (auto it = log_.rbegin(); it != log_.rend(); ++it) tape_.state_.records[it->first].grad = it->second;
    }
    KeepInteriorGrads(const KeepInteriorGrads&) = delete;
    KeepInteriorGrads& operator=(const KeepInteriorGrads&) = delete;
    void keep() { keep_ = true; }  // the sweep succeeded and its adjoints are the new .grad

   private:
    ScalarTape& tape_;
    std::vector<std::pair<uint32_t, double>> log_;
    bool keep_ = false;
  };
  // Counts a sweep in progress for its scope (the tape is not reset while one runs).
  struct SweepGuard {
    uint32_t& counter;
    explicit SweepGuard(uint32_t& c) : counter(c) { ++counter; }
    ~SweepGuard() { --counter; }
  };
  uint32_t begin_sweep(std::span<const Seed> seeds);  // returns the highest seed
  template <bool free_graph, bool fresh>
  void sweep_one_pass(uint32_t top);
  template <bool check>
  uint32_t sweep_checked(uint32_t top);  // these two return the lowest record reached
  RecordedAdjoints sweep_recorded(uint32_t top, std::span<const Seed> seeds, uint32_t& low);
  uint32_t sweep(uint32_t top, bool create_graph, std::span<const Seed> seeds, RecordedAdjoints& adjoint);
  void finish_sweep(uint32_t low, uint32_t top, bool free_graph);
  [[noreturn]] static void throw_nested(std::string_view what);

  TapeState& state_ = tape_state;  // this thread's hot half
  std::deque<CustomOpEntry> customs_;  // a deque: a custom op's backward, running from here, may
                                       // record new custom ops without moving itself
  std::vector<Where> where_;       // per record, while location tracking is on
  std::unordered_map<uint32_t, std::string> labels_;
  uint64_t next_generation();
  bool compact(bool force = false);  // see there
  // Where the records a compaction moved went, by (generation, record) of the handles that still
  // name the old place, and how many of those handles are left (see compact).
  struct OldPlace {
    uint64_t generation;
    uint32_t record;
    bool operator==(const OldPlace&) const = default;
  };
  struct OldPlaceHash {
    std::size_t operator()(const OldPlace& p) const { return std::hash<uint64_t>()(p.generation * 0x9E3779B97F4A7C15ull ^ p.record); }
  };
  struct NewPlace {
    uint32_t record;     // in the current generation
    uint32_t handles;    // handles still naming the old place
  };
  std::unordered_map<OldPlace, NewPlace, OldPlaceHash> moves_;
  void forget_moves();
  void release_blocks() noexcept;
  std::vector<uint64_t> retained_blocks_;  // ended blocks of generations still registered (see there)
  std::size_t compactions_ = 0;
  uint64_t generation_next_ = 0, generation_end_ = 0;  // this thread's block of generations
  void apply_foreign_counts();     // count_foreign's changes to this tape, in the order made
  bool graph_alive();              // does a handle name an unfreed record? (see prepare_op)
  void rearm();                    // TapeState::cold_at for the array's capacity
  bool seeking_ = false;           // every op runs prepare_op (see there)
  uint32_t dead_below_ = 0;        // no handle names an unfreed record below this one (at the top
                                   // on the next op: a sweep freed every record; see prepare_op)
  bool swept_ = false;             // a sweep has run since the last reset (see sweep_one_pass)
  std::unique_ptr<ForeignInbox> inbox_;  // where other threads put them (registered by block)
  std::vector<std::pair<uint32_t, double>>* undo_ = nullptr;  // see KeepInteriorGrads
  uint32_t pending_ = 0;           // reached records the current sweep has not processed yet
  // Shrinking the record array after a huge graph (see reset): the largest graph of the current
  // window of resets, and how many resets it has seen.
  static constexpr uint32_t kShrinkWindow = 64;
  static constexpr uint32_t kShrinkAbove = uint32_t{1} << 16;  // records (2 MiB); smaller arrays stay
  uint32_t window_max_ = 0;
  uint32_t window_resets_ = 0;
  // The seeds of the last few backward() sweeps, by sweep id (see backward_started_at).
  struct BackwardSeeds {
    uint64_t generation = kNoGeneration;
    uint16_t sweep = 0;
    std::vector<uint32_t> records;
  };
  std::array<BackwardSeeds, 8> backward_seeds_;
  std::size_t backward_seeds_next_ = 0;
};

}  // namespace chainrule::detail
