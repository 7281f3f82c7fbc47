#pragma once
// Scalar: one number in a dynamic graph, recorded as the user's code runs (micrograd's Value, in C++).
//
// A Scalar is a cheap value-type handle (32 bytes). Copies are shallow: they name the same node.
// There are three kinds:
//   - constants:  plain numbers, `Scalar c = 2.5;` — never recorded, no gradient;
//   - leaves:     `Scalar w = Scalar::leaf(0.4);` — parameters and inputs; gradients accumulate
//                 into w.grad() until w.zero_grad(); w.set_value() changes the number in place;
//   - interior:   results of ops on at least one leaf while recording is on.
//
//   auto w = Scalar::leaf(-0.6), h = Scalar::leaf(0.65);
//   auto y = sigmoid(h * w - 0.6);
//   y.backward();            // seeds dy/dy = 1
//   w.grad();                // dy/dw
//
// Memory: interior nodes are 32-byte records in a per-thread tape, in creation order (which is a
// topological order), so backward is one reverse loop and never recursive. backward() frees the graph
// it swept (unless retain_graph): a second backward through it throws. Interior values stay readable
// forever; interior gradients are readable after backward() until a new graph is recorded on the
// thread while no unfreed graph is alive, at which point the tape's memory is reused (or the tape
// is compacted around the graphs still alive, which may drop a freed one). A graph belongs to the
// thread that recorded it.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/anomaly.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "autograd/scalar_record.h"
#include "autograd/where.h"

namespace chainrule {

namespace detail {
class ScalarTape;
struct ScalarAccess;
}  // namespace detail

class Scalar;
template <>
class Located<Scalar>;  // an operator's right operand: a Scalar, or a plain number (below)

class Scalar {
 public:
  // A constant. Implicit, so that numbers mix with Scalars on either side: `2 * x + 1`.
  Scalar(double value = 0.0) : value_(value) {}  // NOLINT(google-explicit-constructor)
  // A leaf: a parameter or an input that gradients accumulate into.
  static Scalar leaf(double value, bool requires_grad = true);

  Scalar(const Scalar& o) : value_(o.value_), leaf_(o.leaf_), record_(o.record_), generation_(o.generation_) {
    acquire();
  }
  Scalar(Scalar&& o) noexcept
      : value_(o.value_), leaf_(o.leaf_), record_(o.record_), generation_(o.generation_) {
    o.become_moved_from();
  }
  Scalar& operator=(const Scalar& other) {
    if (this != &other) *this = Scalar(other);
    return *this;
  }
  Scalar& operator=(Scalar&& other) noexcept {
    if (this != &other) {
      release();
      value_ = other.value_;
      leaf_ = other.leaf_;
      record_ = other.record_;
      generation_ = other.generation_;
      other.become_moved_from();
    }
    return *this;
  }
  ~Scalar() { release(); }

  double value() const { return leaf_ ? leaf_->value : value_; }
  // Leaves: the accumulated gradient. Interior: the gradient of the last backward that reached it.
  // Constants: 0.
  double grad() const { return leaf_ ? leaf_->grad : interior_grad(); }
  // The gradient recorded by backward({.create_graph = true}) as a Scalar that can be differentiated
  // again; for leaves only (std::logic_error otherwise). A constant when no recorded gradient exists.
  Scalar grad_scalar() const;
  bool requires_grad() const { return leaf_ ? leaf_->requires_grad : record_ != kNoRecord; }
  bool is_leaf() const { return leaf_ != nullptr; }

  // Leaves only (std::logic_error otherwise).
  // Turned off, the leaf takes no gradient from any sweep from then on, of graphs recorded
  // before included (as PyTorch's AccumulateGrad); new graphs see it as a constant.
  void set_requires_grad(bool on);
  void set_value(double value) {
    if (!leaf_) throw_not_leaf("set_value");
    leaf_->value = value;
    leaf_->cached_generation = 0;  // graphs already recorded keep the old value; new ones see this one
  }
  void zero_grad() {
    if (!leaf_) throw_not_leaf("zero_grad");
    leaf_->grad = 0.0;
    if (leaf_->grad_graph) drop_grad_graph();
  }

  // Reverse sweep from this node with seed 1 (or `seed`), accumulating into leaves' grads.
  void backward(BackwardOptions options = {}) const { backward(1.0, options); }
  void backward(double seed, BackwardOptions options = {}) const;

  // The same number as a constant, cut off from the graph.
  Scalar detach() const { return Scalar(value()); }

  // Recording compound assignment: `c += c + 1` rebinds c to a new node, as in micrograd. Under
  // NoGradGuard, on a leaf, it changes the leaf's value in place instead (the optimizer idiom
  // `w -= lr * w.grad()`, as PyTorch's in-place update under no_grad; rebinding would have made the
  // parameter a constant, silently out of training); graphs already recorded keep the old value,
  // as with set_value.
  Scalar& operator+=(Located<Scalar> o);
  Scalar& operator-=(Located<Scalar> o);
  Scalar& operator*=(Located<Scalar> o);
  Scalar& operator/=(Located<Scalar> o);

  // A label shown by traces and graph pictures (e.g. "H1->ON"); leaves keep it for life,
  // interior nodes while their graph lives.
  Scalar& set_label(std::string label);
  std::string label() const;

 private:
  friend class detail::ScalarTape;
  friend struct detail::ScalarAccess;
  static constexpr uint32_t kNoRecord = UINT32_MAX;
  [[noreturn]] static void throw_not_leaf(const char* what);
  // A leaf while no graph records (NoGradGuard): compound assignment changes it in place.
  bool leaf_in_no_grad() const { return leaf_ && (detail::thread_mode & detail::kNoGrad); }
  double interior_grad() const;
  void drop_grad_graph();

  // Handle counting, inline: a copy or a drop of a handle is one add to its record's count (or its
  // leaf cell's). The tape looks at the counts when it needs room (ScalarTape::prepare_op) and
  // reuses its array once no handle names an unfreed record.
  // Interior handles first, with one compare (see generation_): most handles that die are an
  // expression's temporaries.
  // An interior node of the thread's current tape: one compare, since only interior handles carry
  // a generation (see generation_).
  bool on_tape(const detail::TapeState& t) const { return generation_ == t.generation; }
  // An interior node of this thread's current tape, following the handle to its record's new place
  // when a compaction moved it (see ScalarTape::compact; the handle is updated in place). The slow
  // paths ask this; the inline ones ask on_tape and leave moved handles to count_foreign/operand.
  bool attached() const {
    return on_tape(detail::tape_state) ||
           (!leaf_ && record_ != kNoRecord && detail::tape_state.moved != 0 && detail::follow_move(*this));
  }
  void acquire() noexcept {
    detail::TapeState& t = detail::tape_state;
    if (on_tape(t)) {
      ++t.records[record_].handles;
    } else if (leaf_) {
      ++leaf_->refs;
    } else if (record_ != kNoRecord) [[unlikely]] {
      detail::count_foreign(generation_, record_, +1);
    }
  }
  // A moved-from handle is the constant of its value: a leaf's current value (its value_ is only
  // the value it was made with). Its reference went to the handle it moved to.
  void become_moved_from() noexcept {
    if (leaf_) value_ = leaf_->value;
    leaf_ = nullptr;
    record_ = kNoRecord;
    generation_ = 0;
  }
  void release() noexcept {
    detail::TapeState& t = detail::tape_state;
    if (on_tape(t)) {
      --t.records[record_].handles;
    } else if (leaf_) {
      detail::release_cell(leaf_);
    } else if (record_ != kNoRecord) [[unlikely]] {
      detail::count_foreign(generation_, record_, -1);
    }
  }

  double value_ = 0.0;                // the number (cached for interior nodes, authoritative for constants)
  detail::LeafCell* leaf_ = nullptr;  // set for leaves
  // Mutable: a compaction moves records, and a handle that names one is updated where it is first
  // used after (detail::follow_move), through const references too.
  mutable uint32_t record_ = kNoRecord;  // tape record for interior nodes
  mutable uint64_t generation_ = 0;      // tape generation the record belongs to (0, which no tape
                                         // generation is, for leaves, constants and moved-from handles)
};

// Located<Scalar>: the right operand of a Scalar operator, either a Scalar or a plain number, with
// the location of the expression (autograd/where.h). A number stays a double: no Scalar is built
// for it, and the op records it as a constant operand.
template <>
class Located<Scalar> {
 public:
  Located(const Scalar& v, Where w = Where::current()) : scalar_(&v), where(w) {}             // NOLINT
  Located(double number, Where w = Where::current()) : number_(number), where(w) {}          // NOLINT
  const Scalar* scalar() const { return scalar_; }  // null for a plain number
  double number() const { return number_; }
  Scalar value() const { return scalar_ ? *scalar_ : Scalar(number_); }

 private:
  const Scalar* scalar_ = nullptr;  // the operand; it outlives this full-expression temporary
  double number_ = 0.0;

 public:
  Where where;
};

// The ops (rules: autograd/ops.h). Each records where it was called (see autograd/where.h). They
// are always inlined (their recording path is in autograd/scalar_inline.h; a call's prologue and
// epilogue would cost a quarter of the op): an op on Scalars costs about what a tape append costs.
inline Scalar operator+(const Scalar& a, Located<Scalar> b);
inline Scalar operator-(const Scalar& a, Located<Scalar> b);
inline Scalar operator*(const Scalar& a, Located<Scalar> b);
inline Scalar operator/(const Scalar& a, Located<Scalar> b);
// A number on the left (`0.5 * x`): the same ops, without making a Scalar for the number.
inline Scalar operator+(double a, Located<Scalar> b);
inline Scalar operator-(double a, Located<Scalar> b);
inline Scalar operator*(double a, Located<Scalar> b);
inline Scalar operator/(double a, Located<Scalar> b);
inline Scalar operator-(Located<Scalar> x);
inline Scalar pow(const Scalar& base, const Scalar& exponent, Where where = Where::current());
inline Scalar exp(const Scalar& x, Where where = Where::current());
inline Scalar log(const Scalar& x, Where where = Where::current());
inline Scalar sqrt(const Scalar& x, Where where = Where::current());
inline Scalar sigmoid(const Scalar& x, Where where = Where::current());
inline Scalar tanh(const Scalar& x, Where where = Where::current());
inline Scalar relu(const Scalar& x, Where where = Where::current());  // relu'(0) = 0
inline Scalar abs(const Scalar& x, Where where = Where::current());   // abs'(0) = 0
inline Scalar erf(const Scalar& x, Where where = Where::current());   // the error function
inline Scalar expm1(const Scalar& x, Where where = Where::current()); // e^x - 1, exact for tiny x
inline Scalar log1p(const Scalar& x, Where where = Where::current()); // ln(1 + x), exact for tiny x

// A weighted sum as one node: sum_i a[i] * b[i], plus c if given (a neuron's w . x + b). Any
// Scalars may be operands (leaves, interior nodes, constants), and b may be plain numbers (a
// neuron's inputs); a and b must have the same length (std::invalid_argument otherwise). Its value
// is the binary ops' written out left to right (a[0] * b[0] + a[1] * b[1] + ... + c), its gradients
// the same; it records one node instead of 2n (a fifth off the lecture network's epoch) and a
// trace shows one "dot" node with all its operands as inputs. (Stan Math's dot_product; Tensors
// have matmul and linear.)
Scalar dot(std::span<const Scalar> a, std::span<const Scalar> b, Where where = Where::current());
Scalar dot(std::span<const Scalar> a, std::span<const Scalar> b, const Scalar& c, Where where = Where::current());
Scalar dot(std::span<const Scalar> a, std::span<const double> b, Where where = Where::current());
Scalar dot(std::span<const Scalar> a, std::span<const double> b, const Scalar& c, Where where = Where::current());

// Comparisons look at values only (they record nothing), so Scalars work in `if` and `std::max`.
inline bool operator<(const Scalar& a, const Scalar& b) { return a.value() < b.value(); }
inline bool operator>(const Scalar& a, const Scalar& b) { return a.value() > b.value(); }
inline bool operator<=(const Scalar& a, const Scalar& b) { return a.value() <= b.value(); }
inline bool operator>=(const Scalar& a, const Scalar& b) { return a.value() >= b.value(); }

// The rules at kinks and edges (autograd/ops.h: relu_grad, pow_grad_a, pow_grad_b) on Scalars:
// where the rule is 0 they select a constant 0; elsewhere the recorded formula.
inline Scalar relu_grad(const Scalar& grad, const Scalar& x) { return x.value() <= 0 ? Scalar(0.0) : grad; }
inline Scalar pow_grad_a(const Scalar& grad, const Scalar& a, const Scalar& b) {
  return b.value() == 0 ? Scalar(0.0) : grad * b * pow(a, b - 1.0);
}
inline Scalar pow_grad_b(const Scalar& grad, const Scalar& a, const Scalar& b, const Scalar& result) {
  return a.value() == 0 && b.value() >= 0 ? Scalar(0.0) : grad * result * log(a);
}
inline Scalar sign(const Scalar& x) { return x.value() > 0 ? 1.0 : (x.value() < 0 ? -1.0 : 0.0); }

// Functional gradient: d(sum_i grad_outputs[i] * outputs[i]) / d inputs, without touching any .grad.
// grad_outputs defaults to ones. An input the outputs do not depend on is an error unless
// allow_unused (then its gradient is 0). With create_graph the results are recorded Scalars that can
// be differentiated again (Hessian-vector products, second derivatives).
std::vector<Scalar> grad(const std::vector<Scalar>& outputs, const std::vector<Scalar>& inputs,
                         const std::vector<Scalar>& grad_outputs = {}, GradOptions options = {});

// A user-defined op with its own forward and backward, recorded and differentiated like a built-in
// one (first order: a create_graph sweep that reaches it throws). `backward` receives the
// upstream gradient, the input values and the result, and returns one partial contribution
// (grad * d result / d input_i) per input. Check it with gradcheck (autograd/gradcheck.h).
// The tape keeps the two functions until its memory is reused (traces of a swept graph call the
// backward), so capture numbers or leaves in them: a captured interior Scalar keeps its own graph,
// for as long as the custom op's record is kept (the tape compacts around it, see README).
//
//   auto cube = [](std::span<const double> x) { return x[0] * x[0] * x[0]; };
//   auto d_cube = [](double grad, std::span<const double> x, double) {
//     return std::vector<double>{grad * 3 * x[0] * x[0]};
//   };
//   Scalar y = custom_op("cube", {x}, cube, d_cube);
using ScalarForward = std::function<double(std::span<const double> inputs)>;
using ScalarBackward =
    std::function<std::vector<double>(double grad, std::span<const double> inputs, double result)>;
Scalar custom_op(std::string_view name, const std::vector<Scalar>& inputs, ScalarForward forward,
                 ScalarBackward backward, Where where = Where::current());

// A read-only view of the recorded graph below `root`, in creation order (inputs before their
// consumers), for traces, pictures and gradcheck's localisation. Values and gradients are as of
// now (after a backward, the gradients of that backward).
struct ScalarNodeView {
  std::size_t id;                        // position in the returned vector
  std::string op;                        // "mul", "sigmoid", "leaf", "constant", or a custom name
  std::string label;                     // set_label(), or ""
  double value;
  double grad;
  std::vector<std::size_t> inputs;       // ids of its operands
  std::vector<double> local;             // d value / d input_k at the recorded values
  Where where;                           // where it was recorded (tracked while anomaly mode or
                                         // location tracking is on; empty otherwise)
  bool is_leaf = false, is_constant = false;
  ScalarForward forward;                 // custom ops: the user's forward (gradcheck re-runs it to
                                         // check the op's backward); empty for built-in ops
  // The last sweep that reached this node: its adjoint there (for a leaf, that sweep's share, where
  // grad is the accumulated .grad) and the sweep's id (0: no sweep reached it; a leaf viewed
  // alone: 1 when it has a gradient). Traces read them.
  double adjoint = 0;
  uint32_t sweep = 0;
};
std::vector<ScalarNodeView> graph_view(const Scalar& root);

// Records source locations for Scalar ops while alive (anomaly mode does too). Off by default,
// because it adds 8 bytes per recorded node.
class TrackLocationsGuard {
 public:
  TrackLocationsGuard();
  ~TrackLocationsGuard();
  TrackLocationsGuard(const TrackLocationsGuard&) = delete;
  TrackLocationsGuard& operator=(const TrackLocationsGuard&) = delete;
  static bool enabled();
};

// Introspection used by tests and the memory benchmark.
namespace detail {
struct ScalarTapeStats {
  std::size_t records;      // records in use
  std::size_t capacity;     // records allocated
  std::size_t record_bytes; // bytes per record
  std::size_t constants;    // constant operands in use (8 bytes each, beside the records)
  std::size_t live_records; // unfreed records that a live handle names (0: no graph is alive, and
                            // the next op that needs room reuses the array; a full scan, for tests)
  std::size_t foreign_counts;  // handle counts from other threads waiting in this tape's inbox
  std::size_t compactions;     // times the array was compacted under a live graph (ScalarTape::compact)
  std::size_t moved_handles;   // handles a compaction moved that have not been used since
};
ScalarTapeStats scalar_tape_stats();
// Compacts this thread's tape now, however little that frees (the tape does it by itself when its
// array is full and a graph on it is alive); false while a sweep runs or when it is empty. For tests.
bool compact_scalar_tape();

// TrackLocationsGuards alive on this thread (while > 0, kTrackLocations is set in thread_mode).
inline constinit thread_local int track_locations = 0;

}  // namespace detail

}  // namespace chainrule

// The recording path of every op above, inline (autograd/scalar_inline.h).
#include "autograd/scalar_inline.h"
