// The finite-difference table: every differentiable op of autograd/ops.h, checked against central
// differences in float64, for Scalar (the elementwise ops) and for Tensor (all of them, with
// broadcasting shapes among the cases).
//
// The tables are keyed by op name and the tests iterate ops::elementwise_ops and ops::tensor_ops,
// not the tables: an op added to the header without a row here fails the suite.
//
// Inputs sit inside each op's domain and away from its kinks (relu and abs not at 0, log and sqrt
// positive, pow's base positive, div's denominator away from 0, max without ties).
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/ops.h"
#include "autograd/scalar.h"
#include "autograd/tensor.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using chainrule::testing::close;
using chainrule::testing::kEps;
using chainrule::testing::Numbers;

namespace {

// Tolerances: tighter than the 1e-5 + 1e-3 |numeric|; they hold for every row below.
constexpr double kAtol = 1e-7;
constexpr double kRtol = 1e-6;

// ---------------------------------------------------------------------------------------------
// Scalar table
// ---------------------------------------------------------------------------------------------

struct ScalarRow {
  int arity;
  std::function<Scalar(const Scalar&, const Scalar&)> f;
  std::vector<std::pair<double, double>> points;  // (a, b); b ignored by unary ops
};

const std::map<std::string_view, ScalarRow>& scalar_table() {
  static const std::map<std::string_view, ScalarRow> table = {
      {"neg", {1, [](const Scalar& a, const Scalar&) { return -a; }, {{0.7, 0}, {-1.3, 0}, {2.5, 0}}}},
      {"exp", {1, [](const Scalar& a, const Scalar&) { return exp(a); }, {{-1.2, 0}, {0.3, 0}, {2.0, 0}}}},
      {"log", {1, [](const Scalar& a, const Scalar&) { return log(a); }, {{0.2, 0}, {1.0, 0}, {3.5, 0}}}},
      {"expm1", {1, [](const Scalar& a, const Scalar&) { return expm1(a); }, {{-1.2, 0}, {1e-9, 0}, {0.3, 0}, {2.0, 0}}}},
      {"log1p", {1, [](const Scalar& a, const Scalar&) { return log1p(a); }, {{-0.7, 0}, {1e-9, 0}, {0.4, 0}, {3.5, 0}}}},
      {"sqrt", {1, [](const Scalar& a, const Scalar&) { return sqrt(a); }, {{0.3, 0}, {1.7, 0}, {4.0, 0}}}},
      // Both branches of the overflow-safe forward (x < 0 and x >= 0), and far out on each side.
      {"sigmoid",
       {1, [](const Scalar& a, const Scalar&) { return sigmoid(a); }, {{-8, 0}, {-0.4, 0}, {0, 0}, {2.5, 0}, {8, 0}}}},
      {"tanh", {1, [](const Scalar& a, const Scalar&) { return tanh(a); }, {{-2, 0}, {-0.3, 0}, {0.5, 0}, {1.5, 0}}}},
      {"relu", {1, [](const Scalar& a, const Scalar&) { return relu(a); }, {{-1.1, 0}, {0.4, 0}, {2.3, 0}}}},
      {"abs", {1, [](const Scalar& a, const Scalar&) { return abs(a); }, {{-1.1, 0}, {0.4, 0}, {2.3, 0}}}},
      {"erf", {1, [](const Scalar& a, const Scalar&) { return erf(a); }, {{-2.2, 0}, {-0.3, 0}, {0, 0}, {0.8, 0}}}},
      {"add", {2, [](const Scalar& a, const Scalar& b) { return a + b; }, {{1.3, -0.7}, {-2.1, 0.4}}}},
      {"sub", {2, [](const Scalar& a, const Scalar& b) { return a - b; }, {{1.3, -0.7}, {-2.1, 0.4}}}},
      {"mul", {2, [](const Scalar& a, const Scalar& b) { return a * b; }, {{1.3, -0.7}, {-2.1, 0.4}, {0.5, 3.0}}}},
      {"div", {2, [](const Scalar& a, const Scalar& b) { return a / b; }, {{1.3, -0.7}, {-2.1, 0.4}, {0.5, 3.0}}}},
      {"pow",
       {2, [](const Scalar& a, const Scalar& b) { return pow(a, b); }, {{1.5, 2.0}, {0.7, -1.3}, {2.2, 0.5}, {3.0, 3.0}}}},
  };
  return table;
}

// Scalar-only n-ary ops (ops::scalar_ops): f of n inputs, at points of n numbers.
struct NaryRow {
  std::function<Scalar(const std::vector<Scalar>&)> f;
  std::vector<std::vector<double>> points;
};

const std::map<std::string_view, NaryRow>& nary_table() {
  static const std::map<std::string_view, NaryRow> table = {
      // dot(a, b, c) of three pairs: v = a_0 a_1 a_2 b_0 b_1 b_2 c.
      {"dot",
       {[](const std::vector<Scalar>& v) {
          const std::span<const Scalar> all(v);
          return dot(all.subspan(0, 3), all.subspan(3, 3), v[6]);
        },
        {{0.3, -1.2, 2.0, 1.1, 0.4, -0.7, 0.25}, {-2.5, 0.0, 0.9, 3.0, -1.0, 0.6, -1.5}}}},
  };
  return table;
}

// d op / d operand k at (a, b), by central differences on constants (nothing recorded).
double scalar_numeric(const ScalarRow& row, double a, double b, int k) {
  return chainrule::testing::central_difference(
      [&](double v) { return (k == 0 ? row.f(Scalar(v), Scalar(b)) : row.f(Scalar(a), Scalar(v))).value(); },
      k == 0 ? a : b);
}

// ---------------------------------------------------------------------------------------------
// Tensor table
// ---------------------------------------------------------------------------------------------

enum class Domain { any, away_from_zero, positive, wide };

struct TensorInput {
  Shape shape;
  Domain domain = Domain::any;
  bool requires_grad = true;
  DType dtype = DType::float64;
};

struct TensorCase {
  std::string label;
  std::vector<TensorInput> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> f;  // returns the op's own output
  double eps = kEps;
  double atol = kAtol;
  double rtol = kRtol;
};

std::vector<double> sample(const TensorInput& in, Numbers& rng) {
  std::vector<double> v(static_cast<std::size_t>(in.shape.numel()));
  for (double& x : v) {
    switch (in.domain) {
      case Domain::any: x = rng.uniform(-2, 2); break;
      case Domain::away_from_zero: x = rng.away_from_zero(-2, 2, 0.3); break;
      case Domain::positive: x = rng.uniform(0.3, 2.5); break;
      case Domain::wide: x = rng.uniform(-6, 6); break;
    }
  }
  return v;
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

std::vector<TensorCase> unary_cases(Fn f, Domain d) {
  return {{"[2, 3]", {{{2, 3}, d}}, f}, {"[] (0-d)", {{{}, d}}, f}, {"[4]", {{{4}, d}}, f}};
}

// Binary elementwise cases: equal shapes, the broadcasting shapes, a plain number on either side,
// and an operand that does not require grad.
std::vector<TensorCase> binary_cases(const std::function<Tensor(const Tensor&, const Tensor&)>& op, Domain da,
                                     Domain db, double number) {
  const Fn both = [op](const std::vector<Tensor>& x) { return op(x[0], x[1]); };
  return {
      {"[2, 3] op [2, 3]", {{{2, 3}, da}, {{2, 3}, db}}, both},
      {"[2, 3] op [3]", {{{2, 3}, da}, {{3}, db}}, both},
      {"[3] op [2, 3]", {{{3}, da}, {{2, 3}, db}}, both},
      {"[2, 1] op [1, 3]", {{{2, 1}, da}, {{1, 3}, db}}, both},
      {"[] op [2]", {{{}, da}, {{2}, db}}, both},
      {"[2, 2] op []", {{{2, 2}, da}, {{}, db}}, both},
      {"[4, 1, 3] op [2, 1]", {{{4, 1, 3}, da}, {{2, 1}, db}}, both},
      {"[2, 3] op [3] (no grad)", {{{2, 3}, da}, {{3}, db, false}}, both},
      {"[3] (no grad) op [2, 3]", {{{3}, da, false}, {{2, 3}, db}}, both},
      {"[2, 3] op number", {{{2, 3}, da}}, [op, number](const std::vector<Tensor>& x) { return op(x[0], Tensor(number)); }},
      {"number op [2, 3]", {{{2, 3}, db}}, [op, number](const std::vector<Tensor>& x) { return op(Tensor(number), x[0]); }},
  };
}

std::vector<TensorCase> reduction_cases(const std::function<Tensor(const Tensor&, const std::vector<int64_t>&, bool)>& op,
                                        const std::function<Tensor(const Tensor&)>& all) {
  std::vector<TensorCase> cases;
  cases.push_back({"all of [2, 3, 4]", {{{2, 3, 4}}}, [all](const std::vector<Tensor>& x) { return all(x[0]); }});
  cases.push_back({"all of [] (0-d)", {{{}}}, [all](const std::vector<Tensor>& x) { return all(x[0]); }});
  cases.push_back({"all of [5]", {{{5}}}, [all](const std::vector<Tensor>& x) { return all(x[0]); }});
  const std::vector<std::vector<int64_t>> dim_sets = {{1}, {0, 2}, {-1}, {2, 0, 1}, {}};
  for (const auto& dims : dim_sets) {
    for (bool keepdim : {false, true}) {
      std::string label = "[2, 3, 4] dims {";
      for (int64_t d : dims) label += std::to_string(d) + ",";
      label += keepdim ? "} keepdim" : "}";
      cases.push_back({label, {{{2, 3, 4}}}, [op, dims, keepdim](const std::vector<Tensor>& x) {
                         return op(x[0], dims, keepdim);
                       }});
    }
  }
  return cases;
}

const std::map<std::string_view, std::vector<TensorCase>>& tensor_table() {
  using V = const std::vector<Tensor>&;
  static const std::map<std::string_view, std::vector<TensorCase>> table = {
      {"neg", unary_cases([](V x) { return -x[0]; }, Domain::any)},
      {"exp", unary_cases([](V x) { return exp(x[0]); }, Domain::any)},
      {"log", unary_cases([](V x) { return log(x[0]); }, Domain::positive)},
      {"expm1", unary_cases([](V x) { return expm1(x[0]); }, Domain::any)},
      {"log1p", unary_cases([](V x) { return log1p(x[0]); }, Domain::positive)},
      {"sqrt", unary_cases([](V x) { return sqrt(x[0]); }, Domain::positive)},
      {"sigmoid", unary_cases([](V x) { return sigmoid(x[0]); }, Domain::wide)},
      {"tanh", unary_cases([](V x) { return tanh(x[0]); }, Domain::any)},
      {"relu", unary_cases([](V x) { return relu(x[0]); }, Domain::away_from_zero)},
      {"abs", unary_cases([](V x) { return abs(x[0]); }, Domain::away_from_zero)},
      {"erf", unary_cases([](V x) { return erf(x[0]); }, Domain::any)},
      {"add", binary_cases([](const Tensor& a, const Tensor& b) { return a + b; }, Domain::any, Domain::any, 2.5)},
      {"sub", binary_cases([](const Tensor& a, const Tensor& b) { return a - b; }, Domain::any, Domain::any, 2.5)},
      {"mul", binary_cases([](const Tensor& a, const Tensor& b) { return a * b; }, Domain::any, Domain::any, -1.5)},
      {"div",
       binary_cases([](const Tensor& a, const Tensor& b) { return a / b; }, Domain::away_from_zero,
                    Domain::away_from_zero, 1.7)},
      {"pow",
       binary_cases([](const Tensor& a, const Tensor& b) { return pow(a, b); }, Domain::positive, Domain::any, 1.3)},

      {"sum",
       reduction_cases([](const Tensor& x, const std::vector<int64_t>& d, bool k) { return sum(x, d, k); },
                       [](const Tensor& x) { return sum(x); })},
      // Continuous random values: no ties (ties are tested exactly in tensor_test.cpp).
      {"max",
       reduction_cases([](const Tensor& x, const std::vector<int64_t>& d, bool k) { return max(x, d, k); },
                       [](const Tensor& x) { return max(x); })},
      {"matmul",
       {
           {"[2, 3] @ [3, 4]", {{{2, 3}}, {{3, 4}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[2, 2, 3] @ [2, 3, 4] (batched)", {{{2, 2, 3}}, {{2, 3, 4}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[2, 2, 3] @ [3, 4] (b broadcast)", {{{2, 2, 3}}, {{3, 4}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[2, 3] @ [2, 3, 4] (a broadcast)", {{{2, 3}}, {{2, 3, 4}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[3] @ [2, 3, 4] (1-D promoted, a broadcast)", {{{3}}, {{2, 3, 4}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[2, 3] @ [2, 3, 4] twice (a's broadcast gradient added to)", {{{2, 3}}, {{2, 3, 4}}},
            [](V x) { return matmul(x[0], x[1] * sum(matmul(x[0], x[1]))); }},
           {"[3, 1, 2, 3] @ [2, 3, 2] (both batches broadcast)",
            {{{3, 1, 2, 3}}, {{2, 3, 2}}},
            [](V x) { return matmul(x[0], x[1]); }},
           {"[3] @ [3, 2] (1-D promoted)", {{{3}}, {{3, 2}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[2, 3] @ [3] (1-D promoted)", {{{2, 3}}, {{3}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[2, 2, 3] @ [3] (batched, 1-D promoted)", {{{2, 2, 3}}, {{3}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[3] @ [3] (dot)", {{{3}}, {{3}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[2, 3] (no grad) @ [3, 4]", {{{2, 3}, Domain::any, false}, {{3, 4}}}, [](V x) { return matmul(x[0], x[1]); }},
           {"[2, 3] @ [3, 4] (no grad)", {{{2, 3}}, {{3, 4}, Domain::any, false}}, [](V x) { return matmul(x[0], x[1]); }},
       }},
      {"linear",
       {
           {"[2, 3] w [4, 3] b [4]", {{{2, 3}}, {{4, 3}}, {{4}}}, [](V x) { return linear(x[0], x[1], x[2]); }},
           {"[2, 3] w [4, 3] (no bias)", {{{2, 3}}, {{4, 3}}}, [](V x) { return linear(x[0], x[1]); }},
           {"[2, 2, 3] w [4, 3] b [4] (leading dims)",
            {{{2, 2, 3}}, {{4, 3}}, {{4}}},
            [](V x) { return linear(x[0], x[1], x[2]); }},
           {"[3] w [4, 3] b [4] (1-D x)", {{{3}}, {{4, 3}}, {{4}}}, [](V x) { return linear(x[0], x[1], x[2]); }},
           {"[2, 3] (no grad) w [4, 3] b [4]",
            {{{2, 3}, Domain::any, false}, {{4, 3}}, {{4}}},
            [](V x) { return linear(x[0], x[1], x[2]); }},
           {"[2, 3] w [4, 3] (no grad) b [4] (no grad)",
            {{{2, 3}}, {{4, 3}, Domain::any, false}, {{4}, Domain::any, false}},
            [](V x) { return linear(x[0], x[1], x[2]); }},
       }},
      {"permute",
       {
           {"[2, 3, 4] by {2, 0, 1}", {{{2, 3, 4}}}, [](V x) { return permute(x[0], {2, 0, 1}); }},
           {"[3, 2] by {1, 0}", {{{3, 2}}}, [](V x) { return permute(x[0], {1, 0}); }},
           {"[2, 3, 4] by {-1, 0, 1}", {{{2, 3, 4}}}, [](V x) { return permute(x[0], {-1, 0, 1}); }},
           {"[2, 3, 4] transpose(0, 2)", {{{2, 3, 4}}}, [](V x) { return transpose(x[0], 0, 2); }},
       }},
      {"reshape",
       {
           {"[2, 3, 4] to {4, -1}", {{{2, 3, 4}}}, [](V x) { return reshape(x[0], {4, -1}); }},
           {"[6] to {2, 3}", {{{6}}}, [](V x) { return reshape(x[0], {2, 3}); }},
           {"[2, 3] to {6}", {{{2, 3}}}, [](V x) { return reshape(x[0], {6}); }},
           {"[1] to {} (0-d)", {{{1}}}, [](V x) { return reshape(x[0], {}); }},
       }},
      {"expand",
       {
           {"[3, 1] to [2, 3, 4]", {{{3, 1}}}, [](V x) { return expand(x[0], {2, 3, 4}); }},
           {"[] to [2, 3]", {{{}}}, [](V x) { return expand(x[0], {2, 3}); }},
           {"[1, 3] to [2, 3]", {{{1, 3}}}, [](V x) { return expand(x[0], {2, 3}); }},
       }},
      {"slice",
       {
           {"[4, 3] dim 0 [1, 3)", {{{4, 3}}}, [](V x) { return slice(x[0], 0, 1, 3); }},
           {"[2, 5] dim -1 [-4, -1)", {{{2, 5}}}, [](V x) { return slice(x[0], -1, -4, -1); }},
           {"[3, 4, 2] dim 1 [0, 2)", {{{3, 4, 2}}}, [](V x) { return slice(x[0], 1, 0, 2); }},
           {"[3, 4, 2] dim 2 [1, 2)", {{{3, 4, 2}}}, [](V x) { return slice(x[0], 2, 1, 2); }},
       }},
      {"index_select",
       {
           {"[4, 3] dim 0 {2, 0, 2}", {{{4, 3}}}, [](V x) { return index_select(x[0], 0, {2, 0, 2}); }},
           {"[2, 5] dim -1 {4, 1}", {{{2, 5}}}, [](V x) { return index_select(x[0], -1, {4, 1}); }},
           {"[2, 3, 2] dim 1 {1, 1, 1}", {{{2, 3, 2}}}, [](V x) { return index_select(x[0], 1, {1, 1, 1}); }},
       }},
      {"index_add",
       {
           {"[4, 3] dim 0 {2, 0, 2}, source [3, 3]", {{{4, 3}}, {{3, 3}}},
            [](V x) { return index_add(x[0], 0, {2, 0, 2}, x[1]); }},
           {"[2, 5] (no grad) dim -1 {4, 4}, source [2, 2]", {{{2, 5}, Domain::any, false}, {{2, 2}}},
            [](V x) { return index_add(x[0], -1, {4, 4}, x[1]); }},
           {"[2, 3, 2] dim 1 {0}, source [2, 1, 2] (no grad)", {{{2, 3, 2}}, {{2, 1, 2}, Domain::any, false}},
            [](V x) { return index_add(x[0], 1, {0}, x[1]); }},
       }},
      {"unfold",
       {
           {"[2, 2, 4, 5] kernel 2x3", {{{2, 2, 4, 5}}}, [](V x) { return unfold(x[0], {.kernel = {2, 3}}); }},
           {"[1, 1, 5, 5] kernel 3x3 stride 2 padding 1", {{{1, 1, 5, 5}}},
            [](V x) { return unfold(x[0], {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}); }},
           {"[1, 2, 5, 4] kernel 2x2 dilation 2x1", {{{1, 2, 5, 4}}},
            [](V x) { return unfold(x[0], {.kernel = {2, 2}, .dilation = {2, 1}}); }},
       }},
      {"max_pool2d",
       {
           {"[2, 2, 4, 6] kernel 2x2", {{{2, 2, 4, 6}}}, [](V x) { return max_pool2d(x[0], {.kernel = {2, 2}, .stride = {2, 2}}); }},
           {"[1, 1, 5, 5] kernel 3x3 stride 2 padding 1", {{{1, 1, 5, 5}}},
            [](V x) { return max_pool2d(x[0], {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}); }},
           {"[1, 2, 5, 4] kernel 2x2 dilation 2x1 (overlapping)", {{{1, 2, 5, 4}}},
            [](V x) { return max_pool2d(x[0], {.kernel = {2, 2}, .dilation = {2, 1}}); }},
       }},
      {"softmax_cross_entropy",
       {
           {"[3, 4] rows", {{{3, 4}}}, [](V x) { return softmax_cross_entropy(x[0], {2, 0, 3}); }},
           {"[5] one row", {{{5}}}, [](V x) { return softmax_cross_entropy(x[0], {1}); }},
           {"[2, 3] rows of a sum", {{{2, 3}}, {{3}}}, [](V x) { return softmax_cross_entropy(x[0] + x[1], {1, 1}); }},
       }},
      {"fold",
       {
           {"[2, 6, 9] into [2, 1, 4, 5] kernel 2x3", {{{2, 6, 9}}},
            [](V x) { return fold(x[0], {4, 5}, {.kernel = {2, 3}}); }},
           {"[1, 9, 9] into [1, 1, 5, 5] kernel 3x3 stride 2 padding 1", {{{1, 9, 9}}},
            [](V x) { return fold(x[0], {5, 5}, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}); }},
       }},
      {"concat",
       {
           {"[2, 1] [2, 3] [2, 2] along 1",
            {{{2, 1}}, {{2, 3}}, {{2, 2}}},
            [](V x) { return concat({x[0], x[1], x[2]}, 1); }},
           {"[1, 3] (no grad) [2, 3] along 0",
            {{{1, 3}, Domain::any, false}, {{2, 3}}},
            [](V x) { return concat({x[0], x[1]}, 0); }},
           {"[2, 2, 1] [2, 2, 2] along -1", {{{2, 2, 1}}, {{2, 2, 2}}}, [](V x) { return concat({x[0], x[1]}, -1); }},
           {"[3] alone along 0", {{{3}}}, [](V x) { return concat({x[0]}, 0); }},
           {"[0] (skipped, as LibTorch's cat) [2, 3] [0] along 1",
            {{{0}}, {{2, 3}}, {{0}}},
            [](V x) { return concat({x[0], x[1], x[2]}, 1); }},
       }},
      {"where",
       {
           {"[2, 3] [2, 3] by a [2, 3] condition",
            {{{2, 3}}, {{2, 3}}},
            [](V x) { return where(tensor({{1, 0, 1}, {0, 0, 1}}, DType::float64), x[0], x[1]); }},
           {"[3] [2, 1] by a [2, 3] condition (both broadcast)",
            {{{3}}, {{2, 1}}},
            [](V x) { return where(tensor({{1, 0, 1}, {0, 1, 1}}, DType::float64), x[0], x[1]); }},
           {"[2, 3] and a plain number by a [3] condition",
            {{{2, 3}}},
            [](V x) { return where(tensor({0, 1, 1}, DType::float64), x[0], Tensor(2.5)); }},
           {"[2, 3] (no grad) [2, 3] by a [2, 1] condition",
            {{{2, 3}, Domain::any, false}, {{2, 3}}},
            [](V x) { return where(tensor({{1}, {0}}, DType::float64), x[0], x[1]); }},
       }},
      // Through float32 the values carry ~1e-7 relative rounding, so the steps are larger and the
      // check looser: it establishes the gradient's dtype (the input's) and its values roughly.
      {"cast",
       {
           {"float64 [2, 3] to float32",
            {{{2, 3}}},
            [](V x) { return x[0].to(DType::float32); },
            1e-2,
            1e-4,
            1e-4},
           {"float32 [2, 3] to float64",
            {{{2, 3}, Domain::any, true, DType::float32}},
            [](V x) { return x[0].to(DType::float64); },
            1e-2,
            1e-4,
            1e-4},
       }},
  };
  return table;
}

// One case: analytic gradients from backward(seed) with a random seed of the output's shape,
// against central differences of <seed, f(x)>; the functional grad must agree with backward.
void check_tensor_case(std::string_view name, const TensorCase& c, uint64_t seed_index) {
  INFO("op " << name << ", case " << c.label);
  Numbers rng(seed_index);
  std::vector<std::vector<double>> values;
  for (const TensorInput& in : c.inputs) values.push_back(sample(in, rng));

  auto make_inputs = [&](bool leaves) {
    std::vector<Tensor> xs;
    for (std::size_t i = 0; i < c.inputs.size(); ++i) {
      const TensorInput& in = c.inputs[i];
      xs.push_back(from_vector(values[i], in.shape,
                               TensorOptions(in.dtype).requires_grad(leaves && in.requires_grad)));
    }
    return xs;
  };

  const std::vector<Tensor> xs = make_inputs(true);
  const Tensor y = c.f(xs);
  REQUIRE(y.requires_grad());
  CHECK(y.grad_fn_name() == name);  // the row exercises the op it is filed under
  const Tensor seed = from_vector(rng.uniform_vector(static_cast<std::size_t>(y.numel()), -1, 1), y.shape(),
                                  y.dtype());
  y.backward(seed);

  // The same gradients through the functional API, without touching .grad.
  std::vector<Tensor> wrt;
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (c.inputs[i].requires_grad) wrt.push_back(xs[i]);
  const std::vector<Tensor> functional = grad({c.f(xs)}, wrt, {seed});

  std::size_t w = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const TensorInput& in = c.inputs[i];
    if (!in.requires_grad) {
      CHECK_FALSE(xs[i].grad().defined());
      continue;
    }
    INFO("input " << i << " of shape " << in.shape.str());
    const Tensor g = xs[i].grad();
    REQUIRE(g.defined());
    CHECK(g.shape() == in.shape);
    CHECK(g.dtype() == in.dtype);
    const std::vector<double> analytic = g.to_vector();
    const std::vector<double> via_grad = functional[w++].to_vector();
    REQUIRE(via_grad.size() == analytic.size());
    for (std::size_t j = 0; j < analytic.size(); ++j) CHECK(via_grad[j] == Approx(analytic[j]).margin(1e-15));

    for (std::size_t j = 0; j < analytic.size(); ++j) {
      auto projected = [&](double v) {
        const double saved = values[i][j];
        values[i][j] = v;
        NoGradGuard no_grad;
        const double out = chainrule::testing::dot(seed, c.f(make_inputs(false)));
        values[i][j] = saved;
        return out;
      };
      const double numeric = chainrule::testing::central_difference(projected, values[i][j], c.eps);
      INFO("element " << j << ": analytic " << analytic[j] << ", numeric " << numeric);
      CHECK(close(analytic[j], numeric, c.atol, c.rtol));
    }
  }
}

}  // namespace

TEST_CASE("gradcheck: every op of autograd/ops.h has a row in the tables", "[autograd][gradcheck]") {
  for (std::string_view name : ops::elementwise_ops) {
    INFO("elementwise op " << name);
    CHECK(scalar_table().count(name) == 1);
    CHECK(tensor_table().count(name) == 1);
  }
  for (std::string_view name : ops::tensor_ops) {
    INFO("tensor op " << name);
    CHECK(tensor_table().count(name) == 1);
  }
  for (std::string_view name : ops::scalar_ops) {
    INFO("Scalar op " << name);
    CHECK(nary_table().count(name) == 1);
  }
  // And no stale rows for ops that left the list.
  std::set<std::string_view> listed(ops::elementwise_ops.begin(), ops::elementwise_ops.end());
  listed.insert(ops::tensor_ops.begin(), ops::tensor_ops.end());
  for (const auto& [name, row] : scalar_table()) CHECK(listed.count(name) == 1);
  for (const auto& [name, cases] : tensor_table()) CHECK(listed.count(name) == 1);
  for (const auto& [name, row] : nary_table())
    CHECK(std::find(ops::scalar_ops.begin(), ops::scalar_ops.end(), name) != ops::scalar_ops.end());
}

TEST_CASE("gradcheck: Scalar-only n-ary ops against central differences", "[autograd][gradcheck][scalar]") {
  for (std::string_view name : ops::scalar_ops) {
    INFO("op " << name);
    auto it = nary_table().find(name);
    if (it == nary_table().end()) {
      FAIL_CHECK("no row for Scalar op '" << name << "' in gradcheck_table_test.cpp");
      continue;
    }
    const NaryRow& row = it->second;
    REQUIRE_FALSE(row.points.empty());
    for (const std::vector<double>& point : row.points) {
      auto at = [&](std::size_t k, double x) {
        std::vector<Scalar> v(point.begin(), point.end());
        v[k] = x;
        return row.f(v).value();
      };
      // Every input a leaf, then every other input a plain number (only the leaves get gradients).
      for (int constants : {0, 1}) {
        INFO((constants ? "odd inputs are numbers" : "every input a leaf"));
        std::vector<Scalar> v;
        for (std::size_t k = 0; k < point.size(); ++k)
          v.push_back(constants && k % 2 == 1 ? Scalar(point[k]) : Scalar::leaf(point[k]));
        const Scalar y = row.f(v);
        CHECK(y.value() == at(0, point[0]));
        y.backward();
        for (std::size_t k = 0; k < point.size(); ++k) {
          INFO("d / d input " << k << " at " << point[k]);
          const double numeric =
              chainrule::testing::central_difference([&](double x) { return at(k, x); }, point[k]);
          CHECK(close(v[k].grad(), v[k].is_leaf() ? numeric : 0.0, kAtol, kRtol));
        }
      }
    }
  }
}

TEST_CASE("gradcheck: Scalar elementwise ops against central differences", "[autograd][gradcheck][scalar]") {
  for (std::string_view name : ops::elementwise_ops) {
    INFO("op " << name);
    auto it = scalar_table().find(name);
    if (it == scalar_table().end()) {
      FAIL_CHECK("no Scalar row for op '" << name << "' in gradcheck_table_test.cpp");
      continue;
    }
    const ScalarRow& row = it->second;
    REQUIRE_FALSE(row.points.empty());
    for (const auto& [a0, b0] : row.points) {
      INFO("at a = " << a0 << ", b = " << b0);
      const double num_a = scalar_numeric(row, a0, b0, 0);
      const double num_b = row.arity == 2 ? scalar_numeric(row, a0, b0, 1) : 0.0;

      // Both operands leaves.
      Scalar a = Scalar::leaf(a0), b = Scalar::leaf(b0);
      Scalar y = row.f(a, b);
      CHECK(y.value() == row.f(Scalar(a0), Scalar(b0)).value());
      y.backward();
      CHECK(close(a.grad(), num_a, kAtol, kRtol));
      if (row.arity == 2) CHECK(close(b.grad(), num_b, kAtol, kRtol));

      // The functional grad gives the same numbers and leaves .grad alone.
      Scalar a2 = Scalar::leaf(a0), b2 = Scalar::leaf(b0);
      const std::vector<Scalar> g = grad({row.f(a2, b2)}, {a2, b2}, {}, {.allow_unused = true});
      CHECK(g[0].value() == a.grad());
      CHECK(g[1].value() == b.grad());
      CHECK(a2.grad() == 0.0);
      CHECK(b2.grad() == 0.0);

      if (row.arity == 2) {
        // A plain number on either side: only the leaf gets a gradient.
        Scalar la = Scalar::leaf(a0);
        row.f(la, b0).backward();
        CHECK(close(la.grad(), num_a, kAtol, kRtol));
        Scalar lb = Scalar::leaf(b0);
        row.f(a0, lb).backward();
        CHECK(close(lb.grad(), num_b, kAtol, kRtol));
      }
    }
  }
}

TEST_CASE("gradcheck: Tensor ops against central differences", "[autograd][gradcheck][tensor]") {
  uint64_t seed_index = 1;
  auto run = [&](std::string_view name) {
    auto it = tensor_table().find(name);
    if (it == tensor_table().end()) {
      FAIL_CHECK("no Tensor row for op '" << name << "' in gradcheck_table_test.cpp");
      return;
    }
    REQUIRE_FALSE(it->second.empty());
    for (const TensorCase& c : it->second) check_tensor_case(name, c, seed_index++);
  };
  for (std::string_view name : ops::elementwise_ops) run(name);
  for (std::string_view name : ops::tensor_ops) run(name);
}
