// NLLLoss and CrossEntropyLoss's weight, ignore_index and label_smoothing (nn/loss_classification.h):
// values against a plain loop of torch's formulas, hand cases, gradients, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/tensor_impl.h"
#include "autograd/tensor_record.h"
#include "nn/activation.h"
#include "nn/loss.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using R = nn::Reduction;
using V = const std::vector<Tensor>&;

namespace {

struct Expected {
  std::vector<double> per;  // Reduction::None
  double sum = 0, mean = 0;
  double at(R r) const { return r == R::Sum ? sum : mean; }
};

// torch's cross entropy over class indices (logits) or NLL (log-probabilities), row by row: x is
// [N, C] row-major, w empty for no weight. Ignored rows are 0 and leave the divisor.
Expected reference(const std::vector<double>& x, int64_t c, const std::vector<int64_t>& target,
                   const std::vector<double>& w, int64_t ignore_index, double eps, bool logits) {
  Expected e;
  double divisor = 0;
  for (size_t n = 0; n < target.size(); ++n) {
    const int64_t k = target[n];
    if (k == ignore_index) {
      e.per.push_back(0.0);
      continue;
    }
    std::vector<double> logp(x.begin() + static_cast<long>(n) * c, x.begin() + static_cast<long>(n + 1) * c);
    if (logits) {
      double top = logp[0], z = 0;
      for (double v : logp) top = std::max(top, v);
      for (double v : logp) z += std::exp(v - top);
      for (double& v : logp) v -= top + std::log(z);
    }
    const auto weight = [&](int64_t j) { return w.empty() ? 1.0 : w[static_cast<size_t>(j)]; };
    double uniform = 0;
    for (int64_t j = 0; j < c; ++j) uniform -= weight(j) * logp[static_cast<size_t>(j)];
    const double l = (1 - eps) * -weight(k) * logp[static_cast<size_t>(k)] + eps / static_cast<double>(c) * uniform;
    e.per.push_back(l);
    e.sum += l;
    divisor += weight(k);
  }
  e.mean = e.sum / divisor;
  return e;
}

// Values in (-2, 2), not symmetric, for [N, C].
std::vector<double> scores(int64_t n, int64_t c) {
  std::vector<double> v(static_cast<size_t>(n * c));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 2.0 * std::sin(1.3 * static_cast<double>(i) + 0.4);
  return v;
}

void check_against(const Tensor& got, const Expected& e, R r, DType d) {
  const double tol = d == DType::float32 ? 1e-5 : 1e-12;
  if (r == R::None) {
    const std::vector<double> v = got.to_vector();
    REQUIRE(v.size() == e.per.size());
    for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == Approx(e.per[i]).epsilon(tol).margin(tol));
  } else {
    CHECK(got.item() == Approx(e.at(r)).epsilon(tol));
  }
}

std::string node_name(const Tensor& l) { return std::string(l.impl()->grad_fn->name); }

}  // namespace

TEST_CASE("nn: NLLLoss by hand: the weighted mean divides by the targets' weights", "[loss]") {
  const Tensor x = log(tensor({{0.7, 0.2, 0.1}, {0.1, 0.6, 0.3}}, DType::float64));
  CHECK(nn::NLLLoss()(x, {0, 1}).item() == Approx(-(std::log(0.7) + std::log(0.6)) / 2));
  const Tensor w = tensor({1.0, 2.0, 0.5}, DType::float64);
  // -(1 log 0.7 + 2 log 0.6) / (1 + 2), not / 2.
  CHECK(nn::nll_loss(x, {0, 1}, nn::NLLLossOptions().weight(w)).item() ==
        Approx(-(std::log(0.7) + 2 * std::log(0.6)) / 3));
  CHECK(nn::nll_loss(x, {0, 1}, nn::NLLLossOptions().weight(w).reduction(R::Sum)).item() ==
        Approx(-(std::log(0.7) + 2 * std::log(0.6))));
  // Sample 1 ignored: it leaves the sum and the divisor; None gives it 0.
  CHECK(nn::nll_loss(x, {0, 1}, nn::NLLLossOptions().weight(w).ignore_index(1)).item() == Approx(-std::log(0.7)));
  const Tensor none = nn::nll_loss(x, tensor({0.0, -100.0}, DType::float64), nn::NLLLossOptions().reduction(R::None));
  CHECK(none.shape() == Shape{2});
  CHECK(none.to_vector() == std::vector<double>{-std::log(0.7), 0.0});
  // One sample as [C].
  CHECK(nn::nll_loss(log(tensor({0.7, 0.2, 0.1}, DType::float64)), {2}).item() == Approx(-std::log(0.1)));
  CHECK(nn::NLLLoss().to_string() == "NLLLoss(reduction=mean)");
  CHECK(nn::NLLLoss(nn::NLLLossOptions().weight(w).ignore_index(0).reduction(R::Sum)).to_string() ==
        "NLLLoss(reduction=sum, weight=[3], ignore_index=0)");
}

TEST_CASE("nn: NLLLoss matches a loop for weights, ignore_index, reductions and dtypes", "[loss]") {
  const int64_t N = 6, C = 4;
  const std::vector<double> x = scores(N, C);
  const std::vector<int64_t> target{3, 0, 2, 2, 1, 0};
  const std::vector<double> w{0.5, 2.0, 1.5, 0.25};
  for (DType d : {DType::float64, DType::float32}) {
    for (bool weighted : {false, true}) {
      for (int64_t ignore : {int64_t{-100}, int64_t{2}, int64_t{0}}) {
        for (R r : {R::None, R::Mean, R::Sum}) {
          CAPTURE(dtype_name(d), weighted, ignore, nn::reduction_name(r));
          auto options = nn::NLLLossOptions().ignore_index(ignore).reduction(r);
          if (weighted) options.weight(from_vector(w, {C}, d));
          const Expected e = reference(x, C, target, weighted ? w : std::vector<double>{}, ignore, 0.0, false);
          check_against(nn::nll_loss(from_vector(x, {N, C}, d), target, options), e, r, d);
        }
      }
    }
  }
}

// torch's K-dimensional form: [N, C, T] with targets [N, T], every position a sample.
TEST_CASE("nn: NLLLoss and weighted CrossEntropyLoss over [N, C, T] treat every position as a sample", "[loss]") {
  const int64_t N = 2, C = 3, T = 4;
  const std::vector<double> x = scores(N * C * T, 1);
  const std::vector<int64_t> idx{0, 2, 1, 1, 2, 0, 0, 1};  // [N, T]
  const std::vector<double> w{1.5, 0.5, 2.0};
  // The rows the loop reads: (n, t) -> x[n, :, t].
  std::vector<double> rows;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) rows.push_back(x[static_cast<size_t>((n * C + c) * T + t)]);
  const Tensor input = from_vector(x, {N, C, T}, DType::float64);
  std::vector<double> idx_values(idx.begin(), idx.end());
  const Tensor target = from_vector(idx_values, {N, T}, DType::float64);
  for (R r : {R::None, R::Mean, R::Sum}) {
    CAPTURE(nn::reduction_name(r));
    const auto nll = nn::NLLLossOptions().weight(from_vector(w, {C}, DType::float64)).ignore_index(1).reduction(r);
    const Tensor l = nn::nll_loss(input, target, nll);
    if (r == R::None) CHECK(l.shape() == Shape{N, T});
    check_against(l, reference(rows, C, idx, w, 1, 0.0, false), r, DType::float64);
    const auto ce = nn::CrossEntropyLossOptions()
                        .weight(from_vector(w, {C}, DType::float64))
                        .ignore_index(1)
                        .label_smoothing(0.2)
                        .reduction(r);
    check_against(nn::cross_entropy(input, target, ce), reference(rows, C, idx, w, 1, 0.2, true), r, DType::float64);
  }
  CHECK_THROWS_WITH(nn::nll_loss(input, zeros({N, C}, DType::float64)),
                    Contains("NLLLoss: for input [2, 3, 4] (N, C, d1, ...) the target must be class indices of shape "
                             "[2, 4], got [2, 3]"));
}

TEST_CASE("nn: NLLLoss's gradient is -w[c] / sum w at the targets, checked to second order", "[loss]") {
  Tensor x = tensor({{-0.3, -1.2, -2.0}, {-0.8, -0.6, -1.5}, {-1.0, -1.1, -0.9}},
                    TensorOptions(DType::float64).requires_grad(true));
  const Tensor w = tensor({1.0, 2.0, 0.5}, DType::float64);
  nn::nll_loss(x, {1, 0, 2}, nn::NLLLossOptions().weight(w).ignore_index(0)).backward();
  // Sample 1 (target 0) ignored; divisor 2 + 0.5.
  CHECK(x.grad().to_vector() == std::vector<double>{0, -2.0 / 2.5, 0, 0, 0, 0, 0, 0, -0.5 / 2.5});
  for (DType d : {DType::float64, DType::float32}) {
    const Tensor in = tensor({{-0.3, -1.2, -2.0}, {-0.8, -0.6, -1.5}}, TensorOptions(d).requires_grad(true));
    // gradcheck evaluates float32 inputs in float64 copies: the weight follows the input's dtype.
    const auto wd = [](const Tensor& x) { return tensor({1.0, 2.0, 0.5}, x.dtype()); };
    for (R r : {R::None, R::Mean, R::Sum})
      testing::check_first_and_second_order(
          [&](V v) { return nn::nll_loss(v[0], {2, 1}, nn::NLLLossOptions().weight(wd(v[0])).reduction(r)); }, {in});
  }
}

// torch: every target ignored gives mean 0 / 0 = NaN, sum 0, and no gradient.
TEST_CASE("nn: NLLLoss and CrossEntropyLoss with every target ignored", "[loss]") {
  Tensor x = tensor({{-0.3, -1.2}, {-0.8, -0.6}}, TensorOptions(DType::float64).requires_grad(true));
  const auto options = nn::NLLLossOptions().ignore_index(1);
  const Tensor mean = nn::nll_loss(x, {1, 1}, options);
  CHECK(std::isnan(mean.item()));
  CHECK(nn::nll_loss(x, {1, 1}, nn::NLLLossOptions(options).reduction(R::Sum)).item() == 0.0);
  CHECK(nn::nll_loss(x, {1, 1}, nn::NLLLossOptions(options).reduction(R::None)).to_vector() ==
        std::vector<double>{0.0, 0.0});
  nn::nll_loss(x, {1, 1}, nn::NLLLossOptions(options).reduction(R::Sum)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0, 0});
  CHECK(std::isnan(nn::cross_entropy(x, {1, 1}, nn::CrossEntropyLossOptions().ignore_index(1)).item()));
}

// An ignored sample may hold a log-probability of -inf: torch gives it 0, not 0 * inf = NaN.
TEST_CASE("nn: an ignored sample's infinite log-probability does not reach the loss", "[loss]") {
  Tensor x = tensor({{-INFINITY, -1.2}, {-0.8, -0.6}}, TensorOptions(DType::float64).requires_grad(true));
  const Tensor l = nn::nll_loss(x, {0, 1}, nn::NLLLossOptions().ignore_index(0).reduction(R::None));
  CHECK(l.to_vector() == std::vector<double>{0.0, 0.6});
  sum(l).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0, -1});
}

TEST_CASE("nn: CrossEntropyLoss with weight, ignore_index and label_smoothing matches torch's formula", "[loss]") {
  const int64_t N = 5, C = 4;
  const std::vector<double> x = scores(N, C);
  const std::vector<int64_t> target{3, 0, 2, 1, 0};
  const std::vector<double> w{0.5, 2.0, 1.5, 0.25};
  for (DType d : {DType::float64, DType::float32}) {
    for (bool weighted : {false, true}) {
      for (int64_t ignore : {int64_t{-100}, int64_t{0}}) {
        for (double eps : {0.0, 0.1, 1.0}) {
          for (R r : {R::None, R::Mean, R::Sum}) {
            CAPTURE(dtype_name(d), weighted, ignore, eps, nn::reduction_name(r));
            auto options = nn::CrossEntropyLossOptions().ignore_index(ignore).label_smoothing(eps).reduction(r);
            if (weighted) options.weight(from_vector(w, {C}, d));
            const Expected e = reference(x, C, target, weighted ? w : std::vector<double>{}, ignore, eps, true);
            check_against(nn::cross_entropy(from_vector(x, {N, C}, d), target, options), e, r, d);
          }
        }
      }
    }
  }
}

TEST_CASE("nn: CrossEntropyLoss's options by hand, and for one sample as [C]", "[loss]") {
  const Tensor x = tensor({{2.0, 1.0, 0.1}, {0.5, 2.5, -1.0}}, DType::float64);
  const double l0 = 0.41703001627783376, l1 = 0.15317820712228825;  // -log softmax at the targets 0, 1
  const Tensor w = tensor({3.0, 0.5, 1.0}, DType::float64);
  CHECK(nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions().weight(w)).item() ==
        Approx((3 * l0 + 0.5 * l1) / 3.5));
  CHECK(nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions().ignore_index(0)).item() == Approx(l1));
  // Label smoothing eps = 0.3 on sample 0: 0.7 * l0 + 0.1 * sum_j -log p_j.
  const double lse = std::log(std::exp(2.0) + std::exp(1.0) + std::exp(0.1));
  const double uniform = (lse - 2.0) + (lse - 1.0) + (lse - 0.1);
  const Tensor single = tensor({2.0, 1.0, 0.1}, DType::float64);
  CHECK(nn::cross_entropy(single, {0}, nn::CrossEntropyLossOptions().label_smoothing(0.3)).item() ==
        Approx(0.7 * l0 + 0.1 * uniform));
  const Tensor none = nn::cross_entropy(single, {0}, nn::CrossEntropyLossOptions().weight(w).reduction(R::None));
  CHECK(none.shape() == Shape{});
  CHECK(none.item() == Approx(3 * l0));
  // Equal to NLLLoss of log_softmax with the same weight and ignore_index.
  const std::vector<int64_t> t{2, 1};
  CHECK(nn::cross_entropy(x, t, nn::CrossEntropyLossOptions().weight(w).ignore_index(1)).item() ==
        Approx(nn::nll_loss(nn::log_softmax(x, 1), t, nn::NLLLossOptions().weight(w).ignore_index(1)).item()));
  CHECK(nn::CrossEntropyLoss(
            nn::CrossEntropyLossOptions().reduction(R::Sum).weight(w).ignore_index(0).label_smoothing(0.1))
            .to_string() == "CrossEntropyLoss(reduction=sum, weight=[3], ignore_index=0, label_smoothing=0.1)");
  CHECK(nn::CrossEntropyLoss(nn::CrossEntropyLossOptions().label_smoothing(0.25)).to_string() ==
        "CrossEntropyLoss(reduction=mean, label_smoothing=0.25)");
}

// The default options keep the fused node; an ignore_index that no target hits keeps it too.
TEST_CASE("nn: CrossEntropyLoss keeps its fused node for the default options only", "[loss]") {
  const Tensor x = tensor({{2.0, 1.0, 0.1}, {0.5, 2.5, -1.0}}, TensorOptions(DType::float64).requires_grad(true));
  // Reduction none: the result is the fused node itself (autograd's softmax_cross_entropy).
  const auto none = nn::CrossEntropyLossOptions().reduction(R::None);
  const std::string fused = "softmax_cross_entropy";
  CHECK(node_name(nn::cross_entropy(x, {0, 1}, none)) == fused);
  CHECK(node_name(nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions(none).ignore_index(2))) == fused);
  CHECK(node_name(nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions(none).ignore_index(1))) != fused);
  CHECK(node_name(nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions(none).label_smoothing(0.1))) != fused);
  CHECK(node_name(nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions(none).weight(ones({3}, DType::float64)))) !=
        fused);
  // The composed path with a weight of ones gives the fused one's values.
  for (R r : {R::None, R::Mean, R::Sum}) {
    const auto options = nn::CrossEntropyLossOptions().reduction(r);
    const std::vector<double> fused = nn::cross_entropy(x, {0, 1}, options).to_vector();
    const std::vector<double> composed =
        nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions(options).weight(ones({3}, DType::float64))).to_vector();
    REQUIRE(fused.size() == composed.size());
    for (size_t i = 0; i < fused.size(); ++i) CHECK(composed[i] == Approx(fused[i]).epsilon(1e-14));
  }
}

TEST_CASE("nn: CrossEntropyLoss with class probabilities takes weight and label_smoothing as torch", "[loss]") {
  const int64_t N = 3, C = 4;
  const std::vector<double> x = scores(N, C);
  const std::vector<double> p{0.1, 0.2, 0.3, 0.4, 0.0, 1.0, 0.0, 0.0, 0.25, 0.25, 0.5, 0.0};
  const std::vector<double> w{0.5, 2.0, 1.5, 0.25};
  const double eps = 0.2;
  std::vector<double> per;
  for (int64_t n = 0; n < N; ++n) {
    double top = -INFINITY, z = 0, l = 0;
    for (int64_t j = 0; j < C; ++j) top = std::max(top, x[static_cast<size_t>(n * C + j)]);
    for (int64_t j = 0; j < C; ++j) z += std::exp(x[static_cast<size_t>(n * C + j)] - top);
    for (int64_t j = 0; j < C; ++j) {
      const size_t k = static_cast<size_t>(n * C + j);
      const double smoothed = (1 - eps) * p[k] + eps / C;
      l -= w[static_cast<size_t>(j)] * smoothed * (x[k] - top - std::log(z));
    }
    per.push_back(l);
  }
  const double total = per[0] + per[1] + per[2];
  for (DType d : {DType::float64, DType::float32}) {
    const double tol = d == DType::float32 ? 1e-5 : 1e-12;
    const auto options = nn::CrossEntropyLossOptions().weight(from_vector(w, {C}, d)).label_smoothing(eps);
    const Tensor input = from_vector(x, {N, C}, d), target = from_vector(p, {N, C}, d);
    // Mean divides by N, not by a sum of weights.
    CHECK(nn::cross_entropy(input, target, options).item() == Approx(total / N).epsilon(tol));
    CHECK(nn::cross_entropy(input, target, nn::CrossEntropyLossOptions(options).reduction(R::Sum)).item() ==
          Approx(total).epsilon(tol));
    const std::vector<double> got =
        nn::cross_entropy(input, target, nn::CrossEntropyLossOptions(options).reduction(R::None)).to_vector();
    for (int64_t n = 0; n < N; ++n) CHECK(got[static_cast<size_t>(n)] == Approx(per[static_cast<size_t>(n)]).epsilon(tol));
  }
  CHECK_THROWS_AS(nn::cross_entropy(from_vector(x, {N, C}), from_vector(p, {N, C}),
                                    nn::CrossEntropyLossOptions().ignore_index(0)),
                  std::invalid_argument);
  CHECK_THROWS_WITH(nn::cross_entropy(from_vector(x, {N, C}), from_vector(p, {N, C}),
                                      nn::CrossEntropyLossOptions().ignore_index(0)),
                    Contains("CrossEntropyLoss: ignore_index (0) applies to class indices only") &&
                        Contains("[3, 4]"));
}

TEST_CASE("nn: CrossEntropyLoss's options pass gradcheck and gradgradcheck", "[loss]") {
  for (DType d : {DType::float64, DType::float32}) {
    CAPTURE(dtype_name(d));
    const Tensor x = tensor({{0.3, -1.2, 0.4}, {0.8, 0.05, -0.7}, {1.5, -0.2, 0.1}}, TensorOptions(d).requires_grad(true));
    // gradcheck evaluates float32 inputs in float64 copies: the weight follows the input's dtype.
    const auto w = [](const Tensor& like) { return tensor({0.5, 2.0, 1.5}, like.dtype()); };
    for (R r : {R::None, R::Mean, R::Sum}) {
      CAPTURE(nn::reduction_name(r));
      const auto options = [&](const Tensor& like) {
        return nn::CrossEntropyLossOptions().weight(w(like)).ignore_index(1).label_smoothing(0.15).reduction(r);
      };
      testing::check_first_and_second_order([&](V v) { return nn::cross_entropy(v[0], {2, 1, 0}, options(v[0])); },
                                            {x});
      testing::check_first_and_second_order(
          [&](V v) { return nn::cross_entropy(v[0], {2, 0, 0}, nn::CrossEntropyLossOptions().label_smoothing(0.3).reduction(r)); },
          {x});
      // Probabilities: differentiable in the target too.
      const Tensor p = tensor({{0.2, 0.5, 0.3}, {0.6, 0.1, 0.3}, {0.1, 0.1, 0.8}}, TensorOptions(d).requires_grad(true));
      testing::check_first_and_second_order(
          [&](V v) {
            return nn::cross_entropy(v[0], v[1],
                                     nn::CrossEntropyLossOptions().weight(w(v[0])).label_smoothing(0.2).reduction(r));
          },
          {x, p});
    }
  }
}

TEST_CASE("nn: NLLLoss and CrossEntropyLoss errors name the loss, the shapes and the values", "[loss]") {
  const Tensor x = zeros({2, 3});
  CHECK_THROWS_AS(nn::CrossEntropyLossOptions().label_smoothing(1.5), std::invalid_argument);
  CHECK_THROWS_WITH(nn::CrossEntropyLossOptions().label_smoothing(1.5),
                    Contains("CrossEntropyLossOptions::label_smoothing: must be in [0, 1], got 1.5"));
  CHECK_THROWS_WITH(nn::CrossEntropyLossOptions().label_smoothing(-0.1), Contains("got -0.1"));
  CHECK_THROWS_WITH(nn::CrossEntropyLossOptions().label_smoothing(NAN), Contains("got nan"));
  // The weight: one per class, in the input's dtype.
  CHECK_THROWS_AS(nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions().weight(ones({2}))), std::invalid_argument);
  CHECK_THROWS_WITH(nn::cross_entropy(x, {0, 1}, nn::CrossEntropyLossOptions().weight(ones({2}))),
                    Contains("CrossEntropyLoss: the weight must hold one value per class, shape [3]") &&
                        Contains("got [2] float32"));
  CHECK_THROWS_WITH(nn::nll_loss(x, {0, 1}, nn::NLLLossOptions().weight(ones({3}, DType::float64))),
                    Contains("NLLLoss: the weight") && Contains("dtype float32") && Contains("got [3] float64"));
  CHECK_THROWS_WITH(nn::cross_entropy(x, zeros({2, 3}), nn::CrossEntropyLossOptions().weight(ones({3, 1}))),
                    Contains("got [3, 1] float32"));
  // Indices out of range, except ignore_index.
  CHECK_THROWS_AS(nn::nll_loss(x, {0, 3}), std::out_of_range);
  CHECK_THROWS_WITH(nn::nll_loss(x, {0, 3}),
                    Contains("NLLLoss: class index 3 (target 1) is out of range for 3 classes (valid: 0 to 2, or the "
                             "ignore_index -100)"));
  CHECK_THROWS_AS(nn::nll_loss(x, {-1, 0}), std::out_of_range);
  CHECK_NOTHROW(nn::nll_loss(x, {-7, 0}, nn::NLLLossOptions().ignore_index(-7)));
  CHECK_THROWS_WITH(nn::cross_entropy(x, {5, 0}, nn::CrossEntropyLossOptions().ignore_index(4)),
                    Contains("class index 5 (target 0)") && Contains("ignore_index 4"));
  CHECK_NOTHROW(nn::cross_entropy(x, tensor({0.0, 4.0}), nn::CrossEntropyLossOptions().ignore_index(4)));
  // Shapes.
  CHECK_THROWS_WITH(nn::nll_loss(x, {0, 1, 2}), Contains("NLLLoss: input [2, 3] holds 2 sample(s) but 3 class indices"));
  CHECK_THROWS_WITH(nn::nll_loss(x, zeros({2, 3})), Contains("NLLLoss: for input [2, 3] the target must be class "
                                                             "indices of shape [2], got [2, 3]"));
  CHECK_THROWS_WITH(nn::nll_loss(x, tensor({0.0, 1.5})), Contains("NLLLoss: target 1 is 1.5, not an integer"));
  CHECK_THROWS_WITH(nn::nll_loss(zeros({}), {0}), Contains("NLLLoss: expected scores of shape [N, C] or [C]"));
  CHECK_THROWS_WITH(nn::nll_loss(Tensor(), {0}), Contains("NLLLoss: the input is undefined"));
  CHECK_THROWS_WITH(nn::nll_loss(x, Tensor()), Contains("NLLLoss: the target is undefined"));
  CHECK_THROWS_WITH(nn::NLLLossOptions().reduction(static_cast<R>(9)), Contains("NLLLossOptions::reduction: 9"));
}
