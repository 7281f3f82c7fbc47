#pragma once
// Internal: the Scalar tape's memory layout and its per-thread hot state. Not part of the public API;
// included by autograd/scalar.h so that recording an op, copying a handle and dropping one compile to
// a few inlined instructions (no call, no allocation).
//
// Layout (the performance design): one contiguous array of 32-byte records per thread, in creation
// order, which is a topological order. A record holds its value, its adjoint, up to two operand
// indices and its op; leaves live outside the tape in reference-counted cells and enter it through a
// Leaf record, cached per cell, so a parameter used a thousand times in one graph costs one record.
// Constant operands (plain numbers, Scalars that need no gradient) are not records: they go to a
// side array of doubles, and the operand index says so with its top bit (kConstantTag), so that
// recording one costs an 8-byte append and a sweep neither visits it nor loads anything to know
// that no gradient flows there.
// Recording is an append (an op checks once, against TapeState::cold_at, that its records fit);
// backward is one reverse loop; the array is reused (not freed; shrunk after a huge graph, see
// ScalarTape::reset) once no graph on it is alive, or compacted around the graphs still alive when
// it is full (ScalarTape::compact), so a training loop runs with no allocation per node and flat
// memory.
//
// The hot part of the tape (the array and the counters below) is a constant-initialised, trivially
// destructible thread_local, so reading it is one thread-pointer-relative load. The cold part (leaf
// table, custom ops, labels, source locations, and the owner that frees the array at thread exit)
// is detail::ScalarTape in autograd/scalar_tape.h.
#include <cstdint>
#include <string>

namespace chainrule {
class Scalar;
}  // namespace chainrule

namespace chainrule::detail {

enum class ScalarOp : uint8_t {
  Leaf, Freed,
  Neg, Exp, Log, Sqrt, Sigmoid, Tanh, Relu, Abs, Erf,
  Add, Sub, Mul, Div, Pow,
  Expm1, Log1p,  // unary, after the binary ops: the older ops keep their codes (and the sweep its layout)
  Dot,     // n-ary: `a` is where its operands start in TapeState::lists, `b` how many there are
  Custom,  // a user-defined op: `a` indexes the tape's custom-op table
};

struct LeafCell {
  double value = 0.0;
  double grad = 0.0;
  uint32_t refs = 1;               // handles + tape references
  bool requires_grad = true;
  uint64_t cached_generation = 0;  // tape generation of cached_record (0: none; cleared when that
                                   // record is freed or the leaf changes)
  uint32_t cached_record = 0;
  Scalar* grad_graph = nullptr;    // recorded gradient from backward(create_graph), owned
  std::string label;
};

struct ScalarRecord {
  double value;
  double grad;        // the adjoint of the last sweep that reached this record (0 before any)
  uint32_t a, b;      // operands: record indices, or constants' indices | kConstantTag (Leaf records:
                      // index into the leaf table in `a`)
  uint32_t handles;   // live Scalar handles naming this record (the only count of handles: a
                      // tape-wide count would make every temporary's birth and death one more
                      // read-modify-write of one memory word, a chain that bounds the op rate)
  ScalarOp op;
  bool freed;         // swept by a backward that did not retain the graph
  uint16_t sweep;     // id of the last sweep that reached this record (0: none)
};
static_assert(sizeof(ScalarRecord) == 32, "the tape's performance design assumes 32-byte records");

// Does a handle name this record while it is unfreed (is the graph through it alive)? The tape is
// reused once no record is.
inline bool named_unfreed(const ScalarRecord& r) { return r.handles != 0 && !r.freed; }

// A tape's generation before its first record: no handle or leaf cache ever holds it.
inline constexpr uint64_t kNoGeneration = UINT64_MAX;

struct TapeState {
  ScalarRecord* records = nullptr;
  uint32_t size = 0;
  uint32_t capacity = 0;
  uint64_t generation = kNoGeneration;  // new at the first record and at every reset, and unique in
                                // the process (see next_generation): a handle naming a record of
                                // an older generation, or of another thread's tape, never matches
  uint32_t sweeping = 0;        // sweeps in progress (no reset while one runs)
  uint32_t irregular = 0;       // Freed records, freed records and custom ops since the last reset:
                                // while 0 a sweep cannot throw, so it may take the one-pass path
  uint16_t sweep = 0;           // id of the current (or last) sweep
  // An op's one check (ScalarAccess::begin_op): its slow path runs once `size` reaches this. At most
  // capacity - kOpRoom, so that the records an op appends fit without a check of their own; 0 makes
  // the next op run it: after a sweep freed a graph (the tape may be unused now), and while the
  // slow path looks for the moment to reuse the array. See ScalarTape::prepare_op.
  uint32_t cold_at = 0;
  LeafCell** leaves = nullptr;  // the cells behind Leaf records (one tape reference each)
  uint32_t leaf_count = 0;
  uint32_t leaf_capacity = 0;
  double* constants = nullptr;  // constant operands, in creation order
  uint32_t constant_count = 0;
  uint32_t constant_capacity = 0;
  uint32_t* lists = nullptr;    // n-ary ops' operands (records or tagged constants), in creation
  uint32_t list_count = 0;      // order: a Dot record's are a_0 b_0 a_1 b_1 ... and c if it has one
  uint32_t list_capacity = 0;
  uint32_t moved = 0;           // records a compaction moved whose old handles are not all updated
                                // yet (ScalarTape::compact): while 0, a handle of an older
                                // generation is stale without a look-up
};
inline constinit thread_local TapeState tape_state;

// An operand index with this bit set names constants[index & ~kConstantTag]; record indices stay
// below it.
inline constexpr uint32_t kConstantTag = uint32_t{1} << 31;
inline bool is_constant(uint32_t operand) { return (operand & kConstantTag) != 0; }
inline double operand_value(const ScalarRecord* records, const double* constants, uint32_t operand) {
  return is_constant(operand) ? constants[operand & ~kConstantTag] : records[operand].value;
}
inline double operand_value(const TapeState& t, uint32_t operand) {
  return operand_value(t.records, t.constants, operand);
}

// Records an op may append after begin_op without checking for room: its two operands' Leaf or
// Freed records and its own (begin_op leaves one more spare).
inline constexpr uint32_t kOpRoom = 4;

// The cold paths (autograd/scalar_tape.cpp; follow_move in autograd/scalar_compact.cpp).
// begin_op's slow path: applies other threads' counts, resets the array if no graph on it is alive
// (no handle names an unfreed record; every record handle becomes stale), makes room for an op's
// records.
void prepare_op();
void grow_tape();                      // make room for one more record (throws past 2^31 - 1)
void grow_constants(uint32_t n = 1);   // make room for n more constants (the same limit)
void grow_lists(uint32_t n);           // make room for n more n-ary operands (the same limit)
// A leaf's first use in this generation: its Leaf record, which holds a reference to the cell so
// that a sweep can write the cell's gradient even after the user dropped the leaf. Out of line:
// it runs once per leaf and graph, and inlining it into every operand costs more than the call.
uint32_t enter_leaf(LeafCell* cell);
// A handle naming a record of another thread's tape was copied (+1) or destroyed (-1) on this
// thread: the owner's counts change through its inbox, which the owner applies when its array is
// full (before growing it); without it the owner's tape would never be reused again. A handle of
// this thread's own older generation, or of a thread that has ended, changes nothing.
void count_foreign(uint64_t generation, uint32_t record, int32_t delta) noexcept;
uint32_t enter_stale(double value);    // a handle from a released graph: a Freed record
// A handle of an older generation whose record a compaction moved: updated to name it (true), or
// stale (false). Only while TapeState::moved != 0.
bool follow_move(const Scalar& handle);
void destroy_cell(LeafCell* cell) noexcept;

inline void release_cell(LeafCell* cell) noexcept {
  if (--cell->refs == 0) destroy_cell(cell);
}

// `reserved`: begin_op has made room (an op's fast path, at most kOpRoom - 1 records).
template <bool reserved = false>
inline uint32_t append_record(ScalarOp op, uint32_t a, uint32_t b, double value, uint32_t handles) {
  TapeState& t = tape_state;
  if (!reserved && t.size == t.capacity) grow_tape();
  t.records[t.size] = ScalarRecord{value, 0.0, a, b, handles, op, false, 0};
  return t.size++;
}

// A constant operand: its index, tagged.
inline uint32_t append_constant(double value) {
  TapeState& t = tape_state;
  if (t.constant_count == t.constant_capacity) grow_constants();
  t.constants[t.constant_count] = value;
  return t.constant_count++ | kConstantTag;
}

}  // namespace chainrule::detail
