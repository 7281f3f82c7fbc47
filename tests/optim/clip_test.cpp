// Gradient norms and clipping (optim/trainer.h), against torch.nn.utils.clip_grad_norm_'s rule.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/tensor.h"
#include "optim/optim.h"

using namespace chainrule;
using Catch::Matchers::Contains;

namespace {

// Leaves whose gradients are the given values (a backward of sum(p * g) leaves g in p.grad()).
std::vector<Tensor> with_grads(const std::vector<std::vector<double>>& grads) {
  std::vector<Tensor> params;
  for (const std::vector<double>& g : grads) {
    Tensor p = from_vector(std::vector<double>(g.size(), 1.0), {static_cast<int64_t>(g.size())},
                           TensorOptions(DType::float64).requires_grad());
    sum(p * from_vector(g, {static_cast<int64_t>(g.size())}, DType::float64)).backward();
    params.push_back(p);
  }
  return params;
}

}  // namespace

TEST_CASE("optim: clip_grad_norm scales every gradient by max_norm / (norm + 1e-6) above max_norm") {
  std::vector<Tensor> params = with_grads({{3.0, 0.0}, {4.0}});
  params.push_back(zeros({2}, TensorOptions(DType::float64).requires_grad()));  // no gradient: skipped
  CHECK(optim::grad_norm(params) == 5.0);
  CHECK(optim::clip_grad_norm(params, 10.0) == 5.0);  // below max_norm: untouched
  CHECK(params[0].grad().to_vector() == std::vector<double>{3.0, 0.0});
  CHECK(optim::clip_grad_norm(params, 1.0) == 5.0);
  const double scale = 1.0 / (5.0 + 1e-6);
  CHECK(params[0].grad().to_vector() == std::vector<double>{3.0 * scale, 0.0});
  CHECK(params[1].grad().to_vector() == std::vector<double>{4.0 * scale});
  CHECK(optim::grad_norm(params) == Approx(5.0 * scale).epsilon(1e-12));  // just below 1, as PyTorch
  CHECK_FALSE(params[2].grad().defined());
  // A parameter listed twice is counted and scaled once.
  std::vector<Tensor> twice = with_grads({{6.0, 8.0}});
  twice.push_back(twice[0]);
  CHECK(optim::clip_grad_norm(twice, 5.0) == 10.0);
  CHECK(twice[0].grad().to_vector()[0] == Approx(6.0 * 5.0 / (10.0 + 1e-6)).epsilon(1e-15));
}

TEST_CASE("optim: gradient norms do not overflow, and clip_grad_norm refuses a non-finite norm untouched") {
  const std::vector<Tensor> huge = with_grads({{3e200, 4e200}});
  CHECK(optim::grad_norm(huge) == Approx(5e200).epsilon(1e-15));  // the squares are past the double range
  const std::vector<Tensor> bad = with_grads({{1.0, 2.0}, {NAN}});
  CHECK(std::isnan(optim::grad_norm(bad)));
  CHECK_THROWS_WITH(optim::clip_grad_norm(bad, 1.0), Contains("clip_grad_norm: the gradients' norm is nan") &&
                                                         Contains("nothing was scaled"));
  CHECK(bad[0].grad().to_vector() == std::vector<double>{1.0, 2.0});
  const std::vector<Tensor> inf = with_grads({{1.0, INFINITY}});
  CHECK_THROWS_AS(optim::clip_grad_norm(inf, 1.0), std::runtime_error);
  CHECK(inf[0].grad().to_vector()[0] == 1.0);
  for (double m : {0.0, -1.0, double(NAN), double(INFINITY)})
    CHECK_THROWS_WITH(optim::clip_grad_norm(huge, m), Contains("clip_grad_norm: max_norm must be positive and finite"));
  CHECK_THROWS_WITH(optim::clip_grad_norm({Tensor()}, 1.0), Contains("clip_grad_norm: parameter 0 is undefined"));
}

TEST_CASE("optim: clip_grad_norm on float32 gradients") {
  Tensor p = from_vector({1.0, 1.0}, {2}, TensorOptions(DType::float32).requires_grad());
  sum(p * from_vector({30.0, 40.0}, {2}, DType::float32)).backward();
  CHECK(optim::clip_grad_norm({p}, 5.0) == 50.0);
  CHECK(p.grad().dtype() == DType::float32);
  const std::vector<double> g = p.grad().to_vector();
  CHECK(g[0] == Approx(3.0).epsilon(1e-6));
  CHECK(g[1] == Approx(4.0).epsilon(1e-6));
}
