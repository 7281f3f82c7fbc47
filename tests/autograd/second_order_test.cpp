// Second derivatives through create_graph: every elementwise op (Scalar and Tensor), a Hessian-vector
// product through every tensor op, and Hessian-vector products of small networks, each checked
// against central differences of the first derivative (computed by the fast, unrecorded sweep).
//
// A derivative that does not depend on the input at all (neg's -1, relu's and abs's masks away from
// the kink) is recorded as a constant: its own derivative is 0, and the tests read it that way.
#include <cmath>
#include <functional>
#include <thread>
#include <map>
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

constexpr double kAtol = 1e-7;
constexpr double kRtol = 1e-6;

// ---------------------------------------------------------------------------------------------
// Scalar
// ---------------------------------------------------------------------------------------------

struct ScalarRow {
  int arity;
  std::function<Scalar(const Scalar&, const Scalar&)> f;
  std::vector<std::pair<double, double>> points;
};

const std::map<std::string_view, ScalarRow>& scalar_rows() {
  static const std::map<std::string_view, ScalarRow> rows = {
      {"neg", {1, [](const Scalar& a, const Scalar&) { return -a; }, {{0.7, 0}, {-1.3, 0}}}},
      {"exp", {1, [](const Scalar& a, const Scalar&) { return exp(a); }, {{-1.2, 0}, {0.3, 0}, {2.0, 0}}}},
      {"log", {1, [](const Scalar& a, const Scalar&) { return log(a); }, {{0.2, 0}, {1.0, 0}, {3.5, 0}}}},
      {"expm1", {1, [](const Scalar& a, const Scalar&) { return expm1(a); }, {{-1.2, 0}, {1e-9, 0}, {2.0, 0}}}},
      {"log1p", {1, [](const Scalar& a, const Scalar&) { return log1p(a); }, {{-0.7, 0}, {1e-9, 0}, {3.5, 0}}}},
      {"sqrt", {1, [](const Scalar& a, const Scalar&) { return sqrt(a); }, {{0.3, 0}, {1.7, 0}}}},
      {"sigmoid", {1, [](const Scalar& a, const Scalar&) { return sigmoid(a); }, {{-3, 0}, {0.0, 0}, {0.4, 0}, {2.5, 0}}}},
      {"tanh", {1, [](const Scalar& a, const Scalar&) { return tanh(a); }, {{-2, 0}, {-0.3, 0}, {0.5, 0}}}},
      {"relu", {1, [](const Scalar& a, const Scalar&) { return relu(a); }, {{-1.1, 0}, {0.4, 0}}}},
      {"abs", {1, [](const Scalar& a, const Scalar&) { return abs(a); }, {{-1.1, 0}, {0.4, 0}}}},
      {"erf", {1, [](const Scalar& a, const Scalar&) { return erf(a); }, {{-1.4, 0}, {0.0, 0}, {0.6, 0}}}},
      {"add", {2, [](const Scalar& a, const Scalar& b) { return a + b; }, {{1.3, -0.7}}}},
      {"sub", {2, [](const Scalar& a, const Scalar& b) { return a - b; }, {{1.3, -0.7}}}},
      {"mul", {2, [](const Scalar& a, const Scalar& b) { return a * b; }, {{1.3, -0.7}, {-2.1, 0.4}}}},
      {"div", {2, [](const Scalar& a, const Scalar& b) { return a / b; }, {{1.3, -0.7}, {-2.1, 0.4}}}},
      {"pow", {2, [](const Scalar& a, const Scalar& b) { return pow(a, b); }, {{1.5, 2.0}, {0.7, -1.3}, {2.2, 0.5}}}},
  };
  return rows;
}

// First derivatives at (a, b) by the fast sweep.
std::pair<double, double> scalar_gradient(const ScalarRow& row, double a0, double b0) {
  Scalar a = Scalar::leaf(a0), b = Scalar::leaf(b0);
  const std::vector<Scalar> g = grad({row.f(a, b)}, {a, b}, {}, {.allow_unused = true});
  return {g[0].value(), g[1].value()};
}

// d(g)/d(inputs) for a recorded gradient g; 0 when g does not depend on anything.
std::vector<double> differentiate(const Scalar& g, const std::vector<Scalar>& inputs) {
  if (!g.requires_grad()) return std::vector<double>(inputs.size(), 0.0);
  std::vector<double> out;
  for (const Scalar& d : grad({g}, inputs, {}, {.allow_unused = true})) out.push_back(d.value());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tensor: Hessian-vector products of a scalar function of several tensors
// ---------------------------------------------------------------------------------------------

enum class Domain { any, away_from_zero, positive };

struct HvpCase {
  std::string label;
  std::vector<std::pair<Shape, Domain>> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> f;  // returns a one-element tensor
  double eps = kEps;
  double atol = kAtol;
  double rtol = kRtol;
};

std::vector<double> sample(const Shape& s, Domain d, Numbers& rng) {
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (double& x : v)
    x = d == Domain::positive ? rng.uniform(0.3, 2.0)
        : d == Domain::away_from_zero ? rng.away_from_zero(-2, 2, 0.3)
                                      : rng.uniform(-1.5, 1.5);
  return v;
}

// H v by create_graph (grad of <grad f, v>) against (grad f(x + eps v) - grad f(x - eps v)) / 2eps.
void check_hvp(const HvpCase& c, uint64_t seed) {
  INFO("case " << c.label);
  Numbers rng(seed);
  std::vector<std::vector<double>> x, v;
  for (const auto& [shape, domain] : c.inputs) {
    x.push_back(sample(shape, domain, rng));
    v.push_back(rng.uniform_vector(static_cast<std::size_t>(shape.numel()), -1, 1));
  }
  const TensorOptions leaf = TensorOptions(DType::float64).requires_grad();
  auto leaves_at = [&](double t) {
    std::vector<Tensor> xs;
    for (std::size_t i = 0; i < x.size(); ++i) {
      std::vector<double> p = x[i];
      for (std::size_t j = 0; j < p.size(); ++j) p[j] += t * v[i][j];
      xs.push_back(from_vector(p, c.inputs[i].first, leaf));
    }
    return xs;
  };
  auto gradient_at = [&](double t) {
    const std::vector<Tensor> xs = leaves_at(t);
    std::vector<std::vector<double>> out;
    for (const Tensor& g : grad({c.f(xs)}, xs, {}, {.allow_unused = true})) out.push_back(g.to_vector());
    return out;
  };

  const std::vector<Tensor> xs = leaves_at(0);
  const std::vector<Tensor> g = grad({c.f(xs)}, xs, {}, {.create_graph = true, .allow_unused = true});
  Tensor gv;
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (!g[i].requires_grad()) continue;  // a constant gradient: no contribution to H v
    const Tensor term = sum(g[i] * from_vector(v[i], c.inputs[i].first, DType::float64));
    gv = gv.defined() ? gv + term : term;
  }
  std::vector<std::vector<double>> hv;
  if (gv.defined()) {
    for (const Tensor& h : grad({gv}, xs, {}, {.allow_unused = true})) hv.push_back(h.to_vector());
  } else {
    for (const auto& xi : x) hv.emplace_back(xi.size(), 0.0);
  }

  const auto plus = gradient_at(c.eps), minus = gradient_at(-c.eps);
  for (std::size_t i = 0; i < x.size(); ++i) {
    for (std::size_t j = 0; j < x[i].size(); ++j) {
      const double numeric = (plus[i][j] - minus[i][j]) / (2 * c.eps);
      INFO("input " << i << " element " << j << ": H v = " << hv[i][j] << ", numeric " << numeric);
      CHECK(close(hv[i][j], numeric, c.atol, c.rtol));
    }
  }
}

// A smooth, nonlinear read-out so that second derivatives flow through the op under test.
Tensor cubic(const Tensor& t) { return sum(pow(t, 3.0)) + sum(t * t); }

}  // namespace

TEST_CASE("second order: Scalar unary ops, d2/dx2 through create_graph", "[autograd][second_order][scalar]") {
  for (std::string_view name : ops::elementwise_ops) {
    INFO("op " << name);
    auto it = scalar_rows().find(name);
    if (it == scalar_rows().end()) {
      FAIL_CHECK("no second-order row for op '" << name << "' in second_order_test.cpp");
      continue;
    }
    const ScalarRow& row = it->second;
    if (row.arity != 1) continue;
    for (const auto& [x0, unused] : row.points) {
      INFO("at x = " << x0);
      const double numeric = chainrule::testing::central_difference(
          [&](double x) { return scalar_gradient(row, x, 0).first; }, x0);

      // Through the functional grad, twice.
      Scalar x = Scalar::leaf(x0);
      const Scalar g = grad({row.f(x, 0.0)}, {x}, {}, {.create_graph = true})[0];
      CHECK(g.value() == Approx(scalar_gradient(row, x0, 0).first).epsilon(1e-15));
      const double second = differentiate(g, {x})[0];
      CHECK(close(second, numeric, kAtol, kRtol));

      // Through backward(create_graph) and the leaf's recorded gradient.
      Scalar z = Scalar::leaf(x0);
      row.f(z, 0.0).backward({.create_graph = true});
      const Scalar recorded = z.grad_scalar();
      CHECK(recorded.value() == Approx(g.value()).epsilon(1e-15));
      z.zero_grad();
      double again = 0;
      if (recorded.requires_grad()) {
        recorded.backward();
        again = z.grad();
      }
      CHECK(close(again, numeric, kAtol, kRtol));
    }
  }
}

TEST_CASE("second order: Scalar binary ops, the full Hessian", "[autograd][second_order][scalar]") {
  for (std::string_view name : ops::elementwise_ops) {
    auto it = scalar_rows().find(name);
    if (it == scalar_rows().end() || it->second.arity != 2) continue;
    INFO("op " << name);
    const ScalarRow& row = it->second;
    for (const auto& [a0, b0] : row.points) {
      INFO("at a = " << a0 << ", b = " << b0);
      Scalar a = Scalar::leaf(a0), b = Scalar::leaf(b0);
      const std::vector<Scalar> g = grad({row.f(a, b)}, {a, b}, {}, {.create_graph = true});
      for (int k = 0; k < 2; ++k) {
        const std::vector<double> h = differentiate(g[k], {a, b});
        auto component = [&](double av, double bv) {
          const auto [ga, gb] = scalar_gradient(row, av, bv);
          return k == 0 ? ga : gb;
        };
        const double d_da = (component(a0 + kEps, b0) - component(a0 - kEps, b0)) / (2 * kEps);
        const double d_db = (component(a0, b0 + kEps) - component(a0, b0 - kEps)) / (2 * kEps);
        INFO("row " << k);
        CHECK(close(h[0], d_da, kAtol, kRtol));
        CHECK(close(h[1], d_db, kAtol, kRtol));
      }
    }
  }
}

TEST_CASE("second order: third derivatives by nesting create_graph", "[autograd][second_order][scalar]") {
  // exp: every derivative is e^x. log: 1/x, -1/x^2, 2/x^3.
  Scalar x = Scalar::leaf(0.7);
  const Scalar y = exp(x);
  const Scalar d1 = grad({y}, {x}, {}, {.create_graph = true})[0];
  const Scalar d2 = grad({d1}, {x}, {}, {.create_graph = true})[0];
  const Scalar d3 = grad({d2}, {x})[0];
  CHECK(d1.value() == Approx(std::exp(0.7)).epsilon(1e-15));
  CHECK(d2.value() == Approx(std::exp(0.7)).epsilon(1e-15));
  CHECK(d3.value() == Approx(std::exp(0.7)).epsilon(1e-15));

  Scalar u = Scalar::leaf(1.3);
  const Scalar l1 = grad({log(u)}, {u}, {}, {.create_graph = true})[0];
  const Scalar l2 = grad({l1}, {u}, {}, {.create_graph = true})[0];
  const Scalar l3 = grad({l2}, {u})[0];
  CHECK(l1.value() == Approx(1 / 1.3).epsilon(1e-14));
  CHECK(l2.value() == Approx(-1 / (1.3 * 1.3)).epsilon(1e-14));
  CHECK(l3.value() == Approx(2 / (1.3 * 1.3 * 1.3)).epsilon(1e-14));

  Tensor t = tensor({0.7, -0.4}, TensorOptions(DType::float64).requires_grad());
  const Tensor t1 = grad({sum(exp(t))}, {t}, {}, {.create_graph = true})[0];
  const Tensor t2 = grad({sum(t1)}, {t}, {}, {.create_graph = true})[0];
  const Tensor t3 = grad({sum(t2)}, {t})[0];
  CHECK(t3.at({0}) == Approx(std::exp(0.7)).epsilon(1e-15));
  CHECK(t3.at({1}) == Approx(std::exp(-0.4)).epsilon(1e-15));
}

TEST_CASE("second order: Tensor elementwise ops through create_graph", "[autograd][second_order][tensor]") {
  using V = const std::vector<Tensor>&;
  using BinaryOp = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::map<std::string_view, std::pair<std::function<Tensor(const Tensor&)>, Domain>> unary = {
      {"neg", {[](const Tensor& x) { return -x; }, Domain::any}},
      {"exp", {[](const Tensor& x) { return exp(x); }, Domain::any}},
      {"log", {[](const Tensor& x) { return log(x); }, Domain::positive}},
      {"expm1", {[](const Tensor& x) { return expm1(x); }, Domain::any}},
      {"log1p", {[](const Tensor& x) { return log1p(x); }, Domain::positive}},
      {"sqrt", {[](const Tensor& x) { return sqrt(x); }, Domain::positive}},
      {"sigmoid", {[](const Tensor& x) { return sigmoid(x); }, Domain::any}},
      {"tanh", {[](const Tensor& x) { return tanh(x); }, Domain::any}},
      {"relu", {[](const Tensor& x) { return relu(x); }, Domain::away_from_zero}},
      {"abs", {[](const Tensor& x) { return abs(x); }, Domain::away_from_zero}},
      {"erf", {[](const Tensor& x) { return erf(x); }, Domain::any}},
  };
  const std::map<std::string_view, std::tuple<BinaryOp, Domain, Domain>> binary = {
      {"add", {[](const Tensor& a, const Tensor& b) { return a + b; }, Domain::any, Domain::any}},
      {"sub", {[](const Tensor& a, const Tensor& b) { return a - b; }, Domain::any, Domain::any}},
      {"mul", {[](const Tensor& a, const Tensor& b) { return a * b; }, Domain::any, Domain::any}},
      {"div", {[](const Tensor& a, const Tensor& b) { return a / b; }, Domain::any, Domain::away_from_zero}},
      {"pow", {[](const Tensor& a, const Tensor& b) { return pow(a, b); }, Domain::positive, Domain::any}},
  };

  uint64_t seed = 100;
  for (std::string_view name : ops::elementwise_ops) {
    INFO("op " << name);
    if (auto it = unary.find(name); it != unary.end()) {
      const auto& [f, domain] = it->second;
      // Elementwise: the Hessian of sum(f(x)) is diagonal, d2 = f''(x) per element.
      Numbers rng(seed++);
      const std::vector<double> x0 = sample({5}, domain, rng);
      auto first = [&](double shift) {
        std::vector<double> p = x0;
        for (double& e : p) e += shift;
        Tensor x = from_vector(p, {5}, TensorOptions(DType::float64).requires_grad());
        return grad({sum(f(x))}, {x})[0].to_vector();
      };
      Tensor x = from_vector(x0, {5}, TensorOptions(DType::float64).requires_grad());
      const Tensor g = grad({sum(f(x))}, {x}, {}, {.create_graph = true})[0];
      const std::vector<double> d2 =
          g.requires_grad() ? grad({sum(g)}, {x}, {}, {.allow_unused = true})[0].to_vector()
                            : std::vector<double>(5, 0.0);
      const std::vector<double> up = first(kEps), down = first(-kEps);
      for (int j = 0; j < 5; ++j) {
        const double numeric = (up[j] - down[j]) / (2 * kEps);
        INFO("element " << j << " at x = " << x0[j]);
        CHECK(close(d2[j], numeric, kAtol, kRtol));
      }
      // And the general H v check on a nonlinear read-out.
      check_hvp({"cubic(f(x))", {{{2, 3}, domain}}, [f](V xs) { return cubic(f(xs[0])); }}, seed++);
    } else if (auto bt = binary.find(name); bt != binary.end()) {
      const auto& [op, da, db] = bt->second;
      // With broadcasting, so that the un-broadcast (sum_to) is recorded too.
      check_hvp({"cubic(a op b), [2, 3] op [3]", {{{2, 3}, da}, {{3}, db}},
                 [op](V xs) { return cubic(op(xs[0], xs[1])); }},
                seed++);
      check_hvp({"cubic(a op b), [2, 1] op [1, 3]", {{{2, 1}, da}, {{1, 3}, db}},
                 [op](V xs) { return cubic(op(xs[0], xs[1])); }},
                seed++);
    } else {
      FAIL_CHECK("no second-order row for op '" << name << "' in second_order_test.cpp");
    }
  }
}

TEST_CASE("second order: Hessian-vector products through every tensor op", "[autograd][second_order][tensor]") {
  using V = const std::vector<Tensor>&;
  const std::map<std::string_view, std::vector<HvpCase>> rows = {
      {"sum",
       {{"cubic(sum over dim 1)", {{{2, 3, 2}, Domain::any}}, [](V x) { return cubic(sum(x[0], {1})); }},
        {"cubic(sum keepdim) * x", {{{2, 3}, Domain::any}}, [](V x) { return sum(sum(x[0], {0}, true) * x[0]); }}}},
      {"max",
       {{"cubic(max over dim 0)", {{{3, 4}, Domain::any}}, [](V x) { return cubic(max(x[0], {0})); }},
        {"max(x * x) all", {{{5}, Domain::any}}, [](V x) { return cubic(max(x[0] * x[0])); }}}},
      {"matmul",
       {{"cubic(a @ b)", {{{2, 3}, Domain::any}, {{3, 2}, Domain::any}}, [](V x) { return cubic(matmul(x[0], x[1])); }},
        {"cubic(batched a @ b)",
         {{{2, 2, 3}, Domain::any}, {{3, 2}, Domain::any}},
         [](V x) { return cubic(matmul(x[0], x[1])); }},
        {"cubic(a @ a^T)", {{{2, 3}, Domain::any}}, [](V x) { return cubic(matmul(x[0], transpose(x[0], 0, 1))); }}}},
      {"linear",
       {{"cubic(x @ w^T + b)",
         {{{2, 3}, Domain::any}, {{4, 3}, Domain::any}, {{4}, Domain::any}},
         [](V x) { return cubic(linear(x[0], x[1], x[2])); }},
        {"cubic(batched x @ w^T)",
         {{{2, 2, 3}, Domain::any}, {{2, 3}, Domain::any}},
         [](V x) { return cubic(linear(x[0], x[1])); }},
        {"cubic(x @ x^T)", {{{2, 3}, Domain::any}}, [](V x) { return cubic(linear(x[0], x[0])); }}}},
      {"permute",
       {{"cubic(permute) * arange", {{{2, 3, 2}, Domain::any}},
         [](V x) { return cubic(permute(x[0], {2, 0, 1}) * arange(0, 3, 1, DType::float64)); }}}},
      {"reshape",
       {{"cubic(reshape) * arange", {{{2, 3}, Domain::any}},
         [](V x) { return cubic(reshape(x[0], {3, 2}) * arange(1, 3, 1, DType::float64)); }}}},
      {"expand",
       {{"cubic(expand) * arange", {{{3, 1}, Domain::any}},
         [](V x) { return cubic(expand(x[0], {2, 3, 4}) * arange(0, 4, 1, DType::float64)); }}}},
      {"slice",
       {{"cubic(slice)", {{{4, 3}, Domain::any}}, [](V x) { return cubic(slice(x[0], 0, 1, 3)); }},
        {"slice * slice", {{{5}, Domain::any}}, [](V x) { return sum(slice(x[0], 0, 0, 3) * slice(x[0], 0, 2, 5)); }}}},
      {"index_select",
       {{"cubic(index_select)", {{{4, 3}, Domain::any}}, [](V x) { return cubic(index_select(x[0], 0, {3, 1, 3})); }}}},
      {"index_add",
       {{"cubic(index_add(x, src * src))", {{{3, 2}, Domain::any}, {{2, 2}, Domain::any}},
         [](V x) { return cubic(index_add(x[0], 0, {1, 1}, x[1] * x[1])); }}}},
      {"unfold",
       {{"cubic(unfold), padded and strided", {{{1, 2, 3, 3}, Domain::any}},
         [](V x) { return cubic(unfold(x[0], {.kernel = {2, 2}, .stride = {2, 1}, .padding = {1, 1}})); }}}},
      {"fold",
       {{"cubic(fold), overlapping windows", {{{1, 4, 4}, Domain::any}},
         [](V x) { return cubic(fold(x[0], {3, 3}, {.kernel = {2, 2}})); }}}},
      {"max_pool2d",
       {{"cubic(max_pool2d), overlapping padded windows", {{{1, 2, 4, 4}, Domain::any}},
         [](V x) { return cubic(max_pool2d(x[0], {.kernel = {3, 3}, .stride = {1, 2}, .padding = {1, 1}})); }}}},
      {"softmax_cross_entropy",
       {{"cubic(softmax_cross_entropy) of rows", {{{3, 4}, Domain::any}},
         [](V x) { return cubic(softmax_cross_entropy(x[0], {3, 0, 1})); }},
        {"softmax_cross_entropy(x * x) of one row", {{{4}, Domain::any}},
         [](V x) { return softmax_cross_entropy(x[0] * x[0], {2}); }}}},
      {"concat",
       {{"cubic(concat)", {{{2, 1}, Domain::any}, {{2, 2}, Domain::any}},
         [](V x) { return cubic(concat({x[0], x[1] * x[1]}, 1)); }}}},
      {"where",
       {{"cubic(where(c, x, y)), y broadcast", {{{2, 3}, Domain::any}, {{3}, Domain::any}},
         [](V x) { return cubic(where(tensor({{1, 0, 1}, {0, 1, 0}}, DType::float64), x[0], x[1])); }},
        {"where(c, x * x, x) * x", {{{4}, Domain::any}},
         [](V x) { return sum(where(tensor({1, 0, 0, 1}, DType::float64), x[0] * x[0], x[0]) * x[0]); }}}},
      // Through float32 the gradient carries ~1e-7 rounding: larger steps, looser bounds.
      {"cast",
       {{"cubic(cast to float32 and back)", {{{2, 3}, Domain::any}},
         [](V x) { return cubic(x[0].to(DType::float32).to(DType::float64)); }, 1e-3, 1e-3, 1e-3}}},
  };
  uint64_t seed = 200;
  for (std::string_view name : ops::tensor_ops) {
    INFO("op " << name);
    auto it = rows.find(name);
    if (it == rows.end()) {
      FAIL_CHECK("no second-order row for tensor op '" << name << "' in second_order_test.cpp");
      continue;
    }
    for (const HvpCase& c : it->second) check_hvp(c, seed++);
  }
}

TEST_CASE("second order: Hessian-vector product of a tanh MLP (Tensors, float64)", "[autograd][second_order][tensor]") {
  Generator gen(3);
  const Tensor x = uniform({4, 2}, -1, 1, gen, DType::float64);
  const Tensor y = uniform({4, 1}, -1, 1, gen, DType::float64);
  // Parameters: w1 [3, 2], b1 [3], w2 [1, 3], b2 [1].
  const HvpCase mlp{
      "mse(tanh(x w1^T + b1) w2^T + b2, y)",
      {{{3, 2}, Domain::any}, {{3}, Domain::any}, {{1, 3}, Domain::any}, {{1}, Domain::any}},
      [x, y](const std::vector<Tensor>& p) {
        const Tensor h = tanh(matmul(x, transpose(p[0], 0, 1)) + p[1]);
        const Tensor out = matmul(h, transpose(p[2], 0, 1)) + p[3];
        return mean(pow(out - y, 2.0));
      }};
  check_hvp(mlp, 42);
  check_hvp(mlp, 43);
  // The same network as nn::Dense writes it.
  const HvpCase dense{"mse(tanh(linear(x, w1, b1)) w2^T + b2, y)", mlp.inputs, [x, y](const std::vector<Tensor>& p) {
                        const Tensor out = linear(tanh(linear(x, p[0], p[1])), p[2], p[3]);
                        return mean(pow(out - y, 2.0));
                      }};
  check_hvp(dense, 42);
}

TEST_CASE("second order: Hessian-vector product of the lecture's network (Scalars)", "[autograd][second_order][scalar]") {
  const std::vector<double> w0 = {-0.2, 0.4, -1.0, -0.4, -0.7, -0.8, 0.1, -0.2, 0.4, -0.6, -0.6, -0.3, -0.6};
  Numbers rng(5);
  const std::vector<double> v = rng.uniform_vector(w0.size(), -1, 1);
  const double obs[2][3] = {{-0.97, -0.80, 0.0}, {-0.79, -0.52, 1.0}};
  auto cost = [&](const std::vector<Scalar>& w) {
    Scalar total = 0.0;
    for (const auto& o : obs) {
      Scalar out = w[12];
      for (int j = 0; j < 3; ++j) out = out + sigmoid(o[0] * w[j] + o[1] * w[3 + j] + w[6 + j]) * w[9 + j];
      total = total + 0.5 * pow(sigmoid(out) - o[2], 2.0);
    }
    return total;
  };
  auto leaves_at = [&](double t) {
    std::vector<Scalar> w;
    for (std::size_t i = 0; i < w0.size(); ++i) w.push_back(Scalar::leaf(w0[i] + t * v[i]));
    return w;
  };
  auto gradient_at = [&](double t) {
    const std::vector<Scalar> w = leaves_at(t);
    std::vector<double> out;
    for (const Scalar& g : grad({cost(w)}, w)) out.push_back(g.value());
    return out;
  };

  const std::vector<Scalar> w = leaves_at(0);
  const std::vector<Scalar> g = grad({cost(w)}, w, {}, {.create_graph = true});
  Scalar gv = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i) gv = gv + g[i] * v[i];
  const std::vector<Scalar> hv = grad({gv}, w, {}, {.allow_unused = true});
  const std::vector<double> up = gradient_at(kEps), down = gradient_at(-kEps);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double numeric = (up[i] - down[i]) / (2 * kEps);
    INFO("weight " << i << ": H v = " << hv[i].value() << ", numeric " << numeric);
    CHECK(close(hv[i].value(), numeric, kAtol, kRtol));
  }
}

TEST_CASE("second order: recorded gradients left on leaves are released safely", "[autograd][second_order][scalar]") {
  // backward(create_graph) leaves each leaf a recorded gradient that names records on the tape.
  // Dropping such a leaf without zero_grad() and then reusing the tape, or ending the thread, must
  // release everything exactly once (the sanitizer build checks the memory itself).
  SECTION("the tape is reused while another leaf is still held") {
    Scalar c = Scalar::leaf(3.0);
    {
      Scalar x = Scalar::leaf(2.0);
      const Scalar y = x * x * c;
      y.backward({.create_graph = true});
      const Scalar g = x.grad_scalar();  // 2 x c, recorded
      g.backward();                      // d/dx (2 x c) = 2 c, and g's graph is freed
      CHECK(x.grad() == 12.0 + 6.0);
      c.zero_grad();
    }  // x is dropped with its recorded gradient still attached
    const Scalar b = c * 2.0;  // the tape is reused: c must survive
    b.backward();
    CHECK(c.value() == 3.0);
    CHECK(c.grad() == 2.0);
  }
  SECTION("a thread ends while its leaves hold recorded gradients") {
    double grad_a = 0, grad_b = 0;
    std::thread worker([&] {
      Scalar a = Scalar::leaf(2.0), b = Scalar::leaf(3.0);
      (a * b * a).backward({.create_graph = true});
      grad_a = a.grad();
      grad_b = b.grad();
    });  // the thread's tape is destroyed with both recorded gradients alive
    worker.join();
    CHECK(grad_a == 12.0);
    CHECK(grad_b == 4.0);
  }
}

TEST_CASE("second order: the recorded gradient is the whole gradient, whichever sweeps made it",
          "[autograd][second_order][scalar]") {
  // .grad sums every backward; the recorded gradient (grad_scalar) used to hold only the
  // create_graph ones, silently dropping the rest from second derivatives.
  SECTION("a plain backward, then a recorded one") {
    Scalar w = Scalar::leaf(3.0);
    (w * 5.0).backward();
    (w * w).backward({.create_graph = true});
    CHECK(w.grad() == 11.0);
    const Scalar g = w.grad_scalar();
    CHECK(g.value() == 11.0);
    g.backward();  // d/dw (5 + 2w) = 2, added to the 11
    CHECK(w.grad() == 13.0);
  }
  SECTION("a recorded backward, then a plain one and the leaf's own") {
    Scalar u = Scalar::leaf(3.0);
    (u * u).backward({.create_graph = true});
    (u * 5.0).backward();
    u.backward();
    CHECK(u.grad() == 12.0);
    CHECK(u.grad_scalar().value() == 12.0);
  }
}

// Tensors the same: a plain backward after a create_graph one replaced the recorded .grad with an
// unrecorded sum (right number, no history: differentiating it threw).
TEST_CASE("second order: a plain backward adds to a recorded Tensor .grad and keeps its history",
          "[autograd][second_order][tensor]") {
  Tensor w = tensor({2.0}, TensorOptions(DType::float64).requires_grad(true));
  sum(w * w * w).backward({.create_graph = true});  // 3 w^2 = 12, recorded
  sum(w * w).backward();                            // + 2 w = 4, plain
  CHECK(w.grad().item() == 16.0);
  REQUIRE(w.grad().requires_grad());
  const std::vector<Tensor> d = grad({sum(w.grad())}, {w});  // d/dw 3 w^2 = 6 w; the plain part is a constant
  CHECK(d[0].item() == 12.0);
}

TEST_CASE("second order: a recorded backward that throws leaves every gradient as it was",
          "[autograd][second_order][scalar]") {
  // Under anomaly mode, summing v's recorded gradient overflows (1e308 + 1e308) and throws; w's
  // gradient, committed in the same loop before, used to change all the same.
  Scalar w = Scalar::leaf(3.0), u = Scalar::leaf(1e308), v = Scalar::leaf(1e-308);
  auto f = [&] { return w * 1.0 + u * v; };
  f().backward({.create_graph = true});
  CHECK(w.grad() == 1.0);
  CHECK(v.grad() == 1e308);
  {
    DetectAnomalyGuard anomaly;
    CHECK_THROWS_AS(f().backward({.create_graph = true}), AnomalyError);
  }
  CHECK(w.grad() == 1.0);
  CHECK(v.grad() == 1e308);
  CHECK(w.grad_scalar().value() == 1.0);
  CHECK(v.grad_scalar().value() == 1e308);
}

TEST_CASE("second order: a leaf whose value changed between two uses (two Leaf records)", "[autograd][second_order][scalar]") {
  // y = x^2 recorded at x = 2, then x = 3 and w = y + x^3: the recorded gradient is
  // 2 x_then + 3 x_now^2 (31), and both terms are functions of x: its derivative is 2 + 6 x_now (20).
  // A sweep that kept only one of the leaf's records in the recorded gradient still read 31
  // (grad_scalar tops the value up with a constant) but 2 as the second derivative.
  Scalar x = Scalar::leaf(2.0);
  const Scalar y = x * x;
  x.set_value(3.0);
  const Scalar w = y + x * x * x;
  w.backward({.create_graph = true});
  CHECK(x.grad() == Approx(31.0));
  const Scalar g = x.grad_scalar();
  CHECK(g.value() == Approx(31.0));
  CHECK(grad({g}, {x}, {}, {.retain_graph = true})[0].value() == Approx(20.0));
  // The functional form sums the records too.
  const Scalar g2 = grad({w}, {x}, {}, {.create_graph = true})[0];
  CHECK(g2.value() == Approx(31.0));
  CHECK(grad({g2}, {x})[0].value() == Approx(20.0));
}
