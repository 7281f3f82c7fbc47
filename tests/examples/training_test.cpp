// End-to-end training runs that must converge (XOR, the lecture's network, a spiral classifier, a
// noisy-sine regression in mini-batches), and each stopping rule of optim::fit / fit_epochs firing
// exactly when it should.
#include <chrono>
#include <cmath>
#include <functional>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "nn/batches.h"
#include "nn/csv.h"
#include "nn/data.h"
#include "nn/nn.h"
#include "nn/standardizer.h"
#include "optim/optim.h"
#include "optim/trainer.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Matchers::Contains;
using optim::FitOptions;
using optim::StopReason;

using chainrule::testing::message_of;

namespace {

std::shared_ptr<nn::Dense> dense(int64_t in, int64_t out, Generator& gen) {
  return std::make_shared<nn::Dense>(nn::DenseOptions(in, out).dtype(DType::float64), gen);
}

// loss(w) = (w - 3)^2 from w = 0. SGD with lr 0.25 halves w - 3 every step, so epoch k (loss
// measured before its update) has loss 9 / 4^(k-1) and gradient norm 6 / 2^(k-1).
struct Quadratic {
  Tensor w = zeros({1}, TensorOptions(DType::float64).requires_grad(true));
  optim::SGD sgd{{w}, optim::SGDOptions(0.25)};
  Tensor loss() const { return sum((w - 3.0) * (w - 3.0)); }
};

}  // namespace

// ---- convergence --------------------------------------------------------------------------------

TEST_CASE("training: XOR reaches 100% accuracy with a 2-4-1 network", "[training]") {
  const Tensor x = tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}}, DType::float64);
  const Tensor y = tensor({{0}, {1}, {1}, {0}}, DType::float64);
  Generator gen(3);
  auto model = std::make_shared<nn::Sequential>(dense(2, 4, gen), std::make_shared<nn::Tanh>(), dense(4, 1, gen),
                                                std::make_shared<nn::Sigmoid>());
  const nn::BCELoss bce;
  optim::Adam adam(model->parameters(), optim::AdamOptions(0.05));
  const auto result =
      optim::fit(adam, [&] { return bce(model->forward(x), y); }, FitOptions().max_epochs(5000).loss_below(0.01).quiet());
  CHECK(result.reason == StopReason::LossBelowThreshold);
  NoGradGuard no_grad;
  const Tensor out = model->forward(x);
  for (int64_t i = 0; i < 4; ++i) CHECK((out.at({i, 0}) > 0.5) == (y.at({i, 0}) == 1));
}

TEST_CASE("training: the lecture's 5 rows reach summed-up error < 0.001 from the slides' weights", "[training]") {
  const auto path = std::filesystem::path(CHAINRULE_SOURCE_DIR) / "examples/data/lecture.csv";
  const nn::Dataset d = nn::select(nn::read_csv(path), {"X1", "X2"}, {"Y"});
  // As examples/lecture.cpp: the mean and sd the slides' z-scores imply, z rounded to 2 decimals.
  auto z = nn::Standardizer::from_values({4.7484, 2.9054}, {2.8400, 1.7522}).transform(d.features);
  for (auto& row : z)
    for (double& v : row) v = std::round(v * 100) / 100;
  CHECK(z[0] == std::vector<double>{-0.97, -0.80});
  const Tensor x = nn::rows_to_tensor(z, DType::float64), y = nn::rows_to_tensor(d.targets, DType::float64);

  auto model = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Dense>(nn::DenseOptions(2, 3).dtype(DType::float64)
                                      .init(nn::Init::values({{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}}))
                                      .bias_init(nn::Init::values({0.1, -0.2, 0.4}))),
      std::make_shared<nn::Sigmoid>(),
      std::make_shared<nn::Dense>(nn::DenseOptions(3, 1).dtype(DType::float64)
                                      .init(nn::Init::values({{-0.6, -0.6, -0.3}}))
                                      .bias_init(nn::Init::values({-0.6}))),
      std::make_shared<nn::Sigmoid>());
  // The slides' updates sum the per-observation errors: the gradient of 1/2 sum (Output - Y)^2, so
  // the summed-up error sum (Output - Y)^2 < 0.001 is this loss < 0.0005.
  const nn::MSELoss criterion(nn::MSELossOptions().reduction(nn::Reduction::Sum).half(true));
  optim::SGD sgd(model->parameters(), optim::SGDOptions(0.5));
  const auto result = optim::fit(sgd, [&] { return criterion(model->forward(x), y); },
                                 FitOptions().max_epochs(100000).loss_below(0.0005).quiet());
  INFO("epochs " << result.epochs);
  CHECK(result.reason == StopReason::LossBelowThreshold);
  CHECK(result.epochs >= 5000);  // the lead's run: 12187 epochs
  CHECK(result.epochs <= 50000);
  CHECK(2 * result.losses.back() < 0.001);
  CHECK(2 * result.losses[result.epochs - 2] >= 0.001);  // the epoch before had not reached it
  NoGradGuard no_grad;
  const Tensor error = sum((model->forward(x) - y) * (model->forward(x) - y));
  CHECK(error.item() < 0.001);  // after the last update too
}

TEST_CASE("training: a spiral classifier reaches >= 95% held-out accuracy", "[training]") {
  const nn::Dataset data = nn::make_spiral({.points_per_class = 150, .turns = 1, .noise = 0.04, .seed = 1});
  const auto split = nn::train_validation_split(data.features.size(), 0.25, 2);
  const Tensor x = nn::rows_to_tensor(data.features, DType::float64);
  const auto labels = nn::to_labels(data.targets);
  const Tensor x_train = nn::batch_rows(x, split.train), x_test = nn::batch_rows(x, split.validation);
  const auto y_train = nn::batch_labels(labels, split.train), y_test = nn::batch_labels(labels, split.validation);
  Generator gen(5);
  auto model = std::make_shared<nn::Sequential>(dense(2, 16, gen), std::make_shared<nn::Tanh>(), dense(16, 16, gen),
                                                std::make_shared<nn::Tanh>(), dense(16, 2, gen));
  const nn::CrossEntropyLoss ce;
  optim::Adam adam(model->parameters(), optim::AdamOptions(0.02));
  const auto result = optim::fit(adam, [&] { return ce(model->forward(x_train), y_train); },
                                 FitOptions().max_epochs(1500).loss_below(0.02).quiet());
  INFO("epochs " << result.epochs << ", training loss " << result.losses.back());
  NoGradGuard no_grad;
  CHECK(nn::accuracy(nn::argmax_labels(model->forward(x_test)), y_test) >= 0.95);
}

TEST_CASE("training: a tanh MLP fits the noisy sine in mini-batches until validation stops improving", "[training]") {
  const nn::Dataset data = nn::make_noisy_sine({.n = 120, .noise = 0.1, .seed = 1});
  const auto split = nn::train_validation_split(data.features.size(), 0.25, 2);
  const Tensor x = nn::rows_to_tensor(data.features, DType::float64), y = nn::rows_to_tensor(data.targets, DType::float64);
  const Tensor x_train = nn::batch_rows(x, split.train), y_train = nn::batch_rows(y, split.train);
  const Tensor x_val = nn::batch_rows(x, split.validation), y_val = nn::batch_rows(y, split.validation);
  Generator gen(4);
  auto model = std::make_shared<nn::Sequential>(dense(1, 16, gen), std::make_shared<nn::Tanh>(), dense(16, 1, gen));
  const nn::MSELoss mse;
  optim::Adam adam(model->parameters(), optim::AdamOptions(0.02));
  auto epoch = [&](std::size_t k) {
    double total = 0;
    for (const auto& batch : nn::make_batches(split.train.size(), 16, true, k)) {
      adam.zero_grad();
      const Tensor loss = mse(model->forward(nn::batch_rows(x_train, batch)), nn::batch_rows(y_train, batch));
      loss.backward();
      adam.step();
      total += loss.item() * static_cast<double>(batch.size());
    }
    return optim::EpochReport{total / static_cast<double>(split.train.size()), std::nullopt};
  };
  auto validation = [&] {
    NoGradGuard no_grad;
    return mse(model->forward(x_val), y_val).item();
  };
  const auto result = optim::fit_epochs(epoch, FitOptions().max_epochs(3000).patience(30).quiet(), validation);
  CHECK(result.reason == StopReason::ValidationNotImproving);
  CHECK(result.validation_losses.size() == result.epochs);
  CHECK(result.best_validation_loss < 0.03);  // the noise alone costs 0.01; sin's own variance is ~0.5
  CHECK(result.losses.back() < 0.03);
}

TEST_CASE("training: a custom Module with 0-d parameters learns y = 2x - 1", "[training]") {
  // As a user writes one (examples/custom_model.cpp): its own parameters and its own forward.
  struct Line : nn::Module {
    Line() : Module("Line") {
      slope = register_parameter("slope", zeros({}, DType::float64));
      offset = register_parameter("offset", zeros({}, DType::float64));
    }
    Tensor forward(const Tensor& x) override { return slope * x + offset; }
    Tensor slope, offset;
  };
  Line line;
  const auto named = line.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "slope");
  CHECK(named[1].first == "offset");
  const Tensor x = tensor({-1, 0, 1, 2}, DType::float64), y = tensor({-3, -1, 1, 3}, DType::float64);
  optim::SGD sgd(line.parameters(), optim::SGDOptions(0.1));
  const auto result = optim::fit(sgd, [&] { return nn::mse_loss(line(x), y); },
                                 FitOptions().max_epochs(2000).loss_below(1e-12).quiet());
  CHECK(result.reason == StopReason::LossBelowThreshold);
  CHECK(line.slope.item() == Approx(2).margin(1e-5));
  CHECK(line.offset.item() == Approx(-1).margin(1e-5));
}

// ---- stopping rules -----------------------------------------------------------------------------

TEST_CASE("training: fit stops at max_epochs when no other rule fires", "[training][fit]") {
  Quadratic q;
  const auto result = optim::fit(q.sgd, [&] { return q.loss(); }, FitOptions().max_epochs(5).quiet());
  CHECK(result.reason == StopReason::MaxEpochs);
  CHECK(result.epochs == 5);
  REQUIRE(result.losses.size() == 5);
  for (std::size_t k = 0; k < 5; ++k) CHECK(result.losses[k] == Approx(9 / std::pow(4.0, k)));
  CHECK(result.validation_losses.empty());
  CHECK(q.w.item() == Approx(3 - 3 / 32.0));  // five halvings of the distance to 3
}

TEST_CASE("training: fit stops at the first epoch whose loss is below the threshold", "[training][fit]") {
  Quadratic q;
  // Losses 9, 2.25, 0.5625, 0.1406, 0.0352, 0.0088: the sixth is the first below 0.01.
  const auto result = optim::fit(q.sgd, [&] { return q.loss(); }, FitOptions().max_epochs(100).loss_below(0.01).quiet());
  CHECK(result.reason == StopReason::LossBelowThreshold);
  CHECK(result.epochs == 6);
  CHECK(result.losses.back() == Approx(9 / 1024.0));
}

TEST_CASE("training: fit and fit_epochs refuse an empty function by name", "[training][fit]") {
  Quadratic q;
  CHECK_THROWS_WITH(optim::fit(q.sgd, std::function<Tensor()>{}, FitOptions().quiet()), Catch::Contains("fit: the loss function is empty"));
  CHECK_THROWS_WITH(optim::fit_epochs({}, FitOptions().quiet()), Catch::Contains("fit_epochs: the epoch function is empty"));
}

TEST_CASE("training: fit stops when the loss diverges to infinity or NaN", "[training][fit]") {
  // lr 1.5 overshoots: the distance to 3 doubles each epoch (w <- w - 1.5 * 2 (w - 3)), and the
  // loss overflows to infinity after about 510 epochs; it used to run on through NaNs to max_epochs.
  Tensor w = zeros({1}, TensorOptions(DType::float64).requires_grad(true));
  optim::SGD sgd({w}, optim::SGDOptions(1.5));
  const auto result =
      optim::fit(sgd, [&] { return sum((w - 3.0) * (w - 3.0)); }, FitOptions().max_epochs(5000).quiet());
  CHECK(result.reason == StopReason::LossNotFinite);
  CHECK(result.epochs < 600);
  CHECK_FALSE(std::isfinite(result.losses.back()));
  CHECK(std::isfinite(result.losses[result.losses.size() - 2]));
  CHECK_THAT(optim::describe(result.reason), Catch::Contains("NaN or infinite"));
}

TEST_CASE("training: fit stops when the gradient norm falls below the minimum", "[training][fit]") {
  Quadratic q;
  // Gradient norms 6, 3, 1.5, 0.75, 0.375, 0.1875, 0.09375: the seventh is the first below 0.1.
  const auto result =
      optim::fit(q.sgd, [&] { return q.loss(); }, FitOptions().max_epochs(100).grad_norm_below(0.1).quiet());
  CHECK(result.reason == StopReason::GradNormBelowMin);
  CHECK(result.epochs == 7);
  CHECK(optim::grad_norm({q.w}) == Approx(0.09375));  // the last epoch's gradient, kept after step()
}

TEST_CASE("training: fit stops when the time budget is used up", "[training][fit]") {
  Quadratic q;
  const auto result = optim::fit(q.sgd, [&] { return q.loss(); },
                                 FitOptions().max_epochs(std::numeric_limits<std::size_t>::max()).time_budget(0.002).quiet());
  CHECK(result.reason == StopReason::TimeBudget);
  CHECK(result.seconds >= 0.002);
  CHECK(result.epochs == result.losses.size());

  // A slow epoch: 2 ms each against a 10 ms budget ends after about 5 epochs.
  auto slow = [](std::size_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return optim::EpochReport{1.0, std::nullopt};
  };
  const auto timed = optim::fit_epochs(slow, FitOptions().max_epochs(100000).time_budget(0.01).quiet());
  CHECK(timed.reason == StopReason::TimeBudget);
  CHECK(timed.epochs >= 1);
  CHECK(timed.epochs <= 5);
}

TEST_CASE("training: fit stops after `patience` epochs without a better validation loss", "[training][fit]") {
  const std::vector<double> script = {5, 4, 4.5, 3, 3.5, 3.2, 3.1, 1, 1, 1};
  std::size_t calls = 0;
  auto validation = [&] { return script.at(calls++); };
  auto epoch = [](std::size_t) { return optim::EpochReport{1.0, std::nullopt}; };
  // Best 3 at epoch 4; epochs 5, 6 and 7 do not beat it: stop after epoch 7.
  const auto result = optim::fit_epochs(epoch, FitOptions().max_epochs(100).patience(3).quiet(), validation);
  CHECK(result.reason == StopReason::ValidationNotImproving);
  CHECK(result.epochs == 7);
  CHECK(result.validation_losses == std::vector<double>(script.begin(), script.begin() + 7));
  CHECK(result.best_validation_loss == 3);

  // With min_delta 0.5 a loss must beat the best by more than 0.5: after 5, neither 4.6 nor 4.55
  // counts, so a patience of 2 stops after epoch 3 although both are lower.
  const std::vector<double> slow_script = {5, 4.6, 4.55, 4.5};
  std::size_t slow_calls = 0;
  const auto strict = optim::fit_epochs(epoch, FitOptions().max_epochs(100).patience(2).min_delta(0.5).quiet(),
                                        [&] { return slow_script.at(slow_calls++); });
  CHECK(strict.reason == StopReason::ValidationNotImproving);
  CHECK(strict.epochs == 3);
  CHECK(strict.best_validation_loss == 5);

  // Through fit: the validation function runs after the update, with recording off.
  Quadratic q;
  calls = 0;
  bool recorded = false;
  const auto full = optim::fit(q.sgd, [&] { return q.loss(); }, FitOptions().max_epochs(100).patience(3).quiet(), [&] {
    recorded = recorded || GradMode::enabled();
    return validation();
  });
  CHECK(full.reason == StopReason::ValidationNotImproving);
  CHECK(full.epochs == 7);
  CHECK_FALSE(recorded);
}

TEST_CASE("training: the loss threshold wins when it fires in the same epoch as patience", "[training][fit]") {
  const std::vector<double> losses = {1, 1, 0.001};
  const std::vector<double> script = {1, 2, 2};
  auto epoch = [&](std::size_t k) { return optim::EpochReport{losses.at(k - 1), std::nullopt}; };
  std::size_t calls = 0;
  const auto result = optim::fit_epochs(epoch, FitOptions().max_epochs(10).patience(2).loss_below(0.01).quiet(),
                                        [&] { return script.at(calls++); });
  CHECK(result.reason == StopReason::LossBelowThreshold);
  CHECK(result.epochs == 3);
}

TEST_CASE("training: bad fit options throw before any epoch runs, naming the value", "[training][fit]") {
  std::size_t epochs_run = 0;
  auto epoch = [&](std::size_t) {
    ++epochs_run;
    return optim::EpochReport{1.0, std::nullopt};
  };
  auto fails = [&](const FitOptions& o) {
    return message_of<std::invalid_argument>([&] { optim::fit_epochs(epoch, o, [] { return 1.0; }); });
  };
  CHECK_THAT(fails(FitOptions().max_epochs(0)), Contains("max_epochs must be at least 1, got 0"));
  CHECK_THAT(fails(FitOptions().loss_below(std::nan(""))), Contains("loss_below must be finite, got nan"));
  CHECK_THAT(fails(FitOptions().time_budget(0)), Contains("time_budget must be > 0 seconds, got 0"));
  CHECK_THAT(fails(FitOptions().time_budget(-1)), Contains("got -1"));
  CHECK_THAT(fails(FitOptions().grad_norm_below(0)), Contains("grad_norm_below must be > 0, got 0"));
  CHECK_THAT(fails(FitOptions().patience(0)), Contains("patience must be at least 1 epoch, got 0"));
  CHECK_THAT(fails(FitOptions().min_delta(-0.5)), Contains("min_delta must be >= 0, got -0.5"));
  CHECK(epochs_run == 0);

  CHECK_THAT(message_of<std::invalid_argument>([&] { optim::fit_epochs(epoch, FitOptions().patience(3).quiet()); }),
             Contains("the patience rule needs a validation_loss function"));
  CHECK_THAT(
      message_of<std::invalid_argument>([&] { optim::fit_epochs(epoch, FitOptions().grad_norm_below(0.1).quiet()); }),
      Contains("needs the epoch to report its gradient norm"));

  Quadratic q;
  CHECK_THAT(message_of<std::invalid_argument>([&] {
               optim::fit(q.sgd, [&] { return (q.w - 3.0) * ones({2}, DType::float64); }, FitOptions().quiet());
             }),
             Contains("loss_fn must return a one-element tensor, got shape [2]"));
}

// grad_norm of an undefined parameter threw Tensor::grad's message, naming neither grad_norm nor
// which parameter.
TEST_CASE("training: grad_norm names an undefined parameter by its index", "[optim]") {
  const Tensor w = ones({2}, TensorOptions(DType::float64).requires_grad(true));
  CHECK_THROWS_WITH(optim::grad_norm({w, Tensor()}), Catch::Contains("grad_norm: parameter 1 is undefined"));
  CHECK(optim::grad_norm({w}) == 0.0);  // no gradient yet
}
