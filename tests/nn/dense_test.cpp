// nn::Dense: y = x @ W^T + b against hand-computed values, options, errors, seeding, gradients.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/dense.h"

using namespace chainrule;
using Catch::Contains;

namespace chainrule::nn::testing {
// Defined in tests/nn/module_test.cpp.
void check_gradients(const std::function<Tensor()>& loss, const std::vector<Tensor>& params, const std::string& what);
}  // namespace chainrule::nn::testing

namespace {

nn::Dense hand_layer(bool bias = true) {
  return nn::Dense(nn::DenseOptions(3, 2)
                       .bias(bias)
                       .init(nn::Init::values({{0.1, -0.2, 0.3}, {-0.4, 0.5, 0.6}}))
                       .bias_init(nn::Init::values({0.05, -0.1}))
                       .dtype(DType::float64));
}

}  // namespace

TEST_CASE("nn: Dense computes x @ W^T + b with W of shape [out, in]") {
  nn::Dense layer = hand_layer();
  CHECK(layer.weight().shape() == Shape{2, 3});
  CHECK(layer.bias().shape() == Shape{2});
  const Tensor x = tensor({{0.5, -1.0, 2.0}, {1.5, 0.25, -0.5}}, DType::float64);
  const Tensor y = layer.forward(x);
  REQUIRE(y.shape() == Shape{2, 2});
  // Row 0: 0.05 - 0.2 + 0.6 + 0.05 = 0.9 ... by hand, term by term.
  CHECK(y.at({0, 0}) == Approx(0.1 * 0.5 + -0.2 * -1.0 + 0.3 * 2.0 + 0.05));
  CHECK(y.at({0, 1}) == Approx(-0.4 * 0.5 + 0.5 * -1.0 + 0.6 * 2.0 - 0.1));
  CHECK(y.at({1, 0}) == Approx(0.0).margin(1e-15));
  CHECK(y.at({1, 1}) == Approx(-0.875));
}

TEST_CASE("nn: Dense accepts a 1-D input and batched leading dims") {
  nn::Dense layer = hand_layer();
  const Tensor y = layer.forward(tensor({0.5, -1.0, 2.0}, DType::float64));
  REQUIRE(y.shape() == Shape{2});
  CHECK(y.at({0}) == Approx(0.9));
  CHECK(y.at({1}) == Approx(0.4));
  CHECK(layer.forward(zeros({4, 5, 3}, DType::float64)).shape() == Shape{4, 5, 2});
}

TEST_CASE("nn: Dense without bias has only a weight") {
  nn::Dense layer = hand_layer(false);
  CHECK(layer.parameters().size() == 1);
  CHECK_FALSE(layer.bias().defined());
  CHECK(layer.named_parameters()[0].first == "weight");
  const Tensor y = layer.forward(tensor({{0.5, -1.0, 2.0}}, DType::float64));
  CHECK(y.at({0, 0}) == Approx(0.85));
  CHECK(layer.extra_repr() == "in_features=3, out_features=2, bias=false, dtype=float64");
}

TEST_CASE("nn: the lecture's hidden layer gives the input sums 0.614, -0.028, 2.01") {
  // The slides write -0.026 for H2's input sum; -0.97*0.4 + -0.80*-0.7 - 0.2 is -0.028 (both give
  // f = 0.49 to the slides' two decimals).
  nn::Dense hidden(nn::DenseOptions(2, 3).dtype(DType::float64));
  nn::set_values(hidden.weight(), {{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}});
  nn::set_values(hidden.bias(), {0.1, -0.2, 0.4});
  const Tensor z = hidden.forward(tensor({{-0.97, -0.80}}, DType::float64));
  CHECK(z.at({0, 0}) == Approx(0.614));
  CHECK(z.at({0, 1}) == Approx(-0.028));
  CHECK(z.at({0, 2}) == Approx(2.01));
}

TEST_CASE("nn: DenseOptions are validated with the bad value in the message") {
  CHECK_THROWS_AS(nn::Dense(nn::DenseOptions(0, 3)), std::invalid_argument);
  CHECK_THROWS_WITH(nn::Dense(nn::DenseOptions(0, 3)), Contains("in_features must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::Dense(nn::DenseOptions(2, -4)), Contains("out_features must be >= 1, got -4"));
  // A fan-free initialiser with the wrong explicit values is caught too.
  CHECK_THROWS_WITH(nn::Dense(nn::DenseOptions(2, 2).init(nn::Init::values({1.0, 2.0}))),
                    Contains("shape [2] but the tensor has shape [2, 2]"));
}

TEST_CASE("nn: Dense rejects inputs of the wrong width or dtype, naming shapes and dtypes") {
  nn::Dense layer(nn::DenseOptions(3, 2));
  CHECK_THROWS_AS(layer.forward(zeros({4, 2})), std::invalid_argument);
  CHECK_THROWS_WITH(layer.forward(zeros({4, 2})), Contains("expected an input of shape [..., 3]") && Contains("[4, 2]"));
  CHECK_THROWS_WITH(layer.forward(zeros({4, 3}, DType::float64)), Contains("input is float64") && Contains("float32"));
}

TEST_CASE("nn: Dense initialisation is reproducible from a seed or a generator") {
  const auto opts = nn::DenseOptions(4, 5).init(nn::Init::uniform(-1, 1)).bias_init(nn::Init::uniform(-1, 1));
  nn::Dense a(nn::DenseOptions(opts).seed(7)), b(nn::DenseOptions(opts).seed(7)), c(nn::DenseOptions(opts).seed(8));
  CHECK(a.weight().to_vector() == b.weight().to_vector());
  CHECK(a.bias().to_vector() == b.bias().to_vector());
  CHECK(a.weight().to_vector() != c.weight().to_vector());
  for (double w : a.weight().to_vector()) CHECK((w >= -1 && w < 1));

  Generator g1(3), g2(3);
  nn::Dense d(opts, g1), e(opts, g2);
  CHECK(d.weight().to_vector() == e.weight().to_vector());
  nn::Dense f(opts, g1);  // the generator moved on: a different layer
  CHECK(f.weight().to_vector() != d.weight().to_vector());

  nn::manual_seed(11);
  nn::Dense h(opts);
  nn::manual_seed(11);
  nn::Dense i(opts);
  CHECK(h.weight().to_vector() == i.weight().to_vector());
}

TEST_CASE("nn: Dense's default initialisation is torch.nn.Linear's U(-1/sqrt(in), 1/sqrt(in))") {
  nn::Dense layer(nn::DenseOptions(16, 32).seed(5));
  const double bound = 1.0 / 4.0;
  for (double w : layer.weight().to_vector()) CHECK(std::abs(w) <= bound);
  for (double b : layer.bias().to_vector()) CHECK(std::abs(b) <= bound);
}

TEST_CASE("nn: Dense passes the finite-difference check for its weight, bias and input") {
  nn::Dense layer(nn::DenseOptions(3, 2).dtype(DType::float64).seed(3));
  Tensor x = tensor({{0.5, -1.0, 2.0}, {1.5, 0.25, -0.5}, {0.0, 0.3, -0.8}},
                    TensorOptions(DType::float64).requires_grad(true));
  const Tensor w = tensor({{1.0, -2.0}, {0.5, 3.0}, {-1.5, 0.25}}, DType::float64);
  std::vector<Tensor> params = layer.parameters();
  params.push_back(x);
  nn::testing::check_gradients([&] { return sum(tanh(layer.forward(x)) * w); }, params, "Dense");
}

TEST_CASE("nn: a moved-from Dense says so instead of naming an undefined tensor") {
  nn::Dense d(nn::DenseOptions(2, 3).seed(1));
  nn::Dense moved(std::move(d));
  CHECK(moved.forward(zeros({1, 2})).shape() == Shape{1, 3});
  CHECK_THROWS_WITH(d.forward(zeros({1, 2})),  // NOLINT(bugprone-use-after-move): the case tested
                    Catch::Contains("Dense::forward: this Dense has no weight (it was moved from)"));
}

TEST_CASE("nn: a Dense weight is frozen through its accessor, as linear->weight.set_requires_grad(false)") {
  // weight() returns a const reference to the handle; set_requires_grad and zero_grad change the
  // tensor it names, so they work through it (they did not compile: a copy of the handle was needed).
  auto d = std::make_shared<nn::Dense>(nn::DenseOptions(2, 3));
  d->weight().set_requires_grad(false);
  CHECK_FALSE(d->weight().requires_grad());
  const Tensor x = ones({4, 2});
  sum(d->forward(x)).backward();
  CHECK_FALSE(d->weight().grad().defined());
  REQUIRE(d->bias().grad().defined());
  CHECK(d->bias().grad().to_vector() == std::vector<double>{4, 4, 4});
  d->bias().zero_grad();
  CHECK_FALSE(d->bias().grad().defined());
}
