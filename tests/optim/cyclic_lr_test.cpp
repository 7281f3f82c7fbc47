// CyclicLR (optim/cyclic_lr.h): the triangle worked by hand and torch's three modes against their
// formulas, the momentum moving the other way, a scale of one's own, checkpoints and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/cyclic_lr.h"
#include "optim/rmsprop.h"
#include "optim/sgd.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::message_of;

namespace {

Tensor param() { return tensor({1.0}, TensorOptions(DType::float64).requires_grad(true)); }

// The triangle's height at step t for up 2 and down 3 steps (period 5): 0, 1/2, 1, 2/3, 1/3, 0, ...
double triangle(int64_t t) {
  const int64_t k = t % 5;
  return k <= 2 ? static_cast<double>(k) / 2 : static_cast<double>(5 - k) / 3;
}

}  // namespace

TEST_CASE("optim: CyclicLR's triangle, rate up and momentum down, on two groups", "[scheduler]") {
  Tensor a = param(), b = param();
  optim::SGD opt({optim::ParamGroup({a}), optim::ParamGroup({b})}, optim::SGDOptions(0.5).momentum(0.9));
  optim::CyclicLR s(opt, optim::CyclicLROptions({0.1, 0.01}, {1.0, 0.02}).step_size_up(2).step_size_down(3));
  for (int64_t t = 0; t <= 12; ++t) {
    if (t > 0) s.step();
    INFO("step " << t);
    CHECK(opt.get_lr(0) == Approx(0.1 + 0.9 * triangle(t)).epsilon(1e-12));
    CHECK(opt.get_lr(1) == Approx(0.01 + 0.01 * triangle(t)).epsilon(1e-12));
    CHECK(opt.get_momentum(0) == Approx(0.9 - 0.1 * triangle(t)).epsilon(1e-12));
  }
}

TEST_CASE("optim: CyclicLR's modes scale the triangle as torch's", "[scheduler]") {
  Tensor p = param();
  SECTION("Triangular2 halves the amplitude every cycle") {
    optim::SGD opt({p}, optim::SGDOptions(0.5));
    optim::CyclicLR s(opt, optim::CyclicLROptions(0.0, 1.0).step_size_up(2).step_size_down(3).mode(optim::CyclicMode::Triangular2));
    for (int64_t t = 0; t <= 16; ++t) {
      if (t > 0) s.step();
      INFO("step " << t);
      CHECK(opt.get_lr() == Approx(triangle(t) / std::pow(2.0, static_cast<double>(t / 5))).margin(1e-15));
    }
  }
  SECTION("ExpRange scales by gamma^t, and Adam's beta1 cycles") {
    optim::Adam opt({p}, optim::AdamOptions(0.5));
    optim::CyclicLR s(opt, optim::CyclicLROptions(0.0, 1.0)
                               .step_size_up(2)
                               .step_size_down(3)
                               .mode(optim::CyclicMode::ExpRange)
                               .gamma(0.9)
                               .base_momentum(0.85)
                               .max_momentum(0.95));
    for (int64_t t = 0; t <= 12; ++t) {
      if (t > 0) s.step();
      const double scale = std::pow(0.9, static_cast<double>(t));
      INFO("step " << t);
      CHECK(opt.get_lr() == Approx(triangle(t) * scale).margin(1e-15));
      CHECK(opt.get_momentum(0) == Approx(0.95 - 0.1 * triangle(t) * scale).epsilon(1e-12));
    }
  }
  SECTION("a scale of one's own, of the cycle or of the step") {
    optim::SGD opt({p}, optim::SGDOptions(0.5));
    optim::CyclicLR by_cycle(opt, optim::CyclicLROptions(0.0, 1.0).step_size_up(2).step_size_down(3).cycle_momentum(false).scale_fn(
                                      [](double cycle) { return 1 / cycle; }));
    for (int64_t t = 1; t <= 12; ++t) {
      by_cycle.step();
      CHECK(opt.get_lr() == Approx(triangle(t) / static_cast<double>(t / 5 + 1)).margin(1e-15));
    }
    optim::SGD opt2({p}, optim::SGDOptions(0.5));
    optim::CyclicLR by_step(opt2, optim::CyclicLROptions(0.0, 1.0).step_size_up(2).step_size_down(3).cycle_momentum(false).scale_fn(
                                      [](double t) { return 1 / (1 + t); }, optim::ScaleMode::Iterations));
    for (int64_t t = 1; t <= 7; ++t) {
      by_step.step();
      CHECK(opt2.get_lr() == Approx(triangle(t) / static_cast<double>(1 + t)).margin(1e-15));
    }
  }
}

TEST_CASE("optim: CyclicLR resumes from a checkpoint, and its errors name the option", "[scheduler]") {
  testing::TempDir dir;
  Tensor p = param();
  const auto options = optim::CyclicLROptions(0.01, 0.1).step_size_up(3);
  optim::SGD first({p}, optim::SGDOptions(0.5).momentum(0.9));
  optim::CyclicLR s1(first, options);
  for (int k = 0; k < 4; ++k) s1.step();
  optim::save(first, dir / "cyclic.safetensors", &s1);
  s1.step();
  optim::SGD second({p}, optim::SGDOptions(0.5).momentum(0.9));
  optim::CyclicLR s2(second, options);
  optim::load(second, dir / "cyclic.safetensors", &s2);
  CHECK(s2.last_epoch() == 4);
  s2.step();
  CHECK(second.get_lr() == first.get_lr());
  CHECK(second.get_momentum(0) == first.get_momentum(0));

  optim::SGD opt({p}, optim::SGDOptions(0.5));
  const auto refused = [&](const optim::CyclicLROptions& o, const std::string& message) {
    CHECK_THAT(message_of<std::invalid_argument>([&] { optim::CyclicLR(opt, o); }), Contains(message));
    CHECK(opt.get_lr() == 0.5);
  };
  refused(optim::CyclicLROptions({0.1, 0.2}, {1.0}), "CyclicLR: base_lr needs 1 value or one per group (1), got 2");
  refused(optim::CyclicLROptions(-0.1, 1.0), "CyclicLR: base_lr must be finite and >= 0, got -0.1");
  refused(optim::CyclicLROptions(0.1, 1.0).step_size_up(0), "CyclicLR: step_size_up must be >= 1, got 0");
  refused(optim::CyclicLROptions(0.1, 1.0).step_size_down(-2), "CyclicLR: step_size_down must be >= 1, got -2");
  refused(optim::CyclicLROptions(0.1, 1.0).gamma(0), "CyclicLR: gamma must be finite and > 0, got 0");
  refused(optim::CyclicLROptions(0.1, 1.0).max_momentum(1.5), "SGD: momentum must be in [0, 1), got 1.5");
  optim::Adagrad ada({p}, optim::AdagradOptions(0.01));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::CyclicLR(ada, optim::CyclicLROptions(0.1, 1.0)); }),
             Contains("CyclicLR: Adagrad has no momentum to cycle"));
  // A scale function's NaN refuses the step and changes nothing.
  optim::CyclicLR bad(opt, optim::CyclicLROptions(0.1, 1.0).step_size_up(2).cycle_momentum(false).scale_fn(
                               [](double t) { return t >= 2 ? NAN : 1.0; }, optim::ScaleMode::Iterations));
  bad.step();
  const double before = opt.get_lr();
  CHECK_THAT(message_of<std::invalid_argument>([&] { bad.step(); }), Contains("CyclicLR: step 2 gives group 0 the rate nan"));
  CHECK(opt.get_lr() == before);
  CHECK(bad.last_epoch() == 1);
}

TEST_CASE("optim: CyclicLR takes step sizes up to int64's largest, their sum past it", "[scheduler]") {
  // up + down overflowed int64: with up the largest and down 1 the sum wrapped to -2^63, the ratio
  // up / (up + down) became -1, and step 0 set the rate half-way up the triangle (0.055).
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(0.5).momentum(0.5));
  const int64_t top = std::numeric_limits<int64_t>::max();
  optim::CyclicLR s(opt, optim::CyclicLROptions(0.01, 0.1).step_size_up(top).step_size_down(1));
  CHECK(opt.get_lr() == 0.01);
  CHECK(opt.get_momentum(0) == 0.9);
  for (int k = 0; k < 3; ++k) s.step();  // about 3 / 2^63 of the way up: the rate and momentum stay
  CHECK(opt.get_lr() == Approx(0.01).epsilon(1e-15));
  CHECK(opt.get_momentum(0) == Approx(0.9).epsilon(1e-15));
  optim::CyclicLR both(opt, optim::CyclicLROptions(0.01, 0.1).step_size_up(top).mode(optim::CyclicMode::Triangular2));
  both.step();
  CHECK(opt.get_lr() == Approx(0.01).epsilon(1e-15));
}
