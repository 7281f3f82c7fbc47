// Activations: hand-computed values, stability of softmax / log-softmax on large logits, errors,
// printing and the finite-difference check.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "tests/autograd/testing.h"
#include "nn/activation.h"

using namespace chainrule;
using Catch::Contains;

namespace chainrule::nn::testing {
// Defined in tests/nn/module_test.cpp.
void check_gradients(const std::function<Tensor()>& loss, const std::vector<Tensor>& params, const std::string& what);
}  // namespace chainrule::nn::testing

namespace {

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

Tensor leaf(const NestedList& values) { return tensor(values, TensorOptions(DType::float64).requires_grad(true)); }

}  // namespace

TEST_CASE("nn: Sigmoid, Tanh and ReLU apply their op elementwise") {
  const Tensor x = tensor({{-0.5, 0.0, 0.5}}, DType::float64);
  const Tensor s = nn::Sigmoid().forward(x);
  CHECK(s.at({0, 0}) == Approx(0.3775406687981454));
  CHECK(s.at({0, 1}) == Approx(0.5));
  CHECK(s.at({0, 2}) == Approx(1 - 0.3775406687981454));
  const Tensor t = nn::Tanh().forward(x);
  CHECK(t.at({0, 0}) == Approx(-0.46211715726000974));
  CHECK(t.at({0, 2}) == Approx(0.46211715726000974));
  const Tensor r = nn::ReLU().forward(x);
  CHECK(r.to_vector() == std::vector<double>{0.0, 0.0, 0.5});
  // The lecture's f(-1.55) = 0.18 (output node of the first observation).
  CHECK(nn::Sigmoid().forward(tensor({-1.5496648102183421}, DType::float64)).item() == Approx(0.1751346852543504));
}

TEST_CASE("nn: Softmax and LogSoftmax match a hand computation") {
  const Tensor x = tensor({{1.0, 2.0, 3.0}}, DType::float64);
  const Tensor p = nn::Softmax(1).forward(x);
  CHECK(p.at({0, 0}) == Approx(0.09003057317038046));
  CHECK(p.at({0, 1}) == Approx(0.24472847105479764));
  CHECK(p.at({0, 2}) == Approx(0.6652409557748218));
  const Tensor lp = nn::LogSoftmax(-1).forward(x);
  CHECK(lp.at({0, 0}) == Approx(-2.40760596444438));
  CHECK(lp.at({0, 2}) == Approx(-0.40760596444438046));
}

TEST_CASE("nn: Softmax and LogSoftmax of an empty tensor are empty, as PyTorch's") {
  // max over the empty dim threw "max: no elements", naming neither softmax nor the input.
  CHECK(nn::softmax(zeros({0, 3}), 0).shape() == Shape{0, 3});
  CHECK(nn::log_softmax(zeros({2, 0}), 1).shape() == Shape{2, 0});
}

TEST_CASE("nn: Softmax normalises along the chosen dim only") {
  const Tensor x = tensor({{1.0, 5.0}, {-2.0, 0.5}, {3.0, 3.0}});
  const Tensor rows = nn::softmax(x, 1);
  const Tensor cols = nn::softmax(x, 0);
  for (int64_t i = 0; i < 3; ++i) CHECK(rows.at({i, 0}) + rows.at({i, 1}) == Approx(1.0));
  for (int64_t j = 0; j < 2; ++j) CHECK(cols.at({0, j}) + cols.at({1, j}) + cols.at({2, j}) == Approx(1.0));
  CHECK(rows.at({2, 0}) == Approx(0.5));
}

TEST_CASE("nn: Softmax and LogSoftmax stay finite on logits of 1000 (float32 and float64)") {
  for (DType d : {DType::float32, DType::float64}) {
    Tensor x = tensor({{1000.0, 1001.0}, {-1000.0, 1000.0}}, TensorOptions(d).requires_grad(true));
    const Tensor p = nn::softmax(x, 1);
    const Tensor lp = nn::log_softmax(x, 1);
    REQUIRE(all_finite(p));
    REQUIRE(all_finite(lp));
    CHECK(p.at({0, 0}) == Approx(0.2689414213699951).epsilon(1e-6));
    CHECK(p.at({0, 1}) == Approx(0.7310585786300049).epsilon(1e-6));
    CHECK(lp.at({0, 0}) == Approx(-1.3132616875182228).epsilon(1e-6));
    CHECK(lp.at({0, 1}) == Approx(-0.3132616875182228).epsilon(1e-6));
    CHECK(lp.at({1, 0}) == Approx(-2000.0));  // finite: no log(0)
    CHECK(p.at({1, 0}) == 0.0);
    sum(lp * tensor({{1.0, 0.0}, {1.0, 0.0}}, d)).backward();
    CHECK(all_finite(x.grad()));
  }
}

TEST_CASE("nn: Softmax rejects a bad dim, and takes a 0-d input as one element along dim 0 or -1") {
  CHECK_THROWS_AS(nn::softmax(zeros({2, 3}), 2), std::out_of_range);
  CHECK_THROWS_AS(nn::log_softmax(zeros({2, 3}), -3), std::out_of_range);
  // As PyTorch: softmax of a 0-d tensor is 1, log_softmax 0, and their gradients 0.
  const Tensor x = tensor(2.5, TensorOptions(DType::float64).requires_grad());
  const Tensor p = nn::softmax(x, 0), lp = nn::log_softmax(x, -1);
  CHECK(p.dim() == 0);
  CHECK(p.item() == 1.0);
  CHECK(lp.dim() == 0);
  CHECK(lp.item() == 0.0);
  (p * 3.0 + lp * 5.0).backward();
  CHECK(x.grad().item() == 0.0);
  CHECK_THROWS_WITH(nn::softmax(Tensor(1.0), 1), Contains("softmax"));
  CHECK_THROWS_AS(nn::log_softmax(Tensor(1.0), -2), std::out_of_range);
}

TEST_CASE("nn: activations print their names (and dim)") {
  CHECK(nn::Sigmoid().to_string() == "Sigmoid()");
  CHECK(nn::Tanh().to_string() == "Tanh()");
  CHECK(nn::ReLU().to_string() == "ReLU()");
  CHECK(nn::Softmax(1).to_string() == "Softmax(dim=1)");
  CHECK(nn::LogSoftmax(-1).to_string() == "LogSoftmax(dim=-1)");
  CHECK(nn::Sigmoid().parameters().empty());
}

TEST_CASE("nn: activations pass the finite-difference check") {
  const Tensor w = tensor({{0.3, -1.0, 2.0}, {1.5, 0.5, -0.25}}, DType::float64);
  // ReLU away from its kink at 0 (relu'(0) = 0 by convention; differences straddle it).
  Tensor x = leaf({{-0.7, 0.2, 1.3}, {0.9, -1.6, 0.05}});
  nn::testing::check_gradients([&] { return sum(nn::Sigmoid().forward(x) * w); }, {x}, "Sigmoid");
  nn::testing::check_gradients([&] { return sum(nn::Tanh().forward(x) * w); }, {x}, "Tanh");
  nn::testing::check_gradients([&] { return sum(nn::ReLU().forward(x) * w); }, {x}, "ReLU");
  nn::testing::check_gradients([&] { return sum(nn::Softmax(1).forward(x) * w); }, {x}, "Softmax(1)");
  nn::testing::check_gradients([&] { return sum(nn::Softmax(0).forward(x) * w); }, {x}, "Softmax(0)");
  nn::testing::check_gradients([&] { return sum(nn::LogSoftmax(1).forward(x) * w); }, {x}, "LogSoftmax(1)");
  // Ties at the maximum: the detached max contributes nothing, so ties are harmless.
  Tensor tied = leaf({{2.0, 2.0, -1.0}});
  nn::testing::check_gradients([&] { return sum(nn::LogSoftmax(1).forward(tied) * w.detach()); }, {tied},
                               "LogSoftmax with tied maxima");
}

namespace {

// The formulas on one double, for the tensor versions to match.
double leaky(double x, double s) { return x > 0 ? x : s * x; }
double elu_of(double x, double a) { return x > 0 ? x : a * std::expm1(x); }
double softplus_of(double x, double beta, double threshold) {
  return beta * x > threshold ? x : std::log1p(std::exp(beta * x)) / beta;
}
double silu_of(double x) { return x / (1 + std::exp(-x)); }
double gelu_of(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh_of(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

}  // namespace

TEST_CASE("nn: LeakyReLU, ELU, Softplus, SiLU and GELU match their formulas") {
  const std::vector<double> xs = {-30.0, -2.5, -0.4, 0.0, 0.3, 1.0, 4.0, 25.0};
  const Tensor x = from_vector(xs, {8}, DType::float64);
  const std::vector<double> lr = nn::LeakyReLU(0.2).forward(x).to_vector(), el = nn::ELU(1.5).forward(x).to_vector(),
                            sp = nn::Softplus().forward(x).to_vector(), sp2 = nn::Softplus(2, 5).forward(x).to_vector(),
                            si = nn::SiLU().forward(x).to_vector(), ge = nn::GELU().forward(x).to_vector(),
                            gt = nn::GELU(nn::GeluApproximate::tanh).forward(x).to_vector();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    INFO("x = " << xs[i]);
    CHECK(lr[i] == Approx(leaky(xs[i], 0.2)).epsilon(1e-14));
    CHECK(el[i] == Approx(elu_of(xs[i], 1.5)).epsilon(1e-14).margin(1e-16));
    CHECK(sp[i] == Approx(softplus_of(xs[i], 1, 20)).epsilon(1e-13).margin(1e-15));
    CHECK(sp2[i] == Approx(softplus_of(xs[i], 2, 5)).epsilon(1e-13).margin(1e-15));
    CHECK(si[i] == Approx(silu_of(xs[i])).epsilon(1e-14).margin(1e-16));
    CHECK(ge[i] == Approx(gelu_of(xs[i])).epsilon(1e-14).margin(1e-16));
    CHECK(gt[i] == Approx(gelu_tanh_of(xs[i])).epsilon(1e-14).margin(1e-16));
  }
  CHECK(nn::leaky_relu(x).to_vector()[1] == Approx(-0.025));  // the default slope, 0.01
  CHECK(nn::LeakyReLU().to_string() == "LeakyReLU(negative_slope=0.01)");
  CHECK(nn::ELU().to_string() == "ELU(alpha=1)");
  CHECK(nn::Softplus(2, 5).to_string() == "Softplus(beta=2, threshold=5)");
  CHECK(nn::SiLU().to_string() == "SiLU()");
  CHECK(nn::GELU().to_string() == "GELU(approximate='none')");
  CHECK(nn::GELU(nn::GeluApproximate::tanh).to_string() == "GELU(approximate='tanh')");
  // At 1.0, x Phi(x) = 0.8413447460685429 and the tanh form 0.8411919906082768: the forms differ.
  CHECK(nn::gelu(tensor({1.0}, DType::float64)).item() == Approx(0.8413447460685429).epsilon(1e-15));
  CHECK(nn::gelu(tensor({1.0}, DType::float64), nn::GeluApproximate::tanh).item() ==
        Approx(0.8411919906082768).epsilon(1e-15));
  CHECK_THROWS_WITH(nn::Softplus(0), Contains("Softplus: beta must be > 0, got 0"));
  CHECK_THROWS_WITH(nn::softplus(x, -1), Contains("softplus: beta must be > 0, got -1"));
  CHECK_THROWS_WITH(nn::elu(Tensor()), Contains("elu: the input is undefined"));
}

TEST_CASE("nn: the piecewise activations' gradients at 0, at large |x| and at NaN") {
  const auto grad_at = [](const std::function<Tensor(const Tensor&)>& f, double v) {
    const Tensor x = leaf({v});
    sum(f(x)).backward();
    return x.grad().item();
  };
  // At the kink, PyTorch's conventions: the negative branch's slope.
  CHECK(grad_at([](const Tensor& x) { return nn::leaky_relu(x, 0.2); }, 0.0) == Approx(0.2));
  CHECK(grad_at([](const Tensor& x) { return nn::elu(x, 1.5); }, 0.0) == Approx(1.5));
  CHECK(grad_at([](const Tensor& x) { return nn::softplus(x); }, 0.0) == Approx(0.5));
  // Large |x|: finite values and gradients (the untaken branch is never fed e^1000).
  for (double v : {-1000.0, 1000.0}) {
    INFO("x = " << v);
    const std::vector<std::pair<std::function<Tensor(const Tensor&)>, double>> cases = {
        {[](const Tensor& x) { return nn::elu(x); }, 0.0},
        {[](const Tensor& x) { return nn::softplus(x); }, 0.0},
        {[](const Tensor& x) { return nn::softplus(x, 0.5, 1e6); }, 0.0},  // no linear region
        {[](const Tensor& x) { return nn::silu(x); }, 0.0},
        {[](const Tensor& x) { return nn::gelu(x); }, 0.0},
        {[](const Tensor& x) { return nn::gelu(x, nn::GeluApproximate::tanh); }, 0.0},
        {[](const Tensor& x) { return nn::leaky_relu(x); }, 0.01}};
    for (const auto& [f, negative] : cases) {
      const double g = grad_at(f, v);
      CHECK(std::isfinite(g));
      CHECK(g == Approx(v > 0 ? 1.0 : negative).margin(1e-200));  // softplus(beta 0.5): e^-500
    }
  }
  // NaN passes through each.
  const Tensor nan = tensor({NAN}, DType::float64);
  for (const Tensor& y : {nn::leaky_relu(nan), nn::elu(nan), nn::softplus(nan), nn::silu(nan), nn::gelu(nan),
                          nn::gelu(nan, nn::GeluApproximate::tanh)})
    CHECK(std::isnan(y.item()));
}

TEST_CASE("nn: LeakyReLU, ELU, Softplus, SiLU and GELU pass the finite-difference checks, twice") {
  // Away from the kinks at 0 (differences straddling one see both slopes).
  const Tensor x = leaf({{-2.1, -0.3, 0.4}, {1.7, -0.8, 3.2}});
  const Tensor w = tensor({{0.3, -1.0, 2.0}, {1.5, 0.5, -0.25}}, DType::float64);
  using V = const std::vector<Tensor>&;
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> cases = {
      {"leaky_relu", [](const Tensor& t) { return nn::leaky_relu(t, 0.1); }},
      {"elu", [](const Tensor& t) { return nn::elu(t, 0.7); }},
      {"softplus", [](const Tensor& t) { return nn::softplus(t, 1.5, 4); }},  // 3.2 is in the linear region
      {"silu", [](const Tensor& t) { return nn::silu(t); }},
      {"gelu", [](const Tensor& t) { return nn::gelu(t); }},
      {"gelu tanh", [](const Tensor& t) { return nn::gelu(t, nn::GeluApproximate::tanh); }}};
  for (const auto& [name, f] : cases) {
    INFO(name);
    const auto g = [&, f = f](V in) { return sum(f(in[0]) * w); };
    testing::check_first_and_second_order(g, {x});
  }
}
