// Saving and resuming optimizers (Optimizer::state_dict / load_state_dict, optim::save / load):
// training interrupted after k steps, saved, and resumed in a fresh model and optimizer ends bit for
// bit where the uninterrupted run ends; and every malformed state is refused, naming the problem,
// with nothing changed.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/activation.h"
#include "nn/dense.h"
#include "nn/loss.h"
#include "nn/sequential.h"
#include "nn/serialize.h"
#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/rmsprop.h"
#include "optim/scheduler.h"
#include "optim/sgd.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::TempDir;

namespace {

std::shared_ptr<nn::Sequential> make_model() {
  return std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(2, 3).seed(11)),
                                          std::make_shared<nn::Tanh>(),
                                          std::make_shared<nn::Dense>(nn::DenseOptions(3, 1).seed(12)));
}

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

// Steps `opt` on batch `b` of a fixed regression set (each batch different, so that resuming in
// the wrong place shows).
void train_step(nn::Module& model, optim::Optimizer& opt, int b) {
  const double s = 0.1 * b;
  const Tensor x = from_vector({0.5 + s, -1.0, 0.25, 2.0 - s, -0.75, 1.5 * s}, {3, 2});
  const Tensor y = from_vector({1.0, -0.5, 0.25 + s}, {3, 1});
  opt.zero_grad();
  nn::MSELoss()(model.forward(x), y).backward();
  opt.step();
}

std::vector<std::vector<double>> values(const nn::Module& model) {
  std::vector<std::vector<double>> out;
  for (const Tensor& p : model.parameters()) out.push_back(p.to_vector());
  return out;
}

// Trains 2k steps straight, and k steps + save + resume in fresh objects + k steps; returns the two
// final parameter sets and the one a resume without the optimizer's state reaches.
struct Runs {
  std::vector<std::vector<double>> straight, resumed, model_only;
};
Runs run(const MakeOptimizer& make, int k) {
  TempDir dir;
  Runs out;
  {
    auto model = make_model();
    auto opt = make(model->parameters());
    for (int b = 0; b < 2 * k; ++b) train_step(*model, *opt, b);
    out.straight = values(*model);
  }
  {
    auto model = make_model();
    auto opt = make(model->parameters());
    for (int b = 0; b < k; ++b) train_step(*model, *opt, b);
    nn::save(*model, dir / "model.safetensors");
    optim::save(*opt, dir / "optimizer.safetensors");
  }
  for (bool with_optimizer : {true, false}) {
    auto model = make_model();
    nn::load(*model, dir / "model.safetensors");
    auto opt = make(model->parameters());
    if (with_optimizer) optim::load(*opt, dir / "optimizer.safetensors");
    for (int b = k; b < 2 * k; ++b) train_step(*model, *opt, b);
    (with_optimizer ? out.resumed : out.model_only) = values(*model);
  }
  return out;
}

}  // namespace

TEST_CASE("checkpoint: SGD with momentum, Adam, AdamW with amsgrad, RMSprop and Adagrad resume bit for bit") {
  const std::vector<std::pair<std::string, MakeOptimizer>> makers = {
      {"SGD momentum nesterov",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::SGD>(std::move(p),
                                             optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(1e-3));
       }},
      {"Adam", [](std::vector<Tensor> p) { return std::make_unique<optim::Adam>(std::move(p), optim::AdamOptions(0.01)); }},
      {"AdamW amsgrad",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::AdamW>(std::move(p), optim::AdamWOptions(0.01).amsgrad(true));
       }},
      {"RMSprop centered momentum",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::RMSprop>(std::move(p), optim::RMSpropOptions(0.01).momentum(0.9).centered(true));
       }},
      {"Adagrad", [](std::vector<Tensor> p) { return std::make_unique<optim::Adagrad>(std::move(p), optim::AdagradOptions(0.05)); }},
  };
  for (const auto& [name, make] : makers) {
    INFO(name);
    const Runs r = run(make, 4);
    CHECK(r.resumed == r.straight);
    CHECK(r.model_only != r.straight);  // the state matters: without it the runs part
  }
}

TEST_CASE("checkpoint: the learning rate a scheduler left is restored") {
  auto model = make_model();
  optim::SGD opt(model->parameters(), optim::SGDOptions(0.4));
  optim::StepLR schedule(opt, 1, 0.5);
  schedule.step();
  schedule.step();
  auto fresh = make_model();
  optim::SGD resumed(fresh->parameters(), optim::SGDOptions(0.4));
  resumed.load_state_dict(opt.state_dict());
  CHECK(resumed.get_lr() == 0.1);
}

TEST_CASE("checkpoint: state_dict holds the rate, then each stepped parameter's fields") {
  auto model = make_model();
  optim::Adam opt(model->parameters(), optim::AdamOptions(0.01).amsgrad(true));
  std::vector<std::string> names;
  for (const auto& [name, t] : opt.state_dict()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"lr", "momentum"});  // nothing stepped yet; momentum is beta1
  train_step(*model, opt, 0);
  const auto state = opt.state_dict();
  CHECK(state.size() == 2 + 4 * 4);
  CHECK(state.at("momentum").to_vector() == std::vector<double>{0.9});
  CHECK(state.at("0.step").item() == 1.0);
  CHECK(state.at("3.max_exp_avg_sq").shape() == model->parameters()[3].shape());
  // Copies: the optimizer's next step does not change a state_dict taken before it.
  const std::vector<double> before = state.at("0.exp_avg").to_vector();
  train_step(*model, opt, 1);
  CHECK(state.at("0.exp_avg").to_vector() == before);
  CHECK(opt.state(0).exp_avg.to_vector() != before);
}

TEST_CASE("checkpoint: a malformed state is refused, naming each problem, and nothing changes") {
  auto model = make_model();
  optim::Adam opt(model->parameters(), optim::AdamOptions(0.01));
  train_step(*model, opt, 0);
  const auto good = opt.state_dict();
  const auto refused = [&](std::map<std::string, Tensor> state, const std::string& message) {
    auto target = make_model();
    optim::Adam other(target->parameters(), optim::AdamOptions(0.02));
    train_step(*target, other, 3);
    const auto before = other.state_dict();
    CHECK_THROWS_WITH(other.load_state_dict(state), Contains("Adam::load_state_dict: nothing was loaded") &&
                                                         Contains(message));
    const auto after = other.state_dict();
    REQUIRE(after.size() == before.size());
    for (const auto& [name, t] : before) CHECK(after.at(name).to_vector() == t.to_vector());
    CHECK(other.get_lr() == 0.02);
  };
  auto s = good;
  s.erase("lr");
  refused(s, "missing \"lr\"");
  s = good;
  s["momentum"] = from_vector({1.5}, {1}, DType::float64);
  refused(s, "\"momentum\": Adam: beta1 must be in [0, 1), got 1.5");
  s["momentum"] = from_vector({0.5, 0.5}, {2}, DType::float64);
  refused(s, "\"momentum\" must hold 1 float64 number(s), one per group, got float64 [2]");
  // A file written before the momenta were saved loads; the momentum stays as it is.
  s = good;
  s.erase("momentum");
  {
    auto target = make_model();
    optim::Adam other(target->parameters(), optim::AdamOptions(0.02).betas({0.8, 0.999}));
    other.load_state_dict(s);
    CHECK(other.get_momentum(0) == 0.8);
    CHECK(other.get_lr() == 0.01);
  }
  s = good;
  s.erase("1.exp_avg_sq");
  refused(s, "parameter 1 has step, exp_avg but not exp_avg_sq");
  s = good;
  s["foo"] = zeros({1});
  s["01.exp_avg"] = zeros({3, 2});
  s["0.momentum_buffer"] = zeros({3, 2});
  refused(s, "unexpected \"0.momentum_buffer\"; unexpected \"01.exp_avg\"; unexpected \"foo\"");
  s = good;
  s["4.exp_avg"] = zeros({3, 2});
  refused(s, "\"4.exp_avg\": parameter 4 of 4");
  s = good;
  s["0.exp_avg"] = zeros({2, 3});
  refused(s, "\"0.exp_avg\": float32 [2, 3] in the state vs float32 [3, 2] for parameter 0");
  s = good;
  s["0.exp_avg"] = zeros({3, 2}, DType::float64);
  refused(s, "\"0.exp_avg\": float64 [3, 2] in the state vs float32 [3, 2]");
  s = good;
  s["0.step"] = full({1}, 0.5, DType::float64);
  refused(s, "\"0.step\" must be a whole number >= 1, got 0.5");
  s = good;
  s["lr"] = full({1}, -1.0, DType::float64);
  refused(s, "\"lr\" must be finite and >= 0, got -1");
  s = good;
  s["lr"] = full({2}, 0.1, DType::float64);
  refused(s, "\"lr\" must hold 1 float64 number(s), one per group, got float64 [2]");
}

TEST_CASE("checkpoint: optim::load refuses another optimizer's file and a model's file, naming the path") {
  TempDir dir;
  auto model = make_model();
  optim::Adam adam(model->parameters(), optim::AdamOptions(0.01));
  train_step(*model, adam, 0);
  optim::save(adam, dir / "adam.safetensors");
  nn::save(*model, dir / "model.safetensors");
  optim::SGD sgd(model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  CHECK_THROWS_WITH(optim::load(sgd, dir / "adam.safetensors"),
                    Contains("adam.safetensors: written by Adam, loading into SGD"));
  CHECK_THROWS_WITH(optim::load(sgd, dir / "model.safetensors"),
                    Contains("model.safetensors: not an optimizer's file"));
  // Another model's optimizer: the file's problems come with its path.
  auto wide = std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(2, 4).seed(1)));
  optim::Adam other(wide->parameters(), optim::AdamOptions(0.01));
  CHECK_THROWS_WITH(optim::load(other, dir / "adam.safetensors"),
                    Contains("optim::load: ") && Contains("adam.safetensors: Adam::load_state_dict: nothing was loaded") &&
                        Contains("\"0.exp_avg\": float32 [3, 2] in the state vs float32 [4, 2] for parameter 0"));
  CHECK(other.state(0).step == 0);
  optim::Adam same(model->parameters(), optim::AdamOptions(0.01));
  optim::load(same, dir / "adam.safetensors");
  CHECK(same.state(3).step == 1);
  CHECK(same.state(3).exp_avg_sq.to_vector() == adam.state(3).exp_avg_sq.to_vector());
}

// The rates of 8 epochs of StepLR(step 3, gamma 0.5) from 1, uninterrupted.
std::vector<double> step_lr_rates(nn::Module& model) {
  optim::SGD straight(model.parameters(), optim::SGDOptions(1.0));
  optim::StepLR decay(straight, 3, 0.5);
  std::vector<double> rates;
  for (int e = 0; e < 8; ++e) {
    decay.step();
    rates.push_back(straight.get_lr());
  }
  return rates;
}

TEST_CASE("checkpoint: StepLR resumed with last_epoch decays when the uninterrupted schedule does") {
  auto model = make_model();
  const std::vector<double> rates = step_lr_rates(*model);
  // Stopped after epoch 4 (rate 0.5), resumed: the same rates for epochs 5-8.
  optim::SGD resumed(model->parameters(), optim::SGDOptions(0.5));
  optim::StepLR again(resumed, 3, 0.5, 4);
  for (int e = 4; e < 8; ++e) {
    again.step();
    CHECK(resumed.get_lr() == rates[static_cast<size_t>(e)]);
  }
  CHECK(rates[7] == 0.25);
  CHECK_THROWS_WITH(optim::StepLR(resumed, 3, 0.5, -1), Contains("StepLR: last_epoch must be >= 0, got -1"));
}

TEST_CASE("checkpoint: a scheduler saved with its optimizer resumes where it stopped") {
  TempDir dir;
  auto model = make_model();
  // StepLR: the uninterrupted rates, then 4 epochs, save, a fresh optimizer and scheduler, load.
  const std::vector<double> rates = step_lr_rates(*model);
  optim::SGD first(model->parameters(), optim::SGDOptions(1.0));
  optim::StepLR first_decay(first, 3, 0.5);
  for (int e = 0; e < 4; ++e) first_decay.step();
  optim::save(first, dir / "step.safetensors", &first_decay);
  optim::SGD second(model->parameters(), optim::SGDOptions(1.0));
  optim::StepLR second_decay(second, 3, 0.5);
  optim::load(second, dir / "step.safetensors", &second_decay);
  CHECK(second_decay.last_epoch() == 4);
  for (int e = 4; e < 8; ++e) {
    second_decay.step();
    CHECK(second.get_lr() == rates[static_cast<size_t>(e)]);
  }
  // The same file without a scheduler: the optimizer alone.
  optim::SGD alone(model->parameters(), optim::SGDOptions(1.0));
  optim::load(alone, dir / "step.safetensors");
  CHECK(alone.get_lr() == 0.5);

  // ReduceLROnPlateau: best, counters and epoch come back; the next bad epoch reduces as before.
  optim::SGD p1(model->parameters(), optim::SGDOptions(1.0));
  optim::ReduceLROnPlateau plateau(p1, optim::ReduceLROnPlateauOptions().patience(2).cooldown(1));
  for (double metric : {3.0, 2.0, 2.5, 2.5}) plateau.step(metric);
  CHECK(plateau.num_bad_epochs() == 2);
  optim::save(p1, dir / "plateau.safetensors", &plateau);
  optim::SGD p2(model->parameters(), optim::SGDOptions(1.0));
  optim::ReduceLROnPlateau resumed(p2, optim::ReduceLROnPlateauOptions().patience(2).cooldown(1));
  optim::load(p2, dir / "plateau.safetensors", &resumed);
  CHECK(resumed.state_dict() == plateau.state_dict());
  CHECK(resumed.best() == 2.0);
  CHECK(resumed.step(2.5) == plateau.step(2.5));
  CHECK(p2.get_lr() == p1.get_lr());
  CHECK(p2.get_lr() == Approx(0.1));
}

TEST_CASE("checkpoint: a scheduler's file is checked, naming the problem, and nothing changes") {
  TempDir dir;
  auto model = make_model();
  optim::SGD opt(model->parameters(), optim::SGDOptions(1.0));
  optim::StepLR decay(opt, 3, 0.5);
  decay.step();
  optim::save(opt, dir / "plain.safetensors");
  optim::save(opt, dir / "step.safetensors", &decay);
  optim::SGD target(model->parameters(), optim::SGDOptions(0.25));
  optim::StepLR target_decay(target, 3, 0.5);
  optim::ReduceLROnPlateau plateau(target);
  CHECK_THROWS_WITH(optim::load(target, dir / "plain.safetensors", &target_decay),
                    Contains("plain.safetensors: the file holds no scheduler, loading into StepLR"));
  CHECK_THROWS_WITH(optim::load(target, dir / "step.safetensors", &plateau),
                    Contains("step.safetensors: the scheduler was StepLR, loading into ReduceLROnPlateau"));
  // A hand-edited count, and an optimizer state that does not fit: nothing changes in either.
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> state = nn::load_tensors(dir / "step.safetensors", &metadata);
  state["scheduler.last_epoch"] = full({}, 2.5, DType::float64);
  nn::save_tensors(state, dir / "bad.safetensors", metadata);
  CHECK_THROWS_WITH(optim::load(target, dir / "bad.safetensors", &target_decay),
                    Contains("StepLR::load_state_dict: \"last_epoch\" must be a whole number >= 0, got 2.5"));
  state["scheduler.last_epoch"] = full({}, 7.0, DType::float64);
  state["lr"] = full({2}, 0.5, DType::float64);  // two groups' rates for a one-group optimizer
  nn::save_tensors(state, dir / "bad_lr.safetensors", metadata);
  CHECK_THROWS(optim::load(target, dir / "bad_lr.safetensors", &target_decay));
  CHECK(target_decay.last_epoch() == 0);
  CHECK(target.get_lr() == 0.25);
  CHECK_THROWS_WITH(target_decay.load_state_dict({{"last_epoch", 1}, {"extra", 2}}),
                    Contains("StepLR::load_state_dict: unknown entry \"extra\""));
  CHECK_THROWS_WITH(plateau.load_state_dict({{"best", 1}}), Contains("ReduceLROnPlateau::load_state_dict: the entry \"cooldown_counter\" is missing"));
}
