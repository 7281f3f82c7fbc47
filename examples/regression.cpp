// Regression of a noisy curve: y = sin(x) + noise (standard deviation 0.1) at 200 points drawn from
// [-3, 3), fitted by a small tanh network (1-16-16-1) with MSELoss and Adam. 20% of the points are
// held out for validation; the rest are trained in shuffled mini-batches of 16 (a new seeded order
// every epoch). optim::fit_epochs stops when the validation MSE has not improved for 50 epochs, and
// the weights of the best validation epoch are restored.
// The noise alone costs an MSE of about 0.01 (its variance): a fit that reaches it has found the curve.
//
//   regression                  train; print the MSEs, the stopping rule and the fitted curve
//   regression --plot loss.svg  also write the loss plot (training and validation MSE per epoch)
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "examples/cli.h"
#include "nn/batches.h"
#include "nn/data.h"
#include "nn/nn.h"
#include "optim/loss_plot.h"
#include "optim/optim.h"
#include "optim/trainer.h"

using namespace chainrule;

namespace {

constexpr std::size_t kBatchSize = 16;
constexpr std::size_t kPatience = 50;

constexpr const char* kUsage = "usage: regression [--plot FILE.svg]";

struct Args {
  bool help = false;
  std::string plot;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (examples::is_help(arg)) a.help = true;
    else if (arg == "--plot" && i + 1 < argc && argv[i + 1][0] != '\0') a.plot = argv[++i];
    else if (arg == "--plot") throw std::invalid_argument(fmt::format("--plot needs a file name\n{}", kUsage));
    else throw std::invalid_argument(fmt::format("unknown argument '{}'\n{}", arg, kUsage));
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  if (args.help) {
    fmt::print("{}\n", kUsage);
    return 0;
  }
  const std::string& plot = args.plot;
  const nn::Dataset data = nn::make_noisy_sine({.n = 200, .low = -3, .high = 3, .noise = 0.1, .seed = 1});
  const auto split = nn::train_validation_split(data.features.size(), 0.2, 2);
  const Tensor x = nn::rows_to_tensor(data.features, DType::float64), y = nn::rows_to_tensor(data.targets, DType::float64);
  const Tensor x_train = nn::batch_rows(x, split.train), y_train = nn::batch_rows(y, split.train);
  const Tensor x_val = nn::batch_rows(x, split.validation), y_val = nn::batch_rows(y, split.validation);

  Generator gen(4);
  const auto dense = [&](int64_t in, int64_t out) {
    return std::make_shared<nn::Dense>(nn::DenseOptions(in, out).dtype(DType::float64), gen);
  };
  auto model = std::make_shared<nn::Sequential>(dense(1, 16), std::make_shared<nn::Tanh>(), dense(16, 16),
                                                std::make_shared<nn::Tanh>(), dense(16, 1));
  const nn::MSELoss mse;
  optim::Adam adam(model->parameters(), optim::AdamOptions(0.01));
  fmt::print("y = sin(x) + noise: {} training and {} validation points; {} and Adam(lr 0.01), batches of {}\n{}\n",
             split.train.size(), split.validation.size(), mse.to_string(), kBatchSize, model->to_string());

  // An epoch's training loss is the mean over its mini-batches (weighted by their sizes), measured
  // while the weights move, as training loops usually report it.
  const std::size_t n_train = split.train.size();
  auto epoch = [&](std::size_t k) {
    double total = 0;
    for (const auto& batch : nn::make_batches(n_train, kBatchSize, /*shuffle=*/true, /*seed=*/k)) {
      adam.zero_grad();
      const Tensor loss = mse(model->forward(nn::batch_rows(x_train, batch)), nn::batch_rows(y_train, batch));
      loss.backward();
      adam.step();
      total += loss.item() * static_cast<double>(batch.size());
    }
    return optim::EpochReport{total / static_cast<double>(n_train), std::nullopt};
  };
  auto evaluate = [&](const Tensor& inputs, const Tensor& targets) {
    NoGradGuard no_grad;
    return mse(model->forward(inputs), targets).item();
  };
  // Early stopping ends `patience` epochs after the best validation MSE, so the weights of that best
  // epoch are kept aside and put back at the end (as Keras' restore_best_weights does).
  std::vector<std::vector<double>> best_weights;
  double best = std::numeric_limits<double>::infinity();
  std::size_t evaluated = 0, best_epoch = 0;  // fit_epochs validates once per epoch
  auto validation = [&] {
    const double v = evaluate(x_val, y_val);
    if (++evaluated; v < best) {
      best = v;
      best_epoch = evaluated;
      best_weights.clear();
      for (const Tensor& p : model->parameters()) best_weights.push_back(p.to_vector());
    }
    return v;
  };
  const auto result =
      optim::fit_epochs(epoch, optim::FitOptions().max_epochs(3000).patience(kPatience).quiet(), validation);
  auto params = model->parameters();
  for (std::size_t i = 0; i < params.size(); ++i)
    std::copy(best_weights[i].begin(), best_weights[i].end(), params[i].mutable_data<double>());

  fmt::print("\n  {:>5}  {:>9}  {:>9}\n", "epoch", "train MSE", "valid MSE");
  auto row = [&](std::size_t e) {
    fmt::print("  {:>5}  {:>9.5f}  {:>9.5f}\n", e, result.losses[e - 1], result.validation_losses[e - 1]);
  };
  for (std::size_t e : {1, 10, 100, 1000})
    if (e < result.epochs) row(e);
  row(result.epochs);
  fmt::print("\nstopped after {} epochs ({:.2f} s): {} (no better validation MSE for {} epochs)\n", result.epochs,
             result.seconds, describe(result.reason), kPatience);
  fmt::print("weights of epoch {}, the best on validation: MSE train {:.4f}, validation {:.4f} (the noise's variance is 0.01)\n",
             best_epoch, evaluate(x_train, y_train), evaluate(x_val, y_val));

  fmt::print("\n  {:>5}  {:>7}  {:>7}\n", "x", "sin(x)", "model");
  {
    NoGradGuard no_grad;
    const Tensor grid = arange(-3, 3.01, 1, DType::float64);
    const Tensor fitted = model->forward(reshape(grid, {-1, 1}));
    for (int64_t i = 0; i < grid.numel(); ++i)
      fmt::print("  {:>5.1f}  {:>7.3f}  {:>7.3f}\n", grid.at({i}), std::sin(grid.at({i})), fitted.at({i, 0}));
  }

  if (!plot.empty()) {
    optim::write_loss_svg(plot, result.losses, {.title = "y = sin(x) + noise: MSE per epoch"}, result.validation_losses);
    fmt::print("\nwrote {}\n", plot);
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "regression: " << e.what() << "\n";
  return 2;
}
