// optim::RMSprop and optim::Adagrad against PyTorch's documented updates on hand-computed steps
// (plain doubles following torch.optim.RMSprop's and torch.optim.Adagrad's algorithms), skipped
// parameters, state dicts that resume exactly, and the options' validation.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "optim/rmsprop.h"

using namespace chainrule;
using Catch::Contains;

namespace {

Tensor param(const NestedList& v) { return tensor(v, TensorOptions(DType::float64).requires_grad(true)); }

// torch.optim.RMSprop for one parameter, on doubles.
struct ReferenceRMSprop {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered;
  std::vector<double> v, a, b;
  void step(std::vector<double>& p, std::vector<double> g) {
    if (v.empty()) v = a = b = std::vector<double>(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      g[i] += weight_decay * p[i];
      v[i] = alpha * v[i] + (1 - alpha) * g[i] * g[i];
      double d;
      if (centered) {
        a[i] = alpha * a[i] + (1 - alpha) * g[i];
        d = std::sqrt(v[i] - a[i] * a[i]) + eps;
      } else {
        d = std::sqrt(v[i]) + eps;
      }
      if (momentum > 0) {
        b[i] = momentum * b[i] + g[i] / d;
        p[i] -= lr * b[i];
      } else {
        p[i] -= lr * g[i] / d;
      }
    }
  }
};

// torch.optim.Adagrad for one parameter, on doubles.
struct ReferenceAdagrad {
  double lr, lr_decay, weight_decay, initial, eps;
  std::vector<double> s;
  int t = 0;
  void step(std::vector<double>& p, std::vector<double> g) {
    if (s.empty()) s = std::vector<double>(p.size(), initial);
    ++t;
    const double clr = lr / (1 + (t - 1) * lr_decay);
    for (size_t i = 0; i < p.size(); ++i) {
      g[i] += weight_decay * p[i];
      s[i] += g[i] * g[i];
      p[i] -= clr * g[i] / (std::sqrt(s[i]) + eps);
    }
  }
};

// Runs `opt` and the reference (`ref(p, g)`) on the same gradients g_t = c_t * p (from
// L = 1/2 sum(c_t p^2)).
void run(optim::Optimizer& opt, Tensor& p, const std::function<void(std::vector<double>&, std::vector<double>)>& ref,
         const std::vector<std::vector<double>>& cs) {
  std::vector<double> ref_p = p.to_vector();
  for (const auto& c : cs) {
    opt.zero_grad();
    (sum(from_vector(c, p.shape(), DType::float64) * p * p) * 0.5).backward();
    std::vector<double> g(c.size());
    for (size_t i = 0; i < c.size(); ++i) g[i] = c[i] * ref_p[i];
    ref(ref_p, g);
    opt.step();
    const std::vector<double> got = p.to_vector();
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(ref_p[i]).epsilon(1e-12));
  }
}

const std::vector<std::vector<double>> kSteps = {{4.0, -3.0, 1.0}, {0.1, 0.2, -0.5}, {0.05, 1.0, 0.3}, {2.0, 0.01, 0.2}};

}  // namespace

TEST_CASE("optim: RMSprop's first step by hand") {
  // v = (1 - alpha) g^2 = 0.01 g^2, so the step is lr * g / (0.1 |g| + eps) = 10 lr sign(g).
  Tensor p = param({1.0, -2.0});
  optim::RMSprop opt({p}, optim::RMSpropOptions(0.01));
  sum(p * tensor({0.5, -3.0}, DType::float64)).backward();
  opt.step();
  CHECK(p.at({0}) == Approx(1.0 - 0.01 * 0.5 / (0.05 + 1e-8)).epsilon(1e-14));
  CHECK(p.at({1}) == Approx(-2.0 + 0.01 * 3.0 / (0.3 + 1e-8)).epsilon(1e-14));
  CHECK(opt.state(0).step == 1);
  CHECK(opt.state(0).square_avg.at({1}) == Approx(0.09));
  CHECK_FALSE(opt.state(0).momentum_buffer.defined());
}

TEST_CASE("optim: RMSprop follows PyTorch's formulas, plain, centered, with momentum and weight decay") {
  struct Case {
    double lr, alpha, eps, weight_decay, momentum;
    bool centered;
  };
  for (const Case& c : {Case{0.01, 0.99, 1e-8, 0.0, 0.0, false}, Case{0.02, 0.9, 1e-6, 0.1, 0.0, false},
                        Case{0.01, 0.95, 1e-8, 0.0, 0.9, false}, Case{0.01, 0.9, 1e-8, 0.0, 0.0, true},
                        Case{0.005, 0.8, 1e-4, 0.05, 0.5, true}}) {
    INFO("alpha " << c.alpha << " weight_decay " << c.weight_decay << " momentum " << c.momentum << " centered "
                  << c.centered);
    Tensor p = param({1.0, -2.0, 0.5});
    optim::RMSprop opt({p}, optim::RMSpropOptions(c.lr)
                                .alpha(c.alpha)
                                .eps(c.eps)
                                .weight_decay(c.weight_decay)
                                .momentum(c.momentum)
                                .centered(c.centered));
    ReferenceRMSprop ref{c.lr, c.alpha, c.eps, c.weight_decay, c.momentum, c.centered, {}, {}, {}};
    run(opt, p, [&](std::vector<double>& q, std::vector<double> g) { ref.step(q, std::move(g)); }, kSteps);
    CHECK(opt.state(0).momentum_buffer.defined() == (c.momentum > 0));
    CHECK(opt.state(0).grad_avg.defined() == c.centered);
  }
}

TEST_CASE("optim: Adagrad follows PyTorch's formulas, with lr_decay, an initial accumulator and weight decay") {
  struct Case {
    double lr, lr_decay, weight_decay, initial, eps;
  };
  for (const Case& c : {Case{0.1, 0.0, 0.0, 0.0, 1e-10}, Case{0.1, 0.5, 0.0, 0.0, 1e-10},
                        Case{0.05, 0.1, 0.2, 0.3, 1e-6}}) {
    INFO("lr_decay " << c.lr_decay << " weight_decay " << c.weight_decay << " initial " << c.initial);
    Tensor p = param({1.0, -2.0, 0.5});
    optim::Adagrad opt({p}, optim::AdagradOptions(c.lr)
                                .lr_decay(c.lr_decay)
                                .weight_decay(c.weight_decay)
                                .initial_accumulator_value(c.initial)
                                .eps(c.eps));
    ReferenceAdagrad ref{c.lr, c.lr_decay, c.weight_decay, c.initial, c.eps, {}};
    run(opt, p, [&](std::vector<double>& q, std::vector<double> g) { ref.step(q, std::move(g)); }, kSteps);
    CHECK(opt.state(0).step == 4);
  }
  // The first step by hand: s = g^2, so the step is lr * g / (|g| + eps).
  Tensor p = param({1.0});
  optim::Adagrad opt({p}, optim::AdagradOptions(0.1));
  sum(p * 3.0).backward();
  opt.step();
  CHECK(p.item() == Approx(1.0 - 0.1 * 3.0 / (3.0 + 1e-10)).epsilon(1e-14));
}

TEST_CASE("optim: RMSprop and Adagrad skip parameters without a gradient, and their state dicts resume exactly") {
  for (int kind = 0; kind < 2; ++kind) {
    INFO((kind == 0 ? "RMSprop" : "Adagrad"));
    const auto make = [&](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
      if (kind == 0) return std::make_unique<optim::RMSprop>(ps, optim::RMSpropOptions(0.01).momentum(0.9).centered(true));
      return std::make_unique<optim::Adagrad>(ps, optim::AdagradOptions(0.1).lr_decay(0.01));
    };
    Tensor a = param({1.0, 2.0}), b = param({3.0});
    auto opt = make({a, b});
    const auto train = [](optim::Optimizer& o, Tensor& x, const Tensor& y, double c) {
      o.zero_grad();
      (sum(x * x) * c + sum(y * y) * (c > 1 ? 1.0 : 0.0)).backward();
      o.step();
    };
    train(*opt, a, b, 0.5);  // b's gradient is 0 * ..., defined: both step
    opt->zero_grad();
    sum(a * a).backward();  // b takes no part: skipped
    const double b_before = b.item();
    opt->step();
    CHECK(b.item() == b_before);
    const auto state = opt->state_dict();
    CHECK(state.count("0.step") == 1);
    CHECK(state.at("0.step").item() == 2.0);
    CHECK(state.at("1.step").item() == 1.0);
    CHECK(state.count(kind == 0 ? "0.square_avg" : "0.sum") == 1);
    if (kind == 0) {
      CHECK(state.count("0.momentum_buffer") == 1);
      CHECK(state.count("0.grad_avg") == 1);
    }
    // A fresh optimizer over copies, loaded from the state, takes the same next steps.
    const TensorOptions leaf = TensorOptions(DType::float64).requires_grad(true);
    Tensor a2 = from_vector(a.to_vector(), a.shape(), leaf), b2 = from_vector(b.to_vector(), b.shape(), leaf);
    auto resumed = make({a2, b2});
    resumed->load_state_dict(state);
    for (double c : {2.0, 0.7}) {
      train(*opt, a, b, c);
      train(*resumed, a2, b2, c);
    }
    CHECK(a2.to_vector() == a.to_vector());
    CHECK(b2.to_vector() == b.to_vector());
  }
}

TEST_CASE("optim: RMSprop and Adagrad options are validated with the bad value in the message") {
  Tensor p = param({1.0});
  CHECK_THROWS_WITH(optim::RMSprop({p}, optim::RMSpropOptions(-0.1)), Contains("learning rate must be finite and >= 0, got -0.1"));
  CHECK_THROWS_WITH(optim::RMSprop({p}, optim::RMSpropOptions().alpha(1.5)), Contains("RMSprop: alpha must be in [0, 1], got 1.5"));
  CHECK_THROWS_WITH(optim::RMSprop({p}, optim::RMSpropOptions().eps(0)), Contains("RMSprop: eps must be finite and > 0, got 0"));
  CHECK_THROWS_WITH(optim::RMSprop({p}, optim::RMSpropOptions().momentum(-0.9)),
                    Contains("RMSprop: momentum must be finite and >= 0, got -0.9"));
  CHECK_THROWS_WITH(optim::RMSprop({p}, optim::RMSpropOptions().weight_decay(-1)), Contains("weight_decay must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(optim::Adagrad({p}, optim::AdagradOptions().lr_decay(-1)), Contains("Adagrad: lr_decay must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(optim::Adagrad({p}, optim::AdagradOptions().initial_accumulator_value(NAN)),
                    Contains("Adagrad: initial_accumulator_value must be finite and >= 0, got nan"));
  CHECK_THROWS_WITH(optim::Adagrad({p}, optim::AdagradOptions().eps(INFINITY)), Contains("Adagrad: eps must be finite and > 0, got inf"));
  CHECK(optim::RMSpropOptions().lr() == 0.01);
  CHECK(optim::RMSpropOptions().alpha() == 0.99);
  CHECK(optim::AdagradOptions().eps() == 1e-10);
}
