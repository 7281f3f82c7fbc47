// SequentialLR and ChainedScheduler (optim/lr_scheduler_sequence.h) against the closed forms of
// their parts, written out here from torch's code (its documentation's ChainedScheduler example
// is off by one epoch); initial_lr; checkpoints; errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <vector>

#include "optim/checkpoint.h"
#include "optim/lr_scheduler_sequence.h"
#include "optim/sgd.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::message_of;

namespace {

Tensor param() { return tensor({1.0}, TensorOptions(DType::float64).requires_grad(true)); }

double cosine(double base, double t, double period) { return base * (1 + std::cos(std::numbers::pi * t / period)) / 2; }

// Warm-up then cosine on an SGD of two groups (base rates 1 and 0.1): LinearLR from 0.1 to 1 over
// 3 epochs, CosineAnnealingLR over 4, switched at epoch 3.
struct WarmupCosine {
  Tensor a = param(), b = param();
  optim::SGD opt{{optim::ParamGroup({a}), optim::ParamGroup({b}).lr(0.1)}, optim::SGDOptions(1.0)};
  std::shared_ptr<optim::LinearLR> warmup = std::make_shared<optim::LinearLR>(opt, 0.1, 1.0, 3);
  std::shared_ptr<optim::CosineAnnealingLR> decay = std::make_shared<optim::CosineAnnealingLR>(opt, 4);
  optim::SequentialLR schedule{opt, {warmup, decay}, {3}};
};

double warmup_cosine(double base, int64_t e) {
  return e < 3 ? base * (0.1 + 0.3 * static_cast<double>(e)) : cosine(base, static_cast<double>(e - 3), 4);
}

}  // namespace

TEST_CASE("optim: schedulers built one after another share the optimizer's initial rates", "[scheduler]") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(2.0));
  optim::LinearLR warmup(opt, 0.25, 1.0, 4);  // sets 0.5 at once
  CHECK(opt.get_lr() == 0.5);
  optim::CosineAnnealingLR decay(opt, 10);
  // torch's initial_lr: the second scheduler's base is the rate before the first one ran.
  CHECK(decay.base_lrs() == std::vector<double>{2.0});
  CHECK(opt.initial_lrs() == std::vector<double>{2.0});
  opt.set_lr(3.0);  // later changes of the rate do not move it
  CHECK(opt.initial_lrs() == std::vector<double>{2.0});
  // A scheduler that was refused records nothing.
  optim::SGD fresh({p}, optim::SGDOptions(2.0));
  CHECK_THROWS(optim::ExponentialLR(fresh, 0.0));
  fresh.set_lr(3.0);
  CHECK(optim::ExponentialLR(fresh, 0.5).base_lrs() == std::vector<double>{3.0});
}

TEST_CASE("optim: SequentialLR runs warm-up then cosine as torch's, on every group", "[scheduler]") {
  WarmupCosine w;
  CHECK(w.schedule.last_epoch() == 0);
  for (int64_t e = 0; e <= 12; ++e) {
    if (e > 0) w.schedule.step();
    CHECK(w.schedule.last_epoch() == e);
    for (size_t g = 0; g < 2; ++g) {
      INFO("epoch " << e << ", group " << g);
      CHECK(w.opt.get_lr(g) == Approx(warmup_cosine(g == 0 ? 1.0 : 0.1, e)).epsilon(1e-12).margin(1e-15));
    }
  }
  // Three parts, the middle one constant: each restarts at its milestone from the base rates.
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  auto first = std::make_shared<optim::ExponentialLR>(opt, 0.5);
  auto middle = std::make_shared<optim::ConstantLR>(opt, 0.2, 100);
  auto last = std::make_shared<optim::PolynomialLR>(opt, 2, 1.0);
  optim::SequentialLR three(opt, {first, middle, last}, {2, 5});
  const std::vector<double> want{1.0, 0.5, 0.2, 0.2, 0.2, 1.0, 0.5, 0.0, 0.0};
  for (size_t e = 0; e < want.size(); ++e) {
    if (e > 0) three.step();
    INFO("epoch " << e);
    CHECK(opt.get_lr() == Approx(want[e]).margin(1e-15));
  }
}

// Warm-up then step decay, torch's common recipe, traced through torch 1.13's SequentialLR code:
// LinearLR(0.5, 1, 2) gives 0.5, 0.75; at milestone 2 StepLR(2, 0.1) restarts from the base rate
// (its closed form at 0, 1.0), then decays at its own epochs 2 and 4.
TEST_CASE("optim: SequentialLR runs LinearLR warm-up then StepLR as torch's", "[scheduler]") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  auto warmup = std::make_shared<optim::LinearLR>(opt, 0.5, 1.0, 2);
  auto decay = std::make_shared<optim::StepLR>(opt, 2, 0.1);
  optim::SequentialLR schedule(opt, {warmup, decay}, {2});
  const std::vector<double> want{0.5, 0.75, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01};
  for (size_t e = 0; e < want.size(); ++e) {
    if (e > 0) schedule.step();
    INFO("epoch " << e);
    CHECK(opt.get_lr() == Approx(want[e]).epsilon(1e-14));
  }
  // StepLR alone in a ChainedScheduler beside ExponentialLR: the factors multiply.
  Tensor q = param();
  optim::SGD opt2({q}, optim::SGDOptions(1.0));
  auto step = std::make_shared<optim::StepLR>(opt2, 2, 0.5);
  auto exponential = std::make_shared<optim::ExponentialLR>(opt2, 0.9);
  optim::ChainedScheduler chained({step, exponential});
  for (int e = 1; e <= 4; ++e) {
    chained.step();
    INFO("epoch " << e);
    CHECK(opt2.get_lr() == Approx(std::pow(0.5, e / 2) * std::pow(0.9, e)).epsilon(1e-14));
  }
}

// StepLR's checkpoint is now LRScheduler's (with the base rates); a file saved before, with
// "last_epoch" alone, still loads.
TEST_CASE("optim: StepLR loads its old state, the epoch count alone", "[scheduler]") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  optim::StepLR decay(opt, 3, 0.5);
  CHECK(decay.state_dict() == std::map<std::string, double>{{"last_epoch", 0.0}, {"base_lr.0", 1.0}});
  decay.load_state_dict({{"last_epoch", 5.0}});
  CHECK(decay.last_epoch() == 5);
  CHECK(decay.base_lrs() == std::vector<double>{1.0});
  decay.step();  // epoch 6: a decay
  CHECK(opt.get_lr() == 0.5);
  CHECK_THAT(message_of<std::invalid_argument>([&] { decay.load_state_dict({{"last_epoch", -1.0}}); }),
             Contains("StepLR::load_state_dict: \"last_epoch\" must be a whole number >= 0, got -1"));
  CHECK(decay.last_epoch() == 6);
}

TEST_CASE("optim: ChainedScheduler multiplies its schedulers' factors", "[scheduler]") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  auto constant = std::make_shared<optim::ConstantLR>(opt, 0.1, 2);
  auto decay = std::make_shared<optim::ExponentialLR>(opt, 0.9);
  optim::ChainedScheduler chain({constant, decay});
  for (int64_t e = 0; e <= 6; ++e) {
    if (e > 0) chain.step();
    INFO("epoch " << e);
    CHECK(opt.get_lr() == Approx((e < 2 ? 0.1 : 1.0) * std::pow(0.9, static_cast<double>(e))).epsilon(1e-12));
  }
  CHECK(chain.get_last_lr() == opt.get_lr());
  CHECK(constant->last_epoch() == 6);
  CHECK(decay->last_epoch() == 6);
  // A part that refuses a step (a LambdaLR giving NaN at epoch 3) undoes the whole step.
  optim::SGD opt2({p}, optim::SGDOptions(1.0));
  auto halve = std::make_shared<optim::ExponentialLR>(opt2, 0.5);
  auto bad = std::make_shared<optim::LambdaLR>(opt2, [](int64_t e) { return e == 3 ? NAN : 1.0; });
  optim::ChainedScheduler broken({halve, bad});
  broken.step();
  broken.step();
  const double before = opt2.get_lr();
  CHECK_THROWS_WITH(broken.step(), Contains("LambdaLR: epoch 3"));
  CHECK(opt2.get_lr() == before);
  CHECK(halve->last_epoch() == 2);
  CHECK(bad->last_epoch() == 2);
}

TEST_CASE("optim: SequentialLR and ChainedScheduler resume from a checkpoint as if never stopped", "[scheduler]") {
  testing::TempDir dir;
  WarmupCosine straight;
  std::vector<double> expected{straight.opt.get_lr()};
  for (int e = 0; e < 10; ++e) {
    straight.schedule.step();
    expected.push_back(straight.opt.get_lr());
  }
  WarmupCosine first;
  for (int e = 0; e < 4; ++e) first.schedule.step();
  optim::save(first.opt, dir / "sequential.safetensors", &first.schedule);
  CHECK(first.schedule.state_dict().at("1.last_epoch") == 1);  // the cosine's own count
  WarmupCosine second;
  optim::load(second.opt, dir / "sequential.safetensors", &second.schedule);
  CHECK(second.schedule.last_epoch() == 4);
  CHECK(second.opt.get_lr() == expected[4]);
  for (size_t e = 5; e <= 10; ++e) {
    second.schedule.step();
    CHECK(second.opt.get_lr() == Approx(expected[e]).epsilon(1e-15));
  }
  // A state with an unknown or a bad part loads nothing.
  auto state = first.schedule.state_dict();
  const auto before = second.schedule.state_dict();
  state["2.last_epoch"] = 1;
  CHECK_THAT(message_of<std::invalid_argument>([&] { second.schedule.load_state_dict(state); }),
             Contains("SequentialLR::load_state_dict: unknown entry \"2.last_epoch\""));
  state.erase("2.last_epoch");
  state["1.last_epoch"] = -1;
  CHECK_THROWS_AS(second.schedule.load_state_dict(state), std::invalid_argument);
  CHECK(second.schedule.state_dict() == before);
}

TEST_CASE("optim: SequentialLR and ChainedScheduler errors name the combination and the value", "[scheduler]") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0)), other({p}, optim::SGDOptions(1.0));
  auto a = std::make_shared<optim::ExponentialLR>(opt, 0.5);
  auto b = std::make_shared<optim::ConstantLR>(opt);
  auto elsewhere = std::make_shared<optim::ExponentialLR>(other, 0.5);
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::SequentialLR(opt, {}, {}); }),
             Contains("SequentialLR: needs at least one scheduler"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::SequentialLR(opt, {a, nullptr}, {2}); }),
             Contains("SequentialLR: scheduler 1 is null"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::SequentialLR(opt, {a, elsewhere}, {2}); }),
             Contains("SequentialLR: scheduler 1 (ExponentialLR) is built on another optimizer"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::SequentialLR(opt, {a, b}, {2, 4}); }),
             Contains("SequentialLR: 2 scheduler(s) need 1 milestone(s), got 2"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::SequentialLR(opt, {a, b, a}, {3, 3}); }),
             Contains("milestones must be increasing and >= 1, got 3 at 1"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::SequentialLR(opt, {a, b}, {0}); }),
             Contains("got 0 at 0"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::ChainedScheduler({a, elsewhere}); }),
             Contains("ChainedScheduler: scheduler 1 (ExponentialLR) is built on another optimizer than the first"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::ConstantLR(opt, 0.0); }),
             Contains("ConstantLR: factor must be in (0, 1], got 0"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::PolynomialLR(opt, 0); }),
             Contains("PolynomialLR: total_iters must be >= 1, got 0"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::PolynomialLR(opt, 3, -1.0); }),
             Contains("PolynomialLR: power must be finite and >= 0, got -1"));
}
