// dot(a, b[, c]): a weighted sum recorded as one node. Its finite-difference row is in
// gradcheck_table_test.cpp (with every other op); here: that it equals the binary ops written out,
// bit for bit, in value and gradients; operands used more than once; constants and no-grad; its
// second derivatives through create_graph against central differences of the first; what graph
// views show of it; gradcheck's localisation re-checking it; and its mistakes.
#include <array>
#include <cmath>
#include <span>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/anomaly.h"
#include "autograd/gradcheck.h"
#include "autograd/scalar.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Matchers::Contains;
using chainrule::testing::close;
using chainrule::testing::message_of;

namespace {

// The lecture's hidden neuron H1 for observation 1: w . x + b with the slides' weights.
constexpr double kW[2] = {-0.2, -0.4};
constexpr double kX[2] = {-0.97, -0.80};
constexpr double kB = 0.1;

}  // namespace

TEST_CASE("dot: value and gradients equal the binary ops written out, bit for bit", "[autograd][scalar][dot]") {
  // As the lecture's neuron: constants x, leaves w and b, then a sigmoid above it.
  const std::vector<Scalar> w1 = {Scalar::leaf(kW[0]), Scalar::leaf(kW[1])};
  const Scalar b1 = Scalar::leaf(kB);
  const std::vector<Scalar> x = {kX[0], kX[1]};
  const Scalar h1 = sigmoid(dot(w1, x, b1));

  const std::vector<Scalar> w2 = {Scalar::leaf(kW[0]), Scalar::leaf(kW[1])};
  const Scalar b2 = Scalar::leaf(kB);
  const Scalar h2 = sigmoid(w2[0] * kX[0] + w2[1] * kX[1] + b2);

  CHECK(h1.value() == h2.value());
  h1.backward();
  h2.backward();
  for (int i = 0; i < 2; ++i) CHECK(w1[i].grad() == w2[i].grad());
  CHECK(b1.grad() == b2.grad());
  CHECK(std::abs(b1.grad() - 0.2278) < 1e-4);  // sigmoid'(0.614): the value the slides round to 0.23
}

TEST_CASE("dot: plain numbers as b, as a neuron's inputs", "[autograd][scalar][dot]") {
  const std::vector<Scalar> w1 = {Scalar::leaf(kW[0]), Scalar::leaf(kW[1])};
  const Scalar b1 = Scalar::leaf(kB);
  const std::array<double, 2> x = {kX[0], kX[1]};
  const Scalar h1 = sigmoid(dot(w1, x, b1));

  const std::vector<Scalar> w2 = {Scalar::leaf(kW[0]), Scalar::leaf(kW[1])};
  const Scalar b2 = Scalar::leaf(kB);
  const std::vector<Scalar> xs = {kX[0], kX[1]};
  const Scalar h2 = sigmoid(dot(w2, xs, b2));

  CHECK(h1.value() == h2.value());
  h1.backward();
  h2.backward();
  for (int i = 0; i < 2; ++i) CHECK(w1[i].grad() == w2[i].grad());
  CHECK(b1.grad() == b2.grad());
  CHECK(dot(w1, x).value() == kW[0] * kX[0] + kW[1] * kX[1]);

  const std::vector<Scalar> frozen = {Scalar::leaf(1.0, false)};
  const std::array<double, 1> one = {2.0};
  CHECK_FALSE(dot(frozen, one).requires_grad());
  const std::array<double, 3> three = {1.0, 2.0, 3.0};
  CHECK_THAT(message_of<std::invalid_argument>([&] { (void)dot(w1, three); }),
             Contains("dot: a has 2 elements and b has 3"));
}

TEST_CASE("dot: interior operands on both sides, and an operand used several times", "[autograd][scalar][dot]") {
  Scalar a = Scalar::leaf(1.5), b = Scalar::leaf(-0.5);
  // y = a * a + (a + b) * b + a * 2, written as one dot of interior and leaf operands, plus c = a.
  const Scalar s = a + b;
  const std::vector<Scalar> left = {a, s, a};
  const std::vector<Scalar> right = {a, b, 2.0};
  const Scalar y = dot(left, right, a);
  const double av = 1.5, bv = -0.5;
  CHECK(y.value() == av * av + (av + bv) * bv + av * 2.0 + av);
  y.backward();
  // dy/da = 2a + b + 2 + 1, dy/db = b + (a + b) = a + 2b
  CHECK(a.grad() == Approx(2 * av + bv + 3.0).epsilon(1e-15));
  CHECK(b.grad() == Approx(av + 2 * bv).epsilon(1e-15));
  CHECK(s.grad() == bv);  // an interior operand's gradient, as every op leaves it after backward()
}

TEST_CASE("dot: constants, frozen leaves and no-grad record nothing", "[autograd][scalar][dot]") {
  const std::vector<Scalar> c = {1.0, 2.0}, d = {3.0, 4.0};
  const Scalar y = dot(c, d, 0.5);
  CHECK(y.value() == 11.5);
  CHECK_FALSE(y.requires_grad());

  const Scalar frozen = Scalar::leaf(2.0, false);
  const std::vector<Scalar> f = {frozen, frozen};
  CHECK_FALSE(dot(f, d).requires_grad());

  const Scalar w = Scalar::leaf(2.0);
  const std::vector<Scalar> wv = {w, w};
  {
    NoGradGuard no_grad;
    const Scalar z = dot(wv, d);
    CHECK(z.value() == 14.0);
    CHECK_FALSE(z.requires_grad());
  }
  const Scalar z = dot(wv, d);
  CHECK(z.requires_grad());
  z.backward();
  CHECK(w.grad() == 7.0);
}

TEST_CASE("dot: empty operands and the term c alone", "[autograd][scalar][dot]") {
  const std::vector<Scalar> none;
  const Scalar zero = dot(none, none);
  CHECK(zero.value() == 0.0);
  CHECK_FALSE(zero.requires_grad());
  Scalar c = Scalar::leaf(-1.25);
  const Scalar y = dot(none, none, c) * 3.0;
  CHECK(y.value() == -3.75);
  y.backward();
  CHECK(c.grad() == 3.0);
}

TEST_CASE("dot: second derivatives through create_graph", "[autograd][scalar][dot][second_order]") {
  // f(v) = tanh(dot(a, b, c)) * a_0 with v = (a_0, a_1, b_0, b_1, c): every mixed partial is nonzero.
  const std::vector<double> v0 = {0.3, -0.8, 1.1, 0.4, -0.2};
  auto f = [](const std::vector<Scalar>& v) {
    const std::vector<Scalar> a = {v[0], v[1]}, b = {v[2], v[3]};
    return tanh(dot(a, b, v[4])) * v[0];
  };
  // First derivatives by the fast sweep, at any point.
  auto first = [&](const std::vector<double>& at) {
    std::vector<Scalar> v;
    for (double x : at) v.push_back(Scalar::leaf(x));
    f(v).backward();
    std::vector<double> g;
    for (const Scalar& x : v) g.push_back(x.grad());
    return g;
  };
  std::vector<Scalar> v;
  for (double x : v0) v.push_back(Scalar::leaf(x));
  const std::vector<Scalar> g = grad({f(v)}, v, {}, {.create_graph = true});
  const std::vector<double> g_fast = first(v0);
  for (std::size_t i = 0; i < v.size(); ++i) {
    INFO("d f / d v" << i);
    CHECK(g[i].value() == Approx(g_fast[i]).epsilon(1e-14));
    const std::vector<Scalar> h = grad({g[i]}, v, {}, {.retain_graph = true, .allow_unused = true});
    for (std::size_t j = 0; j < v.size(); ++j) {
      INFO("d2 f / d v" << i << " d v" << j);
      auto shifted = [&](double x) {
        std::vector<double> at = v0;
        at[j] = x;
        return first(at)[i];
      };
      const double numeric = chainrule::testing::central_difference(shifted, v0[j]);
      CHECK(close(h[j].value(), numeric, 1e-7, 1e-6));
    }
  }
}

TEST_CASE("dot: one node in graph views and traces, with its local derivatives", "[autograd][scalar][dot]") {
  const Scalar w0 = Scalar::leaf(kW[0]).set_label("w0"), w1 = Scalar::leaf(kW[1]).set_label("w1");
  const Scalar b = Scalar::leaf(kB).set_label("b");
  const std::vector<Scalar> w = {w0, w1}, x = {kX[0], kX[1]};
  const Scalar z = dot(w, x, b);
  const std::vector<ScalarNodeView> view = graph_view(z);
  const ScalarNodeView& top = view.back();
  CHECK(top.op == "dot");
  REQUIRE(top.inputs.size() == 5);
  // Inputs in order a_0 b_0 a_1 b_1 c; d z / d a_i = b_i, d z / d b_i = a_i, d z / d c = 1.
  CHECK(view[top.inputs[0]].label == "w0");
  CHECK(view[top.inputs[1]].is_constant);
  CHECK(view[top.inputs[4]].label == "b");
  REQUIRE(top.local.size() == 5);
  CHECK(top.local[0] == kX[0]);
  CHECK(top.local[1] == kW[0]);
  CHECK(top.local[2] == kX[1]);
  CHECK(top.local[3] == kW[1]);
  CHECK(top.local[4] == 1.0);
}

TEST_CASE("dot: mistakes", "[autograd][scalar][dot][errors]") {
  const std::vector<Scalar> three = {Scalar::leaf(1.0), 2.0, 3.0}, two = {1.0, 2.0};
  CHECK_THAT(message_of<std::invalid_argument>([&] { (void)dot(three, two); }),
             Contains("dot: a has 3 elements and b has 2; they must have the same length"));

  // A second backward through a freed dot node; retain_graph allows it.
  Scalar w = Scalar::leaf(2.0);
  const std::vector<Scalar> wv = {w}, xv = {3.0};
  const Scalar y = dot(wv, xv);
  y.backward({.retain_graph = true});
  y.backward();
  CHECK(w.grad() == 6.0);
  CHECK_THAT(message_of<std::logic_error>([&] { y.backward(); }), Contains("second time"));

  // Anomaly mode names the op whose forward was not finite.
  DetectAnomalyGuard anomaly;
  const std::vector<Scalar> big = {Scalar::leaf(1e308)}, ten = {10.0};
  CHECK_THAT(message_of<std::runtime_error>([&] { (void)dot(big, ten); }), Contains("'dot'"));
}

TEST_CASE("dot: gradcheck re-checks dot nodes when it localises a fault", "[autograd][scalar][dot][gradcheck]") {
  // The lecture's 2-3-1 network with dot per neuron, and a custom op with a wrong backward on the
  // output: the localisation must re-check the dot nodes below it (agree) and name the custom op.
  auto cube = [](std::span<const double> x) { return x[0] * x[0] * x[0]; };
  auto bad_d_cube = [](double grad, std::span<const double> x, double) {
    return std::vector<double>{grad * 2.0 * x[0] * x[0]};  // 3 x^2 is right
  };
  auto loss = [&](const std::vector<Scalar>& p) {
    const std::vector<Scalar> x = {kX[0], kX[1]};
    std::vector<Scalar> h;
    for (int j = 0; j < 3; ++j) h.push_back(sigmoid(dot(std::span(&p[2 * j], 2), x, p[6 + j])));
    const Scalar out = dot(h, std::span(&p[9], 3), p[12]);
    return custom_op("cube", {out}, cube, bad_d_cube);
  };
  const std::vector<Scalar> params = {-0.2, -0.4, 0.4, -0.7, -1.0, -0.8, 0.1, -0.2, 0.4, -0.6, -0.6, -0.3, -0.6};
  const GradcheckReport r = gradcheck(loss, params);
  INFO(r);
  CHECK_FALSE(r.passed);
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->op == "cube");
  CHECK(r.localisation.not_rechecked.empty());  // dot's forward is known to the localisation
  CHECK(r.localisation.ops_checked >= 8);        // 4 dots, 3 sigmoids, the cube
}
