#pragma once
// Every differentiable op of chainrule, one entry each, with its forward and its derivative.
//
// Notation: `grad` is the incoming (upstream) gradient, `result` the op's forward output, and the
// derivative rules return the contribution to each input. Each rule is written once, generic over
// the number type: the fast backward sweep runs it on plain doubles (Scalar) or on Tensors under
// no-grad, and the recorded sweep (create_graph) runs it on Scalars or on Tensors with recording on,
// so the same formula serves first and higher derivatives. Broadcasting is undone in one place
// (the engines' accumulate), never in a rule.
//
// Elementwise ops (Scalar and Tensor, NumPy broadcasting for Tensors):
//   neg:     y = -x                 dx = -grad
//   exp:     y = e^x                dx = grad * result
//   expm1:   y = e^x - 1            dx = grad * (result + 1)       exact for tiny x, where e^x - 1 cancels
//   log:     y = ln x               dx = grad / x
//   log1p:   y = ln(1 + x)          dx = grad / (1 + x)            exact for tiny x, where ln(1 + x) rounds
//   sqrt:    y = sqrt x             dx = grad / (2 * result)
//   sigmoid: y = 1 / (1 + e^-x)     dx = grad * result * (1 - result)
//   tanh:    y = tanh x             dx = grad * (1 - result^2)
//   relu:    y = max(x, 0)          dx = grad where y > 0, else 0  relu'(0) = 0, NaN passes, as PyTorch
//   abs:     y = |x|                dx = grad * sign(x)            abs'(0) = 0, as PyTorch
//   erf:     y = erf x              dx = grad * 2/sqrt(pi) * e^(-x^2)
//   add:     y = a + b              da = grad                  db = grad
//   sub:     y = a - b              da = grad                  db = -grad
//   mul:     y = a * b              da = grad * b              db = grad * a
//   div:     y = a / b              da = grad / b              db = -grad * (a / b) / b
//   pow:     y = a ^ b              da = grad * b * a^(b-1)    db = grad * result * ln a
//            (as PyTorch: da = 0 where b == 0; db = 0 where a == 0 and b >= 0)
//
// Scalar-only ops (n-ary: one node for a whole weighted sum, as Stan Math's dot_product; Tensors
// have matmul and linear for this):
//   dot:     y = sum_i a_i b_i (+ c)    da_i = grad * b_i          db_i = grad * a_i          dc = grad
//
// Tensor-only ops (their rules sit next to their forwards in autograd/tensor_*.cpp):
//   sum:       y = sum of x over dims             dx = grad broadcast back to x's shape
//   max:       y = max of x over dims             dx = grad * [x == y] / (number of ties)
//   matmul:    y = a @ b (batched over leading)   da = grad @ b^T            db = a^T @ grad
//   linear:    y = x @ w^T + b                    dx = grad @ w   dw = grad^T @ x   db = sum_rows(grad)
//   permute:   y = x with axes permuted by p      dx = grad permuted by p^-1
//   reshape:   y = x viewed with a new shape      dx = grad reshaped to x's shape
//   expand:    y = x broadcast to a shape         dx = grad summed back to x's shape
//   slice:     y = x[start:stop] along dim        dx = zeros with grad in [start:stop]
//   concat:    y = [x0, x1, ...] along dim        dxi = grad sliced at xi's range
//   index_select: y = x[idx] along dim            dx = index_add(zeros like x, dim, idx, grad)
//   index_add: y = base + src added at idx        dbase = grad   dsrc = index_select(grad, dim, idx)
//   unfold:    y = x's sliding windows as columns dx = fold(grad) (im2col; autograd/tensor_window.cpp)
//   fold:      y = columns added back per pixel   dcolumns = unfold(grad) (col2im)
//   max_pool2d: y = each window's maximum         dx = grad added at each window's first maximum
//   softmax_cross_entropy: y_n = log sum_j e^(x_nj) - x_n,t_n (logits [N, C], class indices t)
//                                                 dx_n = grad_n * (softmax(x_n) - onehot(t_n))
//   cast:      y = x converted to a dtype         dx = grad converted back
//   where:     y = x where c != 0, else z         dx = grad where c != 0, else 0   dz = grad where c == 0, else 0
//              (c a constant; the gradient is selected, not multiplied by a mask: inf * 0 is no NaN)
//
// Composed (no derivative of their own): mean = sum / n, min = -max(-x), var and std of mean,
// sum and sqrt, clamp = where() with masks, transpose = permute, squeeze / unsqueeze / stack of
// reshape and concat; in nn/: softmax, log_softmax, the piecewise activations (where()), the
// normalisation layers, the 1-d and adaptive pools, the recurrent layers and the losses (cross-entropy
// over class indices with the default options is softmax_cross_entropy and a reduction).
#include <array>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

namespace chainrule::ops {

// Which values a rule reads (x/a, b, result), so that a Tensor op saves only those. Binary ops say
// it per derivative too (uses_da, uses_db; uses is both): an input that needs no gradient needs
// nothing saved for it (`h * mask` with a constant mask keeps the mask, not h).
struct Uses {
  bool a = false, b = false, result = false;
  constexpr Uses operator|(Uses o) const { return {a || o.a, b || o.b, result || o.result}; }
};

// Non-differentiable helpers used by the rules at kinks. For numbers they are plain functions;
// Scalar and Tensor provide overloads that return constants (no gradient flows through a mask).
// float has its own: through the double overload, a float32 loop converts each element to double
// and back, and GCC then compiles relu's backward to a branch per element (mispredicted half the
// time on a ReLU layer's mixed signs) instead of a vector select.
// step: 0 where x <= 0, else 1; NaN gives 1, as relu_grad passes a NaN's gradient on (PyTorch's
// threshold_backward: zero where x <= 0). The Tensor step mask (relu's rule under create_graph,
// BCE's mask) computes it.
inline double step(double x) { return x <= 0 ? 0.0 : 1.0; }
inline float step(float x) { return x <= 0 ? 0.0f : 1.0f; }
inline double sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }
inline float sign(float x) { return x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f); }
// The rules whose value is exactly 0 on part of the domain select 0 there instead of multiplying
// the incoming gradient by 0 (an infinite or NaN gradient times 0 is NaN; PyTorch's rules select).
// For numbers here; Scalar and Tensor overloads sit beside their masks.
//   relu_grad:  grad where x > 0 (or NaN), else 0 (PyTorch's threshold_backward).
//   pow_grad_a: grad b a^(b-1), 0 where b == 0 (a^0 is constant in a: not 0 * inf at a == 0, nor
//               NaN at a = NaN or where a^(b-1) overflows).
//   pow_grad_b: grad a^b ln a, 0 where a == 0 and b >= 0 (a^b is 0 or 1 there); at a == 0, b < 0 it
//               is -inf (times grad), not NaN.
// The float overloads compute the powers and logs in double, as the rules did before.
// (One template per rule for float and double: V is the element type, never converted, so that a
// float32 ReLU backward stays a vector select, as the note on float overloads above says.)
template <class G, std::floating_point V> G relu_grad(const G& grad, V x) { return x <= 0 ? G(0) : grad; }
template <class G, std::floating_point V> G pow_grad_a(const G& grad, V a, V b) {
  return b == 0 ? G(0) : grad * b * std::pow(double(a), double(b) - 1.0);
}
template <class G, std::floating_point V> G pow_grad_b(const G& grad, V a, V b, V result) {
  return a == 0 && b >= 0 ? G(0) : grad * result * std::log(double(a));
}

struct Neg {
  static constexpr std::string_view name = "neg";
  static constexpr Uses uses{};
  template <class R> static R f(R x) { return -x; }
  template <class G, class V> static G dx(const G& grad, const V&, const V&) { return -grad; }
};
struct Exp {
  static constexpr std::string_view name = "exp";
  static constexpr Uses uses{.result = true};
  template <class R> static R f(R x) { using std::exp; return exp(x); }
  template <class G, class V> static G dx(const G& grad, const V&, const V& result) { return grad * result; }
};
struct Expm1 {
  static constexpr std::string_view name = "expm1";
  static constexpr Uses uses{.result = true};
  template <class R> static R f(R x) { using std::expm1; return expm1(x); }
  template <class G, class V> static G dx(const G& grad, const V&, const V& result) { return grad * (result + 1.0); }
};
struct Log {
  static constexpr std::string_view name = "log";
  static constexpr Uses uses{.a = true};
  template <class R> static R f(R x) { using std::log; return log(x); }
  template <class G, class V> static G dx(const G& grad, const V& x, const V&) { return grad / x; }
};
struct Log1p {
  static constexpr std::string_view name = "log1p";
  static constexpr Uses uses{.a = true};
  template <class R> static R f(R x) { using std::log1p; return log1p(x); }
  template <class G, class V> static G dx(const G& grad, const V& x, const V&) { return grad / (x + 1.0); }
};
struct Sqrt {
  static constexpr std::string_view name = "sqrt";
  static constexpr Uses uses{.result = true};
  template <class R> static R f(R x) { using std::sqrt; return sqrt(x); }
  template <class G, class V> static G dx(const G& grad, const V&, const V& result) { return grad / (result * 2.0); }
};
// x's sign bit clear ? a : b, computed with bit operations: GCC compiles a floating-point ternary
// (or a max) to a compare-and-jump, and a jump on the sign of a value that changes from one call to
// the next is mispredicted half the time. (-0 counts as negative: callers give the same result.)
template <class R> R if_sign_clear(R x, R a, R b) {
  using U = std::conditional_t<sizeof(R) == 8, uint64_t, uint32_t>;
  static_assert(sizeof(U) == sizeof(R));
  const U negative = U(0) - (std::bit_cast<U>(x) >> (8 * sizeof(R) - 1));  // all ones or all zeros
  return std::bit_cast<R>((std::bit_cast<U>(b) & negative) | (std::bit_cast<U>(a) & ~negative));
}

struct Sigmoid {
  static constexpr std::string_view name = "sigmoid";
  static constexpr Uses uses{.result = true};
  // 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below: e = e^-|x| <= 1, so neither overflows.
  // Branch-free (a select, not a jump): the sign of a neuron's input changes from one observation
  // to the next, and a mispredicted jump costs more than the exp.
  template <class R> static R f(R x) {
    using std::abs, std::exp;
    const R e = exp(-abs(x));
    return if_sign_clear(x, R(1), e) / (R(1) + e);
  }
  template <class G, class V> static G dx(const G& grad, const V&, const V& result) {
    return grad * result * (1.0 - result);
  }
};
struct Tanh {
  static constexpr std::string_view name = "tanh";
  static constexpr Uses uses{.result = true};
  template <class R> static R f(R x) { using std::tanh; return tanh(x); }
  template <class G, class V> static G dx(const G& grad, const V&, const V& result) {
    return grad * (1.0 - result * result);
  }
};
struct Relu {
  static constexpr std::string_view name = "relu";
  static constexpr Uses uses{.result = true};
  template <class R> static R f(R x) { return x <= 0 ? R(0) : x; }  // NaN stays NaN (as PyTorch)
  // relu'(0) = 0 (PyTorch's convention): the subgradient that keeps dead units dead. Read from the
  // result (result > 0 exactly where x > 0, NaN where x is NaN), which is what PyTorch saves: x
  // may then change in place after the op (`y += relu(y)`), as in PyTorch.
  template <class G, class V> static G dx(const G& grad, const V&, const V& result) { return relu_grad(grad, result); }
};
struct Abs {
  static constexpr std::string_view name = "abs";
  static constexpr Uses uses{.a = true};
  template <class R> static R f(R x) { using std::abs; return abs(x); }
  // abs'(0) = 0 (PyTorch's convention, sign(0) = 0).
  template <class G, class V> static G dx(const G& grad, const V& x, const V&) { return grad * sign(x); }
};
struct Erf {
  static constexpr std::string_view name = "erf";
  static constexpr Uses uses{.a = true};
  template <class R> static R f(R x) { using std::erf; return erf(x); }
  template <class G, class V> static G dx(const G& grad, const V& x, const V&) {
    using std::exp;
    return grad * (exp(-(x * x)) * 1.1283791670955126);  // 2 / sqrt(pi)
  }
};

struct Add {
  static constexpr std::string_view name = "add";
  static constexpr Uses uses_da{}, uses_db{}, uses = uses_da | uses_db;
  template <class R> static R f(R a, R b) { return a + b; }
  template <class G, class V> static G da(const G& grad, const V&, const V&, const V&) { return grad; }
  template <class G, class V> static G db(const G& grad, const V&, const V&, const V&) { return grad; }
};
struct Sub {
  static constexpr std::string_view name = "sub";
  static constexpr Uses uses_da{}, uses_db{}, uses = uses_da | uses_db;
  template <class R> static R f(R a, R b) { return a - b; }
  template <class G, class V> static G da(const G& grad, const V&, const V&, const V&) { return grad; }
  template <class G, class V> static G db(const G& grad, const V&, const V&, const V&) { return -grad; }
};
struct Mul {
  static constexpr std::string_view name = "mul";
  static constexpr Uses uses_da{.b = true}, uses_db{.a = true}, uses = uses_da | uses_db;
  template <class R> static R f(R a, R b) { return a * b; }
  template <class G, class V> static G da(const G& grad, const V&, const V& b, const V&) { return grad * b; }
  template <class G, class V> static G db(const G& grad, const V& a, const V&, const V&) { return grad * a; }
};
struct Div {
  static constexpr std::string_view name = "div";
  // db from a and b, not from the result (PyTorch's -grad * (a / b) / b): the op saves what
  // PyTorch's saves, so the result may change in place after it (`q = a / b; q *= 2`).
  static constexpr Uses uses_da{.b = true}, uses_db{.a = true, .b = true}, uses = uses_da | uses_db;
  template <class R> static R f(R a, R b) { return a / b; }
  template <class G, class V> static G da(const G& grad, const V&, const V& b, const V&) { return grad / b; }
  template <class G, class V> static G db(const G& grad, const V& a, const V& b, const V&) {
    return -grad * (a / b) / b;
  }
};
struct Pow {
  static constexpr std::string_view name = "pow";
  static constexpr Uses uses_da{.a = true, .b = true}, uses_db{.a = true, .b = true, .result = true},
      uses = uses_da | uses_db;
  template <class R> static R f(R a, R b) { using std::pow; return pow(a, b); }
  // d/da a^b = b a^(b-1); 0 where b == 0 (PyTorch's convention; at a = b = 0 not 0 * inf).
  template <class G, class V> static G da(const G& grad, const V& a, const V& b, const V&) {
    return pow_grad_a(grad, a, b);
  }
  // d/db a^b = a^b ln a; 0 where a == 0 and b >= 0 (PyTorch's convention), not 0 * -inf.
  template <class G, class V> static G db(const G& grad, const V& a, const V& b, const V& result) {
    return pow_grad_b(grad, a, b, result);
  }
};

// dot: a neuron's weighted sum w . x + b as one node (micrograd's Neuron writes it as 2n ops). The
// sum runs left to right and adds c last, as the binary ops written out would.
struct Dot {
  static constexpr std::string_view name = "dot";
  // Over its operands in recorded order: a_0 b_0 a_1 b_1 ... and c if their count is odd.
  static double f(std::span<const double> x) {
    double y = -0.0;  // the identity of +: a lone -0 product (or c) stays -0, as written out
    for (std::size_t k = 0; k + 1 < x.size(); k += 2) y += x[k] * x[k + 1];
    if (x.size() % 2 == 1) y += x.back();
    return y;
  }
  template <class G, class V> static G da(const G& grad, const V& b_i) { return grad * b_i; }
  template <class G, class V> static G db(const G& grad, const V& a_i) { return grad * a_i; }
  template <class G> static G dc(const G& grad) { return grad; }
};

// The names of every differentiable op, in the order documented above. The finite-difference test
// iterates this list: an op here without a row in the test's table fails the suite.
inline constexpr std::array<std::string_view, 16> elementwise_ops = {
    "neg", "exp", "expm1", "log", "log1p", "sqrt", "sigmoid", "tanh", "relu", "abs", "erf",
    "add", "sub", "mul", "div", "pow"};
inline constexpr std::array<std::string_view, 1> scalar_ops = {"dot"};
inline constexpr std::array<std::string_view, 17> tensor_ops = {
    "sum", "max", "matmul", "linear", "permute", "reshape", "expand", "slice", "concat", "index_select", "index_add",
    "unfold", "fold", "max_pool2d", "softmax_cross_entropy", "cast", "where"};

}  // namespace chainrule::ops
