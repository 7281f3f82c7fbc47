// The formula schedules (optim/lr_scheduler.h) against their closed forms, written out here from
// PyTorch's documentation, on two groups with different base rates; small cases worked by hand;
// the chainable forms carrying a set_lr() and a second scheduler along; checkpoints; errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numbers>
#include <vector>

#include "optim/checkpoint.h"
#include "optim/lr_scheduler.h"
#include "optim/sgd.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;

namespace {

Tensor param() { return tensor({1.0}, TensorOptions(DType::float64).requires_grad(true)); }

// An SGD with two groups: base rates 0.5 and 0.02.
struct TwoGroups {
  Tensor a = param(), b = param();
  optim::SGD opt{{optim::ParamGroup({a}), optim::ParamGroup({b}).lr(0.02)}, optim::SGDOptions(0.5)};
};

using Closed = std::function<double(double base, int64_t e)>;

// `epochs` steps of `s` (built on t.opt), every group's rate at every epoch against closed(base, e).
void check_against(optim::LRScheduler& s, TwoGroups& t, const Closed& closed, int64_t epochs) {
  const std::vector<double> bases{0.5, 0.02};
  REQUIRE(s.base_lrs() == bases);
  for (int64_t e = 0; e <= epochs; ++e) {
    if (e > 0) s.step();
    REQUIRE(s.last_epoch() == e);
    for (size_t g = 0; g < 2; ++g) {
      INFO(s.name() << ", epoch " << e << ", group " << g);
      CHECK(t.opt.get_lr(g) == Approx(closed(bases[g], e)).epsilon(1e-12).margin(1e-15));
    }
  }
}

double cosine(double base, double eta_min, double t, double period) {
  return eta_min + (base - eta_min) * (1 + std::cos(std::numbers::pi * t / period)) / 2;
}

std::vector<double> rates(optim::LRScheduler& s, int64_t epochs) {
  std::vector<double> out{s.get_last_lr()};
  for (int64_t e = 0; e < epochs; ++e) {
    s.step();
    out.push_back(s.get_last_lr());
  }
  return out;
}

}  // namespace

TEST_CASE("optim: the formula schedules follow their closed forms on every group", "[scheduler]") {
  TwoGroups t;
  SECTION("ExponentialLR") {
    optim::ExponentialLR s(t.opt, 0.9);
    check_against(s, t, [](double b, int64_t e) { return b * std::pow(0.9, static_cast<double>(e)); }, 40);
  }
  SECTION("ConstantLR") {
    optim::ConstantLR s(t.opt, 0.25, 4);
    check_against(s, t, [](double b, int64_t e) { return b * (e < 4 ? 0.25 : 1.0); }, 10);
  }
  SECTION("PolynomialLR") {
    optim::PolynomialLR s(t.opt, 6, 2.5);
    check_against(
        s, t,
        [](double b, int64_t e) { return b * std::pow(1.0 - static_cast<double>(std::min<int64_t>(e, 6)) / 6, 2.5); },
        10);
  }
  SECTION("PolynomialLR of power 0 keeps the base rate (torch's 0^0 = 1, in both its forms)") {
    optim::PolynomialLR s(t.opt, 3, 0.0);
    check_against(s, t, [](double b, int64_t) { return b; }, 6);
  }
  SECTION("MultiStepLR: a milestone listed twice decays twice") {
    optim::MultiStepLR s(t.opt, {7, 3, 7}, 0.5);
    check_against(s, t, [](double b, int64_t e) { return b * (e >= 7 ? 0.125 : e >= 3 ? 0.5 : 1.0); }, 12);
  }
  SECTION("LinearLR, warming up and decaying") {
    optim::LinearLR up(t.opt, 0.25, 1.0, 4);
    check_against(up, t, [](double b, int64_t e) { return b * (0.25 + 0.75 * static_cast<double>(std::min<int64_t>(e, 4)) / 4); }, 9);
    TwoGroups u;
    optim::LinearLR down(u.opt, 1.0, 0.0, 5);
    check_against(down, u, [](double b, int64_t e) { return b * (1 - static_cast<double>(std::min<int64_t>(e, 5)) / 5); }, 9);
  }
  SECTION("CosineAnnealingLR, past T_max too") {
    optim::CosineAnnealingLR s(t.opt, 10, 0.001);
    check_against(s, t, [](double b, int64_t e) { return cosine(b, 0.001, static_cast<double>(e), 10); }, 45);
  }
  SECTION("CosineAnnealingWarmRestarts, growing cycles") {
    optim::CosineAnnealingWarmRestarts s(t.opt, 3, 2, 0.001);
    // Cycles of 3, 6, 12, 24 epochs: starts at 0, 3, 9, 21.
    check_against(s, t, [](double b, int64_t e) {
      const int64_t start = e < 3 ? 0 : e < 9 ? 3 : e < 21 ? 9 : 21, period = e < 3 ? 3 : e < 9 ? 6 : e < 21 ? 12 : 24;
      return cosine(b, 0.001, static_cast<double>(e - start), static_cast<double>(period));
    }, 30);
  }
  SECTION("CosineAnnealingWarmRestarts, equal cycles") {
    optim::CosineAnnealingWarmRestarts s(t.opt, 4);
    check_against(s, t, [](double b, int64_t e) { return cosine(b, 0, static_cast<double>(e % 4), 4); }, 13);
  }
  SECTION("LambdaLR, one function per group") {
    optim::LambdaLR s(t.opt, {[](int64_t e) { return 1.0 / static_cast<double>(e + 1); },
                              [](int64_t e) { return e < 2 ? 0.1 : 1.0; }});
    check_against(s, t, [](double b, int64_t e) {
      return b == 0.5 ? b / static_cast<double>(e + 1) : b * (e < 2 ? 0.1 : 1.0);
    }, 6);
  }
}

TEST_CASE("optim: the formula schedules on small cases worked by hand", "[scheduler]") {
  Tensor p = param();
  {
    optim::SGD opt({p}, optim::SGDOptions(1.0));
    optim::CosineAnnealingLR s(opt, 2);  // 1, (1 + cos(pi/2))/2, 0, and back up
    const std::vector<double> r = rates(s, 4);
    const std::vector<double> expected{1, 0.5, 0, 0.5, 1};
    for (size_t i = 0; i < r.size(); ++i) CHECK(r[i] == Approx(expected[i]).margin(1e-15));
  }
  {
    optim::SGD opt({p}, optim::SGDOptions(0.3));
    optim::LinearLR s(opt);  // PyTorch's defaults: from 0.3 / 3 up to 0.3 over 5 epochs
    const std::vector<double> r = rates(s, 6);
    const std::vector<double> expected{0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.3};
    for (size_t i = 0; i < r.size(); ++i) CHECK(r[i] == Approx(expected[i]).epsilon(1e-13));
  }
  {
    optim::SGD opt({p}, optim::SGDOptions(1.0));
    optim::CosineAnnealingWarmRestarts s(opt, 2, 2);  // cycles of 2 then 4 epochs
    const double c = std::cos(std::numbers::pi / 4);
    const std::vector<double> r = rates(s, 6);
    const std::vector<double> expected{1, 0.5, 1, (1 + c) / 2, 0.5, (1 - c) / 2, 1};
    for (size_t i = 0; i < r.size(); ++i) CHECK(r[i] == Approx(expected[i]).margin(1e-15));
  }
  {
    optim::SGD opt({p}, optim::SGDOptions(1.0));
    optim::MultiStepLR s(opt, {0, 2}, 0.1);  // a milestone at 0 applies when the scheduler is built
    CHECK(opt.get_lr() == Approx(0.1));
    s.step();
    CHECK(opt.get_lr() == Approx(0.1));
    s.step();
    CHECK(opt.get_lr() == Approx(0.01));
  }
}

TEST_CASE("optim: chainable schedules carry a set_lr() and a second scheduler along", "[scheduler]") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  optim::ExponentialLR decay(opt, 0.5);
  decay.step();
  opt.set_lr(8.0);  // by hand, between epochs
  decay.step();
  CHECK(opt.get_lr() == 4.0);

  // A linear warm-up and an exponential decay on the same optimizer: their factors multiply (what
  // torch's ChainedScheduler runs).
  optim::SGD both({p}, optim::SGDOptions(0.4));
  optim::LinearLR warmup(both, 0.5, 1.0, 4);
  optim::ExponentialLR gamma(both, 0.9);
  for (int64_t e = 1; e <= 8; ++e) {
    warmup.step();
    gamma.step();
    const double linear = 0.5 + 0.5 * static_cast<double>(std::min<int64_t>(e, 4)) / 4;
    CHECK(both.get_lr() == Approx(0.4 * linear * std::pow(0.9, static_cast<double>(e))).epsilon(1e-12));
  }

  // LambdaLR sets its rate outright: a set_lr() lasts until the next step.
  optim::SGD outright({p}, optim::SGDOptions(1.0));
  optim::LambdaLR lambda(outright, [](int64_t e) { return 1.0 + static_cast<double>(e); });
  outright.set_lr(100.0);
  lambda.step();
  CHECK(outright.get_lr() == 2.0);
}

TEST_CASE("optim: a formula schedule resumes from a checkpoint as if never stopped", "[scheduler]") {
  testing::TempDir dir;
  Tensor p = param();
  optim::SGD straight({p}, optim::SGDOptions(0.5));
  optim::CosineAnnealingWarmRestarts uninterrupted(straight, 3, 2, 0.01);
  const std::vector<double> expected = rates(uninterrupted, 12);

  optim::SGD first({p}, optim::SGDOptions(0.5));
  optim::CosineAnnealingWarmRestarts s1(first, 3, 2, 0.01);
  for (int e = 0; e < 5; ++e) s1.step();
  optim::save(first, dir / "cosine.safetensors", &s1);

  // The second run's optimizer starts elsewhere: the base rate comes from the file too.
  optim::SGD second({p}, optim::SGDOptions(7.0));
  optim::CosineAnnealingWarmRestarts s2(second, 3, 2, 0.01);
  optim::load(second, dir / "cosine.safetensors", &s2);
  CHECK(s2.last_epoch() == 5);
  CHECK(s2.base_lrs() == std::vector<double>{0.5});
  CHECK(second.get_lr() == expected[5]);
  for (size_t e = 6; e <= 12; ++e) {
    s2.step();
    CHECK(second.get_lr() == expected[e]);
  }
}

TEST_CASE("optim: the formula schedules' errors name the scheduler and the value", "[scheduler]") {
  TwoGroups t;
  CHECK_THROWS_WITH(optim::ExponentialLR(t.opt, 0), "ExponentialLR: gamma must be finite and > 0, got 0");
  CHECK_THROWS_WITH(optim::MultiStepLR(t.opt, {2, -1}), "MultiStepLR: milestones must be >= 0, got -1");
  CHECK_THROWS_WITH(optim::MultiStepLR(t.opt, {2}, -0.5), "MultiStepLR: gamma must be finite and > 0, got -0.5");
  CHECK_THROWS_WITH(optim::LinearLR(t.opt, 0), "LinearLR: start_factor must be in (0, 1], got 0");
  CHECK_THROWS_WITH(optim::LinearLR(t.opt, 0.5, 1.5), "LinearLR: end_factor must be in [0, 1], got 1.5");
  CHECK_THROWS_WITH(optim::LinearLR(t.opt, 0.5, 1, 0), "LinearLR: total_iters must be >= 1, got 0");
  CHECK_THROWS_WITH(optim::CosineAnnealingLR(t.opt, 0), "CosineAnnealingLR: T_max must be >= 1, got 0");
  CHECK_THROWS_WITH(optim::CosineAnnealingLR(t.opt, 5, -1), "CosineAnnealingLR: eta_min must be finite and >= 0, got -1");
  CHECK_THROWS_WITH(optim::CosineAnnealingWarmRestarts(t.opt, 3, 0),
                    "CosineAnnealingWarmRestarts: T_mult must be >= 1, got 0");
  CHECK_THROWS_WITH(optim::LambdaLR(t.opt, std::vector<optim::LambdaLR::Factor>(3, [](int64_t) { return 1.0; })),
                    "LambdaLR: expected 1 function or one per group (2), got 3");
  CHECK_THROWS_WITH(optim::LambdaLR(t.opt, optim::LambdaLR::Factor()), "LambdaLR: function 0 is empty");
  // No constructor that threw changed a rate.
  CHECK(t.opt.get_lrs() == std::vector<double>{0.5, 0.02});

  // A step whose rate is not a number changes nothing, the epoch count included.
  optim::LambdaLR bad(t.opt, [](int64_t e) { return e == 2 ? std::nan("") : 0.5; });
  bad.step();
  CHECK_THROWS_WITH(bad.step(), Contains("LambdaLR: epoch 2 gives group 0 the rate nan"));
  CHECK(bad.last_epoch() == 1);
  CHECK(t.opt.get_lrs() == std::vector<double>{0.25, 0.01});

  optim::ExponentialLR s(t.opt, 0.9);
  auto state = s.state_dict();
  CHECK(state.size() == 3);
  state.erase("base_lr.1");
  CHECK_THROWS_WITH(s.load_state_dict(state), "ExponentialLR::load_state_dict: the entry \"base_lr.1\" is missing");
  state["base_lr.1"] = -1;
  CHECK_THROWS_WITH(s.load_state_dict(state),
                    "ExponentialLR::load_state_dict: \"base_lr.1\" must be finite and >= 0, got -1");
  state["base_lr.1"] = 0.1;
  state["base_lr.2"] = 0.1;
  CHECK_THROWS_WITH(s.load_state_dict(state), "ExponentialLR::load_state_dict: unknown entry \"base_lr.2\"");
  CHECK(s.base_lrs() == std::vector<double>{0.5, 0.02});  // nothing was loaded (the initial rates, torch's initial_lr)
}

TEST_CASE("optim: StepLR takes a last_epoch its state dict holds, and steps from it without overflow", "[scheduler]") {
  // A last_epoch of int64's largest was taken: the first step() wrapped the count to -2^63.
  TwoGroups t;
  const int64_t top = std::numeric_limits<int64_t>::max();
  CHECK_THROWS_WITH(optim::StepLR(t.opt, 3, 0.5, top),
                    "StepLR: last_epoch must be below 9200000000000000000 (a state dict's largest count), got "
                    "9223372036854775807");
  CHECK(t.opt.get_lrs() == std::vector<double>{0.5, 0.02});
  // Just below it: built, and stepped on (9.2e18 - 2 is a multiple of 3: a decay).
  optim::StepLR s(t.opt, 3, 0.5, 9'199'999'999'999'999'996);
  s.step();
  CHECK(s.last_epoch() == 9'199'999'999'999'999'997);
  CHECK(t.opt.get_lrs() == std::vector<double>{0.5, 0.02});
  s.step();
  CHECK(s.last_epoch() == 9'199'999'999'999'999'998);
  CHECK(t.opt.get_lrs() == std::vector<double>{0.25, 0.01});
}

TEST_CASE("optim: CosineAnnealingLR takes a T_max up to int64's largest", "[scheduler]") {
  // Its step formed 2 T_max, which overflowed past 2^62 (undefined behaviour: this fails in the
  // CHAINRULE_SANITIZE build). The rate follows the closed form, and at the small T_max the bottom
  // of the cosine (torch's (e - 1 - T_max) % (2 T_max) == 0 case) still steps up by the closed form.
  TwoGroups t;
  const int64_t top = std::numeric_limits<int64_t>::max();
  optim::CosineAnnealingLR huge(t.opt, top);
  for (int e = 0; e < 4; ++e) huge.step();
  CHECK(t.opt.get_lrs() == std::vector<double>{0.5, 0.02});
  TwoGroups u;
  optim::CosineAnnealingLR small(u.opt, 2, 0.1);
  const auto closed = [](double base, int64_t e) {
    return 0.1 + (base - 0.1) * (1 + std::cos(std::numbers::pi * static_cast<double>(e) / 2)) / 2;
  };
  for (int64_t e = 1; e <= 9; ++e) {
    small.step();
    INFO("epoch " << e);
    CHECK(u.opt.get_lr(0) == Approx(closed(0.5, e)).epsilon(1e-12));
  }
}
