// gradcheck's own trustworthiness: cases where it used to pass a wrong gradient (a sharply curved
// smooth function or a kink in another input taken for an excuse), fail a right one (steps lost
// to rounding at large values), or blame a correct op (float32 replays); and traces that must show
// one backward's nodes only. Each case is one a probe found.
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "autograd/trace.h"

using namespace chainrule;
using Catch::Contains;

namespace {
using S = const std::vector<Scalar>&;
using V = const std::vector<Tensor>&;
}  // namespace

TEST_CASE("gradcheck: a sharply curved function is not a kink: a wrong derivative fails", "[autograd][gradcheck]") {
  // log at 2e-6 with eps 1e-6: the one-sided slopes (693147, 405465) differ by eps * f'', which
  // the kink rule took for a jump; a derivative 20% too large sat between them and passed.
  auto f = [](std::span<const double> x) { return std::log(x[0]); };
  auto wrong = [](double g, std::span<const double> x, double) { return std::vector<double>{g * 1.2 / x[0]}; };
  auto right = [](double g, std::span<const double> x, double) { return std::vector<double>{g / x[0]}; };
  const GradcheckReport bad = check_custom_op("mylog", f, wrong, {2e-6});
  INFO(bad);
  CHECK_FALSE(bad.passed);
  REQUIRE(bad.localisation.faulty);
  CHECK(bad.localisation.faulty->op == "mylog");
  CHECK(bad.non_differentiable.empty());
  const GradcheckReport good = check_custom_op("mylog", f, right, {2e-6});
  INFO(good);
  CHECK(good.passed);  // at a tenth of the step the central difference agrees
  CHECK(good.non_differentiable.empty());
}

TEST_CASE("gradcheck: a kink in one input does not excuse a wrong derivative in another", "[autograd][gradcheck]") {
  auto cube = [](std::span<const double> x) { return x[0] * x[0] * x[0]; };
  auto wrong = [](double g, std::span<const double> x, double) { return std::vector<double>{g * 3.9 * x[0] * x[0]}; };
  auto f = [&](S x) { return abs(x[0]) + custom_op("cube", {x[1]}, cube, wrong); };
  GradcheckOptions directions;
  directions.directions = 4;
  const GradcheckReport r = gradcheck(f, {0.0, 1.0}, directions);
  INFO(r);
  CHECK_FALSE(r.passed);
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->op == "cube");
  CHECK_FALSE(gradcheck(f, {0.0, 1.0}).passed);  // element by element, as before
  // The same with a right derivative passes along directions through the kink.
  auto right = [](double g, std::span<const double> x, double) { return std::vector<double>{g * 3 * x[0] * x[0]}; };
  const GradcheckReport ok =
      gradcheck([&](S x) { return abs(x[0]) + custom_op("cube", {x[1]}, cube, right); }, {0.0, 1.0}, directions);
  INFO(ok);
  CHECK(ok.passed);
  CHECK_FALSE(ok.non_differentiable.empty());
}

TEST_CASE("gradcheck: at large values the differences divide by the steps actually taken", "[autograd][gradcheck]") {
  // At 3e10 a step of 1e-6 is lost to rounding: the check read numeric 0 and blamed mul.
  const GradcheckReport scalar = gradcheck([](S x) { return x[0] * 2.0; }, {Scalar(3e10)});
  INFO(scalar);
  CHECK(scalar.passed);
  const Tensor big = from_vector({1e11, -2e11}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport tensor = gradcheck([](V in) { return sum(in[0] * 2.0); }, {big});
  INFO(tensor);
  CHECK(tensor.passed);
  // And the step grows until f's own rounding is small against the tolerance: at 3e10, 3x moves
  // by one unit in the last place (1.5e-5) over a step of 7.6e-6 (numeric 4 against 3, and mul
  // was blamed), x * x read 6.87e10 against 6e10; a large constant beside a small slope likewise.
  for (double c : {3.0, 7.0, -0.1}) {
    const GradcheckReport r = gradcheck([c](S x) { return x[0] * c; }, {Scalar(3e10)});
    INFO(r);
    CHECK(r.passed);
  }
  const GradcheckReport square = gradcheck([](S x) { return x[0] * x[0]; }, {Scalar(3e10)});
  INFO(square);
  CHECK(square.passed);
  const GradcheckReport offset = gradcheck([](V in) { return sum(in[0] * in[0] + 1e12); }, {from_vector({1.0, -2.0}, Shape{2}, TensorOptions(DType::float64).requires_grad())});
  INFO(offset);
  CHECK(offset.passed);
  const GradcheckReport big3 = gradcheck([](V in) { return sum(in[0] * 3.0); }, {big});
  INFO(big3);
  CHECK(big3.passed);
  // A wrong derivative at those magnitudes still fails.
  auto wrong = [](double g, std::span<const double>, double) { return std::vector<double>{g * 2.9}; };
  auto triple = [](std::span<const double> x) { return 3 * x[0]; };
  CHECK_FALSE(gradcheck([&](S x) { return custom_op("triple", {x[0]}, triple, wrong); }, {Scalar(3e10)}).passed);
  // float32 parameters near 1000: x + 1e-3 rounds to x + 9.77e-4 (numeric 1.953 against 2).
  Tensor w = from_vector({1000.0, -999.0}, Shape{2}, TensorOptions(DType::float32).requires_grad());
  const GradcheckReport model = gradcheck_model([&] { return sum(w * 2.0); }, {{"w", w}});
  INFO(model);
  CHECK(model.passed);
}

TEST_CASE("gradcheck: a float32 graph's ops with plain numbers are re-checked, casts are not blamed",
          "[autograd][gradcheck]") {
  SECTION("w * x + 1.0 in float32: the replay keeps 1.0 a plain number") {
    Tensor w = from_vector({0.5, -0.7}, Shape{2}, TensorOptions(DType::float32).requires_grad());
    const Tensor x = from_vector({1.5, 2.0}, Shape{2}, DType::float32);
    auto square = [](V in) { return in[0] * in[0]; };
    auto bad = [](const Tensor& g, V in, const Tensor&) { return std::vector<Tensor>{g * 3.0 * in[0]}; };
    const GradcheckReport r =
        gradcheck_model([&] { return sum(custom_op("square", {w * x + 1.0}, square, bad) * 2.0); }, {{"w", w}});
    INFO(r);
    CHECK_FALSE(r.passed);
    REQUIRE(r.localisation.faulty);
    CHECK(r.localisation.faulty->op == "square");
    for (const std::string& s : r.localisation.not_rechecked) CHECK_THAT(s, !Contains("add"));
  }
  SECTION("a cast to float32 inside a float64 check") {
    const Tensor x = from_vector({1.1, 2.3}, Shape{2}, TensorOptions(DType::float64).requires_grad());
    const GradcheckReport r = gradcheck([](V v) { return sum(v[0].to(DType::float32) * 2.0); }, {x});
    INFO(r);
    // The function rounds to float32, so float64's eps cannot judge it; but no op is wrong.
    CHECK_FALSE(r.localisation.faulty);
    for (const NonDifferentiablePoint& p : r.non_differentiable) CHECK(p.op != "cast");
  }
}

TEST_CASE("trace_backward: a backward run inside a custom op's backward is not part of the trace", "[autograd][trace]") {
  Tensor w = from_vector({1.0, 2.0}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  auto forward = [](V in) { return in[0] * 3.0; };
  auto backward = [](const Tensor& g, V, const Tensor&) {
    GradModeGuard recording(true);
    const Tensor q = from_vector({5.0}, Shape{1}, TensorOptions(DType::float64).requires_grad());
    sum(q * q).backward();  // a backward of its own, on another graph
    return std::vector<Tensor>{g * 3.0};
  };
  const Tensor loss = sum(custom_op("triple", {custom_op("triple", {w}, forward, backward)}, forward, backward));
  const TensorTrace t = trace_backward(loss, {{"w", w}});
  INFO(t);
  // sum, the two triples, w: the inner graphs' sum and mul are not listed.
  CHECK(t.nodes.size() == 4);
  for (const TensorTraceNode& n : t.nodes) CHECK(n.op != "mul");
  CHECK(w.grad().to_vector() == std::vector<double>{9, 9});
}

TEST_CASE("trace and to_dot: digits out of [0, 30] are refused by name", "[autograd][trace]") {
  // -1 reached fmt as a negative precision (fmt::format_error); 10^9 asked for gigabytes of digits.
  Scalar a = Scalar::leaf(2.0);
  const Scalar y = a * 3.0;
  y.backward();
  CHECK_THROWS_WITH(trace(y).to_text({.digits = -1}), Contains("digits (TraceOptions, DotOptions) must be in [0, 30], got -1"));
  CHECK_THROWS_WITH(trace(y).to_text({.digits = 1000000000, .fixed = true}), Contains("got 1000000000"));
  CHECK_NOTHROW(trace(y).to_text({.digits = 30}));
}

TEST_CASE("traces made by hand (empty) print a line, not undefined behaviour", "[autograd][trace]") {
  std::ostringstream out;
  out << ChainRuleTrace{} << TensorTrace{};
  CHECK_THAT(out.str(), Contains("empty chain-rule trace") && Contains("empty Tensor trace"));
}

TEST_CASE("gradcheck: a function that gives two values at one point is refused, with the reason",
          "[autograd][gradcheck]") {
  // Differences of a random function mean nothing; it used to report "all ops agree" or a failure
  // that blamed the ops.
  int calls = 0;
  const GradcheckReport scalar = gradcheck([&](S x) { return x[0] * 2.0 + static_cast<double>(++calls); }, {1.0});
  INFO(scalar);
  CHECK_FALSE(scalar.passed);
  CHECK_THAT(scalar.to_string(), Contains("random or stateful"));
  const Tensor x = from_vector({1.0, 2.0}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport tensor = gradcheck([&](V in) { return sum(in[0] * 2.0) + static_cast<double>(++calls); }, {x});
  CHECK_FALSE(tensor.passed);
  CHECK_THAT(tensor.to_string(), Contains("random or stateful"));
  Tensor w = from_vector({0.5}, Shape{1}, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport model =
      gradcheck_model([&] { return sum(w * 3.0) + static_cast<double>(++calls); }, {{"w", w}});
  CHECK_FALSE(model.passed);
  CHECK_THAT(model.to_string(), Contains("random or stateful"));
  // Refused, not checked: no table, no kinks (a linear function read as one), no localisation.
  for (const GradcheckReport* r : {&scalar, &tensor, &model}) {
    CHECK_THAT(r->to_string(), Catch::StartsWith(r->what + ": REFUSED: f gave "));
    CHECK_FALSE(r->refused.empty());
    CHECK(r->worst.empty());
    CHECK(r->at_kinks.empty());
    CHECK(r->non_differentiable.empty());
    CHECK_FALSE(r->localisation.ran);
    CHECK_THAT(r->to_string(), !Contains("kink") && !Contains("localisation"));
  }
  // A deterministic one is not refused.
  CHECK(gradcheck([](S v) { return v[0] * 2.0 + 1.0; }, {1.0}).passed);
}

TEST_CASE("gradcheck: options that cannot work and empty functions are refused by name", "[autograd][gradcheck]") {
  auto f = [](S x) { return x[0] * x[1]; };
  CHECK_THROWS_WITH(gradcheck(f, {1.0, 2.0}, {.eps = 0}), Contains("gradcheck: eps must be finite and > 0, got 0"));
  CHECK_THROWS_WITH(gradcheck(f, {1.0, 2.0}, {.eps = NAN}), Contains("eps must be finite and > 0"));
  CHECK_THROWS_WITH(gradcheck(f, {1.0, 2.0}, {.atol = -1}), Contains("atol must be finite and >= 0, got -1"));
  GradcheckOptions many;
  many.directions = SIZE_MAX;
  CHECK_THROWS_WITH(gradcheck(f, {1.0, 2.0}, many), Contains("directions must be at most 2^20"));
  CHECK_THROWS_WITH(gradcheck(ScalarFunction{}, {1.0}), Contains("gradcheck: the function to check is empty"));
  CHECK_THROWS_WITH(gradcheck_model(std::function<Tensor()>{}, {}), Contains("gradcheck_model: the function"));
  const Tensor x = from_vector({1.0}, Shape{1}, TensorOptions(DType::float64).requires_grad());
  CHECK_THROWS_WITH(gradgradcheck([](V v) { return v[0]; }, {x}, {.rtol = INFINITY}), Contains("gradgradcheck: rtol"));
  // No inputs: refused, Scalars as Tensors (a Scalar check of nothing used to pass).
  CHECK_THROWS_WITH(gradcheck([](S) { return Scalar(1.0); }, {}), Contains("gradcheck: no inputs given"));
  CHECK_THROWS_WITH(gradgradcheck([](S) { return Scalar(1.0); }, {}), Contains("gradgradcheck: no inputs given"));
  CHECK_THROWS_WITH(gradcheck([](V) { return Tensor(1.0); }, std::vector<Tensor>{}), Contains("gradcheck: no inputs given"));
}

TEST_CASE("gradcheck_model: a loss that throws part-way leaves the parameters exactly as they were",
          "[autograd][gradcheck]") {
  Tensor w = from_vector({1.0, 2.0}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  int calls = 0;
  auto loss = [&] {
    if (++calls == 3) throw std::runtime_error("data loader failed");  // during the numeric pass
    return sum(w * w);
  };
  CHECK_THROWS_WITH(gradcheck_model(loss, {{"w", w}}), Contains("data loader failed"));
  CHECK(w.to_vector() == std::vector<double>{1.0, 2.0});
}

TEST_CASE("gradcheck: a Scalar custom op whose backward ignores the upstream gradient is named",
          "[autograd][gradcheck]") {
  // Re-checked with an upstream gradient of 1, such a backward agreed with its own forward: the
  // check failed naming no op, and beside a kink (abs at 0) the wrong value sat between the
  // one-sided slopes and the verdict was "passed, not differentiable at abs".
  auto fsin = [](std::span<const double> x) { return std::sin(x[0]); };
  auto forgot_grad = [](double, std::span<const double> x, double) { return std::vector<double>{std::cos(x[0])}; };
  auto f = [&](S x) { return abs(x[0]) + 0.3 * custom_op("mysin", {x[0]}, fsin, forgot_grad); };
  for (double at : {0.0, 0.5}) {
    const GradcheckReport r = gradcheck(f, {at});
    INFO(r);
    CHECK_FALSE(r.passed);
    REQUIRE(r.localisation.faulty);
    CHECK(r.localisation.faulty->op == "mysin");
  }
  // The right backward, at the kink: excused there, as before.
  auto right = [](double g, std::span<const double> x, double) { return std::vector<double>{g * std::cos(x[0])}; };
  const GradcheckReport ok = gradcheck([&](S x) { return abs(x[0]) + 0.3 * custom_op("mysin", {x[0]}, fsin, right); }, {0.0});
  INFO(ok);
  CHECK(ok.passed);
  CHECK_FALSE(ok.non_differentiable.empty());
}

TEST_CASE("gradcheck_model: float32's loose tolerances do not pass a wrong op, nor loosen float64 parameters",
          "[autograd][gradcheck]") {
  // float32_atol (1e-3) is absolute: with a mean-reduced, down-weighted loss every gradient was
  // below it, and a tanh whose backward has the wrong sign passed. The ops are now re-checked in
  // float64 whenever float32's tolerances were used.
  auto fw = [](V in) { return tanh(in[0]); };
  auto wrong_sign = [](const Tensor& g, V, const Tensor& r) { return std::vector<Tensor>{-(g * (1.0 - r * r))}; };
  auto right = [](const Tensor& g, V, const Tensor& r) { return std::vector<Tensor>{g * (1.0 - r * r)}; };
  for (bool wrong : {true, false}) {
    Generator gen(3);
    const auto f32 = TensorOptions(DType::float32);
    Tensor x = uniform({64, 10}, -1, 1, gen, f32), y = uniform({64, 4}, -1, 1, gen, f32);
    Tensor w = uniform({10, 4}, -0.3, 0.3, gen, TensorOptions(DType::float32).requires_grad());
    Tensor b = zeros({4}, TensorOptions(DType::float32).requires_grad());
    auto loss = [&] {
      const Tensor h = custom_op("my_tanh", {matmul(x, w) + b}, fw, wrong ? TensorBackward(wrong_sign) : TensorBackward(right));
      const Tensor d = h - y;
      return mean(d * d) * 0.005;
    };
    const GradcheckReport r = gradcheck_model(loss, {{"w", w}, {"b", b}});
    INFO(r);
    CHECK(r.passed == !wrong);
    if (wrong) {
      REQUIRE(r.localisation.faulty);
      CHECK(r.localisation.faulty->op == "my_tanh");
    }
  }
}

TEST_CASE("gradcheck_model: a float32 parameter does not loosen the check of a float64 one", "[autograd][gradcheck]") {
  // A float64 parameter whose backward is 0.5% too large fails, also beside a float32 one (whose
  // presence used to give every parameter float32's rtol of 1%).
  auto scale = [](V in) { return in[0] * 2.0; };
  auto off = [](const Tensor& g, V, const Tensor&) { return std::vector<Tensor>{g * 2.01}; };
  Tensor v = from_vector({0.7, -0.2}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  Tensor u = from_vector({0.3}, Shape{1}, TensorOptions(DType::float32).requires_grad());
  const GradcheckReport mixed = gradcheck_model(
      [&] { return sum(custom_op("scale", {v}, scale, off) * 3.0) + sum(u * u).to(DType::float64); },
      {{"v", v}, {"u", u}}, {.localise = false});
  INFO(mixed);
  CHECK_FALSE(mixed.passed);
  REQUIRE(mixed.parameters.size() == 2);
  CHECK_FALSE(mixed.parameters[0].passed);
  CHECK(mixed.parameters[1].passed);
}

TEST_CASE("gradcheck: a large term in f does not widen a small derivative's step into f's curvature",
          "[autograd][gradcheck]") {
  // The step widens while the rounding of f's values swamps the tolerance. When f is large for
  // another input's sake (x0^6 at 1000 is 1e18) it widened to 1e8 for x1 at 1e-3, where x1^3's
  // curvature ruled: numeric 18014 against 3e-6, a false failure, and the Tensor localisation
  // blamed a correct pow instead of a wrong custom op recorded after it.
  auto sixth = [](S x) {
    const Scalar a = x[0] * x[0] * x[0];
    return a * a + x[1] * x[1] * x[1];
  };
  const GradcheckReport a = gradcheck(sixth, {1000.0, 1e-3});
  INFO(a);
  CHECK(a.passed);
  CHECK_THAT(a.to_string(), Contains("1 element(s) could not be resolved to the tolerance"));
  const GradcheckReport milder = gradcheck([](S x) { return 1e8 * x[0] + x[1] * x[1] * x[1]; }, {1.0, 1e-3});
  INFO(milder);
  CHECK(milder.passed);
  auto cube = [](V x) { return sum(pow(x[0] * x[0] + 1.0, full({}, 3.0, DType::float64))); };
  const Tensor x = from_vector({1000.0, 1e-7}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport b = gradcheck(cube, {x});
  INFO(b);
  CHECK(b.passed);
  auto square = [](V in) { return in[0] * in[0]; };
  auto bad = [](const Tensor& g, V in, const Tensor&) { return std::vector<Tensor>{g * 2.2 * in[0]}; };
  auto both = [&](V in) {
    return cube({in[0]}) + sum(custom_op("square_bad", {in[1]}, square, bad));
  };
  const Tensor w = from_vector({0.5, -0.7}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport c = gradcheck(both, {x, w});
  INFO(c);
  CHECK_FALSE(c.passed);
  REQUIRE(c.localisation.faulty);
  CHECK(c.localisation.faulty->op == "square_bad");
  // A wrong derivative where the widening does resolve f (a linear f at 3e10) still fails.
  auto wrong = [](double g, std::span<const double>, double) { return std::vector<double>{g * 2.97}; };
  auto triple = [](std::span<const double> v) { return 3 * v[0]; };
  CHECK_FALSE(gradcheck([&](S v) { return custom_op("triple", {v[0]}, triple, wrong); }, {Scalar(3e10)}).passed);
}

TEST_CASE("gradcheck: a backward that gives two gradients at one point fails, and its op is named",
          "[autograd][gradcheck]") {
  // A custom op's backward that keeps state (here: every other call 30% off) agreed with the
  // differences on the one call the check compared, and the check passed while training got the
  // wrong gradient on every other step. The gradient is now computed twice through the same graph
  // (PyTorch's "backward is not reentrant" check, GradcheckOptions::nondet_tol).
  int calls = 0;
  auto square = [](std::span<const double> x) { return x[0] * x[0]; };
  auto stateful = [&](double g, std::span<const double> x, double) {
    return std::vector<double>{g * 2 * x[0] * (++calls % 2 ? 1.0 : 1.3)};
  };
  auto f = [&](S x) { return custom_op("square", {x[0]}, square, stateful) * x[1]; };
  const GradcheckReport r = gradcheck(f, {1.5, -0.7});
  INFO(r);
  CHECK_FALSE(r.passed);
  CHECK(r.failures.empty());  // every compared element agreed with the differences
  REQUIRE(r.nondeterministic.size() == 1);
  CHECK(r.nondeterministic[0].input == "x[0]");
  CHECK(r.nondeterministic[0].first != r.nondeterministic[0].second);
  REQUIRE(r.localisation.nondeterministic);
  CHECK(r.localisation.nondeterministic->op == "square");
  CHECK_THAT(r.to_string(), Contains("the backward is not deterministic") && Contains("'square'"));
  // Within a tolerance that covers the difference (0.3 * 2 * 1.5 * 0.7 = 0.63): passes.
  CHECK(gradcheck(f, {1.5, -0.7}, {.nondet_tol = 0.7}).passed);
  CHECK_THROWS_WITH(gradcheck(f, {1.5, -0.7}, {.nondet_tol = -1}), Contains("nondet_tol must be finite and >= 0"));
  // The same backward without the state passes.
  auto right = [](double g, std::span<const double> x, double) { return std::vector<double>{g * 2 * x[0]}; };
  const GradcheckReport ok = gradcheck([&](S x) { return custom_op("square", {x[0]}, square, right) * x[1]; }, {1.5, -0.7});
  CHECK(ok.passed);
  CHECK(ok.nondeterministic.empty());

  // Tensors and whole models, through a Tensor custom op whose backward draws its scale anew.
  int tensor_calls = 0;
  auto tsquare = [](V in) { return in[0] * in[0]; };
  auto tstateful = [&](const Tensor& g, V in, const Tensor&) {
    return std::vector<Tensor>{g * 2.0 * in[0] * (++tensor_calls % 2 ? 1.0 : 1.3)};
  };
  const Tensor x = from_vector({0.5, -1.0}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport tensor = gradcheck([&](V in) { return sum(custom_op("tsquare", {in[0]}, tsquare, tstateful)); }, {x});
  INFO(tensor);
  CHECK_FALSE(tensor.passed);
  REQUIRE(tensor.nondeterministic.size() == 2);
  CHECK(tensor.nondeterministic[0].input == "input 0");
  REQUIRE(tensor.localisation.nondeterministic);
  CHECK(tensor.localisation.nondeterministic->op == "tsquare");
  Tensor w = from_vector({0.5, -1.0}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport model = gradcheck_model([&] { return sum(custom_op("tsquare", {w}, tsquare, tstateful)); }, {{"w", w}});
  INFO(model);
  CHECK_FALSE(model.passed);
  REQUIRE_FALSE(model.nondeterministic.empty());
  CHECK(model.nondeterministic[0].input == "w");
  CHECK(model.nondeterministic[0].index == "[1]");  // the larger difference first (|w| = 1)
  REQUIRE(model.localisation.nondeterministic);
  CHECK(model.localisation.nondeterministic->op == "tsquare");
  CHECK(w.to_vector() == std::vector<double>{0.5, -1.0});
}

TEST_CASE("gradcheck: a point that is not finite is refused, and a correct op is never blamed for it",
          "[autograd][gradcheck]") {
  // Each used to fail with "the first op whose backward disagrees with its own forward is 'mul'"
  // (or 'log'): a NaN input, f outside its domain, a step that cannot move the input.
  CHECK_THROWS_WITH(gradcheck([](S x) { return x[0] * x[0] + x[1]; }, {NAN, 1.0}),
                    "gradcheck: x[0] is nan: a gradient cannot be checked at a point that is not finite");
  const Tensor nan_input = from_vector({NAN, 1.0}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  CHECK_THROWS_WITH(gradcheck([](V x) { return sum(x[0] * x[0]); }, {nan_input}),
                    Contains("gradcheck: input 0 element [0] is nan"));
  Tensor inf_param = from_vector({INFINITY}, Shape{1}, TensorOptions(DType::float64).requires_grad());
  CHECK_THROWS_WITH(gradcheck_model([&] { return sum(inf_param); }, {{"w", inf_param}}),
                    Contains("gradcheck_model: parameter 'w' element [0] is inf"));

  // f not finite at the point: refused, with the op anomaly mode finds.
  const GradcheckReport scalar = gradcheck([](S x) { return log(x[0]) * x[1]; }, {-1.0, 1.0});
  INFO(scalar);
  CHECK_FALSE(scalar.passed);
  CHECK_THAT(scalar.refused, Contains("f is") && Contains("nan at this point") && Contains("'log'"));
  CHECK_FALSE(scalar.localisation.ran);
  const Tensor t = from_vector({-1.0, 1.0}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport tensor = gradcheck([](V x) { return sqrt(x[0]); }, {t});
  CHECK_THAT(tensor.refused, Contains("f's element [0] is") && Contains("'sqrt'"));
  const GradcheckReport second = gradgradcheck([](S x) { return sqrt(x[0]); }, {0.0});
  CHECK_THAT(second.refused, Contains("f's derivative df/dx[0] is inf") && Contains("'sqrt'"));
  Tensor w = from_vector({-1.0, 1.0}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  const GradcheckReport model = gradcheck_model([&] { return sum(log(w)); }, {{"w", w}});
  CHECK_THAT(model.refused, Contains("(the loss) is") && Contains("'log'"));
  CHECK(w.to_vector() == std::vector<double>{-1.0, 1.0});

  // Within eps of the edge of log's domain, and a step too small to move the input: those
  // elements fail (nothing checks them) and say why; no op is blamed.
  const GradcheckReport edge = gradcheck([](S x) { return log(x[0]) * x[1]; }, {1e-7, 1.0});
  INFO(edge);
  CHECK_FALSE(edge.passed);
  REQUIRE(edge.failures.size() == 1);
  CHECK(edge.failures[0].input == "x[0]");
  CHECK(edge.localisation.ran);
  CHECK_FALSE(edge.localisation.faulty);
  CHECK_THAT(edge.to_string(), Contains("no finite central difference") && Contains("no op is blamed"));
  const GradcheckReport tiny = gradcheck([](S x) { return x[0] * x[0]; }, {1.0}, {.eps = 1e-300});
  CHECK_FALSE(tiny.passed);
  CHECK_FALSE(tiny.localisation.faulty);
  CHECK_THAT(tiny.to_string(), Contains("the step (eps 1e-300) does not move the input"));
  // A backward that gives NaN where the forward is fine is still blamed.
  auto fsq = [](std::span<const double> x) { return x[0] * x[0]; };
  auto nan_back = [](double, std::span<const double>, double) { return std::vector<double>{NAN}; };
  const GradcheckReport blamed = gradcheck([&](S x) { return custom_op("sq", {x[0]}, fsq, nan_back); }, {1.0});
  REQUIRE(blamed.localisation.faulty);
  CHECK(blamed.localisation.faulty->op == "sq");
}

TEST_CASE("gradgradcheck: a custom op whose backward is right but not differentiable as written is named",
          "[autograd][gradcheck]") {
  // A backward that detaches its input gives the right first derivative, so every op that
  // create_graph records checks out on its own; gradgradcheck failed with "all 17 re-checked ops
  // agree". Each custom op's second derivatives are now checked alone.
  auto cube = [](V in) { return in[0] * in[0] * in[0]; };
  auto detached = [](const Tensor& g, V in, const Tensor&) {
    const Tensor x = in[0].detach();
    return std::vector<Tensor>{g * 3.0 * x * x};
  };
  auto differentiable = [](const Tensor& g, V in, const Tensor&) { return std::vector<Tensor>{g * 3.0 * in[0] * in[0]}; };
  const Tensor x = from_vector({0.5, -1.2, 0.8}, Shape{3}, TensorOptions(DType::float64).requires_grad());
  const Tensor w = from_vector({0.3, 0.4, -0.2}, Shape{3}, TensorOptions(DType::float64).requires_grad());
  auto model = [&](TensorBackward backward) {
    return [&, backward](V in) { return sum(tanh(custom_op("cube", {in[0] * in[1]}, cube, backward)) * 2.0); };
  };
  CHECK(gradcheck(model(detached), {x, w}).passed);  // its first derivative is right
  const GradcheckReport r = gradgradcheck(model(detached), {x, w});
  INFO(r);
  CHECK_FALSE(r.passed);
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->op == "cube");
  CHECK(r.localisation.faulty->order == 2);
  CHECK(r.localisation.faulty->operand == 0);
  CHECK(r.localisation.faulty->analytic == 0.0);  // the detached input carries no second derivative
  CHECK(r.localisation.faulty->numeric != 0.0);
  CHECK_THAT(r.to_string(), Contains("right but not differentiable as written is 'cube'"));
  CHECK_THROWS_AS((void)gradgradcheck(model(detached), {x, w}, {.throw_on_failure = true}), GradcheckError);
  const GradcheckReport ok = gradgradcheck(model(differentiable), {x, w});
  INFO(ok);
  CHECK(ok.passed);
}

TEST_CASE("gradcheck_model: a custom op that reads a parameter without taking it as an input is named",
          "[autograd][gradcheck]") {
  // Its forward captures w, so w's gradient is 0 and the check fails, but every op's derivative
  // with respect to its inputs is right: the localisation said "all 4 re-checked ops agree".
  Tensor w = from_vector({0.3, 0.4}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  Tensor b = from_vector({0.1, -0.2}, Shape{2}, TensorOptions(DType::float64).requires_grad());
  const Tensor x = from_vector({0.5, -1.2}, Shape{2}, DType::float64);
  auto captures = [&](V in) { return in[0] * w; };
  auto backward = [&](const Tensor& g, V, const Tensor&) { return std::vector<Tensor>{g * w.detach()}; };
  auto loss = [&] { return sum(tanh(custom_op("scale", {x + b}, captures, backward))); };
  const GradcheckReport r = gradcheck_model(loss, {{"w", w}, {"b", b}});
  INFO(r);
  CHECK_FALSE(r.passed);
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->op == "scale");
  CHECK(r.localisation.faulty->reads_parameter == "w");
  CHECK_THAT(r.to_string(), Contains("reads parameter 'w' without taking it as an input"));
  CHECK(w.to_vector() == std::vector<double>{0.3, 0.4});  // put back exactly
  // Taken as an input, with its gradient returned: passes.
  auto takes = [](V in) { return in[0] * in[1]; };
  auto both = [](const Tensor& g, V in, const Tensor&) { return std::vector<Tensor>{g * in[1], g * in[0]}; };
  const GradcheckReport ok =
      gradcheck_model([&] { return sum(tanh(custom_op("scale", {x + b, w}, takes, both))); }, {{"w", w}, {"b", b}});
  INFO(ok);
  CHECK(ok.passed);
}

TEST_CASE("gradgradcheck: float32 inputs differentiate f's float32 backward too", "[autograd][gradcheck]") {
  // float32 inputs were checked in float64 copies only, so a backward whose float32 branch is not
  // differentiable as written (it detaches its input) passed. g now also runs on the inputs as
  // they are, and its float32 gradient (the Hessian-vector product) is compared with float64's.
  auto cube = [](V in) { return in[0] * in[0] * in[0]; };
  auto float32_detached = [](const Tensor& g, V in, const Tensor&) {
    const Tensor x = in[0].dtype() == DType::float32 ? in[0].detach() : in[0];
    return std::vector<Tensor>{g * 3.0 * x * in[0]};
  };
  auto differentiable = [](const Tensor& g, V in, const Tensor&) { return std::vector<Tensor>{g * 3.0 * in[0] * in[0]}; };
  const Tensor x = from_vector({0.5, -1.2, 0.8}, Shape{3}, TensorOptions(DType::float32).requires_grad());
  auto model = [&](TensorBackward backward) {
    return [&, backward](V in) { return sum(tanh(custom_op("cube", {in[0]}, cube, backward))); };
  };
  CHECK(gradcheck(model(float32_detached), {x}).passed);  // its first derivative is right in both
  const GradcheckReport r = gradgradcheck(model(float32_detached), {x});
  INFO(r);
  CHECK_FALSE(r.passed);
  CHECK_THAT(r.to_string(), Contains("in float32"));
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->op == "cube");
  CHECK(r.localisation.faulty->order == 2);
  const GradcheckReport ok = gradgradcheck(model(differentiable), {x});
  INFO(ok);
  CHECK(ok.passed);
  CHECK_THAT(ok.to_string(), Contains("input 0 is float32"));
  // float64 inputs as before.
  CHECK(gradgradcheck(model(float32_detached), {x.to(DType::float64).detach().set_requires_grad(true)}).passed);
}
