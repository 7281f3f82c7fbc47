// Learning-rate schedulers on scripted sequences, against PyTorch's documented behaviour
// (torch.optim.lr_scheduler.StepLR and ReduceLROnPlateau; the expected sequences were traced by
// hand through PyTorch's step() logic, comments give the reasoning).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "optim/scheduler.h"
#include "optim/sgd.h"

using namespace chainrule;
using Catch::Contains;

namespace {

Tensor param() { return tensor({1.0}, TensorOptions(DType::float64).requires_grad(true)); }

std::vector<double> lrs_after(optim::ReduceLROnPlateau& s, const std::vector<double>& metrics) {
  std::vector<double> out;
  for (double m : metrics) {
    s.step(m);
    out.push_back(s.get_last_lr());
  }
  return out;
}

void check_sequence(const std::vector<double>& got, const std::vector<double>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("epoch " << i + 1);
    CHECK(got[i] == Approx(expected[i]));
  }
}

}  // namespace

TEST_CASE("optim: StepLR multiplies the rate by gamma every step_size epochs (PyTorch's doc example)") {
  // The docs: lr = 0.05 for epochs 0-29, 0.005 for 30-59, 0.0005 for 60-89.
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(0.05));
  optim::StepLR schedule(opt, 30, 0.1);
  for (int epoch = 0; epoch < 90; ++epoch) {
    const double expected = epoch < 30 ? 0.05 : epoch < 60 ? 0.005 : 0.0005;
    INFO("epoch " << epoch);
    CHECK(opt.get_lr() == Approx(expected));
    schedule.step();
  }
  CHECK(schedule.last_epoch() == 90);
  CHECK(schedule.get_last_lr() == Approx(0.00005));
}

TEST_CASE("optim: StepLR with step_size 2 and a manual set_lr in between") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  optim::StepLR schedule(opt, 2, 0.5);
  std::vector<double> got;
  for (int i = 0; i < 4; ++i) {
    schedule.step();
    got.push_back(opt.get_lr());
  }
  check_sequence(got, {1.0, 0.5, 0.5, 0.25});
  opt.set_lr(2.0);  // chainable: the next decay starts from the rate set by hand
  schedule.step();
  schedule.step();
  CHECK(opt.get_lr() == Approx(1.0));
}

TEST_CASE("optim: ReduceLROnPlateau (min, rel threshold, patience 2, cooldown 1) on a scripted loss") {
  // best: 1.0, then 0.9. 0.89995 is no improvement (needs < 0.9 * (1 - 1e-4) = 0.89991): bad 1.
  // 0.9, 0.9: bad 2, 3 > patience -> lr 0.5, cooldown 1. 0.8 improves (cooldown ends). Then three
  // bad epochs at 0.8 -> 0.25, cooldown swallows the next bad epoch, three more -> 0.125.
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  optim::ReduceLROnPlateau s(opt, optim::ReduceLROnPlateauOptions().factor(0.5).patience(2).cooldown(1));
  const std::vector<double> losses = {1.0, 0.9, 0.89995, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8};
  check_sequence(lrs_after(s, losses), {1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125});
  CHECK(s.best() == 0.8);
  CHECK(s.last_epoch() == 13);
}

TEST_CASE("optim: ReduceLROnPlateau reports reductions and tracks its counters") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  optim::ReduceLROnPlateau s(opt, optim::ReduceLROnPlateauOptions().patience(1).cooldown(2));
  CHECK_FALSE(s.step(5.0));
  CHECK_FALSE(s.step(5.0));
  CHECK(s.num_bad_epochs() == 1);
  CHECK(s.step(5.0));  // 2 bad epochs > patience 1: 1.0 -> 0.1 (the default factor)
  CHECK(opt.get_lr() == Approx(0.1));
  CHECK(s.in_cooldown());
  CHECK(s.cooldown_counter() == 2);
  CHECK(s.num_bad_epochs() == 0);
}

TEST_CASE("optim: ReduceLROnPlateau stops at min_lr") {
  // patience 0: every non-improving epoch reduces; 1 -> 0.5 -> max(0.25, 0.3) = 0.3, then no change.
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  optim::ReduceLROnPlateau s(opt, optim::ReduceLROnPlateauOptions().factor(0.5).patience(0).min_lr(0.3));
  check_sequence(lrs_after(s, {1, 1, 1, 1, 1}), {1.0, 0.5, 0.3, 0.3, 0.3});
}

TEST_CASE("optim: ReduceLROnPlateau in max mode with an absolute threshold") {
  // Improvement means metric > best + 0.5: 1 (best), 1.4 (bad 1), 1.6 (best), 2.2 (best),
  // 2.3 (bad 1), 2.4 (bad 2 > patience 1) -> 0.1.
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  using O = optim::ReduceLROnPlateauOptions;
  optim::ReduceLROnPlateau s(opt, O().mode(O::Mode::Max).patience(1).threshold(0.5).threshold_mode(O::ThresholdMode::Abs));
  check_sequence(lrs_after(s, {1, 1.4, 1.6, 2.2, 2.3, 2.4}), {1, 1, 1, 1, 1, 0.1});
}

TEST_CASE("optim: scheduler options are validated with the bad value in the message") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(1.0));
  using O = optim::ReduceLROnPlateauOptions;
  CHECK_THROWS_AS(optim::ReduceLROnPlateau(opt, O().factor(1.0)), std::invalid_argument);
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, O().factor(1.0)), Contains("factor must be in (0, 1), got 1"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, O().patience(-1)), Contains("patience must be >= 0, got -1"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, O().cooldown(-2)), Contains("cooldown must be >= 0, got -2"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, O().min_lr(-0.1)), Contains("min_lr must be finite and >= 0, got -0.1"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, O().threshold(-1e-4)), Contains("threshold must be finite and >= 0"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, O().threshold(INFINITY)), Contains("threshold must be finite"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(opt, O().min_lr(INFINITY)), Contains("min_lr must be finite"));
  CHECK_THROWS_WITH(optim::StepLR(opt, 0), Contains("step_size must be >= 1, got 0"));
  CHECK_THROWS_WITH(optim::StepLR(opt, 10, -0.5), Contains("gamma must be finite and > 0, got -0.5"));
  CHECK_THROWS_WITH(optim::StepLR(opt, 10, INFINITY), Contains("gamma must be finite and > 0, got inf"));
  // A gamma that overflows the rate: the step that would make it infinite throws and changes nothing.
  optim::StepLR grow(opt, 1, 1e200);
  grow.step();
  CHECK(opt.get_lr() == 1e200);
  CHECK_THROWS_WITH(grow.step(), Contains("StepLR: epoch 2 gives group 0 the rate inf, which is not a finite number >= 0"));
  CHECK(opt.get_lr() == 1e200);
  CHECK(grow.last_epoch() == 1);
}
