#pragma once
// Internal: the one dispatch from a Scalar record's op to its rules in autograd/ops.h, shared by the
// sweeps on doubles, the recorded sweep on Scalars and the graph views.
#include "autograd/ops.h"
#include "autograd/scalar_record.h"

namespace chainrule::detail {

inline bool is_binary(ScalarOp op) { return op >= ScalarOp::Add && op <= ScalarOp::Pow; }

// G is the gradient type (double or Scalar), V the value type. emit(k, d) receives
// grad * d(result)/d(operand k) for each operand k that is needed.
template <class G, class V, class Emit>
[[gnu::always_inline]] inline void apply_rule(ScalarOp op, const G& grad, const V& a, const V& b, const V& result,
                                              bool need_a, bool need_b, Emit&& emit) {
  switch (op) {
#define CHAINRULE_UNARY(CODE)                                      \
  case ScalarOp::CODE:                                             \
    if (need_a) emit(0, ops::CODE::dx(grad, a, result));           \
    break;
#define CHAINRULE_BINARY(CODE)                                     \
  case ScalarOp::CODE:                                             \
    if (need_a) emit(0, ops::CODE::da(grad, a, b, result));        \
    if (need_b) emit(1, ops::CODE::db(grad, a, b, result));        \
    break;
    CHAINRULE_UNARY(Neg)
    CHAINRULE_UNARY(Exp)
    CHAINRULE_UNARY(Log)
    CHAINRULE_UNARY(Sqrt)
    CHAINRULE_UNARY(Sigmoid)
    CHAINRULE_UNARY(Tanh)
    CHAINRULE_UNARY(Relu)
    CHAINRULE_UNARY(Abs)
    CHAINRULE_BINARY(Add)
    CHAINRULE_BINARY(Sub)
    CHAINRULE_BINARY(Mul)
    CHAINRULE_BINARY(Div)
    CHAINRULE_BINARY(Pow)
#undef CHAINRULE_UNARY
#undef CHAINRULE_BINARY
    case ScalarOp::Const:
    case ScalarOp::Leaf:
    case ScalarOp::Freed:
    case ScalarOp::Custom:  // handled by the sweeps (its rule is the user's)
      break;
  }
}

}  // namespace chainrule::detail
