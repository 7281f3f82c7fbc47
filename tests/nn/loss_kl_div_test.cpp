// KLDivLoss (nn/loss_kl_div.h): values against a loop, torch's conventions at target == 0, the
// four reductions (batchmean included), log_target, gradients, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/activation.h"
#include "nn/loss.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using K = nn::KLDivReduction;
using V = const std::vector<Tensor>&;

namespace {

// torch's pointwise term: p (log p - x), 0 where p == 0; with log_target, e^t (t - x).
double kl_of(double x, double t, bool log_target) {
  if (log_target) return std::exp(t) * (t - x);
  return (t == 0.0 ? 0.0 : t * std::log(t)) - t * x;
}

}  // namespace

TEST_CASE("nn: KLDivLoss matches a loop for the four reductions, log_target and dtypes", "[loss]") {
  // [N = 2, C = 3]: log q from fixed logits; p with a zero.
  const std::vector<double> x{-0.4, -1.6, -2.1, -1.2, -0.7, -1.5};
  const std::vector<double> p{0.5, 0.5, 0.0, 0.2, 0.3, 0.5};
  for (bool log_target : {false, true}) {
    std::vector<double> t = p, per;
    if (log_target)
      for (double& v : t) v = v == 0.0 ? -30.0 : std::log(v);
    double total = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      per.push_back(kl_of(x[i], t[i], log_target));
      total += per.back();
    }
    for (DType d : {DType::float64, DType::float32}) {
      CAPTURE(log_target, dtype_name(d));
      const double tol = d == DType::float32 ? 1e-5 : 1e-13;
      const Tensor xt = from_vector(x, {2, 3}, d), tt = from_vector(t, {2, 3}, d);
      const auto options = nn::KLDivLossOptions().log_target(log_target);
      const std::vector<double> none = nn::kl_div(xt, tt, nn::KLDivLossOptions(options).reduction(K::None)).to_vector();
      for (size_t i = 0; i < per.size(); ++i) CHECK(none[i] == Approx(per[i]).epsilon(tol).margin(tol));
      CHECK(nn::kl_div(xt, tt, options).item() == Approx(total / 6).epsilon(tol));  // torch's default: mean
      CHECK(nn::kl_div(xt, tt, nn::KLDivLossOptions(options).reduction(K::Sum)).item() == Approx(total).epsilon(tol));
      CHECK(nn::kl_div(xt, tt, nn::KLDivLossOptions(options).reduction(K::BatchMean)).item() ==
            Approx(total / 2).epsilon(tol));
      // Reduction's three values map to KLDivReduction's.
      CHECK(nn::kl_div(xt, tt, nn::KLDivLossOptions(options).reduction(nn::Reduction::Sum)).item() ==
            Approx(total).epsilon(tol));
      CHECK(nn::kl_div(xt, tt, nn::KLDivLossOptions(options).reduction(nn::Reduction::None)).shape() == Shape{2, 3});
    }
  }
}

// BatchMean is the KL divergence per sample: KL(p || q) for one row, by hand.
TEST_CASE("nn: KLDivLoss with batchmean is the KL divergence per sample", "[loss]") {
  const Tensor q = tensor({{0.25, 0.75}, {0.5, 0.5}}, DType::float64);
  const Tensor p = tensor({{0.5, 0.5}, {0.5, 0.5}}, DType::float64);
  nn::KLDivLoss kl(nn::KLDivLossOptions().reduction(K::BatchMean));
  const double kl0 = 0.5 * std::log(0.5 / 0.25) + 0.5 * std::log(0.5 / 0.75);  // row 1: 0
  CHECK(kl(log(q), p).item() == Approx(kl0 / 2));
  CHECK(kl.to_string() == "KLDivLoss(reduction=batchmean, log_target=false)");
  CHECK(nn::KLDivLoss(nn::KLDivLossOptions().log_target(true).reduction(nn::Reduction::Sum)).to_string() ==
        "KLDivLoss(reduction=sum, log_target=true)");
  CHECK(nn::KLDivLossOptions().reduction() == K::Mean);  // torch's default
  CHECK(!nn::KLDivLossOptions().log_target());
  // A 0-d input: batchmean is the sum, as torch.
  CHECK(nn::kl_div(full({}, -1.0, DType::float64), full({}, 0.5, DType::float64),
                   nn::KLDivLossOptions().reduction(K::BatchMean))
            .item() == Approx(0.5 * std::log(0.5) + 0.5));
}

// torch: the term is 0 where p == 0 (xlogy), and its gradient in the input is -p = 0; the
// target's gradient there is -x here (torch's xlogy backward gives NaN).
TEST_CASE("nn: KLDivLoss at target 0 is 0 with finite gradients, as torch's xlogy", "[loss]") {
  Tensor x = tensor({-0.5, -2.0}, TensorOptions(DType::float64).requires_grad(true));
  Tensor p = tensor({0.0, 1.0}, TensorOptions(DType::float64).requires_grad(true));
  const Tensor l = nn::kl_div(x, p, nn::KLDivLossOptions().reduction(K::None));
  CHECK(l.to_vector() == std::vector<double>{0.0, 2.0});
  sum(l).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0.0, -1.0});
  const std::vector<double> gp = p.grad().to_vector();
  CHECK(gp[0] == 0.5);                     // -x
  CHECK(gp[1] == Approx(0.0 + 1.0 + 2.0));  // log 1 + 1 - x
  // A log-probability of -inf where p is 0: 0 * -inf is NaN in the term -p x, as torch's.
  CHECK(std::isnan(nn::kl_div(tensor({-INFINITY}, DType::float64), tensor({0.0}, DType::float64)).item()));
  // A negative probability gives NaN, as torch's xlogy.
  CHECK(std::isnan(nn::kl_div(tensor({-1.0}, DType::float64), tensor({-0.5}, DType::float64)).item()));
}

TEST_CASE("nn: KLDivLoss passes gradcheck and gradgradcheck in the input and the target", "[loss]") {
  for (DType d : {DType::float64, DType::float32}) {
    const Tensor x = tensor({{-0.4, -1.6, -2.1}, {-1.2, -0.7, -1.5}}, TensorOptions(d).requires_grad(true));
    const Tensor p = tensor({{0.5, 0.3, 0.2}, {0.2, 0.3, 0.5}}, TensorOptions(d).requires_grad(true));
    for (bool log_target : {false, true})
      for (K r : {K::None, K::Mean, K::Sum, K::BatchMean}) {
        CAPTURE(dtype_name(d), log_target, nn::reduction_name(r));
        testing::check_first_and_second_order(
            [&](V v) {
              return nn::kl_div(v[0], log_target ? log(v[1]) : v[1],
                                nn::KLDivLossOptions().reduction(r).log_target(log_target));
            },
            {x, p});
      }
  }
}

TEST_CASE("nn: KLDivLoss errors name the loss and the shapes", "[loss]") {
  CHECK_THROWS_WITH(nn::kl_div(zeros({2, 3}), zeros({3})), Contains("KLDivLoss") && Contains("[2, 3]") && Contains("[3]"));
  CHECK_THROWS_WITH(nn::kl_div(zeros({3}), zeros({3}, DType::float64)), Contains("KLDivLoss: input is float32"));
  CHECK_THROWS_AS(nn::KLDivLossOptions().reduction(static_cast<K>(4)), std::invalid_argument);
  CHECK_THROWS_WITH(nn::KLDivLossOptions().reduction(static_cast<K>(4)),
                    Contains("KLDivLossOptions::reduction: 4 is not a KLDivReduction"));
  CHECK_THROWS_WITH(nn::KLDivLossOptions().reduction(static_cast<nn::Reduction>(4)),
                    Contains("KLDivLossOptions::reduction: 4 is not a Reduction"));
}
