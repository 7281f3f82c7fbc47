// OneCycleLR (optim/one_cycle_lr.h) against torch's phases written out here as closed forms, the
// per-group momentum it cycles (SGD's momentum, Adam's beta1), checkpoints and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/one_cycle_lr.h"
#include "optim/rmsprop.h"
#include "optim/sgd.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::message_of;

namespace {

Tensor param(double v = 1.0) { return tensor({v}, TensorOptions(DType::float64).requires_grad(true)); }

double cos_anneal(double from, double to, double x) { return to + (from - to) * (1 + std::cos(std::numbers::pi * x)) / 2; }

}  // namespace

TEST_CASE("optim: OneCycleLR's two cosine phases, rate and momentum, on two groups", "[scheduler]") {
  Tensor a = param(), b = param();
  optim::SGD opt({optim::ParamGroup({a}), optim::ParamGroup({b})}, optim::SGDOptions(0.5).momentum(0.9));
  // total 10, pct 0.3: the rise ends at step 2 (0.3 * 10 - 1), the fall at step 9.
  optim::OneCycleLR s(opt, optim::OneCycleLROptions({1.0, 0.2}, 10));
  for (int64_t step = 0; step <= 10; ++step) {
    if (step > 0) s.step();
    CHECK(s.last_epoch() == step);
    for (size_t g = 0; g < 2; ++g) {
      const double max = g == 0 ? 1.0 : 0.2, initial = max / 25, min = initial / 1e4;
      const double x = step <= 2 ? static_cast<double>(step) / 2 : static_cast<double>(step - 2) / 7;
      const double lr = step <= 2 ? cos_anneal(initial, max, x) : cos_anneal(max, min, x);
      const double m = step <= 2 ? cos_anneal(0.95, 0.85, x) : cos_anneal(0.85, 0.95, x);
      INFO("step " << step << ", group " << g);
      CHECK(opt.get_lr(g) == Approx(lr).epsilon(1e-12).margin(1e-18));
      CHECK(opt.get_momentum(g) == Approx(m).epsilon(1e-12));
    }
  }
  // Worked by hand: step 1 is halfway up, 1 + (0.04 - 1) / 2 = 0.52; step 9 is the floor, 4e-6.
  Tensor c = param();
  optim::SGD one({c}, optim::SGDOptions(0.5));
  optim::OneCycleLR hand(one, optim::OneCycleLROptions(1.0, 10));
  CHECK(one.get_lr() == Approx(0.04).epsilon(1e-15));
  CHECK(one.get_momentum(0) == Approx(0.95).epsilon(1e-15));
  hand.step();
  CHECK(one.get_lr() == Approx(0.52).epsilon(1e-15));
  CHECK(one.get_momentum(0) == Approx(0.9).epsilon(1e-15));
  for (int k = 0; k < 8; ++k) hand.step();
  CHECK(one.get_lr() == Approx(4e-6).epsilon(1e-12));
  CHECK(one.get_momentum(0) == Approx(0.95).epsilon(1e-15));
  // Step 10 (= total_steps) is allowed, as torch's; step 11 is not, and changes nothing.
  hand.step();
  const double last = one.get_lr();
  CHECK_THROWS_WITH(hand.step(), Contains("OneCycleLR: tried to step 11 times; the specified number of total steps is 10"));
  CHECK(one.get_lr() == last);
  CHECK(hand.last_epoch() == 10);
}

TEST_CASE("optim: OneCycleLR's three linear phases", "[scheduler]") {
  Tensor p = param();
  optim::Adam opt({p}, optim::AdamOptions(1.0));
  // total 20, pct 0.25: up to step 4, back down to step 8, then to the floor at step 19.
  optim::OneCycleLR s(opt, optim::OneCycleLROptions(0.5, 20)
                               .pct_start(0.25)
                               .three_phase(true)
                               .anneal_strategy(optim::AnnealStrategy::Linear)
                               .div_factor(10)
                               .final_div_factor(100)
                               .base_momentum(0.8)
                               .max_momentum(0.9));
  const double initial = 0.05, max = 0.5, min = 0.0005;
  for (int64_t step = 0; step <= 20; ++step) {
    if (step > 0) s.step();
    const double t = static_cast<double>(step);
    double lr, m;
    if (step <= 4) lr = initial + (max - initial) * t / 4, m = 0.9 - 0.1 * t / 4;
    else if (step <= 8) lr = max + (initial - max) * (t - 4) / 4, m = 0.8 + 0.1 * (t - 4) / 4;
    else lr = std::max(0.0, initial + (min - initial) * (t - 8) / 11), m = 0.9;  // step 20: below 0 in torch
    INFO("step " << step);
    CHECK(opt.get_lr() == Approx(lr).epsilon(1e-12));
    CHECK(opt.get_momentum(0) == Approx(m).epsilon(1e-12));  // Adam's beta1
  }
}

TEST_CASE("optim: the momentum is per group, and the optimizers step with the group's", "[optim]") {
  // Adam's beta1 set by hand equals an Adam built with it, step for step.
  Tensor a = param(0.3), b = param(0.3);
  optim::Adam moved({a}, optim::AdamOptions(0.1).betas({0.9, 0.999}));
  optim::Adam built({b}, optim::AdamOptions(0.1).betas({0.7, 0.999}));
  moved.set_momentum(0, 0.7);
  for (int k = 0; k < 4; ++k) {
    for (auto [p, opt] : {std::pair{&a, &moved}, std::pair{&b, &built}}) {
      sum(*p * *p * *p).backward();
      opt->step();
      opt->zero_grad();
    }
    CHECK(a.item() == b.item());
  }
  // SGD: a group without momentum steps plainly beside one with it.
  Tensor c = param(1.0), d = param(1.0);
  optim::SGD sgd({optim::ParamGroup({c}), optim::ParamGroup({d})}, optim::SGDOptions(0.1).momentum(0.5));
  sgd.set_momentum(1, 0.0);
  CHECK(sgd.get_momenta() == std::vector<double>{0.5, 0.0});
  for (int k = 0; k < 2; ++k) {
    sum(c + d).backward();
    sgd.step();
    sgd.zero_grad();
  }
  CHECK(c.item() == Approx(1.0 - 0.1 - 0.1 * 1.5));  // buffers 1, then 1.5
  CHECK(d.item() == Approx(1.0 - 0.2));
  CHECK(sgd.options().momentum() == 0.5);
  // The checks, and optimizers without a momentum.
  CHECK_THAT(message_of<std::invalid_argument>([&] { sgd.set_momentum(0, 1.0); }),
             Contains("SGD: momentum must be in [0, 1), got 1"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { moved.set_momenta({0.5, 0.5}); }),
             Contains("Adam::set_momenta: 2 momenta for 1 group(s)"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { moved.set_momentum(0, -0.1); }),
             Contains("Adam: beta1 must be in [0, 1), got -0.1"));
  optim::SGD nesterov({c}, optim::SGDOptions(0.1).momentum(0.9).nesterov(true));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nesterov.set_momentum(0, 0.0); }),
             Contains("SGD: nesterov needs momentum > 0, got 0"));
  CHECK_THROWS_AS(sgd.set_momentum(2, 0.5), std::out_of_range);
  optim::Adagrad ada({c}, optim::AdagradOptions(0.01));
  CHECK_FALSE(ada.has_momentum());
  CHECK_THAT(message_of<std::logic_error>([&] { ada.get_momentum(0); }),
             Contains("Adagrad::get_momentum: Adagrad has no momentum"));
  // RMSprop's momentum is any finite value >= 0, as its option.
  optim::RMSprop rms({c}, optim::RMSpropOptions(0.01));
  CHECK(rms.get_momentum(0) == 0.0);
  rms.set_momentum(0, 1.5);
  CHECK(rms.get_momentum(0) == 1.5);
  CHECK_THAT(message_of<std::invalid_argument>([&] { rms.set_momentum(0, -0.1); }),
             Contains("RMSprop: momentum must be finite and >= 0, got -0.1"));
}

// LibTorch 1.13 (CPU, float64), by a throwaway program: p = {1, -2, 0.5}, RMSprop(lr 0.01,
// centered, momentum 0), loss = sum(p^2 * {1, 3, -2}) + 0.1 * sum(p^3), six steps, each group's lr
// and momentum set before every step to OneCycleLR's (total 6, max_lr 0.1, torch's defaults; that
// scheduler is not in LibTorch's C++ API, so its cosine formulas were written out there), p
// printed after each step with %.17g. The momentum starts at 0.95 at the first step, so the
// buffer exists from it, as torch's.
TEST_CASE("optim: OneCycleLR cycles RMSprop's momentum, as torch's", "[scheduler]") {
  Tensor p = tensor({1.0, -2.0, 0.5}, TensorOptions(DType::float64).requires_grad(true));
  optim::RMSprop opt({p}, optim::RMSpropOptions(0.01).centered(true));
  optim::OneCycleLR s(opt, optim::OneCycleLROptions(0.1, 6));
  const std::vector<std::vector<double>> expected = {
      {0.95979848914632881, -1.9597984877637429, 0.54020151051145737},
      {-0.58572759976343136, -0.40411829645526909, 2.1280625200352428},
      {-1.4201840682470499, 0.82753860706078886, 4.0178141163430787},
      {-1.5912422750109443, 1.3113802605978893, 5.378762150050246},
      {-1.5680103847961588, 1.3798250990263459, 5.8401020751256771},
      {-1.5680078802653974, 1.3798252744287973, 5.8401175725756538}};
  const std::vector<double> momenta = {0.95, 0.85055845868874358, 0.86882550990706331, 0.90373650467932121,
                                       0.93665259359149122, 0.95};
  const Tensor c = tensor({1.0, 3.0, -2.0}, DType::float64);
  for (size_t step = 0; step < expected.size(); ++step) {
    INFO("step " << step);
    CHECK(opt.get_momentum(0) == Approx(momenta[step]).epsilon(1e-14));
    opt.zero_grad();
    (sum(p * p * c) + sum(p * p * p) * 0.1).backward();
    opt.step();
    if (step + 1 < expected.size()) s.step();
    const std::vector<double> got = p.to_vector();
    for (size_t k = 0; k < got.size(); ++k) CHECK(got[k] == Approx(expected[step][k]).epsilon(1e-12));
  }
  CHECK(opt.state(0).momentum_buffer.defined());
}

// A buffer made by a later step (the momentum raised from 0 after steps without it) is saved and
// loaded beside the other fields; a file with only the buffer for a parameter is refused.
TEST_CASE("optim: RMSprop's momentum buffer is made when its group's momentum first is > 0", "[optim]") {
  Tensor p = tensor({1.0, -2.0}, TensorOptions(DType::float64).requires_grad(true));
  optim::RMSprop opt({p}, optim::RMSpropOptions(0.1));
  const auto take_step = [&] {
    opt.zero_grad();
    sum(p * p).backward();
    opt.step();
  };
  take_step();
  CHECK_FALSE(opt.state(0).momentum_buffer.defined());
  CHECK_FALSE(opt.state_dict().contains("0.momentum_buffer"));
  opt.set_momentum(0, 0.5);
  const std::vector<double> before = p.to_vector();
  take_step();
  // b = 0.5 * 0 + g / d, p -= lr b: the same step as without momentum.
  REQUIRE(opt.state(0).momentum_buffer.defined());
  const std::map<std::string, Tensor> saved = opt.state_dict();
  CHECK(saved.contains("0.momentum_buffer"));
  CHECK(saved.at("momentum").to_vector() == std::vector<double>{0.5});
  Tensor q = from_vector(p.to_vector(), {2}, TensorOptions(DType::float64).requires_grad(true));
  optim::RMSprop resumed({q}, optim::RMSpropOptions(0.1));
  resumed.load_state_dict(saved);
  CHECK(resumed.get_momentum(0) == 0.5);
  CHECK(resumed.state(0).momentum_buffer.to_vector() == opt.state(0).momentum_buffer.to_vector());
  std::map<std::string, Tensor> partial = {{"lr", saved.at("lr")}, {"0.momentum_buffer", saved.at("0.momentum_buffer")}};
  optim::RMSprop fresh({q}, optim::RMSpropOptions(0.1));
  CHECK_THAT(message_of<std::invalid_argument>([&] { fresh.load_state_dict(partial); }),
             Contains("parameter 0 has momentum_buffer but not step, square_avg"));
  CHECK(before != p.to_vector());
}

TEST_CASE("optim: OneCycleLR resumes from a checkpoint as if never stopped", "[scheduler]") {
  testing::TempDir dir;
  Tensor p = param();
  const auto options = optim::OneCycleLROptions(0.3, 12);
  optim::SGD straight({p}, optim::SGDOptions(0.1).momentum(0.9));
  optim::OneCycleLR uninterrupted(straight, options);
  std::vector<std::pair<double, double>> expected{{straight.get_lr(), straight.get_momentum(0)}};
  for (int k = 0; k < 12; ++k) {
    uninterrupted.step();
    expected.emplace_back(straight.get_lr(), straight.get_momentum(0));
  }
  optim::SGD first({p}, optim::SGDOptions(0.1).momentum(0.9));
  optim::OneCycleLR s1(first, options);
  for (int k = 0; k < 5; ++k) s1.step();
  optim::save(first, dir / "one_cycle.safetensors", &s1);
  optim::SGD second({p}, optim::SGDOptions(0.1).momentum(0.9));
  optim::OneCycleLR s2(second, options);
  optim::load(second, dir / "one_cycle.safetensors", &s2);
  CHECK(s2.last_epoch() == 5);
  CHECK(second.get_lr() == expected[5].first);
  CHECK(second.get_momentum(0) == expected[5].second);
  for (size_t k = 6; k <= 12; ++k) {
    s2.step();
    CHECK(second.get_lr() == expected[k].first);
    CHECK(second.get_momentum(0) == expected[k].second);
  }
  CHECK_THAT(message_of<std::invalid_argument>([&] { s2.load_state_dict({{"last_epoch", 13}}); }),
             Contains("OneCycleLR::load_state_dict: \"last_epoch\" 13 is past total_steps 12"));
}

TEST_CASE("optim: OneCycleLR's errors name the option and the value", "[scheduler]") {
  Tensor p = param();
  optim::SGD opt({p}, optim::SGDOptions(0.1));
  const auto refused = [&](const optim::OneCycleLROptions& o, const std::string& message) {
    CHECK_THAT(message_of<std::invalid_argument>([&] { optim::OneCycleLR(opt, o); }), Contains(message));
    CHECK(opt.get_lr() == 0.1);  // nothing changed
  };
  refused(optim::OneCycleLROptions(0.1, 0), "OneCycleLR: total_steps must be >= 1, got 0");
  refused(optim::OneCycleLROptions(0.1, 10).pct_start(1.5), "OneCycleLR: pct_start must be in [0, 1], got 1.5");
  refused(optim::OneCycleLROptions({0.1, 0.2}, 10), "OneCycleLR: max_lr needs 1 value or one per group (1), got 2");
  refused(optim::OneCycleLROptions(-0.1, 10), "OneCycleLR: max_lr must be finite and > 0, got -0.1");
  refused(optim::OneCycleLROptions(0.1, 10).div_factor(0), "OneCycleLR: div_factor must be finite and > 0, got 0");
  refused(optim::OneCycleLROptions(0.1, 10).max_momentum({0.9, 0.9}),
          "OneCycleLR: max_momentum needs 1 value or one per group (1), got 2");
  refused(optim::OneCycleLROptions(0.1, 10).max_momentum(1.0), "SGD: momentum must be in [0, 1), got 1");
  optim::Adagrad ada({p}, optim::AdagradOptions(0.01));
  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::OneCycleLR(ada, optim::OneCycleLROptions(0.1, 10)); }),
             Contains("OneCycleLR: Adagrad has no momentum to cycle"));
  optim::OneCycleLR plain(ada, optim::OneCycleLROptions(0.1, 10).cycle_momentum(false));
  CHECK(ada.get_lr() == Approx(0.004));
  // pct_start * total_steps = 1: the rise would start and end at step 0, where torch divides by zero.
  CHECK_THAT(message_of<std::logic_error>([&] { optim::OneCycleLR(opt, optim::OneCycleLROptions(0.1, 10).pct_start(0.1)); }),
             Contains("OneCycleLR: step 0 falls in phase 1 of 2, which has no steps"));
  // A rise shorter than a step is passed over, as torch's: total 2, pct 0.3 ends it at -0.4.
  optim::OneCycleLR short_rise(opt, optim::OneCycleLROptions(1.0, 2));
  CHECK(opt.get_lr() == Approx(cos_anneal(1.0, 4e-6, 0.4 / 1.4)).epsilon(1e-12));
}
