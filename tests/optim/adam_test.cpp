// optim::Adam and optim::AdamW against PyTorch's documented update on hand-computed steps (plain
// doubles following torch.optim.Adam's / AdamW's algorithm), AMSGrad, skipped parameters and the
// options validation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "optim/adam.h"

using namespace chainrule;
using Catch::Contains;

namespace {

Tensor param(const NestedList& v) { return tensor(v, TensorOptions(DType::float64).requires_grad(true)); }

// PyTorch's Adam / AdamW for one parameter, on doubles.
struct ReferenceAdam {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, decoupled;
  std::vector<double> m, v, vmax;
  int t = 0;
  void step(std::vector<double>& p, std::vector<double> g) {
    if (m.empty()) m = v = vmax = std::vector<double>(p.size(), 0.0);
    ++t;
    const double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      if (decoupled) p[i] *= 1 - lr * weight_decay;
      else g[i] += weight_decay * p[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      vmax[i] = std::max(vmax[i], v[i]);
      const double m_hat = m[i] / bc1;
      const double v_hat = (amsgrad ? vmax[i] : v[i]) / bc2;
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

// Runs `opt` and the reference on the same gradients g_t = c_t * p (from L = 1/2 sum(c_t p^2)).
void run(optim::Optimizer& opt, Tensor& p, ReferenceAdam ref, const std::vector<std::vector<double>>& cs) {
  std::vector<double> ref_p = p.to_vector();
  for (const auto& c : cs) {
    opt.zero_grad();
    (sum(from_vector(c, p.shape(), DType::float64) * p * p) * 0.5).backward();
    std::vector<double> g(c.size());
    for (size_t i = 0; i < c.size(); ++i) g[i] = c[i] * ref_p[i];
    ref.step(ref_p, g);
    opt.step();
    const std::vector<double> got = p.to_vector();
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(ref_p[i]).epsilon(1e-12));
  }
}

// Gradients that shrink after the first step, so that AMSGrad's max differs from v.
const std::vector<std::vector<double>> kSteps = {{4.0, -3.0, 1.0}, {0.1, 0.2, -0.5}, {0.05, 1.0, 0.3}, {2.0, 0.01, 0.2}};

}  // namespace

TEST_CASE("optim: Adam's first step moves each weight by lr against its gradient's sign") {
  // m_hat = g and v_hat = g^2 at t = 1, so the step is lr * g / (|g| + eps).
  Tensor p = param({1.0, -2.0});
  optim::Adam opt({p}, optim::AdamOptions(0.1));
  sum(p * tensor({0.5, -3.0}, DType::float64)).backward();
  opt.step();
  CHECK(p.at({0}) == Approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-14));
  CHECK(p.at({1}) == Approx(-2.0 + 0.1 * 3.0 / (3.0 + 1e-8)).epsilon(1e-14));
  CHECK(opt.state(0).step == 1);
  CHECK(opt.state(0).exp_avg.at({0}) == Approx(0.05));
  CHECK(opt.state(0).exp_avg_sq.at({1}) == Approx(0.001 * 9.0));
}

TEST_CASE("optim: Adam follows PyTorch's formulas over several steps") {
  Tensor p = param({1.0, -2.0, 0.5});
  optim::Adam opt({p}, optim::AdamOptions(0.01));
  run(opt, p, {0.01, 0.9, 0.999, 1e-8, 0.0, false, false, {}, {}, {}, 0}, kSteps);
}

TEST_CASE("optim: Adam with L2 weight decay, custom betas and eps") {
  Tensor p = param({1.0, -2.0, 0.5});
  optim::Adam opt({p}, optim::AdamOptions(0.05).betas({0.8, 0.99}).eps(1e-3).weight_decay(0.1));
  run(opt, p, {0.05, 0.8, 0.99, 1e-3, 0.1, false, false, {}, {}, {}, 0}, kSteps);
}

TEST_CASE("optim: Adam with AMSGrad keeps the running maximum of v") {
  Tensor p = param({1.0, -2.0, 0.5});
  optim::Adam opt({p}, optim::AdamOptions(0.05).amsgrad(true));
  run(opt, p, {0.05, 0.9, 0.999, 1e-8, 0.0, true, false, {}, {}, {}, 0}, kSteps);
  const Tensor& vmax = opt.state(0).max_exp_avg_sq;
  const Tensor& v = opt.state(0).exp_avg_sq;
  for (int64_t i = 0; i < 3; ++i) CHECK(vmax.at({i}) >= v.at({i}));
  CHECK(vmax.at({1}) > v.at({1}));  // the first, large gradient (6) is remembered
}

TEST_CASE("optim: AdamW decays the weights directly by lr * weight_decay") {
  Tensor p = param({1.0, -2.0, 0.5});
  optim::AdamW opt({p}, optim::AdamWOptions(0.05).weight_decay(0.2));
  run(opt, p, {0.05, 0.9, 0.999, 1e-8, 0.2, false, true, {}, {}, {}, 0}, kSteps);
  Tensor q = param({1.0, -2.0, 0.5});
  optim::AdamW opt2({q}, optim::AdamWOptions(0.05).amsgrad(true));  // default weight_decay 1e-2
  run(opt2, q, {0.05, 0.9, 0.999, 1e-8, 0.01, true, true, {}, {}, {}, 0}, kSteps);
}

TEST_CASE("optim: AdamW's first step by hand") {
  // p = 2, g = 1, lr = 0.1, wd = 0.5: p <- 2 * (1 - 0.05) = 1.9, then 1.9 - 0.1 * 1 / (1 + 1e-8).
  Tensor p = param({2.0});
  optim::AdamW opt({p}, optim::AdamWOptions(0.1).weight_decay(0.5));
  sum(p).backward();
  opt.step();
  CHECK(p.item() == Approx(1.9 - 0.1 / (1 + 1e-8)).epsilon(1e-14));
}

TEST_CASE("optim: Adam skips parameters without a gradient and counts steps per parameter") {
  Tensor a = param({1.0});
  Tensor b = param({1.0});
  optim::Adam opt({a, b}, optim::AdamOptions(0.1).weight_decay(0.1));
  sum(a * 2.0).backward();
  opt.step();
  CHECK(b.item() == 1.0);
  CHECK(opt.state(1).step == 0);
  CHECK_FALSE(opt.state(1).exp_avg.defined());
  opt.zero_grad();
  sum(a + b).backward();
  opt.step();
  CHECK(opt.state(0).step == 2);
  CHECK(opt.state(1).step == 1);
  // b's first step: bias corrections of t = 1, so again a step of lr against the sign.
  CHECK(b.item() == Approx(1.0 - 0.1 * 1.1 / (1.1 + 1e-8)).epsilon(1e-14));
}

TEST_CASE("optim: Adam works in float32") {
  Tensor p = tensor({1.0, -1.0}, TensorOptions().requires_grad(true));
  optim::Adam opt({p}, optim::AdamOptions(0.1));
  sum(p * p).backward();
  opt.step();
  CHECK(p.dtype() == DType::float32);
  CHECK(p.at({0}) == Approx(0.9).epsilon(1e-6));
  CHECK(p.at({1}) == Approx(-0.9).epsilon(1e-6));
}

TEST_CASE("optim: Adam and AdamW options are validated with the bad value in the message") {
  Tensor p = param({1.0});
  CHECK_THROWS_AS(optim::Adam({p}, optim::AdamOptions(-1e-3)), std::invalid_argument);
  CHECK_THROWS_WITH(optim::Adam({p}, optim::AdamOptions(-1e-3)), Contains("learning rate must be finite and >= 0, got -0.001"));
  CHECK_THROWS_WITH(optim::Adam({p}, optim::AdamOptions().betas({1.0, 0.999})), Contains("beta1 must be in [0, 1), got 1"));
  CHECK_THROWS_WITH(optim::Adam({p}, optim::AdamOptions().betas({0.9, -0.1})), Contains("beta2 must be in [0, 1), got -0.1"));
  CHECK_THROWS_WITH(optim::Adam({p}, optim::AdamOptions().eps(0)), Contains("eps must be finite and > 0, got 0"));
  CHECK_THROWS_WITH(optim::AdamW({p}, optim::AdamWOptions().eps(-1e-8)), Contains("AdamW: eps must be finite and > 0"));
  CHECK_THROWS_WITH(optim::Adam({p}, optim::AdamOptions().eps(INFINITY)), Contains("got inf"));
  CHECK_THROWS_WITH(optim::AdamW({p}, optim::AdamWOptions().weight_decay(-0.01)),
                    Contains("weight_decay must be finite and >= 0, got -0.01"));
  CHECK(optim::AdamWOptions().weight_decay() == 0.01);
  CHECK(optim::AdamOptions().weight_decay() == 0.0);
  CHECK(optim::AdamOptions().lr() == 0.001);
}

TEST_CASE("optim: Adam survives one huge gradient as PyTorch does, and AMSGrad keeps infinite moments without NaN") {
  // (1 - beta2) g first, then times g (PyTorch's addcmul_): g * g overflowed float32 for |g| >
  // 1.8e19, the second moment became inf for good and every later step was exactly 0.
  const TensorOptions f32 = TensorOptions(DType::float32).requires_grad(true);
  Tensor w = tensor({1.0}, f32);
  optim::Adam adam({w}, optim::AdamOptions(0.1));
  (sum(w * 1e20)).backward();
  adam.step();
  adam.zero_grad();
  CHECK(std::isfinite(adam.state(0).exp_avg_sq.item()));
  (sum(w * 1.0)).backward();
  adam.step();
  CHECK(w.item() == Approx(0.8333).epsilon(1e-3));  // LibTorch 1.13: 0.833 after these two steps

  // AMSGrad's running maximum took a + relu(b - a): with both infinite that is NaN, and the weight
  // became NaN (LibTorch keeps it: torch.maximum). Now the exact maximum.
  Tensor u = tensor({1.0}, TensorOptions(DType::float64).requires_grad(true));
  optim::Adam ams({u}, optim::AdamOptions(0.1).amsgrad(true));
  for (int k = 0; k < 2; ++k) {
    ams.zero_grad();
    (sum(u * 1e200)).backward();
    ams.step();
  }
  CHECK(std::isinf(ams.state(0).max_exp_avg_sq.item()));
  CHECK(u.item() == 1.0);  // m / sqrt(inf) is 0, as LibTorch
}
