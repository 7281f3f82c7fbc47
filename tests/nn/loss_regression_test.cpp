// L1Loss, SmoothL1Loss and HuberLoss (nn/loss_regression.h): values against plain loops, torch's
// conventions at the kink and at the joint, first and second derivatives, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/loss.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using R = nn::Reduction;
using V = const std::vector<Tensor>&;

namespace {

// Per-element losses by plain loops on doubles: torch's formulas, written out.
double l1_of(double d) { return std::abs(d); }
double smooth_l1_of(double d, double beta) {
  if (beta == 0.0) return std::abs(d);
  return std::abs(d) < beta ? 0.5 * d * d / beta : std::abs(d) - 0.5 * beta;
}
double huber_of(double d, double delta) {
  return std::abs(d) < delta ? 0.5 * d * d : delta * (std::abs(d) - 0.5 * delta);
}

double reduced(const std::vector<double>& l, R r) {
  double s = 0;
  for (double v : l) s += v;
  return r == R::Mean ? s / static_cast<double>(l.size()) : s;
}

// Compares loss(x, y) with the per-element `of` over x - y, in both dtypes and every reduction.
void check_values(const std::function<Tensor(const Tensor&, const Tensor&, R)>& loss,
                  const std::function<double(double)>& of) {
  const std::vector<double> x{0.3, -2.5, 1.0, 0.05, 4.0, -0.7}, y{0.1, 0.5, 1.0, -0.4, 0.0, -1.9};
  std::vector<double> want;
  for (size_t i = 0; i < x.size(); ++i) want.push_back(of(x[i] - y[i]));
  for (DType d : {DType::float64, DType::float32}) {
    CAPTURE(dtype_name(d));
    const double tol = d == DType::float32 ? 1e-6 : 1e-14;
    const Tensor xt = from_vector(x, {2, 3}, d), yt = from_vector(y, {2, 3}, d);
    const Tensor none = loss(xt, yt, R::None);
    CHECK(none.shape() == Shape{2, 3});
    CHECK(none.dtype() == d);
    const std::vector<double> got = none.to_vector();
    for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(tol).margin(tol));
    for (R r : {R::Mean, R::Sum}) {
      CAPTURE(nn::reduction_name(r));
      const Tensor l = loss(xt, yt, r);
      CHECK(l.shape() == Shape{});
      CHECK(l.item() == Approx(reduced(want, r)).epsilon(tol));
    }
  }
}

// d^2 loss / dx^2 at one element x (target 0, reduction sum), through create_graph.
double second_derivative(const std::function<Tensor(const Tensor&, const Tensor&)>& loss, double x) {
  const Tensor xt = tensor({x}, TensorOptions(DType::float64).requires_grad(true));
  const Tensor g = grad({loss(xt, zeros({1}, DType::float64))}, {xt}, {}, {.create_graph = true})[0];
  // A gradient that does not depend on x (abs's sign(x)) is not recorded: its derivative is 0.
  return g.requires_grad() ? grad({sum(g)}, {xt})[0].item() : 0.0;
}

double first_derivative(const std::function<Tensor(const Tensor&, const Tensor&)>& loss, double x) {
  const Tensor xt = tensor({x}, TensorOptions(DType::float64).requires_grad(true));
  loss(xt, zeros({1}, DType::float64)).backward();
  return xt.grad().item();
}

// Inputs away from 0 and from +-k (the kink and the joints), in float64 and float32.
std::vector<Tensor> smooth_points(DType d) {
  return {tensor({{0.3, -2.5, 1.4}, {0.05, 4.0, -0.7}}, TensorOptions(d).requires_grad(true)),
          tensor({{0.1, 0.5, 0.2}, {-0.4, 0.0, -1.9}}, TensorOptions(d).requires_grad(true))};
}

}  // namespace

TEST_CASE("nn: L1Loss is |x - y| with torch's reductions", "[loss]") {
  check_values([](const Tensor& x, const Tensor& y, R r) { return nn::l1_loss(x, y, nn::L1LossOptions().reduction(r)); },
               l1_of);
  // By hand: (|0.5 - 1| + |2 - 2|) / 2.
  CHECK(nn::L1Loss()(tensor({0.5, 2.0}), tensor({1.0, 2.0})).item() == Approx(0.25));
  CHECK(nn::L1Loss().to_string() == "L1Loss(reduction=mean)");
  CHECK(nn::L1Loss(nn::L1LossOptions().reduction(R::Sum)).to_string() == "L1Loss(reduction=sum)");
}

// torch: d|x - y|/dx = sign(x - y), and sign(0) = 0.
TEST_CASE("nn: L1Loss's gradient is sign(x - y), 0 at the kink as torch", "[loss]") {
  Tensor x = tensor({0.5, 2.0, -1.0}, TensorOptions(DType::float64).requires_grad(true));
  nn::l1_loss(x, tensor({1.0, 2.0, -3.0}, DType::float64), nn::L1LossOptions().reduction(R::Sum)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{-1.0, 0.0, 1.0});
  for (DType d : {DType::float64, DType::float32}) {
    const std::vector<Tensor> in = smooth_points(d);
    for (R r : {R::Mean, R::Sum, R::None})
      testing::check_first_and_second_order(
          [r](V v) { return nn::l1_loss(v[0], v[1], nn::L1LossOptions().reduction(r)); }, in);
  }
}

TEST_CASE("nn: SmoothL1Loss matches torch's formula for several beta", "[loss]") {
  for (double beta : {0.5, 1.0, 2.0, 0.0}) {
    CAPTURE(beta);
    check_values(
        [beta](const Tensor& x, const Tensor& y, R r) {
          return nn::smooth_l1_loss(x, y, nn::SmoothL1LossOptions().beta(beta).reduction(r));
        },
        [beta](double d) { return smooth_l1_of(d, beta); });
  }
  // By hand (the header's example): (0.5 * 0.04 / 0.5 + (3 - 0.25)) / 2 = 1.395.
  CHECK(nn::SmoothL1Loss(nn::SmoothL1LossOptions().beta(0.5))(tensor({0.2, 3.0}), tensor({0.0, 0.0})).item() ==
        Approx(1.395));
  CHECK(nn::SmoothL1LossOptions().beta() == 1.0);  // torch's default
  CHECK(nn::SmoothL1Loss().to_string() == "SmoothL1Loss(reduction=mean, beta=1)");
  CHECK(nn::SmoothL1Loss(nn::SmoothL1LossOptions().beta(0.25).reduction(R::None)).to_string() ==
        "SmoothL1Loss(reduction=none, beta=0.25)");
}

TEST_CASE("nn: HuberLoss matches torch's formula for several delta", "[loss]") {
  for (double delta : {0.5, 1.0, 2.0}) {
    CAPTURE(delta);
    check_values(
        [delta](const Tensor& x, const Tensor& y, R r) {
          return nn::huber_loss(x, y, nn::HuberLossOptions().delta(delta).reduction(r));
        },
        [delta](double d) { return huber_of(d, delta); });
    // Huber(delta) = delta * SmoothL1(beta = delta).
    const Tensor x = tensor({0.3, -2.5, 1.0, 4.0}, DType::float64), y = zeros({4}, DType::float64);
    CHECK(nn::huber_loss(x, y, nn::HuberLossOptions().delta(delta)).item() ==
          Approx(delta * nn::smooth_l1_loss(x, y, nn::SmoothL1LossOptions().beta(delta)).item()));
  }
  // By hand (the header's example): (0.5 * 1 + 2 * (5 - 1)) / 2 = 4.25.
  CHECK(nn::HuberLoss(nn::HuberLossOptions().delta(2.0))(tensor({1.0, -5.0}), tensor({0.0, 0.0})).item() ==
        Approx(4.25));
  CHECK(nn::HuberLossOptions().delta() == 1.0);
  CHECK(nn::HuberLoss(nn::HuberLossOptions().delta(1.5)).to_string() == "HuberLoss(reduction=mean, delta=1.5)");
}

// The joint |d| = k belongs to the linear branch (torch tests |d| < k): the first derivative is
// continuous there (+-1 for smooth L1, +-delta for Huber), the second is 0 at and beyond it and
// 1/beta (smooth L1) or 1 (Huber) inside.
TEST_CASE("nn: SmoothL1Loss and HuberLoss at the joint |x - y| = beta take the linear branch, as torch", "[loss]") {
  const auto smooth = [](const Tensor& x, const Tensor& y) {
    return nn::smooth_l1_loss(x, y, nn::SmoothL1LossOptions().beta(0.5).reduction(R::Sum));
  };
  const auto huber = [](const Tensor& x, const Tensor& y) {
    return nn::huber_loss(x, y, nn::HuberLossOptions().delta(2.0).reduction(R::Sum));
  };
  for (double s : {1.0, -1.0}) {
    CAPTURE(s);
    CHECK(first_derivative(smooth, 0.5 * s) == s);
    CHECK(second_derivative(smooth, 0.5 * s) == 0.0);
    CHECK(second_derivative(smooth, 0.49 * s) == Approx(2.0));
    CHECK(second_derivative(smooth, 0.7 * s) == 0.0);
    CHECK(first_derivative(huber, 2.0 * s) == 2.0 * s);
    CHECK(second_derivative(huber, 2.0 * s) == 0.0);
    CHECK(second_derivative(huber, 1.9 * s) == Approx(1.0));
    CHECK(first_derivative(huber, 1.5 * s) == Approx(1.5 * s));
  }
  // The values at the joint: both branches agree, 0.25 and 2.
  CHECK(smooth(tensor({0.5}, DType::float64), zeros({1}, DType::float64)).item() == Approx(0.25));
  CHECK(huber(tensor({-2.0}, DType::float64), zeros({1}, DType::float64)).item() == Approx(2.0));
  // At d = 0 (inside the quadratic) the gradient is 0.
  CHECK(first_derivative(smooth, 0.0) == 0.0);
  CHECK(first_derivative(huber, 0.0) == 0.0);
}

TEST_CASE("nn: SmoothL1Loss with beta 0 is L1Loss, gradient 0 at the kink included", "[loss]") {
  const auto l1_like = [](const Tensor& x, const Tensor& y) {
    return nn::smooth_l1_loss(x, y, nn::SmoothL1LossOptions().beta(0.0).reduction(R::Sum));
  };
  CHECK(first_derivative(l1_like, 0.0) == 0.0);
  CHECK(first_derivative(l1_like, 1e-9) == 1.0);
  CHECK(first_derivative(l1_like, -3.0) == -1.0);
  CHECK(second_derivative(l1_like, 0.3) == 0.0);
  const Tensor x = tensor({0.3, -2.5, 0.0}, DType::float64), y = tensor({0.1, 0.5, 0.0}, DType::float64);
  CHECK(nn::smooth_l1_loss(x, y, nn::SmoothL1LossOptions().beta(0.0)).item() == nn::l1_loss(x, y).item());
}

// An infinite difference lies in the linear branch: the loss is inf and the gradient +-1 (the
// untaken quadratic must not send 0 * inf = NaN back).
TEST_CASE("nn: SmoothL1Loss and HuberLoss of an infinite difference have finite gradients", "[loss]") {
  Tensor x = tensor({INFINITY, -INFINITY}, TensorOptions(DType::float64).requires_grad(true));
  const Tensor l = nn::huber_loss(x, zeros({2}, DType::float64), nn::HuberLossOptions().reduction(R::Sum));
  CHECK(l.item() == INFINITY);
  l.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1.0, -1.0});
  Tensor x2 = tensor({INFINITY}, TensorOptions(DType::float64).requires_grad(true));
  nn::smooth_l1_loss(x2, zeros({1}, DType::float64), nn::SmoothL1LossOptions().beta(0.5)).backward();
  CHECK(x2.grad().item() == 1.0);
}

TEST_CASE("nn: SmoothL1Loss and HuberLoss pass gradcheck and gradgradcheck", "[loss]") {
  for (DType d : {DType::float64, DType::float32}) {
    CAPTURE(dtype_name(d));
    const std::vector<Tensor> in = smooth_points(d);
    for (R r : {R::Mean, R::Sum, R::None}) {
      for (double k : {0.5, 1.0, 3.0}) {
        CAPTURE(nn::reduction_name(r), k);
        testing::check_first_and_second_order(
            [r, k](V v) { return nn::smooth_l1_loss(v[0], v[1], nn::SmoothL1LossOptions().beta(k).reduction(r)); },
            in);
        testing::check_first_and_second_order(
            [r, k](V v) { return nn::huber_loss(v[0], v[1], nn::HuberLossOptions().delta(k).reduction(r)); }, in);
      }
    }
  }
}

TEST_CASE("nn: the regression losses' errors name the loss and the bad values", "[loss]") {
  CHECK_THROWS_AS(nn::SmoothL1LossOptions().beta(-0.5), std::invalid_argument);
  CHECK_THROWS_WITH(nn::SmoothL1LossOptions().beta(-0.5),
                    Contains("SmoothL1LossOptions::beta: beta must be >= 0") && Contains("got -0.5"));
  CHECK_THROWS_WITH(nn::SmoothL1LossOptions().beta(NAN), Contains("got nan"));
  CHECK_THROWS_AS(nn::HuberLossOptions().delta(0.0), std::invalid_argument);
  CHECK_THROWS_WITH(nn::HuberLossOptions().delta(0.0), Contains("HuberLossOptions::delta: delta must be > 0, got 0"));
  CHECK_THROWS_WITH(nn::HuberLossOptions().delta(-2.0), Contains("got -2"));
  CHECK_THROWS_WITH(nn::L1LossOptions().reduction(static_cast<R>(5)), Contains("L1LossOptions::reduction: 5"));
  CHECK_THROWS_WITH(nn::HuberLossOptions().reduction(static_cast<R>(5)), Contains("HuberLossOptions::reduction"));
  CHECK_THROWS_WITH(nn::SmoothL1LossOptions().reduction(static_cast<R>(5)), Contains("SmoothL1LossOptions::reduction"));
  // Shapes and dtypes, named with the loss.
  CHECK_THROWS_WITH(nn::l1_loss(zeros({3, 1}), zeros({3})), Contains("L1Loss") && Contains("[3, 1]") && Contains("[3]"));
  CHECK_THROWS_WITH(nn::smooth_l1_loss(zeros({2}), zeros({2, 2})), Contains("SmoothL1Loss: input shape [2]"));
  CHECK_THROWS_WITH(nn::huber_loss(zeros({2}), zeros({2}, DType::float64)),
                    Contains("HuberLoss") && Contains("float32") && Contains("float64"));
  CHECK_THROWS_WITH(nn::huber_loss(Tensor(), zeros({2})), Contains("HuberLoss: the input is undefined"));
}
