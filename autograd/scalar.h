#pragma once
// Scalar: one number in a dynamic graph, recorded as the user's code runs (micrograd's Value, in C++).
//
// A Scalar is a cheap value-type handle (24 bytes). Copies are shallow: they name the same node.
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
// thread while no unfreed graph is alive, at which point the tape's memory is reused. A graph belongs
// to the thread that recorded it.
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
    o.leaf_ = nullptr;
    o.record_ = kNoRecord;
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
      other.leaf_ = nullptr;
      other.record_ = kNoRecord;
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

  // Recording compound assignment: `c += c + 1` rebinds c to a new node, as in micrograd.
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
  double interior_grad() const;
  void drop_grad_graph();

  // Handle counting, inline: a copy or a drop of a handle is a few loads and stores. When the last
  // handle of the thread's tape goes, the tape is reset for reuse.
  // Interior handles first: most handles that die are an expression's temporaries.
  void acquire() noexcept {
    if (record_ != kNoRecord) {
      detail::TapeState& t = detail::tape_state;
      if (generation_ != t.generation) return;
      detail::ScalarRecord& r = t.records[record_];
      ++r.handles;
      t.handles += r.freed ? detail::kFreedHandle : 1;
    } else if (leaf_) {
      ++leaf_->refs;
    }
  }
  void release() noexcept {
    if (record_ != kNoRecord) {
      detail::TapeState& t = detail::tape_state;
      if (generation_ != t.generation) return;
      detail::ScalarRecord& r = t.records[record_];
      --r.handles;
      t.handles -= r.freed ? detail::kFreedHandle : 1;
      if (t.handles == 0) [[unlikely]] detail::tape_unused();
    } else if (leaf_) {
      detail::release_cell(leaf_);
    }
  }

  double value_ = 0.0;                // the number (cached for interior nodes, authoritative for constants)
  detail::LeafCell* leaf_ = nullptr;  // set for leaves
  uint32_t record_ = kNoRecord;       // tape record for interior nodes
  uint32_t generation_ = 0;           // tape generation the record belongs to
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
// are always inlined (the recording path is below; a call's prologue and epilogue would cost a quarter
// of the op): an op on Scalars costs about what a tape append costs.
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

// Comparisons look at values only (they record nothing), so Scalars work in `if` and `std::max`.
inline bool operator<(const Scalar& a, const Scalar& b) { return a.value() < b.value(); }
inline bool operator>(const Scalar& a, const Scalar& b) { return a.value() > b.value(); }
inline bool operator<=(const Scalar& a, const Scalar& b) { return a.value() <= b.value(); }
inline bool operator>=(const Scalar& a, const Scalar& b) { return a.value() >= b.value(); }

// Masks used by derivative rules at kinks: constants, no gradient flows through them.
inline Scalar step(const Scalar& x) { return x.value() > 0 ? 1.0 : 0.0; }
inline Scalar sign(const Scalar& x) { return x.value() > 0 ? 1.0 : (x.value() < 0 ? -1.0 : 0.0); }
// ln a, except 0 at a == 0 (d/db a^b's convention); differentiable where a != 0.
inline Scalar log_or_zero_at_zero(const Scalar& a) { return a.value() == 0 ? Scalar(0.0) : log(a); }

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
};
ScalarTapeStats scalar_tape_stats();

// TrackLocationsGuards alive on this thread (while > 0, kTrackLocations is set in thread_mode).
inline constinit thread_local int track_locations = 0;

// The recording path of every built-in Scalar op.
struct ScalarAccess {
  // The tape is reused once no graph on it is alive (no handle names an unfreed record).
  static void begin_op() {
    const TapeState& t = tape_state;
    if (unfreed_handles(t) == 0 && t.sweeping == 0 && t.size != 0) reset_tape();
  }
  // The record an operand is read from (a Leaf or Freed record is added when needed), or a tagged
  // constant.
  static uint32_t operand(const Scalar& x) {
    const TapeState& t = tape_state;
    if (LeafCell* c = x.leaf_) {
      return c->cached_generation == t.generation ? c->cached_record : enter_leaf(c);
    }
    if (x.record_ == Scalar::kNoRecord) return append_constant(x.value_);
    return x.generation_ == t.generation ? x.record_ : enter_stale(x.value_);
  }
  // Records an op's result and returns the one handle naming it.
  static Scalar push(ScalarOp op, uint32_t a, uint32_t b, double value) {
    const uint32_t i = append_record(op, a, b, value, 1);
    TapeState& t = tape_state;
    ++t.handles;
    Scalar s(value);
    s.record_ = i;
    s.generation_ = t.generation;
    return s;
  }
  // A result that is not recorded (no operand requires grad, or no-grad mode): a constant, checked
  // under anomaly mode.
  static Scalar constant(double value, std::string_view op, Where where) {
    if (thread_mode & kAnomaly) check_constant(value, op, where);
    return Scalar(value);
  }
  // The slow branch of every op: thread_mode != 0 (no-grad, anomaly mode or location tracking).
  // y is null for unary ops. In autograd/scalar.cpp. (Where by value on these cold paths: taking
  // its address would make every op keep its location in memory.)
  static Scalar record_slow(ScalarOp op, std::string_view name, const Scalar& x, const Scalar* y, double value,
                            Where where);
  static void check_constant(double value, std::string_view op, Where where);

  template <class Op>
  [[gnu::always_inline]] static Scalar unary(ScalarOp code, const Scalar& x, Where where) {
    const double y = Op::f(x.value());
    if (!x.requires_grad()) return constant(y, Op::name, where);
    if (thread_mode != 0) [[unlikely]] return record_slow(code, Op::name, x, nullptr, y, where);
    begin_op();
    const uint32_t a = operand(x);
    return push(code, a, a, y);
  }
  // x op y, where y may be a plain number.
  template <class Op>
  [[gnu::always_inline]] static Scalar binary(ScalarOp code, const Scalar& x, const Located<Scalar>& y) {
    if (const Scalar* s = y.scalar()) return binary<Op>(code, x, *s, y.where);
    const double c = y.number();
    const double z = Op::f(x.value(), c);
    if (!x.requires_grad()) return constant(z, Op::name, y.where);
    if (thread_mode != 0) [[unlikely]] {
      const Scalar number(c);
      return record_slow(code, Op::name, x, &number, z, y.where);
    }
    begin_op();
    const uint32_t a = operand(x);
    const uint32_t b = append_constant(c);
    return push(code, a, b, z);
  }
  template <class Op>
  [[gnu::always_inline]] static Scalar binary(ScalarOp code, const Scalar& x, const Scalar& y, Where where) {
    const double z = Op::f(x.value(), y.value());
    if (!(x.requires_grad() || y.requires_grad())) return constant(z, Op::name, where);
    if (thread_mode != 0) [[unlikely]] return record_slow(code, Op::name, x, &y, z, where);
    begin_op();
    const uint32_t a = operand(x);
    const uint32_t b = operand(y);
    return push(code, a, b, z);
  }
  // c op y for a plain number c: no Scalar is made for c (nor kept in memory for the slow branch).
  template <class Op>
  [[gnu::always_inline]] static Scalar binary(ScalarOp code, double c, const Located<Scalar>& y) {
    const Scalar* s = y.scalar();
    if (!s) return Scalar(Op::f(c, y.number()));
    const double z = Op::f(c, s->value());
    if (!s->requires_grad()) return constant(z, Op::name, y.where);
    if (thread_mode != 0) [[unlikely]] {
      const Scalar number(c);
      return record_slow(code, Op::name, number, s, z, y.where);
    }
    begin_op();
    const uint32_t a = append_constant(c);
    const uint32_t b = operand(*s);
    return push(code, a, b, z);
  }
};

}  // namespace detail

[[gnu::always_inline]] inline Scalar operator+(const Scalar& a, Located<Scalar> b) {
  return detail::ScalarAccess::binary<ops::Add>(detail::ScalarOp::Add, a, b);
}
[[gnu::always_inline]] inline Scalar operator-(const Scalar& a, Located<Scalar> b) {
  return detail::ScalarAccess::binary<ops::Sub>(detail::ScalarOp::Sub, a, b);
}
[[gnu::always_inline]] inline Scalar operator*(const Scalar& a, Located<Scalar> b) {
  return detail::ScalarAccess::binary<ops::Mul>(detail::ScalarOp::Mul, a, b);
}
[[gnu::always_inline]] inline Scalar operator/(const Scalar& a, Located<Scalar> b) {
  return detail::ScalarAccess::binary<ops::Div>(detail::ScalarOp::Div, a, b);
}
[[gnu::always_inline]] inline Scalar operator+(double a, Located<Scalar> b) {
  return detail::ScalarAccess::binary<ops::Add>(detail::ScalarOp::Add, a, b);
}
[[gnu::always_inline]] inline Scalar operator-(double a, Located<Scalar> b) {
  return detail::ScalarAccess::binary<ops::Sub>(detail::ScalarOp::Sub, a, b);
}
[[gnu::always_inline]] inline Scalar operator*(double a, Located<Scalar> b) {
  return detail::ScalarAccess::binary<ops::Mul>(detail::ScalarOp::Mul, a, b);
}
[[gnu::always_inline]] inline Scalar operator/(double a, Located<Scalar> b) {
  return detail::ScalarAccess::binary<ops::Div>(detail::ScalarOp::Div, a, b);
}
[[gnu::always_inline]] inline Scalar pow(const Scalar& a, const Scalar& b, Where w) {
  return detail::ScalarAccess::binary<ops::Pow>(detail::ScalarOp::Pow, a, b, w);
}
[[gnu::always_inline]] inline Scalar operator-(Located<Scalar> x) {
  if (!x.scalar()) return Scalar(-x.number());
  return detail::ScalarAccess::unary<ops::Neg>(detail::ScalarOp::Neg, *x.scalar(), x.where);
}
[[gnu::always_inline]] inline Scalar& Scalar::operator+=(Located<Scalar> o) { return *this = *this + o; }
[[gnu::always_inline]] inline Scalar& Scalar::operator-=(Located<Scalar> o) { return *this = *this - o; }
[[gnu::always_inline]] inline Scalar& Scalar::operator*=(Located<Scalar> o) { return *this = *this * o; }
[[gnu::always_inline]] inline Scalar& Scalar::operator/=(Located<Scalar> o) { return *this = *this / o; }
[[gnu::always_inline]] inline Scalar exp(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Exp>(detail::ScalarOp::Exp, x, w); }
[[gnu::always_inline]] inline Scalar log(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Log>(detail::ScalarOp::Log, x, w); }
[[gnu::always_inline]] inline Scalar sqrt(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Sqrt>(detail::ScalarOp::Sqrt, x, w); }
[[gnu::always_inline]] inline Scalar sigmoid(const Scalar& x, Where w) {
  return detail::ScalarAccess::unary<ops::Sigmoid>(detail::ScalarOp::Sigmoid, x, w);
}
[[gnu::always_inline]] inline Scalar tanh(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Tanh>(detail::ScalarOp::Tanh, x, w); }
[[gnu::always_inline]] inline Scalar relu(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Relu>(detail::ScalarOp::Relu, x, w); }
[[gnu::always_inline]] inline Scalar abs(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Abs>(detail::ScalarOp::Abs, x, w); }

}  // namespace chainrule
