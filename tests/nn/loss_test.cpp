// Losses: MSE (with the lecture's 1/2), BCE (with its clamp), BCE with logits and cross entropy,
// against hand computations, their errors, and the finite-difference check.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_record.h"
#include "nn/nn.h"

using namespace chainrule;
using Catch::Contains;

namespace chainrule::nn::testing {
// Defined in tests/nn/module_test.cpp.
void check_gradients(const std::function<Tensor()>& loss, const std::vector<Tensor>& params, const std::string& what);
}  // namespace chainrule::nn::testing

namespace {

Tensor f64(const NestedList& v) { return tensor(v, DType::float64); }
Tensor leaf(const NestedList& v) { return tensor(v, TensorOptions(DType::float64).requires_grad(true)); }

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

TEST_CASE("nn: MSELoss reductions and the lecture's 1/2") {
  // Outputs 0.18 and 0.17 for targets 0 and 1 (errors 0.18 and -0.83).
  const Tensor y_hat = f64({{0.18}, {0.17}});
  const Tensor y = f64({{0.0}, {1.0}});
  const double e0 = 0.18 * 0.18, e1 = 0.83 * 0.83;
  using R = nn::Reduction;
  CHECK(nn::MSELoss()(y_hat, y).item() == Approx((e0 + e1) / 2));  // torch's default: mean, no 1/2
  CHECK(nn::MSELoss(nn::MSELossOptions().reduction(R::Sum))(y_hat, y).item() == Approx(e0 + e1));
  // The slides' cost C = 1/N sum 1/2 (y_hat - y)^2.
  CHECK(nn::MSELoss(nn::MSELossOptions().half(true))(y_hat, y).item() == Approx((e0 + e1) / 4));
  // What the slides' updates descend: 1/2 sum (y_hat - y)^2.
  CHECK(nn::MSELoss(nn::MSELossOptions().reduction(R::Sum).half(true))(y_hat, y).item() == Approx((e0 + e1) / 2));
  const Tensor per = nn::mse_loss(y_hat, y, nn::MSELossOptions().reduction(R::None).half(true));
  CHECK(per.shape() == Shape{2, 1});
  CHECK(per.at({0, 0}) == Approx(0.0162));  // the slides' cost column: 0.02
  CHECK(nn::MSELoss(nn::MSELossOptions().reduction(R::Sum).half(true)).to_string() ==
        "MSELoss(reduction=sum, half=true)");
  // A Reduction cast from an integer was taken as None by one loss and Sum by another.
  CHECK_THROWS_WITH(nn::MSELossOptions().reduction(static_cast<R>(7)),
                    Catch::Contains("MSELossOptions::reduction: 7 is not a Reduction"));
  CHECK_THROWS_AS(nn::BCELossOptions().reduction(static_cast<R>(-1)), std::invalid_argument);
  CHECK_THROWS_AS(nn::CrossEntropyLossOptions().reduction(static_cast<R>(3)), std::invalid_argument);
}

TEST_CASE("nn: MSELoss with sum and 1/2 has the slides' error y_hat - y as its gradient") {
  Tensor y_hat = leaf({{0.18}, {0.17}});
  nn::mse_loss(y_hat, f64({{0.0}, {1.0}}), nn::MSELossOptions().reduction(nn::Reduction::Sum).half(true)).backward();
  CHECK(y_hat.grad().at({0, 0}) == Approx(0.18));
  CHECK(y_hat.grad().at({1, 0}) == Approx(-0.83));
}

TEST_CASE("nn: MSELoss rejects shapes that would broadcast, naming both") {
  CHECK_THROWS_AS(nn::mse_loss(zeros({3, 1}), zeros({3})), std::invalid_argument);
  CHECK_THROWS_WITH(nn::mse_loss(zeros({3, 1}), zeros({3})), Contains("[3, 1]") && Contains("[3]"));
  CHECK_THROWS_WITH(nn::mse_loss(zeros({3}), zeros({3}, DType::float64)), Contains("float32") && Contains("float64"));
}

TEST_CASE("nn: BCELoss matches -(y log p + (1-y) log(1-p))") {
  const Tensor p = f64({0.8, 0.3});
  const Tensor y = f64({1.0, 0.0});
  CHECK(nn::BCELoss()(p, y).item() == Approx((-std::log(0.8) - std::log(0.7)) / 2));
  CHECK(nn::BCELoss(nn::BCELossOptions().reduction(nn::Reduction::Sum))(p, y).item() ==
        Approx(-std::log(0.8) - std::log(0.7)));
  CHECK(nn::BCELoss().to_string() == "BCELoss(reduction=mean)");
}

TEST_CASE("nn: BCELoss clamps its logs at -100 like PyTorch, with finite gradients") {
  for (DType d : {DType::float64, DType::float32}) {
    Tensor p = tensor({0.0, 1.0, 0.0, 1.0}, TensorOptions(d).requires_grad(true));
    const Tensor y = tensor({1.0, 0.0, 0.0, 1.0}, d);
    const Tensor l = nn::binary_cross_entropy(p, y, nn::BCELossOptions().reduction(nn::Reduction::None));
    CHECK(l.to_vector() == std::vector<double>{100.0, 100.0, 0.0, 0.0});
    sum(l).backward();
    CHECK(all_finite(p.grad()));
  }
  // Inside the smooth region nothing is clamped: log(1e-30) = -69.08.
  CHECK(nn::binary_cross_entropy(f64({1e-30}), f64({1.0})).item() == Approx(69.07755278982137));
  // Below e^-100 the log is -100.
  CHECK(nn::binary_cross_entropy(f64({1e-50}), f64({1.0})).item() == Approx(100.0));
}

TEST_CASE("nn: BCELoss rejects values outside [0, 1], naming the first") {
  CHECK_THROWS_AS(nn::binary_cross_entropy(f64({0.5, 1.5}), f64({0.0, 1.0})), std::invalid_argument);
  CHECK_THROWS_WITH(nn::binary_cross_entropy(f64({0.5, 1.5}), f64({0.0, 1.0})),
                    Contains("got 1.5 at flat index 1") && Contains("BCEWithLogitsLoss"));
}

TEST_CASE("nn: BCEWithLogitsLoss equals BCELoss after a sigmoid, and is exact at z = 0") {
  const Tensor z = f64({-2.0, 0.0, 3.0, 10.0});
  const Tensor y = f64({0.0, 1.0, 1.0, 0.0});
  CHECK(nn::BCEWithLogitsLoss()(z, y).item() == Approx(nn::BCELoss()(sigmoid(z), y).item()));
  // Where sigmoid saturates to exactly 1.0 (z = 40 in float64), BCELoss can only report its clamp
  // (100); from logits the loss stays exact (40), and z = 800 does not overflow.
  CHECK(nn::BCELoss()(sigmoid(f64({40.0})), f64({0.0})).item() == Approx(100.0));
  CHECK(nn::binary_cross_entropy_with_logits(f64({40.0}), f64({0.0})).item() == Approx(40.0));
  CHECK(nn::binary_cross_entropy_with_logits(f64({800.0}), f64({0.0})).item() == Approx(800.0));
  // d/dz = (sigmoid(z) - y) / N; at z = 0 that is (0.5 - y) / N.
  Tensor zl = leaf({0.0, 0.0, 1.0});
  nn::binary_cross_entropy_with_logits(zl, f64({1.0, 0.0, 1.0})).backward();
  CHECK(zl.grad().at({0}) == Approx(-0.5 / 3));
  CHECK(zl.grad().at({1}) == Approx(0.5 / 3));
  CHECK(zl.grad().at({2}) == Approx((1 / (1 + std::exp(-1.0)) - 1) / 3));
}

TEST_CASE("nn: CrossEntropyLoss matches a hand computation from logits and class indices") {
  const Tensor x = f64({{2.0, 1.0, 0.1}, {0.5, 2.5, -1.0}});
  // l_0 = -2 + log(e^2 + e^1 + e^0.1) = 0.41703; l_1 = -2.5 + log(e^0.5 + e^2.5 + e^-1) = 0.15318.
  const double l0 = 0.41703001627783376, l1 = 0.15317820712228825;
  nn::CrossEntropyLoss ce;
  CHECK(ce(x, {0, 1}).item() == Approx((l0 + l1) / 2));
  CHECK(ce(x, std::vector<int64_t>{0, 1}).item() == Approx((l0 + l1) / 2));
  CHECK(ce(x, f64({0.0, 1.0})).item() == Approx((l0 + l1) / 2));  // an integer-valued Tensor
  using R = nn::Reduction;
  CHECK(nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions().reduction(R::Sum)).item() == Approx(l0 + l1));
  const Tensor per = nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions().reduction(R::None));
  REQUIRE(per.shape() == Shape{2});
  CHECK(per.at({1}) == Approx(l1));
  // One sample as [C] with one index.
  CHECK(ce(f64({2.0, 1.0, 0.1}), {0}).item() == Approx(l0));
  // Class probabilities instead of indices: -(0.25 log q_0 + 0.75 log q_1).
  CHECK(ce(f64({{2.0, 1.0, 0.1}}), f64({{0.25, 0.75, 0.0}})).item() == Approx(1.1670300162778338));
  CHECK(ce.to_string() == "CrossEntropyLoss(reduction=mean)");
}

TEST_CASE("nn: CrossEntropyLoss's gradient is (softmax - one_hot) / N") {
  Tensor x = leaf({{2.0, 1.0, 0.1}, {0.5, 2.5, -1.0}});
  nn::cross_entropy(x, {0, 1}).backward();
  const Tensor p = nn::softmax(x.detach(), 1);
  CHECK(x.grad().at({0, 0}) == Approx((p.at({0, 0}) - 1) / 2));
  CHECK(x.grad().at({0, 2}) == Approx(p.at({0, 2}) / 2));
  CHECK(x.grad().at({1, 1}) == Approx((p.at({1, 1}) - 1) / 2));
}

TEST_CASE("nn: CrossEntropyLoss is stable on logits of 1000") {
  for (DType d : {DType::float32, DType::float64}) {
    Tensor x = tensor({{1000.0, 1001.0}}, TensorOptions(d).requires_grad(true));
    const Tensor l = nn::cross_entropy(x, {1});
    CHECK(l.item() == Approx(0.31326168751822286).epsilon(1e-5));  // log(1 + e^-1)
    l.backward();
    CHECK(all_finite(x.grad()));
  }
}

// A logit of -inf masks a class out (a common idiom). The one-hot mask times log_softmax gave
// 0 * -inf = NaN there; PyTorch's gather gives a number, and so does the loss now.
TEST_CASE("nn: CrossEntropyLoss with class indices is finite when another class's logit is -inf") {
  Tensor x = tensor({{1.0, -INFINITY, 0.5}}, TensorOptions(DType::float64).requires_grad(true));
  const Tensor l = nn::cross_entropy(x, {0});
  CHECK(l.item() == Approx(std::log(1.0 + std::exp(-0.5))));  // PyTorch 1.13: 0.4741
  l.backward();
  const std::vector<double> g = x.grad().to_vector();
  CHECK(g[0] == Approx(-1.0 / (1.0 + std::exp(0.5))));
  CHECK(g[1] == 0.0);
  CHECK(g[2] == Approx(1.0 / (1.0 + std::exp(0.5))));
  // The target class itself at -inf: an infinite loss, as PyTorch.
  CHECK(nn::cross_entropy(tensor({{-INFINITY, 0.0}}, DType::float64), {0}).item() == INFINITY);
}

// The rule is written with Tensor ops: second derivatives through it check out.
TEST_CASE("nn: CrossEntropyLoss with class indices differentiates twice") {
  const Tensor x = tensor({{0.3, -1.2, 0.4}, {0.8, 0.05, -0.7}}, TensorOptions(DType::float64).requires_grad(true));
  using V = const std::vector<Tensor>&;
  const GradcheckReport r = gradgradcheck([](V in) { return nn::cross_entropy(in[0], {2, 0}); }, {x});
  INFO(r);
  CHECK(r.passed);
}

// BCE with logits at z = +inf and y < 1 gave inf - inf = NaN (PyTorch: inf).
TEST_CASE("nn: BCEWithLogitsLoss of an infinite logit is infinite, not NaN") {
  const Tensor l = nn::binary_cross_entropy_with_logits(tensor({INFINITY, INFINITY}, DType::float64),
                                                        tensor({0.0, 0.5}, DType::float64),
                                                        nn::BCELossOptions().reduction(nn::Reduction::None));
  CHECK(l.to_vector() == std::vector<double>{INFINITY, INFINITY});
}

TEST_CASE("nn: BCEWithLogitsLoss of a confident right logit is its tiny loss, not 0") {
  // ln(1 + e^-40) = 4.2483542552915889e-18 (log1p); ln of the rounded 1 + e^-40 is 0, which is what
  // PyTorch 1.13 returns. The gradient, -e^-40 / (1 + e^-40), is right either way.
  const Tensor z = tensor({40.0, -40.0}, DType::float64).set_requires_grad(true);
  const Tensor l = nn::binary_cross_entropy_with_logits(z, tensor({1.0, 0.0}, DType::float64),
                                                        nn::BCELossOptions().reduction(nn::Reduction::None));
  CHECK(l.to_vector()[0] == Approx(4.2483542552915889e-18).epsilon(1e-14).margin(0));
  CHECK(l.to_vector()[1] == Approx(4.2483542552915889e-18).epsilon(1e-14).margin(0));
  sum(l).backward();
  CHECK(z.grad().to_vector()[0] == Approx(-4.2483542552915889e-18).epsilon(1e-14).margin(0));
  CHECK(z.grad().to_vector()[1] == Approx(4.2483542552915889e-18).epsilon(1e-14).margin(0));
}

TEST_CASE("nn: CrossEntropyLoss errors name the index, the classes and the shapes") {
  const Tensor x = zeros({2, 3});
  CHECK_THROWS_AS(nn::cross_entropy(x, {0, 3}), std::out_of_range);
  CHECK_THROWS_WITH(nn::cross_entropy(x, {0, 3}), Contains("class index 3") && Contains("for 3 classes"));
  CHECK_THROWS_AS(nn::cross_entropy(x, {-1, 0}), std::out_of_range);
  CHECK_THROWS_WITH(nn::cross_entropy(x, tensor({0.0, 7.0})), Contains("class index 7"));
  // Beyond int64_t: named as given, no cast (which would be undefined behaviour).
  CHECK_THROWS_AS(nn::cross_entropy(x, tensor({0.0, 1e30}, DType::float64)), std::out_of_range);
  CHECK_THROWS_WITH(nn::cross_entropy(x, tensor({0.0, 1e30}, DType::float64)), Contains("class index 1e+30 (target 1)"));
  CHECK_THROWS_WITH(nn::cross_entropy(x, tensor({-1e19, 0.0}, DType::float64)), Contains("class index -1e+19 (target 0)"));
  CHECK_THROWS_AS(nn::cross_entropy(x, {0, 1, 2}), std::invalid_argument);
  CHECK_THROWS_WITH(nn::cross_entropy(x, {0, 1, 2}), Contains("[2, 3] holds 2 sample(s) but 3 class indices"));
  CHECK_THROWS_WITH(nn::cross_entropy(x, zeros({2, 2})), Contains("[2, 3]") && Contains("got [2, 2]"));
  CHECK_THROWS_WITH(nn::cross_entropy(x, tensor({0.0, 0.5})), Contains("target 1 is 0.5"));
  CHECK_THROWS_WITH(nn::cross_entropy(zeros({2, 3, 4}), {0, 1}),
                    Contains("[N, C] or [C] (or [N, C, d1, ...] with a Tensor target), got [2, 3, 4]"));
}

// The indexed loss is one node whose plain backward reads the softmax its forward kept, and whose
// recorded backward (create_graph) is Tensor ops: the two agree, for every reduction, for one
// sample as [C], in float32, and with a seed per sample (reduction none).
TEST_CASE("nn: CrossEntropyLoss with class indices: the plain and the recorded backward agree") {
  using R = nn::Reduction;
  const std::vector<double> v{0.3, -1.2, 0.4, 0.8, 0.05, -0.7, 2.0, 1.0, -3.0};
  for (DType d : {DType::float64, DType::float32}) {
    for (R r : {R::Mean, R::Sum, R::None}) {
      for (bool single : {false, true}) {
        CAPTURE(dtype_name(d), nn::reduction_name(r), single);
        const Shape shape = single ? Shape{3} : Shape{3, 3};
        const std::vector<double> values(v.begin(), v.begin() + (single ? 3 : 9));
        const std::vector<int64_t> target = single ? std::vector<int64_t>{1} : std::vector<int64_t>{2, 0, 1};
        const auto options = nn::CrossEntropyLossOptions().reduction(r);
        Tensor x = from_vector(values, shape, TensorOptions(d).requires_grad(true));
        const Tensor l = nn::cross_entropy(x, target, options);
        const bool per_sample = r == R::None && !single;
        const Tensor seed = per_sample ? from_vector({0.5, -2.0, 3.0}, {3}, TensorOptions(d)) : ones(l.shape(), TensorOptions(d));
        const Tensor recorded = grad({l}, {x}, {seed}, {.retain_graph = true, .create_graph = true})[0];
        l.backward(seed);
        const std::vector<double> a = x.grad().to_vector(), b = recorded.to_vector();
        REQUIRE(a.size() == b.size());
        const double tol = d == DType::float32 ? 1e-6 : 1e-14;
        for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).margin(tol));
        // Against the rule computed here: s_n (softmax(x_n) - onehot_n).
        const int64_t n = single ? 1 : 3;
        for (int64_t row = 0; row < n; ++row) {
          double total = 0;
          for (int j = 0; j < 3; ++j) total += std::exp(values[static_cast<size_t>(row * 3 + j)]);
          const double s = (r == R::Mean ? 1.0 / static_cast<double>(n) : 1.0) *
                           (per_sample ? std::vector<double>{0.5, -2.0, 3.0}[static_cast<size_t>(row)] : 1.0);
          for (int j = 0; j < 3; ++j) {
            const size_t k = static_cast<size_t>(row * 3 + j);
            const double want = s * (std::exp(values[k]) / total - (j == target[static_cast<size_t>(row)] ? 1.0 : 0.0));
            CHECK(a[k] == Approx(want).margin(tol));
          }
        }
      }
    }
  }
}

// Gradcheck's localisation replays a recorded op's forward on other values; the softmax that the
// recorded forward kept for the plain backward must stay that of the recorded input. (Reduction
// none: the result is the fused node itself.)
TEST_CASE("nn: CrossEntropyLoss's replays leave the recorded backward alone") {
  const auto none = nn::CrossEntropyLossOptions().reduction(nn::Reduction::None);
  Tensor x = leaf({{0.3, -1.2, 0.4}, {0.8, 0.05, -0.7}});
  Tensor l;
  {
    const detail::ReplayGuard replays;
    l = nn::cross_entropy(x, {2, 0}, none);
  }
  const detail::Node& node = *l.impl()->grad_fn;
  REQUIRE(node.has_replay());
  const Tensor other = f64({{5.0, -2.0, 1.0}, {-3.0, 4.0, 0.5}});
  const Tensor replayed = node.replay({other});
  const Tensor want = nn::cross_entropy(other, {2, 0}, none);
  CHECK(replayed.at({0}) == Approx(want.at({0})));
  CHECK(replayed.at({1}) == Approx(want.at({1})));
  CHECK(replayed.at({0}) != Approx(l.at({0})));
  sum(l).backward();
  const Tensor p = nn::softmax(x.detach(), 1);
  CHECK(x.grad().at({0, 2}) == Approx(p.at({0, 2}) - 1));
  CHECK(x.grad().at({1, 1}) == Approx(p.at({1, 1})));
  CHECK(x.grad().at({1, 0}) == Approx(p.at({1, 0}) - 1));
}

// A NaN logit makes its sample's loss NaN (as PyTorch), and only its own.
TEST_CASE("nn: CrossEntropyLoss with a NaN logit is NaN for that sample") {
  const Tensor x = f64({{0.3, NAN, 0.4}, {0.8, 0.05, -0.7}});
  const Tensor per = nn::cross_entropy(x, {2, 0}, nn::CrossEntropyLossOptions().reduction(nn::Reduction::None));
  CHECK(std::isnan(per.at({0})));
  CHECK(per.at({1}) == Approx(-0.8 + std::log(std::exp(0.8) + std::exp(0.05) + std::exp(-0.7))));
  CHECK(std::isnan(nn::cross_entropy(f64({{NAN, 0.3}}), {1}).item()));
}


TEST_CASE("nn: every loss passes the finite-difference check") {
  Tensor a = leaf({{0.3, -1.2}, {0.8, 0.05}});
  const Tensor t = f64({{0.0, 1.0}, {1.0, 0.0}});
  using R = nn::Reduction;
  for (R r : {R::Mean, R::Sum}) {
    for (bool half : {false, true})
      nn::testing::check_gradients([&] { return nn::mse_loss(a, t, nn::MSELossOptions().reduction(r).half(half)); },
                                   {a}, "MSELoss");
    nn::testing::check_gradients(
        [&] { return nn::binary_cross_entropy(sigmoid(a), t, nn::BCELossOptions().reduction(r)); }, {a}, "BCELoss");
    nn::testing::check_gradients(
        [&] { return nn::binary_cross_entropy_with_logits(a, t, nn::BCELossOptions().reduction(r)); }, {a},
        "BCEWithLogitsLoss");
    nn::testing::check_gradients(
        [&] { return nn::cross_entropy(a, {1, 0}, nn::CrossEntropyLossOptions().reduction(r)); }, {a},
        "CrossEntropyLoss (indices)");
    nn::testing::check_gradients(
        [&] { return nn::cross_entropy(a, f64({{0.3, 0.7}, {0.9, 0.1}}), nn::CrossEntropyLossOptions().reduction(r)); },
        {a}, "CrossEntropyLoss (probabilities)");
  }
  // The target's gradient too, where it has one (MSE, BCE and cross-entropy on probabilities are
  // differentiable in the target).
  Tensor target = leaf({{0.2, 0.9}, {0.6, 0.4}});
  nn::testing::check_gradients([&] { return nn::cross_entropy(a, target); }, {a, target},
                               "CrossEntropyLoss (probabilities, target)");
  nn::testing::check_gradients([&] { return nn::mse_loss(a, target); }, {a, target}, "MSELoss (target)");
  nn::testing::check_gradients([&] { return nn::binary_cross_entropy(sigmoid(a), target); }, {a, target},
                               "BCELoss (target)");
}

// torch's K-dimensional form: logits [N, C, d1, ...], every position a sample.
TEST_CASE("nn: CrossEntropyLoss over [N, C, T] logits averages every position, as torch's") {
  const int64_t N = 2, C = 3, T = 4;
  std::vector<double> x(static_cast<size_t>(N * C * T));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(1.7 * static_cast<double>(i)) * 2.0;
  const std::vector<double> idx = {0, 2, 1, 1, 2, 0, 0, 1};  // [N, T]
  const Tensor logits = from_vector(x, {N, C, T}, TensorOptions(DType::float64).requires_grad(true));
  const Tensor target = from_vector(idx, {N, T}, DType::float64);
  // By hand: -log softmax over the class dim at each (n, t).
  std::vector<double> per(static_cast<size_t>(N * T));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t) {
      double m = -INFINITY, z = 0;
      for (int64_t c = 0; c < C; ++c) m = std::max(m, x[static_cast<size_t>((n * C + c) * T + t)]);
      for (int64_t c = 0; c < C; ++c) z += std::exp(x[static_cast<size_t>((n * C + c) * T + t)] - m);
      const int64_t k = static_cast<int64_t>(idx[static_cast<size_t>(n * T + t)]);
      per[static_cast<size_t>(n * T + t)] = m + std::log(z) - x[static_cast<size_t>((n * C + k) * T + t)];
    }
  double mean = 0;
  for (double v : per) mean += v / static_cast<double>(per.size());
  CHECK(nn::cross_entropy(logits, target).item() == Approx(mean).epsilon(1e-14));
  const Tensor none = nn::cross_entropy(logits, target, nn::CrossEntropyLossOptions().reduction(nn::Reduction::None));
  CHECK(none.shape() == Shape{N, T});
  const std::vector<double> got = none.to_vector();
  for (size_t i = 0; i < per.size(); ++i) CHECK(got[i] == Approx(per[i]).epsilon(1e-14));
  // Probabilities of the input's shape: one-hot ones give the same loss.
  std::vector<double> onehot(x.size(), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t)
      onehot[static_cast<size_t>((n * C + static_cast<int64_t>(idx[static_cast<size_t>(n * T + t)])) * T + t)] = 1.0;
  CHECK(nn::cross_entropy(logits, from_vector(onehot, {N, C, T}, DType::float64)).item() == Approx(mean).epsilon(1e-14));
  // Gradients, first and second order, against finite differences.
  using V = const std::vector<Tensor>&;
  const GradcheckReport r = gradgradcheck([&](V in) { return nn::cross_entropy(in[0], target); }, {logits});
  INFO(r);
  CHECK(r.passed);
  CHECK_THROWS_WITH(nn::cross_entropy(logits, zeros({N, C}, DType::float64)),
                    Contains("for input [2, 3, 4] (N, C, d1, ...) the target must be class indices of shape [2, 4] "
                             "or probabilities of shape [2, 3, 4], got [2, 3]"));
  CHECK_THROWS_WITH(nn::cross_entropy(logits, from_vector({0, 2, 1, 1, 2, 0, 3, 1}, {N, T}, DType::float64)),
                    Contains("class index 3 (target 6) is out of range for 3 classes"));
}
