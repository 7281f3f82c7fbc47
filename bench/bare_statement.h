#pragma once
// `bare_statement`: a bound, not a system. The smallest dynamic reverse-mode tape that records one
// statement per assignment (expression templates, as Adept and FastAD do), written here so that a
// run shows what statement-level recording would buy before anyone changes what `a * b` returns in
// chainrule (today it records one node per op, like bench/bare_tape.h).
//
// An expression such as sigmoid(x0 * w0 + x1 * w1 + b) is a tree of small value types; nothing is
// recorded until it is assigned to a Var. Then its value is computed once, the chain rule runs
// through the tree at record time (each leaf Var of the tree receives d statement / d Var), and one
// statement is recorded: its adjoint, and the range of (operand, partial) pairs it pushed. The
// sweep is then one multiply-add per pair.
//
// What this bound cannot do, by construction, and what chainrule would have to solve on top of it:
//   - no second order: a statement keeps numbers, not the expression, so create_graph could not
//     differentiate it again (chainrule records values and derives the partials in the sweep, which
//     is what lets the recorded sweep build a graph);
//   - everything bench/bare_tape.h lacks too: no handle counts, no stale or freed checks, no leaves
//     outside the tape, no modes, no traces.
// Only what the lecture and the ADBench shapes use: + - * with Vars, expressions and numbers, exp,
// log, sigmoid.
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace chainrule::bench::stmt {

struct Statement {
  double grad;
  uint32_t end;  // its operands are operands[previous statement's end, end)
};
struct Operand {
  uint32_t statement;  // 0: the sink (a number has no statement; its adjoint is never read)
  double partial;      // d this statement / d operand, at record time
};

struct TapeState {
  Statement* statements = nullptr;
  Operand* operands = nullptr;
  uint32_t size = 0, capacity = 0;                   // statements
  uint32_t operand_size = 0, operand_capacity = 0;
};
inline constinit thread_local TapeState tape;  // its arrays are never freed: a bench-only shortcut

template <class T>
[[gnu::noinline]] inline void grow(T*& array, uint32_t& capacity) {
  const uint32_t next = capacity ? capacity * 2 : 1024;
  void* p = std::realloc(array, sizeof(T) * next);
  if (!p) throw std::bad_alloc();
  array = static_cast<T*>(p);
  capacity = next;
}

inline void push_operand(uint32_t statement, double partial) {
  if (tape.operand_size == tape.operand_capacity) [[unlikely]] grow(tape.operands, tape.operand_capacity);
  tape.operands[tape.operand_size++] = Operand{statement, partial};
}

// Closes the statement whose operands were pushed since the last one.
inline uint32_t push_statement() {
  if (tape.size == tape.capacity) [[unlikely]] grow(tape.statements, tape.capacity);
  tape.statements[tape.size] = Statement{0.0, tape.operand_size};
  return tape.size++;
}

// Starts a new evaluation: every Var recorded before is dead.
inline void rewind() {
  tape.size = 0;
  tape.operand_size = 0;
  push_statement();  // the sink
}

// Expressions: value() is computed when the node is built (so exp runs once), and
// propagate(m) pushes m * d node / d Var for every Var below it. Children are held by value: a
// Var is 16 bytes, so a tree kept past its statement dangles nowhere.
struct ExprTag {};
template <class E>
concept Expr = std::derived_from<E, ExprTag>;

struct Var : ExprTag {
  double v = 0.0;
  uint32_t i = 0;  // its statement; 0: a number
  Var(double value = 0.0) : v(value) {}  // NOLINT(google-explicit-constructor): a number
  Var(double value, uint32_t statement) : v(value), i(statement) {}
  template <Expr E>
    requires(!std::same_as<E, Var>)
  Var(const E& e) : v(e.value()) {  // NOLINT(google-explicit-constructor): records the statement
    e.propagate(1.0);
    i = push_statement();
  }
  template <Expr E>
    requires(!std::same_as<E, Var>)
  Var& operator=(const E& e) {
    return *this = Var(e);
  }
  template <class E>
  Var& operator+=(const E& e);
  double value() const { return v; }
  void propagate(double m) const { push_operand(i, m); }
};

inline Var leaf(double v) { return {v, push_statement()}; }
inline double grad(const Var& x) { return tape.statements[x.i].grad; }

template <Expr L, Expr R>
struct Add : ExprTag {
  L l; R r; double v;
  Add(const L& a, const R& b) : l(a), r(b), v(a.value() + b.value()) {}
  double value() const { return v; }
  void propagate(double m) const { l.propagate(m); r.propagate(m); }
};
template <Expr L, Expr R>
struct Sub : ExprTag {
  L l; R r; double v;
  Sub(const L& a, const R& b) : l(a), r(b), v(a.value() - b.value()) {}
  double value() const { return v; }
  void propagate(double m) const { l.propagate(m); r.propagate(-m); }
};
template <Expr L, Expr R>
struct Mul : ExprTag {
  L l; R r; double v;
  Mul(const L& a, const R& b) : l(a), r(b), v(a.value() * b.value()) {}
  double value() const { return v; }
  void propagate(double m) const { l.propagate(m * r.value()); r.propagate(m * l.value()); }
};
template <Expr X>
struct AddNumber : ExprTag {  // x + c (and x - c as x + (-c))
  X x; double v;
  AddNumber(const X& a, double c) : x(a), v(a.value() + c) {}
  double value() const { return v; }
  void propagate(double m) const { x.propagate(m); }
};
template <Expr X>
struct MulNumber : ExprTag {  // c * x
  X x; double c, v;
  MulNumber(double k, const X& a) : x(a), c(k), v(k * a.value()) {}
  double value() const { return v; }
  void propagate(double m) const { x.propagate(m * c); }
};
template <Expr X>
struct Exp : ExprTag {
  X x; double v;
  explicit Exp(const X& a) : x(a), v(std::exp(a.value())) {}
  double value() const { return v; }
  void propagate(double m) const { x.propagate(m * v); }
};
template <Expr X>
struct Log : ExprTag {
  X x; double v;
  explicit Log(const X& a) : x(a), v(std::log(a.value())) {}
  double value() const { return v; }
  void propagate(double m) const { x.propagate(m / x.value()); }
};
template <Expr X>
struct Sigmoid : ExprTag {
  X x; double v;
  explicit Sigmoid(const X& a) : x(a), v(1.0 / (1.0 + std::exp(-a.value()))) {}
  double value() const { return v; }
  void propagate(double m) const { x.propagate(m * v * (1.0 - v)); }
};

template <Expr L, Expr R> Add<L, R> operator+(const L& a, const R& b) { return {a, b}; }
template <Expr L, Expr R> Sub<L, R> operator-(const L& a, const R& b) { return {a, b}; }
template <Expr L, Expr R> Mul<L, R> operator*(const L& a, const R& b) { return {a, b}; }
template <Expr X> AddNumber<X> operator+(const X& a, double c) { return {a, c}; }
template <Expr X> AddNumber<X> operator-(const X& a, double c) { return {a, -c}; }
template <Expr X> MulNumber<X> operator*(double c, const X& a) { return {c, a}; }
template <Expr X> Exp<X> exp(const X& a) { return Exp<X>(a); }
template <Expr X> Log<X> log(const X& a) { return Log<X>(a); }
template <Expr X> Sigmoid<X> sigmoid(const X& a) { return Sigmoid<X>(a); }

template <class E>
Var& Var::operator+=(const E& e) {
  return *this = *this + e;
}

// d y / d every statement, in the statements' grad.
inline void backward(const Var& y) {
  Statement* s = tape.statements;
  const Operand* o = tape.operands;
  s[y.i].grad = 1.0;
  for (uint32_t k = y.i; k > 0; --k) {
    const double g = s[k].grad;
    for (uint32_t j = s[k - 1].end; j < s[k].end; ++j) s[o[j].statement].grad += g * o[j].partial;
  }
}

}  // namespace chainrule::bench::stmt
