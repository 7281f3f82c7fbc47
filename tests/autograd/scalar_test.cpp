// Scalar: the three kinds of handle, arithmetic with numbers on either side, a small exact case per
// op derived by hand, the conventions at kinks, and the engine's contract (accumulation, zero_grad,
// retain_graph, no-grad, detach, functional grad, set_value).
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/scalar.h"

using namespace chainrule;

TEST_CASE("Scalar: constants, leaves and interior nodes", "[autograd][scalar]") {
  const Scalar c = 2.5;
  CHECK(c.value() == 2.5);
  CHECK_FALSE(c.requires_grad());
  CHECK_FALSE(c.is_leaf());
  CHECK(c.grad() == 0.0);

  Scalar w = Scalar::leaf(0.4);
  CHECK(w.is_leaf());
  CHECK(w.requires_grad());
  CHECK(w.grad() == 0.0);

  const Scalar y = w * c;
  CHECK_FALSE(y.is_leaf());
  CHECK(y.requires_grad());
  CHECK(y.value() == Approx(1.0).epsilon(1e-15));

  // Constants with constants stay constants: nothing is recorded.
  const Scalar k = c * 2.0 + 1.0;
  CHECK_FALSE(k.requires_grad());
  CHECK(k.value() == 6.0);

  // Handles are shallow: a copy names the same leaf.
  Scalar alias = w;
  alias.set_value(0.9);
  CHECK(w.value() == 0.9);
  CHECK(sizeof(Scalar) == 32);  // the header's "cheap value-type handle (32 bytes)"
}

// A moved-from handle is a constant with the value it had (it names no record any more), whether it
// was moved by construction or by assignment; the moved-to handle carries the node.
TEST_CASE("Scalar: a moved-from handle is a constant", "[autograd][scalar]") {
  Scalar x = Scalar::leaf(2.0);
  Scalar y = x * 3.0;
  const Scalar moved_to = std::move(y);
  Scalar v = x + 1.0;
  Scalar assigned_to;
  assigned_to = std::move(v);
  for (const Scalar* from : {&y, &v}) {
    CHECK_FALSE(from->requires_grad());  // NOLINT(bugprone-use-after-move): the state is specified
    CHECK_FALSE(from->is_leaf());
  }
  CHECK(y.value() == 6.0);  // NOLINT(bugprone-use-after-move)
  CHECK(v.value() == 3.0);  // NOLINT(bugprone-use-after-move)
  // Used as operands they are constants: only the moved-to handles carry gradient to x.
  const Scalar f = y * x + v * x + moved_to * assigned_to;  // NOLINT(bugprone-use-after-move)
  f.backward();
  // d/dx [6x + 3x + 3x (x + 1)] at x = 2: 6 + 3 + 3 (2x + 1) = 24
  CHECK(x.grad() == 24.0);
}

TEST_CASE("Scalar: a moved-from leaf handle is the constant of the leaf's current value", "[autograd][scalar]") {
  // Before, it kept the value the leaf was made with, ignoring set_value.
  Scalar w = Scalar::leaf(1.0);
  w.set_value(4.0);
  Scalar copy = w;
  const Scalar moved_to = std::move(w);
  Scalar assigned_to;
  assigned_to = std::move(copy);
  CHECK(moved_to.value() == 4.0);
  CHECK(w.value() == 4.0);     // NOLINT(bugprone-use-after-move): the state is specified
  CHECK(copy.value() == 4.0);  // NOLINT(bugprone-use-after-move)
  CHECK_FALSE(w.is_leaf());    // NOLINT(bugprone-use-after-move)
  CHECK_FALSE(copy.requires_grad());  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("Scalar: numbers on either side of every operator", "[autograd][scalar]") {
  Scalar x = Scalar::leaf(2.0);
  const Scalar y = 3.0 * x + 1.0 - x / 4.0 + 6.0 / x - (1.0 - x) + (-x);
  // y = 3x + 1 - x/4 + 6/x - 1 + x - x = 2.75 x + 6/x
  CHECK(y.value() == Approx(2.75 * 2 + 3).epsilon(1e-15));
  y.backward();
  CHECK(x.grad() == Approx(2.75 - 6.0 / 4.0).epsilon(1e-15));

  // A number on the left takes its own path (no Scalar is made for it); so do its slow branches:
  // with locations tracked, under no-grad, and with a frozen right operand.
  x.zero_grad();
  {
    TrackLocationsGuard track;
    const Scalar z = 6.0 / x;
    const std::vector<ScalarNodeView> view = graph_view(z);
    REQUIRE(view.size() == 3);
    CHECK(view[1].op == "constant");
    CHECK(view[2].op == "div");
    CHECK(view[2].inputs == std::vector<std::size_t>{1, 0});
    CHECK(view[2].where.line() == __LINE__ - 6);
    z.backward();
    CHECK(x.grad() == Approx(-6.0 / 4.0).epsilon(1e-15));
  }
  {
    NoGradGuard no_grad;
    const Scalar z = 2.0 - x;
    CHECK(z.value() == 0.0);
    CHECK_FALSE(z.requires_grad());
  }
  const Scalar frozen = Scalar::leaf(5.0, /*requires_grad=*/false);
  CHECK_FALSE((2.0 * frozen).requires_grad());
  CHECK((2.0 * frozen).value() == 10.0);
}

TEST_CASE("Scalar: compound assignment records a new node", "[autograd][scalar]") {
  Scalar x = Scalar::leaf(3.0);
  Scalar y = x;
  y += 2.0;   // x + 2
  y *= x;     // (x + 2) x
  y -= x;     // (x + 2) x - x
  y /= 2.0;   // ((x + 2) x - x) / 2 = (x^2 + x) / 2
  CHECK(y.value() == 6.0);
  CHECK(x.value() == 3.0);  // the leaf itself never changed
  y.backward();
  CHECK(x.grad() == Approx((2 * 3.0 + 1) / 2).epsilon(1e-15));
}

TEST_CASE("Scalar: one exact case per op, derived by hand", "[autograd][scalar]") {
  auto derivative = [](Scalar (*f)(const Scalar&), double x0) {
    Scalar x = Scalar::leaf(x0);
    f(x).backward();
    return x.grad();
  };
  CHECK(derivative([](const Scalar& x) { return -x; }, 1.5) == -1.0);
  CHECK(derivative([](const Scalar& x) { return exp(x); }, 0.0) == 1.0);
  CHECK(derivative([](const Scalar& x) { return log(x); }, 2.0) == 0.5);
  CHECK(derivative([](const Scalar& x) { return sqrt(x); }, 4.0) == 0.25);
  CHECK(derivative([](const Scalar& x) { return sigmoid(x); }, 0.0) == 0.25);
  CHECK(derivative([](const Scalar& x) { return tanh(x); }, 0.0) == 1.0);
  CHECK(derivative([](const Scalar& x) { return relu(x); }, 2.0) == 1.0);
  CHECK(derivative([](const Scalar& x) { return relu(x); }, -2.0) == 0.0);
  CHECK(derivative([](const Scalar& x) { return abs(x); }, -2.0) == -1.0);
  CHECK(derivative([](const Scalar& x) { return abs(x); }, 2.0) == 1.0);
  CHECK(derivative([](const Scalar& x) { return pow(x, 3.0); }, 2.0) == 12.0);
  CHECK(derivative([](const Scalar& x) { return pow(2.0, x); }, 3.0) == Approx(8 * std::log(2.0)).epsilon(1e-15));
  CHECK(derivative([](const Scalar& x) { return 1.0 / x; }, 2.0) == -0.25);

  Scalar a = Scalar::leaf(3.0), b = Scalar::leaf(-2.0);
  (a * b).backward();
  CHECK(a.grad() == -2.0);
  CHECK(b.grad() == 3.0);
}

TEST_CASE("Scalar: conventions at kinks and edges", "[autograd][scalar]") {
  SECTION("relu'(0) = 0 and abs'(0) = 0, as PyTorch") {
    Scalar x = Scalar::leaf(0.0);
    relu(x).backward();
    CHECK(x.grad() == 0.0);
    x.zero_grad();
    abs(x).backward();
    CHECK(x.grad() == 0.0);
  }
  SECTION("d/db a^b at a = 0 is 0, not NaN") {
    Scalar a = Scalar::leaf(0.0), b = Scalar::leaf(2.0);
    Scalar y = pow(a, b);
    y.backward();
    CHECK(y.value() == 0.0);
    CHECK(b.grad() == 0.0);
    CHECK(a.grad() == 0.0);  // 2 * 0^1
  }
  SECTION("sigmoid never overflows") {
    Scalar lo = Scalar::leaf(-1000.0), hi = Scalar::leaf(1000.0);
    Scalar s_lo = sigmoid(lo), s_hi = sigmoid(hi);
    CHECK(s_lo.value() == 0.0);
    CHECK(s_hi.value() == 1.0);
    (s_lo + s_hi).backward();
    CHECK(lo.grad() == 0.0);
    CHECK(hi.grad() == 0.0);
    CHECK_FALSE(std::isnan(lo.grad()));
  }
}

// ops::Sigmoid::f picks its numerator with sign bits instead of a jump; it must give, bit for bit,
// the two-branch formula it replaced, in both dtypes and at the edges (-0, infinities, NaN,
// subnormal results).
template <class R>
R two_branch_sigmoid(R x) {
  if (x >= 0) return R(1) / (R(1) + std::exp(-x));
  const R e = std::exp(x);
  return e / (R(1) + e);
}

TEMPLATE_TEST_CASE("ops::Sigmoid: the branch-free select equals the two-branch formula", "[autograd][ops]", float,
                   double) {
  using R = TestType;
  const R inf = std::numeric_limits<R>::infinity();
  std::vector<R> xs = {R(0), R(-0.0), inf, -inf, R(-745), R(-103), R(-88), R(88), R(710), R(1e-30), R(-1e-30)};
  for (int k = -4000; k <= 4000; ++k) xs.push_back(R(k) / R(37));
  for (R x : xs) {
    INFO("x = " << x);
    const R got = ops::Sigmoid::f(x), want = two_branch_sigmoid(x);
    CHECK(std::memcmp(&got, &want, sizeof(R)) == 0);
  }
  CHECK(std::isnan(ops::Sigmoid::f(std::numeric_limits<R>::quiet_NaN())));
  CHECK(std::isnan(ops::Sigmoid::f(-std::numeric_limits<R>::quiet_NaN())));
}

TEST_CASE("Scalar: comparisons look at values and record nothing", "[autograd][scalar]") {
  Scalar a = Scalar::leaf(1.0), b = Scalar::leaf(2.0);
  CHECK(a < b);
  CHECK(b > a);
  CHECK(a <= 1.0);
  CHECK(b >= 2.0);
  const Scalar m = std::max(a, b);  // a copy of b's handle
  m.backward();
  CHECK(b.grad() == 1.0);
  CHECK(a.grad() == 0.0);
}

TEST_CASE("Scalar: gradients accumulate until zero_grad", "[autograd][scalar]") {
  Scalar w = Scalar::leaf(1.5);
  (w * 2.0).backward();
  (w * 3.0).backward();
  CHECK(w.grad() == 5.0);
  w.zero_grad();
  CHECK(w.grad() == 0.0);
  (w * w).backward();
  CHECK(w.grad() == 3.0);
}

TEST_CASE("Scalar: backward with a seed, and on a leaf", "[autograd][scalar]") {
  Scalar x = Scalar::leaf(2.0);
  (x * x).backward(0.5);
  CHECK(x.grad() == 2.0);
  x.zero_grad();
  x.backward();  // dx/dx = 1
  CHECK(x.grad() == 1.0);
}

TEST_CASE("Scalar: retain_graph allows a second sweep, interior gradients are readable", "[autograd][scalar]") {
  Scalar x = Scalar::leaf(2.0);
  const Scalar h = x * x;
  const Scalar y = h * 3.0;
  y.backward({.retain_graph = true});
  CHECK(x.grad() == 12.0);
  CHECK(h.grad() == 3.0);
  CHECK(y.grad() == 1.0);
  y.backward();
  CHECK(x.grad() == 24.0);  // accumulated
  CHECK(h.grad() == 3.0);   // interior gradients are those of the last sweep
}

TEST_CASE("Scalar: grad() and a backward that throws leave interior gradients alone", "[autograd][scalar]") {
  Scalar w = Scalar::leaf(2.0);
  const Scalar h = w * 2.0;
  const Scalar y = h * 3.0;
  y.backward({.retain_graph = true});
  REQUIRE(h.grad() == 3.0);
  SECTION("grad() returns gradients and changes no .grad") {
    CHECK(grad({h * 7.0}, {w}, {}, {.retain_graph = true})[0].value() == 14.0);
    CHECK(h.grad() == 3.0);
    CHECK(y.grad() == 1.0);
    CHECK(w.grad() == 6.0);
  }
  SECTION("a backward whose custom op throws") {
    auto forward = [](std::span<const double> x) { return x[0]; };
    auto bad = [](double, std::span<const double>, double) -> std::vector<double> {
      throw std::runtime_error("custom backward failed");
    };
    const Scalar c = custom_op("fails", {w}, forward, bad);
    const Scalar z = h * 5.0 + c;  // recorded above c: the sweep reaches h before c throws
    CHECK_THROWS_WITH(z.backward({.retain_graph = true}), Catch::Contains("custom backward failed"));
    CHECK(h.grad() == 3.0);  // reached (5) before the custom op threw: put back
    CHECK(w.grad() == 6.0);
  }
}

TEST_CASE("Scalar: an interior gradient is that of the last backward that reached it", "[autograd][scalar]") {
  // Two graphs alive on one tape; the second is recorded after the first, so its sweep starts
  // above the first graph's records. Sweeping it must neither zero nor touch the first graph.
  Scalar x = Scalar::leaf(2.0), z = Scalar::leaf(-1.0);
  const Scalar h = x * x;
  const Scalar y1 = h * 3.0;
  const Scalar u = z * z;
  const Scalar y2 = u * 5.0 + z;
  y1.backward();
  CHECK(h.grad() == 3.0);
  CHECK(x.grad() == 12.0);
  y2.backward();
  CHECK(u.grad() == 5.0);
  CHECK(z.grad() == -9.0);   // 2 * 5 * z + 1
  CHECK(h.grad() == 3.0);    // not reached by the second sweep: still the first one's
  CHECK(x.grad() == 12.0);
}

TEST_CASE("Scalar: a leaf whose graph was freed enters the next graph anew", "[autograd][scalar]") {
  // `keep` holds the tape (no reset), so the second graph is recorded beside the freed first one;
  // w's Leaf record, shared by `keep` and the first graph, is freed by the first backward.
  Scalar w = Scalar::leaf(2.0);
  const Scalar keep = w * 3.0;
  (w * w).backward();  // the one-pass sweep (nothing freed on the tape yet)
  CHECK(w.grad() == 4.0);
  w.zero_grad();
  const Scalar z = w * 5.0;
  z.backward();  // the checked sweep (the tape now holds freed records)
  CHECK(w.grad() == 5.0);
  keep.backward();  // reaches the freed Leaf record: a leaf is never "freed" for a sweep
  CHECK(w.grad() == 8.0);
  CHECK_THROWS_WITH(z.backward(), Catch::Contains("second time"));
}

TEST_CASE("Scalar: requires_grad = false and set_requires_grad", "[autograd][scalar]") {
  Scalar frozen = Scalar::leaf(2.0, false);
  Scalar w = Scalar::leaf(3.0);
  CHECK_FALSE(frozen.requires_grad());
  const Scalar y = frozen * w;
  CHECK(y.requires_grad());
  y.backward();
  CHECK(w.grad() == 2.0);
  CHECK(frozen.grad() == 0.0);
  CHECK_FALSE((frozen * 2.0).requires_grad());

  frozen.set_requires_grad(true);
  (frozen * w).backward();
  CHECK(frozen.grad() == 3.0);
  w.set_requires_grad(false);
  CHECK_FALSE((w * 2.0).requires_grad());

  // Turned off after a graph through it was recorded: that graph's sweeps give it nothing (as
  // PyTorch's AccumulateGrad), through the one-pass sweep and the checked one alike.
  Scalar u = Scalar::leaf(4.0), v = Scalar::leaf(5.0);
  const Scalar p = u * v, q = u * v * 2.0;
  u.set_requires_grad(false);
  p.backward();
  CHECK(u.grad() == 0.0);
  CHECK(v.grad() == 4.0);
  q.backward();  // the checked sweep (p's freed records are on the tape)
  CHECK(u.grad() == 0.0);
  CHECK(v.grad() == 12.0);
}

TEST_CASE("Scalar: w -= lr * w.grad() under NoGradGuard updates the leaf in place", "[autograd][scalar]") {
  // It rebound w to a constant (micrograd's rebinding, without recording): the parameter left
  // training silently, and the next backward threw "does not require grad".
  Scalar w = Scalar::leaf(2.0);
  const Scalar alias = w;  // a parameter list's handle to the same leaf
  for (int step = 0; step < 3; ++step) {
    (w * w).backward();
    NoGradGuard no_grad;
    w -= 0.25 * w.grad();  // w <- w - 0.25 * 2w = w / 2
    w.zero_grad();
  }
  CHECK(w.is_leaf());
  CHECK(w.requires_grad());
  CHECK(w.value() == 0.25);
  CHECK(alias.value() == 0.25);
  {
    NoGradGuard no_grad;
    w += 1.0;
    w *= 2.0;
    w /= 5.0;
  }
  CHECK(w.value() == 0.5);
  // While recording, compound assignment still rebinds (micrograd's c += c + 1).
  Scalar c = w;
  c += c + 1.0;
  CHECK_FALSE(c.is_leaf());
  CHECK(w.is_leaf());
}

TEST_CASE("Scalar: NoGradGuard stops recording and restores the previous mode", "[autograd][scalar]") {
  Scalar w = Scalar::leaf(2.0);
  CHECK(GradMode::enabled());
  {
    NoGradGuard no_grad;
    CHECK_FALSE(GradMode::enabled());
    const Scalar y = w * 3.0 + exp(w);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.value() == Approx(6 + std::exp(2.0)).epsilon(1e-15));
    {
      NoGradGuard nested;
      CHECK_FALSE(GradMode::enabled());
      GradModeGuard on(true);
      CHECK(GradMode::enabled());
      CHECK((w * 2.0).requires_grad());
    }
    CHECK_FALSE(GradMode::enabled());
  }
  CHECK(GradMode::enabled());
  CHECK((w * 3.0).requires_grad());
}

TEST_CASE("Scalar: detach cuts the graph", "[autograd][scalar]") {
  Scalar x = Scalar::leaf(3.0);
  const Scalar h = x * x;
  const Scalar d = h.detach();
  CHECK(d.value() == 9.0);
  CHECK_FALSE(d.requires_grad());
  const Scalar y = h + d * x;  // d is a constant 9: dy/dx = 2x + 9
  y.backward();
  CHECK(x.grad() == 15.0);
}

TEST_CASE("Scalar: set_value between graphs and inside one", "[autograd][scalar]") {
  Scalar x = Scalar::leaf(1.0);
  const Scalar y = x * 2.0;
  x.set_value(3.0);
  CHECK(y.value() == 2.0);  // an already recorded graph keeps the value it saw
  const Scalar z = y + x * x;  // x's first use saw 1, its second use sees 3
  CHECK(z.value() == 11.0);
  z.backward();
  CHECK(x.grad() == Approx(2 + 2 * 3.0).epsilon(1e-15));  // both uses sum into the one leaf
}

TEST_CASE("Scalar: functional grad", "[autograd][scalar]") {
  Scalar a = Scalar::leaf(2.0), b = Scalar::leaf(-1.0), unused = Scalar::leaf(7.0);
  SECTION("does not touch .grad, and returns 0 for unused inputs with allow_unused") {
    const Scalar y = a * a * b;
    const std::vector<Scalar> g = grad({y}, {a, b, unused}, {}, {.allow_unused = true});
    CHECK(g[0].value() == -4.0);
    CHECK(g[1].value() == 4.0);
    CHECK(g[2].value() == 0.0);
    CHECK(a.grad() == 0.0);
    CHECK(b.grad() == 0.0);
    CHECK_FALSE(g[0].requires_grad());  // plain numbers without create_graph
  }
  SECTION("several outputs weighted by grad_outputs") {
    const Scalar y1 = a * b, y2 = exp(a);
    const std::vector<Scalar> g = grad({y1, y2}, {a}, {2.0, 0.5});
    CHECK(g[0].value() == Approx(2 * -1.0 + 0.5 * std::exp(2.0)).epsilon(1e-15));
  }
  SECTION("with respect to an interior node") {
    const Scalar h = a * b;
    const Scalar y = h * h + a;
    const std::vector<Scalar> g = grad({y}, {h, a});
    CHECK(g[0].value() == -4.0);                  // 2h
    CHECK(g[1].value() == Approx(2 * -2.0 * -1.0 + 1).epsilon(1e-15));  // 2h b + 1
  }
  SECTION("retain_graph allows a second call; without it the graph is freed") {
    const Scalar y = a * b;
    CHECK(grad({y}, {a}, {}, {.retain_graph = true})[0].value() == -1.0);
    CHECK(grad({y}, {a})[0].value() == -1.0);
    CHECK_THROWS_AS(grad({y}, {a}), std::logic_error);
  }
  SECTION("the same leaf twice among the inputs") {
    const Scalar y = a * 3.0;
    const std::vector<Scalar> g = grad({y}, {a, a});
    CHECK(g[0].value() == 3.0);
    CHECK(g[1].value() == 3.0);
  }
  SECTION("a leaf as the output") {
    const std::vector<Scalar> g = grad({a}, {a, b}, {}, {.allow_unused = true});
    CHECK(g[0].value() == 1.0);
    CHECK(g[1].value() == 0.0);
  }
  SECTION("a freed output beside leaf outputs is refused, not read from a reused record") {
    // With no graph alive, entering the leaf outputs may reset the tape: the freed output's record
    // index then names one of their Leaf records. It used to be swept as that leaf (d/db = 2).
    const Scalar y = a * 2.0;
    y.backward();
    const Scalar c = Scalar::leaf(5.0), d = Scalar::leaf(7.0);
    CHECK_THROWS_WITH(grad({y, c, d}, {d}), Catch::Contains("grad: output 0 belongs to a graph that is gone"));
    CHECK(grad({c, d}, {d})[0].value() == 1.0);
  }
  SECTION("with create_graph under NoGradGuard, a leaf behind two Leaf records keeps a recorded gradient") {
    // z = w_old^2 * w_new (set_value between uses): the two records' adjoints were summed as a
    // constant under the caller's NoGradGuard, so the second derivative was lost.
    Scalar w = Scalar::leaf(2.0);
    const Scalar y = w * w;
    w.set_value(3.0);
    const Scalar z = y * w;
    std::vector<Scalar> g;
    {
      NoGradGuard no_grad;
      g = grad({z}, {w}, {}, {.create_graph = true});
    }
    CHECK(g[0].value() == 16.0);  // 2 w_old w_new + w_old^2
    REQUIRE(g[0].requires_grad());
    CHECK(grad({g[0]}, {w})[0].value() == 14.0);  // 2 w_new + 2 w_old + 2 w_old
  }
  SECTION("with create_graph, grad_outputs that are Scalars are part of the recorded gradient") {
    // g = v * dy/dx = v * 2x: dg/dv = 2x (the double-vjp trick for Jacobian-vector products).
    const Scalar v = Scalar::leaf(2.0);
    const Scalar y = a * a;
    const std::vector<Scalar> g = grad({y}, {a}, {v}, {.create_graph = true});
    CHECK(g[0].value() == 8.0);
    const std::vector<Scalar> h = grad({g[0]}, {v, a});
    CHECK(h[0].value() == 4.0);  // 2x
    CHECK(h[1].value() == 4.0);  // 2v
  }
}

// Constant operands live beside the records (8 bytes each, no record, never swept); the graph view
// still shows each one as a node before its consumer, once per use, and a frozen leaf once however
// often it is used.
TEST_CASE("Scalar: constant operands in the graph view and the tape", "[autograd][scalar]") {
  Scalar x = Scalar::leaf(0.5);
  Scalar k = Scalar::leaf(4.0, /*requires_grad=*/false);
  k.set_label("k");
  // A live graph keeps the first op below from resetting the tape, so that the counts are this
  // expression's whatever earlier tests in the same process left on the tape (ctest runs each test
  // in its own process; the whole binary at once used to fail here).
  const Scalar anchor = Scalar::leaf(1.0) * 2.0;
  const auto before = detail::scalar_tape_stats();
  const Scalar y = (2.0 * x + 3.0) * k + k;
  const auto after = detail::scalar_tape_stats();
  CHECK(after.records - before.records == 5);      // x's Leaf record, mul, add, mul, add
  CHECK(after.constants - before.constants == 3);  // 2, 3 and k (entered once)

  const std::vector<ScalarNodeView> view = graph_view(y);
  REQUIRE(view.size() == 8);
  std::vector<std::string> ops;
  for (const ScalarNodeView& n : view) ops.push_back(n.op);
  CHECK(ops == std::vector<std::string>{"leaf", "constant", "mul", "constant", "add", "constant", "mul", "add"});
  CHECK(view[1].value == 2.0);
  CHECK(view[1].is_constant);
  CHECK(view[2].inputs == std::vector<std::size_t>{1, 0});
  CHECK(view[2].local == std::vector<double>{0.5, 2.0});  // d(2x)/d2 = x, d(2x)/dx = 2
  CHECK(view[3].value == 3.0);
  CHECK(view[5].label == "k");
  CHECK(view[5].value == 4.0);
  CHECK(view[6].inputs == std::vector<std::size_t>{4, 5});
  CHECK(view[7].inputs == std::vector<std::size_t>{6, 5});  // k: one node, two consumers
  for (const ScalarNodeView& n : view)
    for (std::size_t i : n.inputs) CHECK(i < n.id);

  y.backward();
  CHECK(x.grad() == 8.0);  // d/dx ((2x + 3) k + k) = 2k
  CHECK(k.grad() == 0.0);
}

// Tape generations are unique in the process: before, every thread's tape started at generation 1,
// so a handle recorded on one thread matched another thread's tape and named one of its records
// there (here B's own `u`): a silently wrong gradient, and the handle's count changes landed on the
// wrong tape.
TEST_CASE("Scalar: a handle from another thread's graph is a number there, never a node", "[autograd][scalar]") {
  Scalar a = Scalar::leaf(2.0);
  Scalar y;
  std::thread([&] { y = a * 3.0; }).join();  // thread A's first graph
  double z_value = 0.0, b_grad = -1.0;
  std::string message;
  std::thread([&] {
    const Scalar b = Scalar::leaf(5.0);
    const Scalar u = b * b;  // thread B's first graph: the same record index y has on A's tape
    const Scalar z = y * b;
    z_value = z.value();
    try {
      z.backward();
    } catch (const std::logic_error& e) {
      message = e.what();
    }
    u.backward();
    b_grad = b.grad();
  }).join();
  CHECK(z_value == 30.0);
  CHECK_THAT(message, Catch::Contains("another thread") && Catch::Contains("detach()"));
  CHECK(b_grad == 10.0);  // u's gradient alone: the failed backward wrote nothing
  CHECK(a.grad() == 0.0);
  CHECK_THROWS_WITH(y.grad(), Catch::Contains("another thread"));
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("another thread"));
}

// The same for a leaf's cached Leaf record: a graph recorded on thread A (not swept, so the leaf
// keeps A's record cached) used to be taken for B's when both tapes had the same generation.
TEST_CASE("Scalar: a leaf used on two threads enters each thread's tape", "[autograd][scalar]") {
  Scalar w = Scalar::leaf(3.0);
  std::thread([&] { const Scalar forward_only = w * 2.0; }).join();
  double grad = 0.0;
  std::thread([&] {
    const Scalar q = w * w;
    q.backward();
    grad = w.grad();
  }).join();
  CHECK(grad == 6.0);
}

// The first sweep after a reset frees what it reached and moves the count of the handles naming
// those records in one step; when it did not reach every record, only theirs: here `a` still names
// an unfreed graph below, which must survive for the next op and the next backward.
TEST_CASE("Scalar: a backward that frees part of the tape keeps the rest alive", "[autograd][scalar]") {
  const Scalar x = Scalar::leaf(2.0);
  const Scalar a = x * x;  // graph A, recorded first
  Scalar b = x * 3.0;      // graph B, above it
  Scalar b2 = b + 1.0;
  b2.backward();  // frees B's records only
  CHECK(x.grad() == 3.0);
  b = Scalar();
  b2 = Scalar();
  const Scalar c = a * 1.0;  // A is still on the tape: this op extends it
  c.backward();
  CHECK(x.grad() == 3.0 + 4.0);
}

namespace {
// A thread that runs the jobs given to it, one at a time: a pool of one, as a server keeps.
class Worker {
 public:
  Worker() : thread_([this] { loop(); }) {}
  ~Worker() {
    run([this] { done_ = true; });
    thread_.join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Runs `job` on the worker and waits for it.
  void run(std::function<void()> job) {
    std::unique_lock lock(mutex_);
    job_ = std::move(job);
    changed_.notify_all();
    changed_.wait(lock, [&] { return !job_; });
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!done_) {
      changed_.wait(lock, [&] { return static_cast<bool>(job_); });
      job_();  // under the lock: the caller waits for it anyway
      job_ = nullptr;
      changed_.notify_all();
    }
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::function<void()> job_;
  bool done_ = false;
  std::thread thread_;  // last: it starts once the members above exist
};
}  // namespace

// A worker that hands out graphs it never sweeps, dropped by the thread that asked for them: each
// used to keep one count on the worker's tape for good, so the tape was never reused and grew by
// the graph's size on every request (16,384 records here instead of 2,048).
TEST_CASE("Scalar: handles dropped on another thread let their tape be reused", "[autograd][scalar]") {
  Worker worker;
  const Scalar x = Scalar::leaf(1.5);
  int wrong_values = 0;
  for (int i = 0; i < 5000; ++i) {
    Scalar y;
    worker.run([&] { y = x * x + 1.0; });  // recorded on the worker's tape, never swept
    if (y.value() != 3.25) ++wrong_values;
  }  // each y dropped here, on this thread
  std::size_t capacity = 0;
  worker.run([&] { capacity = detail::scalar_tape_stats().capacity; });
  CHECK(wrong_values == 0);
  CHECK(capacity <= 2048);  // grown once: at the first growth the drops are counted, then it resets
}

// Found by the memory probe: copies of a vector of handles made on another thread are dropped in
// the order they were made (+a +b -a -b), which the inbox's last-entry cancellation does not catch:
// an owner that recorded nothing meanwhile held 67 bytes per copy, for ever. The inbox compacts.
TEST_CASE("Scalar: handles copied and dropped on another thread do not pile up in the owner's inbox",
          "[autograd][scalar]") {
  Worker worker;
  const Scalar w = Scalar::leaf(0.5);
  std::vector<Scalar> v;
  worker.run([&] { v = {w * 2.0, w * 3.0, w * 4.0}; });  // interior handles of the worker's tape
  for (int i = 0; i < 100000; ++i) const std::vector<Scalar> copy = v;  // copied and dropped here
  std::size_t waiting = 0;
  worker.run([&] { waiting = detail::scalar_tape_stats().foreign_counts; });
  CHECK(waiting < 2048);
  // The counts still add up: the graph is alive while v is, and reusable once v is dropped.
  const std::vector<Scalar> kept = v;
  v.clear();
  double grad = -1.0;
  worker.run([&] {
    for (int i = 0; i < 3000; ++i) const Scalar t = w * 2.0;  // grow the worker's tape: counts applied
    kept[1].backward();
    grad = w.grad();
  });
  CHECK(grad == 3.0);
}

// The counts go both ways: copies made on another thread keep the owner's graph alive after the
// original is dropped, through the owner's growth (where the counts are applied) and reuse checks.
TEST_CASE("Scalar: copies made on another thread keep their graph alive on its own thread", "[autograd][scalar]") {
  Worker worker;
  const Scalar x = Scalar::leaf(3.0);
  Scalar y;
  worker.run([&] { y = x * x; });
  { const std::vector<Scalar> dropped(3, y); }  // copied and dropped here
  Scalar z = y;                                  // copied here and kept
  auto churn = [&] {  // temporaries enough to grow the worker's tape twice
    for (int i = 0; i < 3000; ++i) const Scalar t = x * 2.0;
  };
  worker.run(churn);
  y = Scalar();  // the original dropped here: z alone names the graph
  double grad = -1.0;
  worker.run([&] {
    churn();
    z.backward();
    grad = x.grad();
  });
  CHECK(grad == 6.0);
}

TEST_CASE("Scalar: log1p and expm1 keep a tiny argument where log(1 + x) and exp(x) - 1 lose it", "[autograd][scalar]") {
  // 1 + 1e-17 rounds to 1, so log(1 + x) and exp(x) - 1 are 0 there; log1p and expm1 are x to the
  // last bit (ln(1 + x) = x - x^2/2 + ..., e^x - 1 = x + x^2/2 + ...), and so are their gradients' 1.
  const Scalar x = Scalar::leaf(1e-17);
  CHECK(log(1.0 + x).value() == 0.0);
  const Scalar y = log1p(x) + expm1(x);
  CHECK(y.value() == 2e-17);
  y.backward();
  CHECK(x.grad() == 2.0);
  // Their rules at ordinary points: d ln(1 + x) = 1 / (1 + x), d (e^x - 1) = e^x.
  Scalar z = Scalar::leaf(0.5);
  const Scalar l = log1p(z), e = expm1(z);
  CHECK(l.value() == Approx(std::log(1.5)).epsilon(1e-15));
  CHECK(e.value() == Approx(std::exp(0.5) - 1.0).epsilon(1e-15));
  l.backward();
  CHECK(z.grad() == Approx(1.0 / 1.5).epsilon(1e-15));
  z.zero_grad();
  e.backward();
  CHECK(z.grad() == Approx(std::exp(0.5)).epsilon(1e-15));
}
