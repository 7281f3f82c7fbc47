#pragma once
// `bare_tape`: a bound, not a system. The smallest dynamic reverse-mode tape that records one node per
// op, written here so that a run shows what recording one node per op costs by itself, beside
// chainrule_scalar (one node per op too) and the hand-written floor (no nodes at all).
//
// It keeps only what a one-node-per-op tape cannot do without: per record the adjoint, the two
// local derivatives (taken at record time, so a sweep is two multiply-adds per record) and the two
// operand indices, 32 bytes, in one per-thread array that each evaluation rewinds. It has none of
// what chainrule_scalar pays for:
//   - no handle counts: rewinding is the caller's job, and a Var kept past it names whatever is
//     recorded there next (chainrule: the tape is reused exactly when no graph is alive);
//   - no stale or freed checks: a second backward, or a Var from an older evaluation or another
//     thread, reads garbage instead of throwing;
//   - no leaves outside the tape: a parameter is re-recorded every evaluation, and its gradient is
//     read from the tape by index before the rewind;
//   - no no-grad mode, anomaly mode, locations, labels or graph views; nothing a trace can show.
// Only what the lecture and the ADBench shapes use: + - * with Vars and numbers, exp, log, sigmoid.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace chainrule::bench::bare {

struct Record {
  double grad;
  double da, db;  // d this / d operand, at record time
  uint32_t a, b;  // operand records; record 0 is a sink for "no operand" (its partial is 0)
};
static_assert(sizeof(Record) == 32);

struct TapeState {
  Record* records = nullptr;
  uint32_t size = 0, capacity = 0;
};
inline constinit thread_local TapeState tape;  // its array is never freed: a bench-only shortcut

[[gnu::noinline]] inline void grow() {
  const uint32_t next = tape.capacity ? tape.capacity * 2 : 1024;
  void* p = std::realloc(tape.records, sizeof(Record) * next);
  if (!p) throw std::bad_alloc();
  tape.records = static_cast<Record*>(p);
  tape.capacity = next;
}

inline uint32_t push(uint32_t a, uint32_t b, double da, double db) {
  if (tape.size == tape.capacity) [[unlikely]] grow();
  tape.records[tape.size] = Record{0.0, da, db, a, b};
  return tape.size++;
}

// Starts a new evaluation: every Var recorded before is dead.
inline void rewind() {
  tape.size = 0;
  push(0, 0, 0.0, 0.0);  // the sink
}

struct Var {
  double v = 0.0;
  uint32_t i = 0;  // 0: a constant (the sink receives its adjoint, and nobody reads it)
  Var(double value = 0.0) : v(value) {}  // NOLINT(google-explicit-constructor): a constant
  Var(double value, uint32_t record) : v(value), i(record) {}
  Var& operator+=(const Var& o);
};

inline Var leaf(double v) { return {v, push(0, 0, 0.0, 0.0)}; }
inline double grad(const Var& x) { return tape.records[x.i].grad; }

inline Var operator+(const Var& x, const Var& y) { return {x.v + y.v, push(x.i, y.i, 1.0, 1.0)}; }
inline Var operator-(const Var& x, const Var& y) { return {x.v - y.v, push(x.i, y.i, 1.0, -1.0)}; }
inline Var operator*(const Var& x, const Var& y) { return {x.v * y.v, push(x.i, y.i, y.v, x.v)}; }
inline Var operator+(const Var& x, double c) { return {x.v + c, push(x.i, 0, 1.0, 0.0)}; }
inline Var operator-(const Var& x, double c) { return {x.v - c, push(x.i, 0, 1.0, 0.0)}; }
inline Var operator*(double c, const Var& y) { return {c * y.v, push(y.i, 0, c, 0.0)}; }
inline Var& Var::operator+=(const Var& o) { return *this = *this + o; }
inline Var exp(const Var& x) {
  const double e = std::exp(x.v);
  return {e, push(x.i, 0, e, 0.0)};
}
inline Var log(const Var& x) { return {std::log(x.v), push(x.i, 0, 1.0 / x.v, 0.0)}; }
inline Var sigmoid(const Var& x) {
  const double s = 1.0 / (1.0 + std::exp(-x.v));
  return {s, push(x.i, 0, s * (1.0 - s), 0.0)};
}

// d y / d every record, in the records' grad.
inline void backward(const Var& y) {
  Record* r = tape.records;
  r[y.i].grad = 1.0;
  for (uint32_t k = y.i; k > 0; --k) {
    const Record& n = r[k];
    r[n.a].grad += n.grad * n.da;
    r[n.b].grad += n.grad * n.db;
  }
}

}  // namespace chainrule::bench::bare
