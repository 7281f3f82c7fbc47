// gradcheck (autograd/gradcheck.h): the library checker on every built-in op of the one op list,
// its report, the localisation of a wrong backward, kinks, random directions, float32 inputs,
// second derivatives and the whole-model check.
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "autograd/gradcheck_detail.h"
#include "autograd/ops.h"
#include "autograd/scalar.h"
#include "autograd/tensor.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_record.h"

using namespace chainrule;

namespace {

using V = const std::vector<Tensor>&;
using S = const std::vector<Scalar>&;

enum class Domain { any, positive, away_from_zero };

Tensor input(const Shape& shape, Domain domain, uint64_t seed, bool requires_grad = true) {
  Generator gen(seed);
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (double& x : v) {
    if (domain == Domain::any) x = gen.uniform(-2, 2);
    if (domain == Domain::positive) x = gen.uniform(0.3, 2.5);
    if (domain == Domain::away_from_zero) x = gen.uniform(0.3, 2) * (gen.uniform(0, 1) < 0.5 ? -1 : 1);
  }
  return from_vector(v, shape, TensorOptions(DType::float64).requires_grad(requires_grad));
}

struct ScalarCase {
  ScalarFunction f;
  std::vector<Scalar> at;
};

const std::map<std::string_view, std::vector<ScalarCase>>& scalar_cases() {
  static const std::map<std::string_view, std::vector<ScalarCase>> cases = {
      {"neg", {{[](S x) { return -x[0]; }, {0.7}}}},
      {"exp", {{[](S x) { return exp(x[0]); }, {-1.2}}, {[](S x) { return exp(x[0]); }, {2.0}}}},
      {"log", {{[](S x) { return log(x[0]); }, {0.2}}, {[](S x) { return log(x[0]); }, {3.5}}}},
      {"expm1", {{[](S x) { return expm1(x[0]); }, {-1.2}}, {[](S x) { return expm1(x[0]); }, {1e-9}}}},
      {"log1p", {{[](S x) { return log1p(x[0]); }, {-0.7}}, {[](S x) { return log1p(x[0]); }, {2.5}}}},
      {"sqrt", {{[](S x) { return sqrt(x[0]); }, {0.3}}, {[](S x) { return sqrt(x[0]); }, {4.0}}}},
      {"sigmoid", {{[](S x) { return sigmoid(x[0]); }, {-8.0}}, {[](S x) { return sigmoid(x[0]); }, {0.614}}}},
      {"tanh", {{[](S x) { return tanh(x[0]); }, {-0.3}}, {[](S x) { return tanh(x[0]); }, {1.5}}}},
      {"relu", {{[](S x) { return relu(x[0]); }, {-1.1}}, {[](S x) { return relu(x[0]); }, {0.4}}}},
      {"abs", {{[](S x) { return abs(x[0]); }, {-1.1}}, {[](S x) { return abs(x[0]); }, {0.4}}}},
      {"erf", {{[](S x) { return erf(x[0]); }, {-0.9}}, {[](S x) { return erf(x[0]); }, {1.7}}}},
      {"add", {{[](S x) { return x[0] + x[1]; }, {1.3, -0.7}}, {[](S x) { return x[0] + 2.5; }, {1.3}}}},
      {"sub", {{[](S x) { return x[0] - x[1]; }, {1.3, -0.7}}, {[](S x) { return 2.5 - x[0]; }, {1.3}}}},
      {"mul", {{[](S x) { return x[0] * x[1]; }, {1.3, -0.7}}, {[](S x) { return x[0] * x[0]; }, {-2.1}}}},
      {"div", {{[](S x) { return x[0] / x[1]; }, {1.3, -0.7}}, {[](S x) { return 1.0 / x[0]; }, {0.5}}}},
      {"pow", {{[](S x) { return pow(x[0], x[1]); }, {1.5, 2.0}}, {[](S x) { return pow(x[0], 3.0); }, {-0.8}}}},
  };
  return cases;
}

struct TensorCase {
  TensorFunction f;
  std::vector<Tensor> at;
  GradcheckOptions options = {};
};

const std::map<std::string_view, std::vector<TensorCase>>& tensor_cases() {
  static const std::map<std::string_view, std::vector<TensorCase>> cases = [] {
    std::map<std::string_view, std::vector<TensorCase>> c;
    auto unary = [&](std::string_view name, std::function<Tensor(const Tensor&)> op, Domain d) {
      c[name] = {{[op](V x) { return op(x[0]); }, {input({2, 3}, d, 1)}},
                 {[op](V x) { return op(x[0]); }, {input({}, d, 2)}}};
    };
    auto binary = [&](std::string_view name, std::function<Tensor(const Tensor&, const Tensor&)> op, Domain da,
                      Domain db) {
      c[name] = {{[op](V x) { return op(x[0], x[1]); }, {input({2, 3}, da, 3), input({2, 3}, db, 4)}},
                 {[op](V x) { return op(x[0], x[1]); }, {input({2, 1}, da, 5), input({1, 3}, db, 6)}},
                 {[op](V x) { return op(x[0], x[1]); }, {input({2, 3}, da, 7), input({3}, db, 8, false)}}};
    };
    unary("neg", [](const Tensor& x) { return -x; }, Domain::any);
    unary("exp", [](const Tensor& x) { return exp(x); }, Domain::any);
    unary("log", [](const Tensor& x) { return log(x); }, Domain::positive);
    unary("expm1", [](const Tensor& x) { return expm1(x); }, Domain::any);
    unary("log1p", [](const Tensor& x) { return log1p(x); }, Domain::positive);
    unary("sqrt", [](const Tensor& x) { return sqrt(x); }, Domain::positive);
    unary("sigmoid", [](const Tensor& x) { return sigmoid(x); }, Domain::any);
    unary("tanh", [](const Tensor& x) { return tanh(x); }, Domain::any);
    unary("relu", [](const Tensor& x) { return relu(x); }, Domain::away_from_zero);
    unary("abs", [](const Tensor& x) { return abs(x); }, Domain::away_from_zero);
    unary("erf", [](const Tensor& x) { return erf(x); }, Domain::any);
    binary("add", [](const Tensor& a, const Tensor& b) { return a + b; }, Domain::any, Domain::any);
    binary("sub", [](const Tensor& a, const Tensor& b) { return a - b; }, Domain::any, Domain::any);
    binary("mul", [](const Tensor& a, const Tensor& b) { return a * b; }, Domain::any, Domain::any);
    binary("div", [](const Tensor& a, const Tensor& b) { return a / b; }, Domain::any, Domain::away_from_zero);
    binary("pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, Domain::positive, Domain::any);
    c["sum"] = {{[](V x) { return sum(x[0]); }, {input({2, 3, 4}, Domain::any, 9)}},
                {[](V x) { return sum(x[0], {0, 2}, true); }, {input({2, 3, 4}, Domain::any, 10)}}};
    c["max"] = {{[](V x) { return max(x[0]); }, {input({2, 3}, Domain::any, 11)}},
                {[](V x) { return max(x[0], {1}); }, {input({2, 3, 4}, Domain::any, 12)}}};
    c["matmul"] = {{[](V x) { return matmul(x[0], x[1]); }, {input({2, 3}, Domain::any, 13), input({3, 4}, Domain::any, 14)}},
                   {[](V x) { return matmul(x[0], x[1]); }, {input({2, 2, 3}, Domain::any, 15), input({3}, Domain::any, 16)}}};
    c["linear"] = {{[](V x) { return linear(x[0], x[1], x[2]); },
                    {input({2, 3}, Domain::any, 24), input({4, 3}, Domain::any, 25), input({4}, Domain::any, 26)}}};
    c["permute"] = {{[](V x) { return permute(x[0], {2, 0, 1}); }, {input({2, 3, 4}, Domain::any, 17)}}};
    c["reshape"] = {{[](V x) { return reshape(x[0], {4, -1}); }, {input({2, 3, 2}, Domain::any, 18)}}};
    c["expand"] = {{[](V x) { return expand(x[0], {2, 3, 4}); }, {input({3, 1}, Domain::any, 19)}}};
    c["slice"] = {{[](V x) { return slice(x[0], 1, 1, 3); }, {input({2, 4}, Domain::any, 20)}}};
    c["concat"] = {{[](V x) { return concat({x[0], x[1]}, 1); }, {input({2, 1}, Domain::any, 21), input({2, 3}, Domain::any, 22)}}};
    c["index_select"] = {{[](V x) { return index_select(x[0], 0, {2, 0, 2}); }, {input({4, 3}, Domain::any, 81)}}};
    c["index_add"] = {{[](V x) { return index_add(x[0], 1, {1, 1, 0}, x[1]); },
                       {input({2, 3}, Domain::any, 82), input({2, 3}, Domain::any, 83)}}};
    c["unfold"] = {{[](V x) { return unfold(x[0], {.kernel = {2, 2}, .stride = {1, 2}, .padding = {1, 0}}); },
                    {input({1, 2, 3, 4}, Domain::any, 84)}}};
    c["fold"] = {{[](V x) { return fold(x[0], {3, 3}, {.kernel = {2, 2}}); }, {input({2, 4, 4}, Domain::any, 85)}}};
    c["max_pool2d"] = {{[](V x) { return max_pool2d(x[0], {.kernel = {2, 2}, .stride = {1, 2}, .padding = {1, 1}}); },
                        {input({1, 2, 3, 4}, Domain::any, 86)}}};
    c["softmax_cross_entropy"] = {{[](V x) { return softmax_cross_entropy(x[0], {1, 0, 2}); },
                                   {input({3, 3}, Domain::any, 87)}}};
    c["where"] = {{[](V x) { return where(tensor({{1, 0, 0}, {0, 1, 1}}, DType::float64), x[0], x[1]); },
                   {input({2, 3}, Domain::any, 27), input({3}, Domain::any, 28)}}};
    // Through float32 the values carry ~1e-7 relative rounding: a larger step and looser bounds.
    c["cast"] = {{[](V x) { return x[0].to(DType::float32); }, {input({2, 3}, Domain::any, 23)},
                  GradcheckOptions{.eps = 1e-2, .atol = 1e-4, .rtol = 1e-3}}};
    return c;
  }();
  return cases;
}

// A cube with a correct and a wrong derivative (3x^2 vs 2x^2).
double cube(std::span<const double> x) { return x[0] * x[0] * x[0]; }
std::vector<double> d_cube(double grad, std::span<const double> x, double) { return {grad * 3 * x[0] * x[0]}; }
std::vector<double> wrong_d_cube(double grad, std::span<const double> x, double) { return {grad * 2 * x[0] * x[0]}; }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("gradcheck: passes on every elementwise op of the one op list (Scalar)", "[autograd][gradcheck]") {
  for (std::string_view name : ops::elementwise_ops) {
    INFO("op " << name);
    auto it = scalar_cases().find(name);
    if (it == scalar_cases().end()) {
      FAIL_CHECK("no Scalar gradcheck case for op '" << name << "' in gradcheck_test.cpp");
      continue;
    }
    for (const ScalarCase& c : it->second) {
      const GradcheckReport r = gradcheck(c.f, c.at);
      INFO(r);
      CHECK(r.passed);
      CHECK(r.failures.empty());
      CHECK(r.non_differentiable.empty());
      CHECK(r.checked == c.at.size());
    }
  }
}

TEST_CASE("gradcheck: passes on every op of the one op list (Tensor)", "[autograd][gradcheck]") {
  auto run = [](std::string_view name) {
    INFO("op " << name);
    auto it = tensor_cases().find(name);
    if (it == tensor_cases().end()) {
      FAIL_CHECK("no Tensor gradcheck case for op '" << name << "' in gradcheck_test.cpp");
      return;
    }
    for (const TensorCase& c : it->second) {
      const GradcheckReport r = gradcheck(c.f, c.at, c.options);
      INFO(r);
      CHECK(r.passed);
      CHECK(r.checked > 0);
      CHECK(r.non_differentiable.empty());
    }
  };
  for (std::string_view name : ops::elementwise_ops) run(name);
  for (std::string_view name : ops::tensor_ops) run(name);
}

TEST_CASE("gradcheck: the localisation knows the forward of every elementwise op", "[autograd][gradcheck]") {
  for (std::string_view name : ops::elementwise_ops) {
    INFO("op " << name);
    CHECK(static_cast<bool>(detail::gradcheck::builtin_forward(name)));
  }
  CHECK_FALSE(static_cast<bool>(detail::gradcheck::builtin_forward("no such op")));
}

TEST_CASE("gradcheck: a custom op with a wrong backward fails, naming the op and its line", "[autograd][gradcheck]") {
  // The custom op is recorded on the line of `line`.
  auto f = [](S x) { return custom_op("cube", {x[0]}, cube, wrong_d_cube) * x[1]; }; const int line = __LINE__;
  const GradcheckReport r = gradcheck(f, {1.5, -0.7});
  INFO(r);
  CHECK_FALSE(r.passed);
  REQUIRE(r.failures.size() == 1);  // d/dx[1] = cube(1.5) is right; d/dx[0] is not
  CHECK(r.failures[0].input == "x[0]");
  CHECK(r.failures[0].analytic == Approx(2 * 1.5 * 1.5 * -0.7));
  CHECK(r.failures[0].numeric == Approx(3 * 1.5 * 1.5 * -0.7).epsilon(1e-6));
  REQUIRE(r.localisation.ran);
  REQUIRE(r.localisation.faulty);
  const FaultyOp& op = *r.localisation.faulty;
  CHECK(op.op == "cube");
  CHECK(op.where.line() == static_cast<uint_least32_t>(line));
  CHECK(contains(op.where.file_name(), "gradcheck_test.cpp"));
  CHECK(op.analytic == Approx(2 * 1.5 * 1.5));
  CHECK(op.numeric == Approx(3 * 1.5 * 1.5).epsilon(1e-6));
  CHECK(op.at == std::vector<double>{1.5});
  const std::string text = r.to_string();
  CHECK(contains(text, "FAILED"));
  CHECK(contains(text, "'cube'"));
  CHECK(contains(text, "gradcheck_test.cpp:" + std::to_string(line)));

  // The correct backward passes.
  auto good = [](S x) { return custom_op("cube", {x[0]}, cube, d_cube) * x[1]; };
  CHECK(gradcheck(good, {1.5, -0.7}).passed);
}

TEST_CASE("gradcheck: the report's table lists the worst elements, not the Jacobians", "[autograd][gradcheck]") {
  auto bad = [](S x) {
    const Scalar first = custom_op("cube", {x[0]}, cube, wrong_d_cube);
    const Scalar second = custom_op("cube", {x[1]}, cube, wrong_d_cube);
    return first + second + x[2];
  };
  Scalar labelled = Scalar::leaf(0.5);
  labelled.set_label("w");
  const GradcheckReport r = gradcheck(bad, {2.0, 0.1, labelled}, {.max_rows = 2});
  INFO(r);
  CHECK(r.checked == 3);
  REQUIRE(r.worst.size() == 2);
  CHECK(r.worst[0].input == "x[0]");  // |8 - 12| is the worst
  CHECK(r.worst[0].abs_error == Approx(4).epsilon(1e-6));
  CHECK(r.worst[0].rel_error == Approx(4.0 / 12).epsilon(1e-6));
  CHECK_FALSE(r.worst[0].passed);
  REQUIRE(r.failures.size() == 2);  // x[1]: 0.02 vs 0.03 fails too
  CHECK(r.failures[1].input == "x[1]");
  const std::string text = r.to_string();
  for (const char* column : {"input", "analytic", "numeric", "abs err", "rel err"}) CHECK(contains(text, column));
  CHECK_FALSE(contains(text, "index"));  // Scalars have no element index
  // Tensors do: the index column names the element.
  const GradcheckReport t = gradcheck([](V x) { return sum(x[0] * x[0]); }, {input({2, 2}, Domain::any, 71)});
  CHECK(contains(t.to_string(), "index"));
  CHECK(contains(t.to_string(), "[1, 1]"));
  CHECK(contains(text, "2 of 3 elements disagree"));
  // The first faulty op is the first 'cube' recorded (x[0]'s), not the second.
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->at == std::vector<double>{2.0});
  // The leaf's label names the input; the passing element is in no failure row.
  const GradcheckReport ok = gradcheck([](S x) { return x[0] * 3.0; }, {labelled});
  CHECK(ok.worst.at(0).input == "w");
  CHECK(contains(ok.to_string(), "passed"));
  CHECK_FALSE(ok.localisation.ran);
}

TEST_CASE("gradcheck: localisation finds a faulty custom op buried in a Scalar MLP", "[autograd][gradcheck]") {
  // softplus with a backward 10% off, as the third hidden unit of a 2-3-1 network.
  auto softplus = [](std::span<const double> x) { return std::log1p(std::exp(x[0])); };
  auto bad_d_softplus = [](double grad, std::span<const double> x, double) {
    return std::vector<double>{grad * 1.1 / (1 + std::exp(-x[0]))};
  };
  int line = 0;
  auto loss = [&](S p) {
    const double x1 = -0.97, x2 = -0.80;
    const Scalar h1 = sigmoid(x1 * p[0] + x2 * p[1] + p[2]);
    const Scalar h2 = sigmoid(x1 * p[3] + x2 * p[4] + p[5]);
    const Scalar z3 = x1 * p[6] + x2 * p[7] + p[8];
    const Scalar h3 = custom_op("softplus", {z3}, softplus, bad_d_softplus); line = __LINE__;
    const Scalar out = sigmoid(h1 * p[9] + h2 * p[10] + h3 * p[11] + p[12]);
    return 0.5 * pow(out - 0.0, 2.0);
  };
  const std::vector<Scalar> params = {-0.2, -0.4, 0.1, 0.4, -0.7, -0.2, -1.0, -0.8, 0.4, -0.6, -0.6, -0.3, -0.6};
  const GradcheckReport r = gradcheck(loss, params);
  INFO(r);
  CHECK_FALSE(r.passed);
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->op == "softplus");
  CHECK(r.localisation.faulty->where.line() == static_cast<uint_least32_t>(line));
  // Everything recorded before it was re-checked and agreed (the two sigmoid units, the sums).
  CHECK(r.localisation.ops_checked > 20);
  CHECK(r.localisation.not_rechecked.empty());
  // Only the parameters below the faulty unit are wrong.
  for (const GradcheckElement& e : r.failures) CHECK((e.input == "x[6]" || e.input == "x[7]" || e.input == "x[8]"));
}

TEST_CASE("gradcheck: localisation finds a faulty custom op in a Tensor MLP", "[autograd][gradcheck]") {
  const Tensor x = tensor({{-0.97, -0.80}, {-0.69, -0.97}, {1.04, 0.34}}, DType::float64);
  const Tensor y = tensor({{0.0}, {0.0}, {1.0}}, DType::float64);
  // tanh whose backward forgot a factor: (1 - result) instead of (1 - result^2).
  auto bad_tanh = [](const Tensor& z, Where where = Where::current()) {
    return custom_op(
        "bad_tanh", {z}, [](V in) { return tanh(in[0]); },
        [](const Tensor& grad, V, const Tensor& result) { return std::vector<Tensor>{grad * (1.0 - result)}; }, where);
  };
  int line = 0;
  auto loss = [&](V p) {
    const Tensor h = bad_tanh(matmul(x, p[0]) + p[1]); line = __LINE__;
    const Tensor out = sigmoid(matmul(h, p[2]) + p[3]);
    return mean(pow(out - y, 2.0));
  };
  Generator gen(3);
  const TensorOptions param = TensorOptions(DType::float64).requires_grad();
  const std::vector<Tensor> params = {uniform({2, 3}, -1, 1, gen, param), uniform({3}, -1, 1, gen, param),
                                      uniform({3, 1}, -1, 1, gen, param), uniform({1}, -1, 1, gen, param)};
  const GradcheckReport r = gradcheck(loss, params);
  INFO(r);
  CHECK_FALSE(r.passed);
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->op == "bad_tanh");
  CHECK(r.localisation.faulty->where.line() == static_cast<uint_least32_t>(line));
  CHECK_FALSE(r.localisation.faulty->index.empty());
  CHECK(r.localisation.ops_checked >= 3);  // matmul, add, then the custom op
  // W2 and b2 sit above the faulty op: their elements are right.
  for (const GradcheckElement& e : r.failures) CHECK((e.input == "input 0" || e.input == "input 1"));
}

TEST_CASE("gradcheck: an op without a replay is listed as not re-checkable, not blamed", "[autograd][gradcheck]") {
  // An op recorded without detail::set_replay: its forward cannot be re-run on perturbed inputs.
  auto twice_without_replay = [](const Tensor& x) {
    Tensor out = x.detach() * 2.0;
    if (detail::should_record({&x}))
      detail::record(out, "twice", {&x}, [](const Tensor& grad, detail::Node&) { return std::vector<Tensor>{grad * 2.0}; });
    return out;
  };
  auto bad_square = [](const Tensor& x) {
    return custom_op(
        "bad_square", {x}, [](V a) { return a[0] * a[0]; },
        [](const Tensor& grad, V a, const Tensor&) { return std::vector<Tensor>{grad * a[0]}; });
  };
  const Tensor x = input({3}, Domain::any, 61);
  const GradcheckReport r = gradcheck([&](V in) { return sum(bad_square(twice_without_replay(in[0]))); }, {x});
  INFO(r);
  CHECK_FALSE(r.passed);
  REQUIRE(r.localisation.not_rechecked.size() == 1);
  CHECK(contains(r.localisation.not_rechecked[0], "twice at "));
  REQUIRE(r.localisation.faulty);
  CHECK(r.localisation.faulty->op == "bad_square");
  CHECK(contains(r.to_string(), "not re-checkable (no replay of their forward): twice at "));
  // When the only suspects could not be re-checked, the report says so.
  auto wrong_twice = [](const Tensor& x) {
    Tensor out = x.detach() * 2.0;
    detail::record(out, "wrong_twice", {&x}, [](const Tensor& grad, detail::Node&) { return std::vector<Tensor>{grad * 3.0}; });
    return out;
  };
  const GradcheckReport unknown = gradcheck([&](V in) { return sum(wrong_twice(in[0])); }, {x});
  CHECK_FALSE(unknown.passed);
  CHECK_FALSE(unknown.localisation.faulty);
  CHECK(contains(unknown.to_string(), "the fault is in an op that could not be re-checked"));
}

TEST_CASE("gradcheck: relu and abs at 0 are reported as not differentiable, not as failures", "[autograd][gradcheck]") {
  SECTION("Scalar relu at 0: the central difference 1/2 straddles the kink") {
    const GradcheckReport r = gradcheck([](S x) { return relu(x[0]) * 2.0; }, {0.0});
    INFO(r);
    CHECK(r.passed);
    CHECK(r.failures.empty());
    REQUIRE(r.at_kinks.size() == 1);
    CHECK(r.at_kinks[0].numeric == Approx(1.0));
    REQUIRE(r.non_differentiable.size() == 1);
    CHECK(r.non_differentiable[0].op == "relu");
    CHECK(r.non_differentiable[0].left == Approx(0.0).margin(1e-9));
    CHECK(r.non_differentiable[0].right == Approx(1.0));
    CHECK(contains(r.to_string(), "not differentiable at: 'relu'"));
  }
  SECTION("Scalar abs at 0: the numbers agree, the kink is still named") {
    const GradcheckReport r = gradcheck([](S x) { return abs(x[0]) + x[0]; }, {0.0});
    INFO(r);
    CHECK(r.passed);
    CHECK(r.at_kinks.empty());
    REQUIRE(r.non_differentiable.size() == 1);
    CHECK(r.non_differentiable[0].op == "abs");
  }
  SECTION("Scalar: a custom op's kink is found from its forward") {
    auto hinge = [](std::span<const double> x) { return std::max(0.0, 1.0 - x[0]); };
    auto d_hinge = [](double grad, std::span<const double> x, double) {
      return std::vector<double>{x[0] < 1 ? -grad : 0.0};
    };
    const GradcheckReport r = gradcheck([&](S x) { return custom_op("hinge", {x[0]}, hinge, d_hinge); }, {1.0});
    INFO(r);
    CHECK(r.passed);
    REQUIRE(r.non_differentiable.size() == 1);
    CHECK(r.non_differentiable[0].op == "hinge");
  }
  SECTION("Scalar: no kink away from 0") {
    const GradcheckReport r = gradcheck([](S x) { return relu(x[0]) + abs(x[1]); }, {1e-3, -1e-3});
    CHECK(r.passed);
    CHECK(r.non_differentiable.empty());
  }
  SECTION("Tensor relu and abs with elements at 0") {
    const Tensor x = tensor({0.5, 0.0, -1.5}, TensorOptions(DType::float64).requires_grad());
    const GradcheckReport r = gradcheck([](V in) { return relu(in[0]) * 3.0 + abs(in[0]); }, {x});
    INFO(r);
    CHECK(r.passed);
    CHECK(r.failures.empty());
    REQUIRE(r.non_differentiable.size() == 2);
    CHECK(r.non_differentiable[0].index == "[1]");
    CHECK(contains(r.to_string(), "'relu'"));
    CHECK(contains(r.to_string(), "'abs'"));
    CHECK_FALSE(r.at_kinks.empty());  // relu's central difference 1.5 against the sub-gradient 0
  }
  SECTION("a wrong derivative at a kink is still a failure") {
    auto bad_relu = [](std::span<const double> x) { return std::max(0.0, x[0]); };
    auto d_bad_relu = [](double grad, std::span<const double>, double) { return std::vector<double>{2 * grad}; };
    const GradcheckReport r = gradcheck([&](S x) { return custom_op("bad_relu", {x[0]}, bad_relu, d_bad_relu); }, {0.0});
    CHECK_FALSE(r.passed);
    REQUIRE(r.localisation.faulty);
    CHECK(r.localisation.faulty->op == "bad_relu");
  }
}

TEST_CASE("gradcheck: random directions cost 2k evaluations whatever the size", "[autograd][gradcheck]") {
  int calls = 0;
  auto f = [&calls](V x) {
    ++calls;
    return sum(tanh(x[0]) * x[0]);
  };
  const Tensor x = input({40, 25}, Domain::any, 31);
  const GradcheckReport r = gradcheck(f, {x}, {.directions = 3, .seed = 5});
  INFO(r);
  CHECK(r.passed);
  CHECK(r.checked == 3);
  CHECK(calls == 1 + 1 + 2 * 3);  // analytic pass, f(x), and f(x +- eps v) per direction
  CHECK(r.worst[0].input.rfind("direction", 0) == 0);

  // The same seed gives the same directions, a wrong backward is still caught and named.
  auto bad = [](V in) {
    return sum(custom_op(
        "bad_square", {in[0]}, [](V a) { return a[0] * a[0]; },
        [](const Tensor& grad, V a, const Tensor&) { return std::vector<Tensor>{grad * a[0]}; }));
  };
  const GradcheckReport wrong = gradcheck(bad, {x}, {.directions = 2, .seed = 5});
  CHECK_FALSE(wrong.passed);
  REQUIRE(wrong.localisation.faulty);
  CHECK(wrong.localisation.faulty->op == "bad_square");
  CHECK(wrong.localisation.faulty->index == "direction 0");
  const GradcheckReport again = gradcheck(bad, {x}, {.directions = 2, .seed = 5});
  CHECK(again.worst[0].numeric == wrong.worst[0].numeric);

  // Scalars too.
  const GradcheckReport s = gradcheck([](S v) { return v[0] * v[1] * v[2]; }, {0.3, -1.2, 2.0}, {.directions = 2});
  CHECK(s.passed);
  CHECK(s.checked == 2);
}

TEST_CASE("gradcheck: Tensor outputs with several elements: every element, or a projection", "[autograd][gradcheck]") {
  const Tensor a = input({2, 3}, Domain::any, 41), b = input({3, 2}, Domain::any, 42);
  auto f = [](V x) { return matmul(x[0], x[1]); };
  const GradcheckReport full = gradcheck(f, {a, b});
  CHECK(full.passed);
  CHECK(full.checked == (6 + 6) * 4);  // each input element against each of the 4 output elements
  CHECK(contains(full.worst[0].index, "-> out ["));
  const GradcheckReport projected = gradcheck(f, {a, b}, {.project_outputs = true});
  CHECK(projected.passed);
  CHECK(projected.checked == 12);
  // An input that does not require grad is held constant.
  const GradcheckReport one = gradcheck(f, {a, b.detach()});
  CHECK(one.checked == 6 * 4);
}

TEST_CASE("gradcheck: float32 inputs are checked in float64 copies and the report says so", "[autograd][gradcheck]") {
  Generator gen(7);
  const Tensor x = uniform({2, 2}, -1, 1, gen, TensorOptions(DType::float32).requires_grad());
  const GradcheckReport r = gradcheck([](V in) { return sum(sigmoid(in[0]) * in[0]); }, {x});
  INFO(r);
  CHECK(r.passed);
  CHECK(contains(r.to_string(), "input 0 is float32: checked in a float64 copy"));
  CHECK_FALSE(x.grad().defined());  // the caller's tensor is not touched
  CHECK(r.checked == 4 + 4);        // and its 4 float32 gradients against the float64 ones

  // The float64 copy never ran f's float32 code: a custom op whose backward is wrong only for
  // float32 inputs passed. The float32 gradient is now compared with the float64 one, and the
  // localisation re-checks the float32 graph's ops.
  auto square = [](V in) { return in[0] * in[0]; };
  auto float32_wrong = [](const Tensor& g, V in, const Tensor&) {
    return std::vector<Tensor>{g * (in[0].dtype() == DType::float32 ? 2.2 : 2.0) * in[0]};
  };
  const GradcheckReport bad = gradcheck([&](V in) { return sum(tanh(custom_op("sq", {in[0]}, square, float32_wrong))); }, {x});
  INFO(bad);
  CHECK_FALSE(bad.passed);
  REQUIRE(bad.failures.size() == 4);
  for (const GradcheckElement& e : bad.failures) CHECK(contains(e.index, "in float32"));
  REQUIRE(bad.localisation.faulty);
  CHECK(bad.localisation.faulty->op == "sq");

  // float32_atol (1e-3) scales with the gradient's size: a mean over 10,000 elements has gradients
  // of 1e-4, and a float32 backward with the wrong sign passed within an absolute 1e-3.
  Generator g2(3);
  const Tensor many = uniform({100, 100}, -1, 1, g2, TensorOptions(DType::float32).requires_grad());
  auto identity = [](V in) { return in[0] * 1.0; };
  auto float32_sign = [](const Tensor& g, V in, const Tensor&) {
    return std::vector<Tensor>{in[0].dtype() == DType::float32 ? -g : g};
  };
  const GradcheckReport tiny =
      gradcheck([&](V in) { return mean(custom_op("id", {in[0]}, identity, float32_sign)); }, {many}, {.directions = 2});
  CHECK_FALSE(tiny.passed);
  CHECK(tiny.failures.size() == 10000);
}

TEST_CASE("gradcheck: throw_on_failure throws a GradcheckError carrying the report", "[autograd][gradcheck]") {
  auto bad = [](S x) { return custom_op("cube", {x[0]}, cube, wrong_d_cube); };
  try {
    (void)gradcheck(bad, {1.0}, {.throw_on_failure = true});
    FAIL("no GradcheckError");
  } catch (const GradcheckError& e) {
    CHECK_FALSE(e.report().passed);
    CHECK(contains(e.what(), "'cube'"));
  }
  CHECK_NOTHROW(gradcheck([](S x) { return x[0] * x[0]; }, {1.0}, {.throw_on_failure = true}));
}

TEST_CASE("gradcheck: leaves passed as inputs keep their gradients", "[autograd][gradcheck]") {
  Scalar w = Scalar::leaf(0.4);
  (w * 3.0).backward();
  REQUIRE(w.grad() == 3.0);
  CHECK(gradcheck([](S x) { return exp(x[0]); }, {w}).passed);
  CHECK(w.grad() == 3.0);
}

TEST_CASE("gradcheck: gradgradcheck checks second derivatives", "[autograd][gradcheck]") {
  SECTION("Scalars: every Hessian entry") {
    auto f = [](S x) { return tanh(x[0] * x[1]) + pow(x[0], 3.0) / x[1] + sigmoid(x[1]); };
    const GradcheckReport r = gradgradcheck(f, {0.7, 1.3});
    INFO(r);
    CHECK(r.passed);
    CHECK(r.what == "gradgradcheck");
    CHECK(r.checked == 4);
    CHECK(contains(r.worst[0].input, "df/dx["));
  }
  SECTION("Tensors: a Hessian-vector product") {
    const Tensor a = input({2, 3}, Domain::any, 51), w = input({3, 2}, Domain::any, 52);
    const GradcheckReport r = gradgradcheck([](V x) { return sum(tanh(matmul(x[0], x[1])) * 2.0); }, {a, w});
    INFO(r);
    CHECK(r.passed);
    CHECK(r.checked == 12);
  }
  SECTION("a first-order custom op cannot be differentiated twice") {
    auto f = [](S x) { return custom_op("cube", {x[0]}, cube, d_cube); };
    CHECK_THROWS_AS(gradgradcheck(f, {1.0}), std::logic_error);
  }
}

TEST_CASE("gradcheck: gradcheck_model reports per parameter name", "[autograd][gradcheck]") {
  Generator gen(9);
  const TensorOptions opts = TensorOptions(DType::float64).requires_grad();
  std::vector<std::pair<std::string, Tensor>> named = {{"hidden.weight", uniform({2, 3}, -1, 1, gen, opts)},
                                                       {"hidden.bias", uniform({3}, -1, 1, gen, opts)},
                                                       {"out.weight", uniform({3, 1}, -1, 1, gen, opts)},
                                                       {"out.bias", uniform({1}, -1, 1, gen, opts)}};
  const Tensor x = tensor({{-0.97, -0.80}, {1.04, 0.34}}, DType::float64);
  const Tensor y = tensor({{0.0}, {1.0}}, DType::float64);
  const std::vector<double> before = named[0].second.to_vector();

  SECTION("a correct model passes, parameters unchanged") {
    auto loss = [&] {
      const Tensor h = sigmoid(matmul(x, named[0].second) + named[1].second);
      return mean(pow(sigmoid(matmul(h, named[2].second) + named[3].second) - y, 2.0));
    };
    const GradcheckReport r = gradcheck_model(loss, named);
    INFO(r);
    CHECK(r.passed);
    REQUIRE(r.parameters.size() == 4);
    CHECK(r.parameters[0].name == "hidden.weight");
    CHECK(r.parameters[0].shape == "[2, 3]");
    CHECK(r.parameters[0].checked == 6);
    CHECK(r.parameters[3].checked == 1);
    CHECK(named[0].second.to_vector() == before);
    CHECK_FALSE(named[0].second.grad().defined());
    CHECK(contains(r.to_string(), "per parameter"));
    // Random directions: k per parameter.
    const GradcheckReport d = gradcheck_model(loss, named, {.directions = 2});
    CHECK(d.passed);
    CHECK(d.checked == 8);
  }
  SECTION("a faulty op shows in the parameters below it and is named") {
    auto loss = [&] {
      const Tensor z = matmul(x, named[0].second) + named[1].second;
      const Tensor h = custom_op(
          "bad_sigmoid", {z}, [](V in) { return sigmoid(in[0]); },
          [](const Tensor& grad, V, const Tensor& result) { return std::vector<Tensor>{grad * result}; });
      return mean(pow(sigmoid(matmul(h, named[2].second) + named[3].second) - y, 2.0));
    };
    const GradcheckReport r = gradcheck_model(loss, named);
    INFO(r);
    CHECK_FALSE(r.passed);
    REQUIRE(r.parameters.size() == 4);
    CHECK_FALSE(r.parameters[0].passed);
    CHECK_FALSE(r.parameters[1].passed);
    CHECK(r.parameters[2].passed);
    CHECK(r.parameters[3].passed);
    REQUIRE(r.localisation.faulty);
    CHECK(r.localisation.faulty->op == "bad_sigmoid");
    CHECK(named[0].second.to_vector() == before);
  }
  SECTION("float32 parameters get float32 tolerances, stated in the report") {
    std::vector<std::pair<std::string, Tensor>> f32 = {{"w", uniform({3}, -1, 1, gen, TensorOptions().requires_grad())}};
    auto loss = [&] { return sum(tanh(f32[0].second) * f32[0].second); };
    const GradcheckReport r = gradcheck_model(loss, f32);
    INFO(r);
    CHECK(r.passed);
    CHECK(r.eps == 1e-3);
    CHECK(contains(r.to_string(), "float32 parameters"));
  }
}
