// Parameter groups (optim::ParamGroup, torch's param_groups): each group's own rate and weight
// decay, checked against separate optimizers over each group; schedulers scale every group;
// state_dict keeps one rate per group; errors name the group.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <vector>

#include "optim/adam.h"
#include "optim/rmsprop.h"
#include "optim/scheduler.h"
#include "optim/sgd.h"

using namespace chainrule;
using Catch::Contains;

namespace {

Tensor param(std::vector<double> v) {
  const auto n = static_cast<int64_t>(v.size());
  return from_vector(std::move(v), {n}, TensorOptions(DType::float64).requires_grad(true));
}

// Three steps of a fixed loss over a and b; returns their final values.
std::vector<std::vector<double>> train(const Tensor& a, const Tensor& b, const std::function<void()>& step) {
  for (int k = 0; k < 3; ++k) {
    a.zero_grad();
    b.zero_grad();
    (sum(a * a * 0.5 + tanh(a)) + sum(b * b * b)).backward();
    step();
  }
  return {a.to_vector(), b.to_vector()};
}

}  // namespace

TEST_CASE("param groups: each group steps as its own optimizer would") {
  const std::vector<double> a0{0.5, -1.0}, b0{1.5, 0.25, -0.75};
  SECTION("SGD with momentum: a rate and a weight decay per group") {
    Tensor a = param(a0), b = param(b0);
    optim::SGD grouped({optim::ParamGroup({a}), optim::ParamGroup({b}).lr(0.01).weight_decay(0.0)},
                       optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.05));
    const auto got = train(a, b, [&] { grouped.step(); });
    Tensor a2 = param(a0), b2 = param(b0);
    optim::SGD first({a2}, optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.05));
    optim::SGD second({b2}, optim::SGDOptions(0.01).momentum(0.9));
    const auto want = train(a2, b2, [&] {
      first.step();
      second.step();
    });
    CHECK(got == want);
    CHECK(grouped.num_groups() == 2);
    CHECK(grouped.get_lr(1) == 0.01);
    CHECK(grouped.weight_decay(0) == 0.05);
    CHECK(grouped.weight_decay(1) == 0.0);
    CHECK(grouped.group_of(1) == 1);
    CHECK(grouped.parameters().size() == 2);
  }
  SECTION("SGD's fused backward_and_step") {
    Tensor a = param(a0), b = param(b0);
    optim::SGD grouped({optim::ParamGroup({a}).lr(0.2), optim::ParamGroup({b}).weight_decay(0.1)},
                       optim::SGDOptions(0.05));
    for (int k = 0; k < 3; ++k) grouped.backward_and_step(sum(a * a * 0.5 + tanh(a)) + sum(b * b * b));
    Tensor a2 = param(a0), b2 = param(b0);
    optim::SGD first({a2}, optim::SGDOptions(0.2));
    optim::SGD second({b2}, optim::SGDOptions(0.05).weight_decay(0.1));
    const auto want = train(a2, b2, [&] {
      first.step();
      second.step();
    });
    const std::vector<double> ga = a.to_vector(), gb = b.to_vector();
    for (size_t i = 0; i < ga.size(); ++i) CHECK(ga[i] == Approx(want[0][i]).epsilon(1e-14));
    for (size_t i = 0; i < gb.size(); ++i) CHECK(gb[i] == Approx(want[1][i]).epsilon(1e-14));
  }
  SECTION("AdamW: no weight decay on one group") {
    Tensor a = param(a0), b = param(b0);
    optim::AdamW grouped({optim::ParamGroup({a}), optim::ParamGroup({b}).weight_decay(0.0).lr(0.003)},
                         optim::AdamWOptions(0.01));
    const auto got = train(a, b, [&] { grouped.step(); });
    Tensor a2 = param(a0), b2 = param(b0);
    optim::AdamW first({a2}, optim::AdamWOptions(0.01));
    optim::AdamW second({b2}, optim::AdamWOptions(0.003).weight_decay(0.0));
    const auto want = train(a2, b2, [&] {
      first.step();
      second.step();
    });
    CHECK(got == want);
  }
}

TEST_CASE("param groups: a group's own momentum steps as its own optimizer would") {
  const std::vector<double> a0{0.5, -1.0}, b0{1.5, 0.25, -0.75};
  SECTION("SGD: momentum 0.5 in one group, the options' 0.9 in the other") {
    Tensor a = param(a0), b = param(b0);
    optim::SGD grouped({optim::ParamGroup({a}).momentum(0.5), optim::ParamGroup({b})},
                       optim::SGDOptions(0.1).momentum(0.9));
    CHECK(grouped.get_momenta() == std::vector<double>{0.5, 0.9});
    const auto got = train(a, b, [&] { grouped.step(); });
    Tensor a2 = param(a0), b2 = param(b0);
    optim::SGD first({a2}, optim::SGDOptions(0.1).momentum(0.5));
    optim::SGD second({b2}, optim::SGDOptions(0.1).momentum(0.9));
    const auto want = train(a2, b2, [&] {
      first.step();
      second.step();
    });
    CHECK(got == want);
  }
  SECTION("Adam: a group's momentum is its beta1") {
    Tensor a = param(a0), b = param(b0);
    optim::Adam grouped({optim::ParamGroup({a}), optim::ParamGroup({b}).momentum(0.5)}, optim::AdamOptions(0.01));
    CHECK(grouped.get_momenta() == std::vector<double>{0.9, 0.5});
    const auto got = train(a, b, [&] { grouped.step(); });
    Tensor a2 = param(a0), b2 = param(b0);
    optim::Adam first({a2}, optim::AdamOptions(0.01));
    optim::Adam second({b2}, optim::AdamOptions(0.01).betas({0.5, 0.999}));
    const auto want = train(a2, b2, [&] {
      first.step();
      second.step();
    });
    CHECK(got == want);
  }
  SECTION("errors name the group; Adagrad has no momentum to set") {
    Tensor a = param(a0), b = param(b0);
    CHECK_THROWS_WITH(optim::SGD({optim::ParamGroup({a}), optim::ParamGroup({b}).momentum(1.5)}, optim::SGDOptions(0.1)),
                      Contains("SGD: momentum must be in [0, 1), got 1.5 (the momentum of group 1)"));
    CHECK_THROWS_WITH(optim::SGD({optim::ParamGroup({a}).momentum(0.0), optim::ParamGroup({b})},
                                 optim::SGDOptions(0.1).momentum(0.9).nesterov(true)),
                      Contains("SGD: nesterov needs momentum > 0, got 0 (the momentum of group 0)"));
    CHECK_THROWS_WITH(optim::Adagrad({optim::ParamGroup({a}).momentum(0.9)}, optim::AdagradOptions(0.1)),
                      Contains("Adagrad: group 0 sets a momentum (0.9), and Adagrad has none"));
  }
}

TEST_CASE("param groups: schedulers scale every group, state_dict keeps each group's rate") {
  Tensor a = param({1.0}), b = param({2.0});
  optim::SGD opt({optim::ParamGroup({a}), optim::ParamGroup({b}).lr(0.4)}, optim::SGDOptions(1.0));
  optim::StepLR decay(opt, 1, 0.5);
  decay.step();
  CHECK(opt.get_lr(0) == 0.5);
  CHECK(opt.get_lr(1) == 0.2);
  optim::ReduceLROnPlateau plateau(opt, optim::ReduceLROnPlateauOptions().patience(0).factor(0.5).min_lr(0.15));
  plateau.step(1.0);
  CHECK(plateau.step(2.0));  // worse: both groups reduced, the second stopped at min_lr
  CHECK(opt.get_lr(0) == 0.25);
  CHECK(opt.get_lr(1) == 0.15);
  CHECK(plateau.step(3.0));  // only the first group can still go down
  CHECK(opt.get_lr(0) == 0.15);
  CHECK(opt.get_lr(1) == 0.15);

  const auto state = opt.state_dict();
  CHECK(state.at("lr").to_vector() == std::vector<double>{0.15, 0.15});
  optim::SGD fresh({optim::ParamGroup({a}), optim::ParamGroup({b})}, optim::SGDOptions(1.0));
  fresh.load_state_dict(state);
  CHECK(fresh.get_lr(1) == 0.15);
  optim::SGD one({a, b}, optim::SGDOptions(1.0));
  CHECK_THROWS_WITH(one.load_state_dict(state), Contains("\"lr\" must hold 1 float64 number(s), one per group, got "
                                                         "float64 [2]"));
  opt.set_lr(0.3);  // every group
  CHECK(opt.get_lr(0) == 0.3);
  CHECK(opt.get_lr(1) == 0.3);
}

TEST_CASE("param groups: errors name the group") {
  Tensor a = param({1.0}), b = param({2.0});
  using G = optim::ParamGroup;
  CHECK_THROWS_WITH(optim::SGD({G({a}), G({})}, optim::SGDOptions(0.1)),
                    Contains("SGD: got an empty parameter list in group 1"));
  CHECK_THROWS_WITH(optim::SGD({G({a}), G({b}).lr(-1.0)}, optim::SGDOptions(0.1)),
                    Contains("SGD group 1: learning rate must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(optim::Adam({G({a}), G({b}).weight_decay(NAN)}, optim::AdamOptions(0.1)),
                    Contains("Adam: weight_decay must be finite and >= 0, got nan (group 1)"));
  CHECK_THROWS_WITH(optim::SGD({G({a}), G({a})}, optim::SGDOptions(0.1)), Contains("parameter 1 appears twice (also at 0)"));
  CHECK_THROWS_WITH(optim::SGD(std::vector<G>{}, optim::SGDOptions(0.1)), Contains("SGD: got no parameter groups"));
  optim::SGD opt({G({a}), G({b})}, optim::SGDOptions(0.1));
  CHECK_THROWS_WITH(opt.get_lr(2), Contains("SGD::get_lr: group 2 of 2"));
  CHECK_THROWS_WITH(opt.set_lr(5, 0.1), Contains("SGD::set_lr: group 5 of 2"));
  CHECK_THROWS_WITH(opt.group_of(2), Contains("SGD::group_of: parameter 2 of 2"));
  CHECK_THROWS_WITH(opt.set_lr(1, INFINITY), Contains("learning rate must be finite"));
  CHECK(opt.get_lr(1) == 0.1);
}
