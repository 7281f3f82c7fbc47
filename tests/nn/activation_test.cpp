// Activations: hand-computed values, stability of softmax / log-softmax on large logits, errors,
// printing and the finite-difference check.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

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
