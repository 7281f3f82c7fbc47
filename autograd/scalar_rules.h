#pragma once
// Internal: the one dispatch from a Scalar record's op to its rules in autograd/ops.h, shared by the
// sweeps on doubles, the recorded sweep on Scalars and the graph views.
#include <type_traits>

#include "autograd/ops.h"
#include "autograd/scalar_record.h"

namespace chainrule::detail {

inline bool is_binary(ScalarOp op) { return op >= ScalarOp::Add && op <= ScalarOp::Pow; }

// A rule's "is this operand needed" flag: a bool, or a callable evaluated only by the ops that have
// that operand (so the fast sweep tests an operand for a constant only where it matters).
template <class Need>
[[gnu::always_inline]] inline bool needed(const Need& need) {
  if constexpr (std::is_invocable_r_v<bool, const Need&>) return need();
  else return need;
}

// An operand's value: a V, or a callable returning one, called only by the rules that read it (so
// the fast sweep loads an operand only where the derivative needs it).
template <class V>
[[gnu::always_inline]] inline decltype(auto) value_of(const V& v) {
  if constexpr (std::is_invocable_v<const V&>) return v();
  else return (v);
}

struct NoLeafAction {
  void operator()() const {}
};

// A Dot record's rule over its operand list (a_0 b_0 a_1 b_1 ... and c if the count is odd):
// emit(k, d) for each needed position k. value(k) and need(k) read the operand at position k.
template <class G, class Value, class Need, class Emit>
[[gnu::always_inline]] inline void apply_dot(uint32_t count, const G& grad, const Value& value, const Need& need,
                                             Emit&& emit) {
  for (uint32_t k = 0; k + 1 < count; k += 2) {
    if (need(k)) emit(k, ops::Dot::da(grad, value(k + 1)));
    if (need(k + 1)) emit(k + 1, ops::Dot::db(grad, value(k)));
  }
  if (count % 2 == 1 && need(count - 1)) emit(count - 1, ops::Dot::dc(grad));
}

// G is the gradient type (double or Scalar), V the value type (a and b: a V or a callable returning
// one). emit(k, d) receives grad * d(result)/d(operand k) for each operand k that is needed. on_leaf
// runs for a Leaf record and on_dot for a Dot record (so that a sweep dispatches on the op once;
// callers that pass no on_dot handle Dot records before calling).
template <class G, class A, class B, class V, class NeedA, class NeedB, class Emit, class OnLeaf = NoLeafAction,
          class OnDot = NoLeafAction>
[[gnu::always_inline]] inline void apply_rule(ScalarOp op, const G& grad, const A& a, const B& b, const V& result,
                                              const NeedA& need_a, const NeedB& need_b, Emit&& emit,
                                              OnLeaf&& on_leaf = {}, OnDot&& on_dot = {}) {
  switch (op) {
#define CHAINRULE_UNARY(CODE)                                                          \
  case ScalarOp::CODE:                                                                 \
    if (needed(need_a)) emit(0, ops::CODE::dx(grad, value_of(a), result));             \
    break;
#define CHAINRULE_BINARY(CODE)                                                         \
  case ScalarOp::CODE:                                                                 \
    if (needed(need_a)) emit(0, ops::CODE::da(grad, value_of(a), value_of(b), result)); \
    if (needed(need_b)) emit(1, ops::CODE::db(grad, value_of(a), value_of(b), result)); \
    break;
    CHAINRULE_UNARY(Neg)
    CHAINRULE_UNARY(Exp)
    CHAINRULE_UNARY(Log)
    CHAINRULE_UNARY(Sqrt)
    CHAINRULE_UNARY(Sigmoid)
    CHAINRULE_UNARY(Tanh)
    CHAINRULE_UNARY(Relu)
    CHAINRULE_UNARY(Abs)
    CHAINRULE_UNARY(Erf)
    CHAINRULE_UNARY(Expm1)
    CHAINRULE_UNARY(Log1p)
    CHAINRULE_BINARY(Add)
    CHAINRULE_BINARY(Sub)
    CHAINRULE_BINARY(Mul)
    CHAINRULE_BINARY(Div)
    CHAINRULE_BINARY(Pow)
#undef CHAINRULE_UNARY
#undef CHAINRULE_BINARY
    case ScalarOp::Leaf:
      on_leaf();
      break;
    case ScalarOp::Dot:
      on_dot();
      break;
    case ScalarOp::Freed:
    case ScalarOp::Custom:  // handled by the sweeps (its rule is the user's)
      break;
    default:  // every ScalarOp is listed above; records are only written with them
      __builtin_unreachable();
  }
}

}  // namespace chainrule::detail
