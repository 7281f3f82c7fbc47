// Custom ops (custom_op in autograd/scalar.h and autograd/tensor.h): they record, compose and
// differentiate like built-in ops, check_custom_op verifies a backward in one call, and a wrong
// backward is named with its line.
#include <cmath>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "autograd/scalar.h"
#include "autograd/tensor.h"

using namespace chainrule;
using Catch::Matchers::Contains;

namespace {

using V = const std::vector<Tensor>&;

double cube(std::span<const double> x) { return x[0] * x[0] * x[0]; }
std::vector<double> d_cube(double grad, std::span<const double> x, double) { return {grad * 3 * x[0] * x[0]}; }
std::vector<double> wrong_d_cube(double grad, std::span<const double> x, double) { return {grad * 3 * x[0]}; }

// hypot(a, b) = sqrt(a^2 + b^2): two inputs, the backward reads the result.
double hypot2(std::span<const double> x) { return std::sqrt(x[0] * x[0] + x[1] * x[1]); }
std::vector<double> d_hypot2(double grad, std::span<const double> x, double result) {
  return {grad * x[0] / result, grad * x[1] / result};
}

// Tensor softplus, log(1 + e^x), with its derivative sigmoid(x) written with Tensor ops.
Tensor softplus_forward(V in) { return log(exp(in[0]) + 1.0); }
std::vector<Tensor> softplus_backward(const Tensor& grad, V in, const Tensor&) { return {grad * sigmoid(in[0])}; }
std::vector<Tensor> wrong_softplus_backward(const Tensor& grad, V in, const Tensor&) { return {grad * exp(in[0])}; }

Tensor softplus(const Tensor& x, Where where = Where::current()) {
  return custom_op("softplus", {x}, softplus_forward, softplus_backward, where);
}

}  // namespace

TEST_CASE("custom op: a Scalar custom op records, composes and differentiates like a built-in op", "[autograd][custom]") {
  Scalar x = Scalar::leaf(1.5), w = Scalar::leaf(-0.7);
  const Scalar y = custom_op("cube", {x}, cube, d_cube) * w + x;
  CHECK(y.value() == Approx(1.5 * 1.5 * 1.5 * -0.7 + 1.5));
  y.backward();
  CHECK(x.grad() == Approx(3 * 1.5 * 1.5 * -0.7 + 1));
  CHECK(w.grad() == Approx(1.5 * 1.5 * 1.5));

  // It shows in the graph like any op, with its local derivatives.
  Scalar a = Scalar::leaf(3.0), b = Scalar::leaf(4.0);
  const Scalar h = custom_op("hypot", {a, b}, hypot2, d_hypot2);
  CHECK(h.value() == 5.0);
  const std::vector<ScalarNodeView> view = graph_view(h);
  REQUIRE(view.size() == 3);
  CHECK(view[2].op == "hypot");
  CHECK(view[2].local == std::vector<double>{0.6, 0.8});
  CHECK(static_cast<bool>(view[2].forward));
  // The functional grad, and no recording under NoGradGuard.
  const std::vector<Scalar> g = grad({h}, {a, b});
  CHECK(g[0].value() == Approx(0.6));
  CHECK(g[1].value() == Approx(0.8));
  NoGradGuard no_grad;
  CHECK_FALSE(custom_op("hypot", {a, b}, hypot2, d_hypot2).requires_grad());
}

TEST_CASE("custom op: a Tensor custom op records, composes and differentiates like a built-in op", "[autograd][custom]") {
  const Tensor x = tensor({-1.0, 0.0, 2.0}, TensorOptions(DType::float64).requires_grad());
  const Tensor w = tensor({0.5}, TensorOptions(DType::float64).requires_grad());
  const Tensor y = softplus(x);
  CHECK(y.grad_fn_name() == "softplus");
  const Tensor loss = sum(y * w);
  loss.backward();
  const std::vector<double> gx = x.grad().to_vector();
  for (std::size_t i = 0; i < 3; ++i) {
    const double xi = x.to_vector()[i];
    CHECK(gx[i] == Approx(0.5 / (1 + std::exp(-xi))));
  }
  CHECK(w.grad().item() == Approx(std::log1p(std::exp(-1.0)) + std::log(2.0) + std::log1p(std::exp(2.0))));
}

TEST_CASE("custom op: check_custom_op verifies a backward in one call", "[autograd][custom]") {
  const GradcheckReport scalar = check_custom_op("cube", cube, d_cube, {1.5});
  INFO(scalar);
  CHECK(scalar.passed);
  const GradcheckReport two = check_custom_op("hypot", hypot2, d_hypot2, {3.0, -4.0});
  CHECK(two.passed);
  CHECK(two.checked == 2);

  Generator gen(4);
  const Tensor x = uniform({2, 3}, -2, 2, gen, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport tensor = check_custom_op("softplus", softplus_forward, softplus_backward, {x});
  INFO(tensor);
  CHECK(tensor.passed);
  CHECK(tensor.checked == 6 * 6);  // every input element against every output element
}

TEST_CASE("custom op: check_custom_op catches a wrong backward and names the op and the line", "[autograd][custom]") {
  const int line = __LINE__ + 1;
  const GradcheckReport scalar = check_custom_op("cube", cube, wrong_d_cube, {1.5});
  INFO(scalar);
  CHECK_FALSE(scalar.passed);
  REQUIRE(scalar.localisation.faulty);
  CHECK(scalar.localisation.faulty->op == "cube");
  CHECK(scalar.localisation.faulty->where.line() == static_cast<uint_least32_t>(line));
  CHECK_THAT(scalar.to_string(), Contains("'cube'") && Contains("custom_op_test.cpp:" + std::to_string(line)));

  Generator gen(5);
  const Tensor x = uniform({4}, -2, 2, gen, TensorOptions(DType::float64).requires_grad());
  const int tensor_line = __LINE__ + 1;
  const GradcheckReport tensor = check_custom_op("softplus", softplus_forward, wrong_softplus_backward, {x});
  INFO(tensor);
  CHECK_FALSE(tensor.passed);
  REQUIRE(tensor.localisation.faulty);
  CHECK(tensor.localisation.faulty->op == "softplus");
  CHECK(tensor.localisation.faulty->where.line() == static_cast<uint_least32_t>(tensor_line));
  CHECK_THAT(tensor.to_string(), Contains("custom_op_test.cpp:" + std::to_string(tensor_line)));
}

TEST_CASE("custom op: a wrong backward used inside a model is named where the model calls it", "[autograd][custom]") {
  auto wrong = [](const Tensor& x, Where where = Where::current()) {
    return custom_op("softplus", {x}, softplus_forward, wrong_softplus_backward, where);
  };
  int line = 0;
  auto model = [&](V p) {
    const Tensor h = tanh(p[0] * 2.0 - 0.5);
    const Tensor s = wrong(h); line = __LINE__;
    return sum(softplus(s * p[1]));
  };
  Generator gen(6);
  const TensorOptions opts = TensorOptions(DType::float64).requires_grad();
  const GradcheckReport r = gradcheck(model, {uniform({3}, -1, 1, gen, opts), uniform({3}, -1, 1, gen, opts)});
  INFO(r);
  CHECK_FALSE(r.passed);
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->where.line() == static_cast<uint_least32_t>(line));
}

TEST_CASE("custom op: a Tensor backward written with Tensor ops can be differentiated again", "[autograd][custom]") {
  Generator gen(7);
  const Tensor x = uniform({3}, -2, 2, gen, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport r = gradgradcheck([](V in) { return sum(softplus(in[0]) * in[0]); }, {x});
  INFO(r);
  CHECK(r.passed);

  // A Scalar custom op's backward runs on doubles: first order only, and the error says so.
  Scalar s = Scalar::leaf(1.0);
  const Scalar y = custom_op("cube", {s}, cube, d_cube);
  try {
    (void)grad({y}, {s}, {}, {.create_graph = true});
    FAIL("no error");
  } catch (const std::logic_error& e) {
    CHECK_THAT(std::string(e.what()), Contains("'cube'") && Contains("first-order"));
  }
}

TEST_CASE("custom op: a trace after backward, of a custom op whose backward records ops", "[autograd][custom]") {
  // The view runs the custom backward for its local derivative; the graph freed, the first op it
  // recorded reset the tape, destroying the running backward (heap-use-after-free under ASan).
  Scalar w = Scalar::leaf(0.5), x = Scalar::leaf(2.0);
  auto square = [](std::span<const double> v) { return v[0] * v[0]; };
  auto d_square = [w](double g, std::span<const double> v, double) {
    const Scalar s = w * 1.5;  // a backward may record ops
    return std::vector<double>{g * 2 * v[0] + 0.0 * s.value()};
  };
  const Scalar y = custom_op("square", {x * 1.0}, square, d_square);
  y.backward();
  CHECK(x.grad() == 4.0);
  const std::vector<ScalarNodeView> view = graph_view(y);
  REQUIRE_FALSE(view.empty());
  CHECK(view.back().op == "square");
  REQUIRE(view.back().local.size() == 1);
  CHECK(view.back().local[0] == 4.0);
}

TEST_CASE("custom op: caller mistakes throw, naming the op", "[autograd][custom]") {
  Scalar x = Scalar::leaf(1.0);
  CHECK_THROWS_AS(custom_op("empty", {x}, nullptr, d_cube), std::invalid_argument);
  auto two_grads = [](double grad, std::span<const double>, double) { return std::vector<double>{grad, grad}; };
  const Scalar y = custom_op("one_input", {x}, cube, two_grads);
  CHECK_THROWS_WITH(y.backward(), Contains("one_input") && Contains("2 gradients for 1 inputs"));

  const Tensor t = tensor({1.0, 2.0}, TensorOptions(DType::float64).requires_grad());
  const Tensor z = sum(custom_op(
      "none", {t}, softplus_forward, [](const Tensor&, V, const Tensor&) { return std::vector<Tensor>{}; }));
  CHECK_THROWS_WITH(z.backward(), Contains("none") && Contains("0 gradients for 1 inputs"));
  // A gradient no broadcasting could have made from the input: named as the backward's return
  // value (it surfaced as a bare broadcast error).
  const Tensor w3 = sum(custom_op("three", {t}, softplus_forward, [](const Tensor&, V, const Tensor&) {
    return std::vector<Tensor>{ones({3}, DType::float64)};
  }));
  CHECK_THROWS_WITH(w3.backward(), Contains("custom op 'three': backward returned shape [3] for input 0 of shape [2]"));
}

// A Scalar custom op's backward is user code that runs in the middle of a sweep. It may record
// Scalar ops (enough to move the tape's array and to add custom ops: it used to read the moved
// array, heap-use-after-free under ASan, in the sweep and in graph_view), but it may not start a second sweep on the same tape
// (the inner sweep used to overwrite the outer one's state: dz/da came out 18 instead of 27).
TEST_CASE("custom op: a Scalar custom op's backward may record, but not sweep, on the tape", "[autograd][custom]") {
  Scalar a = Scalar::leaf(2.0), w = Scalar::leaf(0.5);
  auto square = [](std::span<const double> x) { return x[0] * x[0]; };
  SECTION("recording ops and custom ops inside the backward") {
    std::vector<Scalar> kept;
    auto d_square = [&](double g, std::span<const double> x, double) {
      Scalar s = w;
      for (int i = 0; i < 5000; ++i) s = s * 1.0001;  // the tape grows (and moves) under the sweep
      kept.push_back(custom_op("cube", {s}, cube, d_cube));
      return std::vector<double>{g * 2 * x[0]};
    };
    const Scalar z = custom_op("square", {a * 1.5}, square, d_square) * a;  // 2.25 a^3
    const std::vector<ScalarNodeView> view = graph_view(z);  // runs d_square for the local derivative
    REQUIRE(view.size() == 5);                                // a, 1.5, mul, square, mul
    CHECK(view[3].op == "square");
    CHECK(view[3].local == std::vector<double>{6.0});
    CHECK(view[4].inputs == std::vector<std::size_t>{3, 0});
    z.backward();
    CHECK(a.grad() == Approx(6.75 * 4.0).epsilon(1e-15));
    kept.back().backward();  // what the backward recorded is a graph like any other
    CHECK(w.grad() == Approx(3 * std::pow(0.5 * std::pow(1.0001, 5000), 2) * std::pow(1.0001, 5000)).epsilon(1e-12));
  }
  SECTION("backward() or grad() inside the backward") {
    const Scalar other = w * w;
    bool functional = false;
    auto d_square = [&](double g, std::span<const double> x, double) {
      if (functional) grad({other}, {w});
      else other.backward();
      return std::vector<double>{g * 2 * x[0]};
    };
    const Scalar z = custom_op("square", {a * 1.5}, square, d_square) * a;
    CHECK_THROWS_WITH(z.backward({.retain_graph = true}),
                      Contains("backward: called while a backward is running") && Contains("custom op"));
    functional = true;
    CHECK_THROWS_WITH(z.backward(), Contains("grad: called while a backward is running"));
    CHECK(a.grad() == 0.0);  // the failed sweeps wrote nothing
    CHECK(w.grad() == 0.0);
    other.backward();  // the tape is usable afterwards
    CHECK(w.grad() == 1.0);
  }
}
