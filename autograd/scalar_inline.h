#pragma once
// Internal: the recording path of every built-in Scalar op, inline, included at the end of
// autograd/scalar.h (which declares the ops and the Scalar handle). Each op computes its value with
// the forward of autograd/ops.h, then, when an operand requires grad and no mode asks for the slow
// path, appends one record to the per-thread tape (autograd/scalar_record.h) and returns the one
// handle naming it.
#include "autograd/scalar.h"

namespace chainrule {
namespace detail {

// The recording path of every built-in Scalar op.
struct ScalarAccess {
  // One compare with TapeState::cold_at: past it (the array nearly full or half full, or a reset
  // due) the slow path reuses the tape if no graph on it is alive (no handle names an unfreed
  // record, counting handles copied or dropped on other threads) and makes room for the op's
  // records.
  static void begin_op() {
    const TapeState& t = tape_state;
    if (t.size >= t.cold_at) [[unlikely]] prepare_op();
  }
  // The record an operand is read from (a Leaf or Freed record is added when needed), or a tagged
  // constant.
  static uint32_t operand(const Scalar& x) {
    const TapeState& t = tape_state;
    if (x.on_tape(t)) return x.record_;  // first: most operands are interior nodes
    if (LeafCell* c = x.leaf_) {
      return c->cached_generation == t.generation ? c->cached_record : enter_leaf(c);
    }
    if (x.record_ == Scalar::kNoRecord) return append_constant(x.value_);
    if (t.moved != 0 && follow_move(x)) return x.record_;
    return enter_stale(x.value_);
  }
  // Records an op's result and returns the one handle naming it. `reserved`: after begin_op and at
  // most two operand records (a custom op's operands may be more).
  template <bool reserved = true>
  static Scalar push(ScalarOp op, uint32_t a, uint32_t b, double value) {
    const uint32_t i = append_record<reserved>(op, a, b, value, 1);
    Scalar s(value);
    s.record_ = i;
    s.generation_ = tape_state.generation;
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
  // dot(a, b[, c]): c is null without one; B is Scalar or double. In autograd/scalar.cpp.
  template <class B>
  static Scalar dot(std::span<const Scalar> a, std::span<const B> b, const Scalar* c, Where where);

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
// Compound assignment (see Scalar::operator+=): a leaf under NoGradGuard is updated in place;
// otherwise the handle is rebound to the recorded result.
[[gnu::always_inline]] inline Scalar& Scalar::operator+=(Located<Scalar> o) {
  if (leaf_in_no_grad()) [[unlikely]] set_value(value() + o.value().value());
  else *this = *this + o;
  return *this;
}
[[gnu::always_inline]] inline Scalar& Scalar::operator-=(Located<Scalar> o) {
  if (leaf_in_no_grad()) [[unlikely]] set_value(value() - o.value().value());
  else *this = *this - o;
  return *this;
}
[[gnu::always_inline]] inline Scalar& Scalar::operator*=(Located<Scalar> o) {
  if (leaf_in_no_grad()) [[unlikely]] set_value(value() * o.value().value());
  else *this = *this * o;
  return *this;
}
[[gnu::always_inline]] inline Scalar& Scalar::operator/=(Located<Scalar> o) {
  if (leaf_in_no_grad()) [[unlikely]] set_value(value() / o.value().value());
  else *this = *this / o;
  return *this;
}
[[gnu::always_inline]] inline Scalar exp(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Exp>(detail::ScalarOp::Exp, x, w); }
[[gnu::always_inline]] inline Scalar log(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Log>(detail::ScalarOp::Log, x, w); }
[[gnu::always_inline]] inline Scalar sqrt(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Sqrt>(detail::ScalarOp::Sqrt, x, w); }
[[gnu::always_inline]] inline Scalar sigmoid(const Scalar& x, Where w) {
  return detail::ScalarAccess::unary<ops::Sigmoid>(detail::ScalarOp::Sigmoid, x, w);
}
[[gnu::always_inline]] inline Scalar tanh(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Tanh>(detail::ScalarOp::Tanh, x, w); }
[[gnu::always_inline]] inline Scalar relu(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Relu>(detail::ScalarOp::Relu, x, w); }
[[gnu::always_inline]] inline Scalar abs(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Abs>(detail::ScalarOp::Abs, x, w); }
[[gnu::always_inline]] inline Scalar erf(const Scalar& x, Where w) { return detail::ScalarAccess::unary<ops::Erf>(detail::ScalarOp::Erf, x, w); }
[[gnu::always_inline]] inline Scalar expm1(const Scalar& x, Where w) {
  return detail::ScalarAccess::unary<ops::Expm1>(detail::ScalarOp::Expm1, x, w);
}
[[gnu::always_inline]] inline Scalar log1p(const Scalar& x, Where w) {
  return detail::ScalarAccess::unary<ops::Log1p>(detail::ScalarOp::Log1p, x, w);
}

}  // namespace chainrule
