// The traps micrograd's users hit, and micrograd's own two test expressions.
//
// micrograd's test/test_engine.py checks two expressions (test_sanity_check, test_more_ops) against
// PyTorch. Here the reference is computed inside the test by forward-mode dual numbers: the same
// float64 operations as PyTorch's forward and the derivative rules of calculus, so the values and
// gradients must agree to ~1e-12. micrograd's published numbers are checked as well.
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/scalar.h"
#include "autograd/tensor.h"

using namespace chainrule;

namespace {

// A forward-mode dual number: v + d ε with ε² = 0. d carries the derivative w.r.t. one input.
struct Dual {
  double v = 0, d = 0;
  Dual(double value = 0, double derivative = 0) : v(value), d(derivative) {}  // NOLINT: numbers mix in
};
Dual operator+(Dual a, Dual b) { return {a.v + b.v, a.d + b.d}; }
Dual operator-(Dual a, Dual b) { return {a.v - b.v, a.d - b.d}; }
Dual operator-(Dual a) { return {-a.v, -a.d}; }
Dual& operator+=(Dual& a, Dual b) { return a = a + b; }
Dual operator*(Dual a, Dual b) { return {a.v * b.v, a.d * b.v + a.v * b.d}; }
Dual operator/(Dual a, Dual b) { return {a.v / b.v, (a.d * b.v - a.v * b.d) / (b.v * b.v)}; }
Dual pow(Dual a, double p) { return {std::pow(a.v, p), p * std::pow(a.v, p - 1) * a.d}; }
Dual relu(Dual a) { return a.v > 0 ? a : Dual(0, 0); }
Dual tanh(Dual a) {
  const double t = std::tanh(a.v);
  return {t, (1 - t * t) * a.d};
}

// micrograd's test_sanity_check, generic over Scalar, Dual and Tensor.
template <class T>
T sanity_check(const T& x) {
  T z = 2 * x + 2 + x;
  T q = relu(z) + z * x;
  T h = relu(z * z);
  return h + q + q * x;
}

// micrograd's test_more_ops. `c += c + 1` rebinds c to a new node, as in micrograd and PyTorch.
template <class T>
T more_ops(const T& a, const T& b) {
  T c = a + b;
  T d = a * b + pow(b, 3.0);
  c += c + 1;
  c += 1 + c + (-a);
  d += d * 2 + relu(b + a);
  d += 3 * d + relu(b - a);
  T e = c - d;
  T f = pow(e, 2.0);
  T g = f / 2.0;
  g += 10.0 / f;
  return g;
}

// Tensors have no compound += that records a new node (theirs is in place), so spell it out.
Tensor more_ops_tensor(const Tensor& a, const Tensor& b) {
  Tensor c = a + b;
  Tensor d = a * b + pow(b, 3.0);
  c = c + (c + 1);
  c = c + (1 + c + (-a));
  d = d + (d * 2 + relu(b + a));
  d = d + (3 * d + relu(b - a));
  Tensor e = c - d;
  Tensor f = pow(e, 2.0);
  Tensor g = f / 2.0;
  g = g + 10.0 / f;
  return g;
}

bool agree(double x, double reference) { return std::abs(x - reference) <= 1e-12 * std::max(1.0, std::abs(reference)); }

}  // namespace

TEST_CASE("micrograd traps: b = a + a, c = b + b gives dc/da = 4", "[autograd][micrograd]") {
  SECTION("Scalar") {
    Scalar a = Scalar::leaf(3.0);
    Scalar b = a + a;
    Scalar c = b + b;
    c.backward();
    CHECK(c.value() == 12.0);
    CHECK(a.grad() == 4.0);
    CHECK(b.grad() == 2.0);
  }
  SECTION("Scalar, a used as both operands of one op") {
    Scalar a = Scalar::leaf(-3.0);
    Scalar y = a * a;
    y.backward();
    CHECK(a.grad() == -6.0);
  }
  SECTION("Tensor") {
    Tensor a = tensor({3.0, -1.0}, TensorOptions(DType::float64).requires_grad());
    Tensor b = a + a;
    Tensor c = b + b;
    c.backward(ones({2}, DType::float64));
    CHECK(a.grad().to_vector() == std::vector<double>{4.0, 4.0});
  }
}

TEST_CASE("micrograd traps: a value used by several consumers sums their contributions", "[autograd][micrograd]") {
  SECTION("Scalar: a leaf in three terms") {
    Scalar a = Scalar::leaf(0.5), b = Scalar::leaf(-2.0);
    Scalar y = a * b + exp(a) + a / b;  // dy/da = b + e^a + 1/b
    y.backward();
    CHECK(a.grad() == Approx(-2.0 + std::exp(0.5) - 0.5).epsilon(1e-15));
    CHECK(b.grad() == Approx(0.5 - 0.5 / 4.0).epsilon(1e-15));
  }
  SECTION("Scalar: an interior node with two consumers") {
    Scalar a = Scalar::leaf(1.5);
    Scalar d = a * 2.0;        // d = 2a
    Scalar e = d * d + d;      // e = 4a^2 + 2a
    e.backward();
    CHECK(a.grad() == Approx(8 * 1.5 + 2).epsilon(1e-15));
    CHECK(d.grad() == Approx(2 * 3.0 + 1).epsilon(1e-15));
  }
  SECTION("Tensor: one tensor broadcast into two consumers") {
    Tensor w = tensor({1.0, 2.0, 3.0}, TensorOptions(DType::float64).requires_grad());
    Tensor x = tensor({{1.0, 1.0, 1.0}, {2.0, 2.0, 2.0}}, DType::float64);
    Tensor y = sum(x * w) + sum(w * w);  // dy/dw = sum over rows of x + 2w = 3 + 2w
    y.backward();
    CHECK(w.grad().to_vector() == std::vector<double>{5.0, 7.0, 9.0});
  }
  SECTION("diamonds: 2^60 paths, each node visited once") {
    // Every layer uses the previous node twice; walking paths instead of nodes would never end.
    Scalar x = Scalar::leaf(0.75);
    Scalar y = x;
    for (int i = 0; i < 60; ++i) y = y * 0.5 + y * 0.5;
    y.backward();
    CHECK(y.value() == 0.75);
    CHECK(x.grad() == 1.0);

    Tensor t = tensor({0.75}, TensorOptions(DType::float64).requires_grad());
    Tensor u = t;
    for (int i = 0; i < 60; ++i) u = u * 0.5 + u * 0.5;
    u.backward();
    CHECK(t.grad().item() == 1.0);
  }
}

TEST_CASE("micrograd traps: test_sanity_check gives PyTorch's value and gradient", "[autograd][micrograd]") {
  const Dual ref = sanity_check(Dual(-4.0, 1.0));

  Scalar x = Scalar::leaf(-4.0);
  Scalar y = sanity_check(x);
  y.backward();
  CHECK(agree(y.value(), ref.v));
  CHECK(agree(x.grad(), ref.d));
  // micrograd's published numbers (PyTorch's): y = -20, dy/dx = 46.
  CHECK(y.value() == Approx(-20.0).margin(1e-4));
  CHECK(x.grad() == Approx(46.0).margin(1e-4));

  Tensor xt = tensor({-4.0}, TensorOptions(DType::float64).requires_grad());
  Tensor yt = sanity_check(xt);
  yt.backward();
  CHECK(agree(yt.item(), ref.v));
  CHECK(agree(xt.grad().item(), ref.d));
}

TEST_CASE("micrograd traps: test_more_ops gives PyTorch's value and gradients", "[autograd][micrograd]") {
  const Dual ref_a = more_ops(Dual(-4.0, 1.0), Dual(2.0, 0.0));  // d/da
  const Dual ref_b = more_ops(Dual(-4.0, 0.0), Dual(2.0, 1.0));  // d/db
  REQUIRE(ref_a.v == ref_b.v);

  Scalar a = Scalar::leaf(-4.0), b = Scalar::leaf(2.0);
  Scalar g = more_ops(a, b);
  g.backward();
  CHECK(agree(g.value(), ref_a.v));
  CHECK(agree(a.grad(), ref_a.d));
  CHECK(agree(b.grad(), ref_b.d));
  // micrograd's published numbers (PyTorch's): g = 24.7041, dg/da = 138.8338, dg/db = 645.5773.
  CHECK(g.value() == Approx(24.7041).margin(1e-4));
  CHECK(a.grad() == Approx(138.8338).margin(1e-4));
  CHECK(b.grad() == Approx(645.5773).margin(1e-4));

  Tensor at = tensor({-4.0}, TensorOptions(DType::float64).requires_grad());
  Tensor bt = tensor({2.0}, TensorOptions(DType::float64).requires_grad());
  Tensor gt = more_ops_tensor(at, bt);
  gt.backward();
  CHECK(agree(gt.item(), ref_a.v));
  CHECK(agree(at.grad().item(), ref_a.d));
  CHECK(agree(bt.grad().item(), ref_b.d));
}

TEST_CASE("micrograd traps: compound assignment records, it does not mutate a shared node", "[autograd][micrograd]") {
  // micrograd's `c += c + 1` makes a new node; the old c (still named by `old`) is unchanged.
  Scalar a = Scalar::leaf(2.0);
  Scalar c = a * 3.0;
  Scalar old = c;
  c += c + 1;  // c = 2 * 3a + 1
  CHECK(old.value() == 6.0);
  CHECK(c.value() == 13.0);
  c.backward();
  CHECK(a.grad() == 6.0);
}

TEST_CASE("micrograd traps: tanh and exp agree with the dual-number reference", "[autograd][micrograd]") {
  // micrograd's later test_unary_tensor_fns compares Value.tanh and Value.exp with PyTorch's.
  for (double x0 : {-1.0, 0.123, 2.0}) {
    INFO("x = " << x0);
    const Dual ref = tanh(Dual(x0, 1.0));
    Scalar x = Scalar::leaf(x0);
    Scalar y = tanh(x);
    y.backward();
    CHECK(agree(y.value(), ref.v));
    CHECK(agree(x.grad(), ref.d));

    Scalar z = Scalar::leaf(x0);
    Scalar e = exp(z);
    e.backward();
    CHECK(agree(e.value(), std::exp(x0)));
    CHECK(agree(z.grad(), std::exp(x0)));
  }
}
