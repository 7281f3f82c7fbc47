// The composed Tensor functions (min, var, std, clamp, squeeze, unsqueeze; no derivative of their
// own): values against plain loops, their conventions (ties, NaN, bounds, n <= correction), errors,
// and the finite-difference checks of first and second derivatives.
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/gradcheck.h"
#include "tests/autograd/testing.h"

namespace chainrule {
namespace {

using Catch::Contains;
using V = const std::vector<Tensor>&;

Tensor leaf(const NestedList& values) { return tensor(values, TensorOptions(DType::float64).requires_grad(true)); }

TEST_CASE("min over everything and along dims, with keepdim (ties share the gradient)", "[tensor][composed]") {
  const Tensor x = leaf({{3.0, -1.0, 2.0}, {-1.0, 5.0, 0.5}});
  CHECK(min(x).item() == -1.0);
  CHECK(min(x, {1}).to_vector() == std::vector<double>{-1.0, -1.0});
  CHECK(min(x, {0}, true).shape() == Shape{1, 3});
  CHECK(min(x, {0}, true).to_vector() == std::vector<double>{-1.0, -1.0, 0.5});
  min(x).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0.5, 0, 0.5, 0, 0});
  CHECK(std::isnan(min(tensor({1.0, NAN, -3.0})).item()));
  CHECK_THROWS_WITH(min(zeros({2, 0}), {1}), Contains("min: no elements to take the minimum of (shape [2, 0])"));
  CHECK_THROWS_WITH(min(x, {2}), Contains("min"));
  const GradcheckReport r = gradcheck([](V in) { return min(in[0], {0}); }, {leaf({{0.3, -0.2}, {0.1, 0.4}})});
  INFO(r);
  CHECK(r.passed);
}

TEST_CASE("var and std: unbiased by default, biased with correction 0, along dims", "[tensor][composed]") {
  const std::vector<double> v = {2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0};  // mean 5, squares sum 32
  const Tensor x = tensor({v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, DType::float64);
  CHECK(var(x).item() == Approx(32.0 / 7).epsilon(1e-14));
  CHECK(var(x, {0}, false, 0).item() == Approx(4.0).epsilon(1e-14));
  CHECK(std(x, {0}, false, 0).item() == Approx(2.0).epsilon(1e-14));
  CHECK(std(x).item() == Approx(std::sqrt(32.0 / 7)).epsilon(1e-14));
  const Tensor m = reshape(x, {2, 4});
  // rows {2, 4, 4, 4} (mean 3.5, squares 3) and {5, 5, 7, 9} (mean 6.5, squares 11)
  CHECK(var(m, {1}).to_vector() == std::vector<double>{1.0, 11.0 / 3});
  CHECK(var(m, {1}, true).shape() == Shape{2, 1});
  CHECK(var(m, {0}, false, 0).to_vector() == std::vector<double>{2.25, 0.25, 2.25, 6.25});
  // One element, unbiased: 0 / 0 (PyTorch gives NaN too).
  CHECK(std::isnan(var(tensor({3.0}, DType::float64)).item()));
  CHECK_THROWS_WITH(var(m, {0, 0}), Contains("var: dim 0 appears more than once"));
  const Tensor a = leaf({{0.3, -1.2, 0.5}, {0.8, 0.1, -0.4}});
  for (double correction : {0.0, 1.0}) {
    const auto f = [correction](V in) { return std(in[0], {1}, true, correction) * var(in[0], {0}, true, correction); };
    testing::check_first_and_second_order(f, {a});
  }
}

TEST_CASE("clamp: values, NaN, min > max, and a gradient that passes at the bounds", "[tensor][composed]") {
  const Tensor x = leaf({-2.0, -1.0, 0.0, 1.0, 2.0, NAN});
  const Tensor y = clamp(x, -1.0, 1.0);
  const std::vector<double> v = y.to_vector();
  CHECK(std::vector<double>(v.begin(), v.end() - 1) == std::vector<double>{-1, -1, 0, 1, 1});
  CHECK(std::isnan(v.back()));
  // The gradient passes where -1 <= x <= 1, bounds included (PyTorch's clamp_backward); at NaN
  // the identity branch is taken, so it passes there too.
  sum(slice(y, 0, 0, 5)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 1, 1, 0, 0});
  CHECK(clamp(x, std::nullopt, 0.5).to_vector()[4] == 0.5);
  CHECK(clamp(x, 0.5, std::nullopt).to_vector()[0] == 0.5);
  CHECK(clamp(tensor({-5.0, 0.0, 5.0}), 2.0, 1.0).to_vector() == std::vector<double>{1, 1, 1});  // torch: max wins
  CHECK(clamp(tensor({1.0, 2.0}), 0.0, 3.0).dtype() == DType::float32);
  CHECK_THROWS_WITH(clamp(x, std::nullopt, std::nullopt), Contains("clamp: at least one of min and max must be given"));
  CHECK_THROWS_WITH(clamp(Tensor(), 0.0, 1.0), Contains("clamp"));
  // The masks are not part of the graph: clamp records where() ops only.
  CHECK(clamp(x, -1.0, 1.0).grad_fn_name() == "where");
  const Tensor a = leaf({{-1.7, -0.3}, {0.6, 1.9}});
  const GradcheckReport r = gradcheck([](V in) { return clamp(in[0] * in[0], 0.2, 2.0); }, {a});
  INFO(r);
  CHECK(r.passed);
}

TEST_CASE("squeeze and unsqueeze move size-1 dims, and the gradient takes the input's shape", "[tensor][composed]") {
  const Tensor x = leaf({{{1.0, 2.0, 3.0}}});  // [1, 1, 3]
  CHECK(squeeze(x).shape() == Shape{3});
  CHECK(squeeze(x, 1).shape() == Shape{1, 3});
  CHECK(squeeze(x, -1).shape() == Shape{1, 1, 3});  // size 3: kept, as torch.squeeze
  CHECK(unsqueeze(x, 0).shape() == Shape{1, 1, 1, 3});
  CHECK(unsqueeze(x, -1).shape() == Shape{1, 1, 3, 1});
  CHECK(unsqueeze(x, 3).shape() == Shape{1, 1, 3, 1});
  CHECK(squeeze(Tensor(2.0), 0).shape() == Shape{});
  sum(unsqueeze(squeeze(x), 1) * 2.0).backward();
  CHECK(x.grad().shape() == Shape{1, 1, 3});
  CHECK(x.grad().to_vector() == std::vector<double>{2, 2, 2});
  CHECK_THROWS_WITH(squeeze(x, 3), Contains("squeeze"));
  CHECK_THROWS_AS(unsqueeze(x, 4), std::out_of_range);
  CHECK_THROWS_WITH(unsqueeze(x, -5), Contains("unsqueeze"));
  static_assert(kMaxDims == 8);
  CHECK_THROWS_WITH(unsqueeze(zeros({1, 1, 1, 1, 1, 1, 1, 1}), 0),
                    Contains("unsqueeze: [1, 1, 1, 1, 1, 1, 1, 1] already has the most dimensions supported (8)"));
}

}  // namespace
}  // namespace chainrule

namespace chainrule {

TEST_CASE("Tensor: log1p and expm1 keep tiny arguments, in float32 and float64", "[autograd][tensor]") {
  for (DType dtype : {DType::float32, DType::float64}) {
    INFO(dtype_name(dtype));
    const double tiny = dtype == DType::float32 ? 1e-9 : 1e-17;  // 1 + tiny rounds to 1
    const Tensor x = from_vector({tiny, -0.5, 2.0}, {3}, TensorOptions(dtype).requires_grad(true));
    const Tensor l = log1p(x), e = expm1(x);
    CHECK(l.dtype() == dtype);
    CHECK(e.dtype() == dtype);
    CHECK(log(x + 1.0).at({0}) == 0.0);
    CHECK(l.at({0}) == Approx(tiny).epsilon(1e-6));
    CHECK(e.at({0}) == Approx(tiny).epsilon(1e-6));
    CHECK(l.at({1}) == Approx(std::log(0.5)).epsilon(1e-6));
    CHECK(e.at({2}) == Approx(std::exp(2.0) - 1.0).epsilon(1e-6));
    sum(l + e).backward();
    const std::vector<double> g = x.grad().to_vector();
    CHECK(g[0] == Approx(2.0).epsilon(1e-6));
    CHECK(g[1] == Approx(1.0 / 0.5 + std::exp(-0.5)).epsilon(1e-6));
    CHECK(g[2] == Approx(1.0 / 3.0 + std::exp(2.0)).epsilon(1e-6));
  }
}

}  // namespace chainrule
