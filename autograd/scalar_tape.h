#pragma once
// Internal: the per-thread tape behind Scalar. Not part of the public API.
//
// Layout (the performance design): one contiguous array of 32-byte records in creation order. A
// record holds its value, its adjoint, up to two operand indices and its op; leaves live outside the
// tape in reference-counted cells and enter it through a Leaf record, cached per cell, so a
// parameter used a thousand times in one graph costs one record. Recording is an append; backward is
// one reverse loop over the array; the array is reused (not freed) when no graph on it is alive, so
// a training loop runs with no allocation per node and flat memory.
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "autograd/anomaly.h"
#include "autograd/scalar.h"

namespace chainrule::detail {

enum class ScalarOp : uint8_t {
  Const, Leaf, Freed,
  Neg, Exp, Log, Sqrt, Sigmoid, Tanh, Relu, Abs,
  Add, Sub, Mul, Div, Pow,
  Custom,  // a user-defined op: `a` indexes the tape's custom-op table
};
std::string_view scalar_op_name(ScalarOp op);

struct LeafCell {
  double value = 0.0;
  double grad = 0.0;
  uint32_t refs = 1;          // handles + tape references
  bool requires_grad = true;
  uint32_t cached_generation = 0;  // tape generation of cached_record (0: none)
  uint32_t cached_record = 0;
  Scalar* grad_graph = nullptr;    // recorded gradient from backward(create_graph), owned
  std::string label;
};

struct CustomOpEntry {
  std::string name;
  ScalarForward forward;
  ScalarBackward backward;
  std::vector<uint32_t> operands;  // operand records
};

struct ScalarRecord {
  double value;
  double grad;        // adjoint during a sweep; afterwards the node's gradient
  uint32_t a, b;      // operand records (Leaf records: index into the leaf table in `a`)
  uint32_t handles;   // live Scalar handles naming this record
  ScalarOp op;
  uint8_t reached;    // set during a sweep for records on a path from the seeds
  uint8_t freed;      // swept by a backward that did not retain the graph
  uint8_t unused = 0;
};
static_assert(sizeof(ScalarRecord) == 32, "the tape's performance design assumes 32-byte records");

// The record array: a vector whose append is a few inlined instructions. Capacity is kept across
// resets (that is what makes a training loop allocation-free).
class RecordBuffer {
 public:
  RecordBuffer() = default;
  RecordBuffer(const RecordBuffer&) = delete;
  RecordBuffer& operator=(const RecordBuffer&) = delete;
  ~RecordBuffer() { std::free(data_); }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  ScalarRecord* data() { return data_; }
  ScalarRecord& operator[](std::size_t i) { return data_[i]; }
  const ScalarRecord& operator[](std::size_t i) const { return data_[i]; }
  void push_back(const ScalarRecord& r) {
    if (size_ == capacity_) grow();
    data_[size_++] = r;
  }

 private:
  void grow() {
    const std::size_t next = capacity_ ? capacity_ * 2 : 1024;
    void* p = std::realloc(data_, next * sizeof(ScalarRecord));
    if (!p) throw std::bad_alloc();
    data_ = static_cast<ScalarRecord*>(p);
    capacity_ = next;
  }
  ScalarRecord* data_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
};

class ScalarTape {
 public:
  static inline thread_local int track_locations = 0;

  static ScalarTape& current() {
    static thread_local ScalarTape tape;
    return tape;
  }
  ~ScalarTape();

  // Recording.
  // Lets the tape reuse its memory when no unfreed graph is alive.
  void begin_op() {
    if (live_unfreed_ == 0 && sweeping_ == 0 && !records_.empty()) reset();
  }
  // The record an operand is read from (a Leaf or Const record is added when needed).
  uint32_t operand(const Scalar& x) {
    if (LeafCell* c = x.leaf_) {
      if (c->requires_grad && c->cached_generation == generation_ && !records_[c->cached_record].freed)
        return c->cached_record;
      return leaf_operand(c);
    }
    if (x.record_ != Scalar::kNoRecord && x.generation_ == generation_) return x.record_;
    return append(x.record_ == Scalar::kNoRecord ? ScalarOp::Const : ScalarOp::Freed, 0, x.value_);
  }
  // Records an op's result and returns the handle naming it.
  Scalar push(ScalarOp op, uint32_t a, uint32_t b, double value, const Where& where) {
    if (track_locations > 0 || AnomalyMode::enabled()) note_location(op, a, value, where);
    const uint32_t i = append(op, a, value);
    records_[i].b = b;
    records_[i].handles = 1;
    ++live_;
    ++live_unfreed_;
    Scalar s(value);
    s.record_ = i;
    s.generation_ = generation_;
    return s;
  }
  uint32_t add_custom(CustomOpEntry entry);
  const CustomOpEntry& custom(uint32_t i) const { return customs_[i]; }
  std::string_view op_name(uint32_t record) const;
  Where where_of(uint32_t record) const { return record < where_.size() ? where_[record] : Where(); }
  void set_label(uint32_t record, std::string label) { labels_[record] = std::move(label); }
  std::string label_of(uint32_t record) const;
  LeafCell* leaf_cell(uint32_t leaf_record) const { return leaves_[records_[leaf_record].a]; }
  // d record / d operand_k at the recorded values (k-th operand of operands(record)).
  std::vector<uint32_t> operands(uint32_t record) const;
  std::vector<double> local_derivatives(uint32_t record) const;
  Scalar handle_to(uint32_t record);  // a handle naming an existing record (for recorded sweeps)

  // Handle bookkeeping.
  void acquire(uint32_t record) {
    ScalarRecord& r = records_[record];
    ++r.handles;
    ++live_;
    if (!r.freed) ++live_unfreed_;
  }
  void release(uint32_t record) {
    ScalarRecord& r = records_[record];
    --r.handles;
    --live_;
    if (!r.freed) --live_unfreed_;
    if (live_ == 0 && sweeping_ == 0) reset();
  }
  uint32_t generation() const { return generation_; }
  const ScalarRecord& record(uint32_t i) const { return records_[i]; }
  std::size_t size() const { return records_.size(); }
  std::size_t capacity() const { return records_.capacity(); }

  // Sweeps. Seeds are (record, seed) pairs; the fast sweep runs on doubles, the recorded one on
  // Scalars (create_graph). Both use the rules of autograd/ops.h.
  struct Seed { uint32_t record; double value; };
  void backward(const std::vector<Seed>& seeds, BackwardOptions options);
  // Gradients of the seeds w.r.t. `wrt` (record indices; for a leaf, kNoRecord and the cell).
  struct Wrt { uint32_t record; LeafCell* leaf; };
  std::vector<Scalar> gradients(const std::vector<Seed>& seeds, const std::vector<Wrt>& wrt,
                                GradOptions options);

  std::vector<Scalar> functional_grad(const std::vector<Scalar>& outputs, const std::vector<Scalar>& inputs,
                                      const std::vector<Scalar>& grad_outputs, GradOptions options);

  static void release_cell(LeafCell* cell);
  std::vector<ScalarNodeView> view(const Scalar& root);

 private:
  void reset();
  uint32_t append(ScalarOp op, uint32_t a, double value) {
    if (records_.size() >= kMaxRecords) throw_too_many();
    records_.push_back(ScalarRecord{value, 0.0, a, a, 0, op, 0, 0});
    return static_cast<uint32_t>(records_.size() - 1);
  }
  uint32_t leaf_operand(LeafCell* c);
  void note_location(ScalarOp op, uint32_t a, double value, const Where& where);
  [[noreturn]] void throw_too_many() const;
  static constexpr std::size_t kMaxRecords = UINT32_MAX - 1;
  uint32_t prepare_sweep(const std::vector<Seed>& seeds);
  template <bool check>
  void sweep_values(uint32_t top);
  void run_sweep_values(uint32_t top);
  std::vector<Scalar> sweep_recorded(uint32_t top, const std::vector<Seed>& seeds);
  void finish_sweep(uint32_t top, bool free_graph);

  RecordBuffer records_;
  std::vector<LeafCell*> leaves_;  // cells referenced by Leaf records (one tape reference each)
  std::vector<CustomOpEntry> customs_;
  std::vector<Where> where_;       // per record, while location tracking is on
  std::unordered_map<uint32_t, std::string> labels_;
  uint32_t generation_ = 1;
  uint32_t live_ = 0;           // live handles naming records
  uint32_t live_unfreed_ = 0;   // ... of which name records not yet freed
  uint32_t sweeping_ = 0;
};

}  // namespace chainrule::detail
