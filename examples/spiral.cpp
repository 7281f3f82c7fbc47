// A classifier on a generated two-class spiral (two arms wound 1.5 times around each other, 400
// points): a 2-32-32-2 tanh network gives two logits per point; CrossEntropyLoss (softmax and
// negative log-likelihood in one numerically stable step) trains it with Adam on 75% of the points,
// full-batch. The other 25% are held out: the accuracy on them is what the program reports, with the
// softmax probabilities of a few held-out points and a map of the decision regions.
//
//   spiral     exits 1 if the held-out accuracy is below 95%
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <string>

#include "examples/cli.h"
#include "nn/batches.h"
#include "nn/data.h"
#include "nn/nn.h"
#include "optim/optim.h"
#include "optim/trainer.h"

using namespace chainrule;

namespace {

constexpr double kRequired = 0.95;
constexpr double kExtent = 1.2;  // the map shows [-kExtent, kExtent]^2
constexpr int kColumns = 56, kRows = 24;

// The predicted class over a grid as '.' (class 0) and '+' (class 1), with the held-out points on
// top as their true class's digit. A digit on the other class's ground is a mistake, or a point
// near the boundary drawn in a cell whose centre lies across it (the map is coarse).
void print_map(nn::Module& model, const nn::Dataset& data, const std::vector<std::size_t>& held_out) {
  std::vector<std::vector<double>> cells;
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kColumns; ++c)
      cells.push_back({-kExtent + (c + 0.5) * 2 * kExtent / kColumns, kExtent - (r + 0.5) * 2 * kExtent / kRows});
  NoGradGuard no_grad;
  const auto predicted = nn::argmax_labels(model.forward(nn::rows_to_tensor(cells, DType::float64)));
  std::vector<std::string> map(kRows, std::string(kColumns, ' '));
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kColumns; ++c) map[r][c] = predicted[r * kColumns + c] == 0 ? '.' : '+';
  for (std::size_t i : held_out) {
    const int c = static_cast<int>((data.features[i][0] + kExtent) / (2 * kExtent) * kColumns);
    const int r = static_cast<int>((kExtent - data.features[i][1]) / (2 * kExtent) * kRows);
    if (r >= 0 && r < kRows && c >= 0 && c < kColumns) map[r][c] = data.targets[i][0] == 0 ? '0' : '1';
  }
  for (const auto& line : map) fmt::print("  {}\n", line);
}

}  // namespace

int main(int argc, char** argv) try {
  constexpr const char* kAbout =
      "Trains a 2-32-32-2 tanh classifier on a two-arm spiral; exits 1 if the held-out accuracy is below 95%.";
  if (const int stop = examples::no_arguments(argc, argv, "spiral", kAbout); stop >= 0) return stop;
  const nn::Dataset data = nn::make_spiral({.points_per_class = 200, .turns = 1.5, .noise = 0.04, .seed = 1});
  const auto split = nn::train_validation_split(data.features.size(), 0.25, 2);
  const Tensor x = nn::rows_to_tensor(data.features, DType::float64);
  const std::vector<int64_t> labels = nn::to_labels(data.targets);
  const Tensor x_train = nn::batch_rows(x, split.train), x_test = nn::batch_rows(x, split.validation);
  const std::vector<int64_t> y_train = nn::batch_labels(labels, split.train),
                             y_test = nn::batch_labels(labels, split.validation);

  Generator gen(5);
  const auto dense = [&](int64_t in, int64_t out) {
    return std::make_shared<nn::Dense>(nn::DenseOptions(in, out).dtype(DType::float64), gen);
  };
  auto model = std::make_shared<nn::Sequential>(dense(2, 32), std::make_shared<nn::Tanh>(), dense(32, 32),
                                                std::make_shared<nn::Tanh>(), dense(32, 2));
  const nn::CrossEntropyLoss criterion;
  optim::Adam adam(model->parameters(), optim::AdamOptions(0.02));
  fmt::print("two-class spiral: {} training points, {} held out; {} on the logits, Adam(lr 0.02)\n{}\n",
             split.train.size(), split.validation.size(), criterion.to_string(), model->to_string());

  const auto result = optim::fit(adam, [&] { return criterion(model->forward(x_train), y_train); },
                                 optim::FitOptions().max_epochs(2000).loss_below(0.02).quiet());
  fmt::print("stopped after {} epochs ({:.2f} s): {} (cross-entropy {:.4f})\n\n", result.epochs, result.seconds,
             describe(result.reason), result.losses.back());

  NoGradGuard no_grad;
  const Tensor test_logits = model->forward(x_test);
  const std::vector<int64_t> predicted = nn::argmax_labels(test_logits);
  const double train_accuracy = nn::accuracy(nn::argmax_labels(model->forward(x_train)), y_train);
  const double test_accuracy = nn::accuracy(predicted, y_test);

  const Tensor probabilities = nn::Softmax(1).forward(test_logits);
  fmt::print("  softmax of the first held-out points:\n  {:>6} {:>6} | {:>7} {:>7} | class predicted\n", "x1", "x2",
             "P(0)", "P(1)");
  for (std::size_t i = 0; i < 6; ++i) {
    const auto& p = data.features[split.validation[i]];
    const auto row = static_cast<int64_t>(i);
    fmt::print("  {:>6.2f} {:>6.2f} | {:>7.4f} {:>7.4f} | {:>5} {:>9}\n", p[0], p[1], probabilities.at({row, 0}),
               probabilities.at({row, 1}), y_test[i], predicted[i]);
  }
  fmt::print("\n  decision regions ('.' class 0, '+' class 1) and held-out points (their true class):\n");
  print_map(*model, data, split.validation);

  fmt::print("\naccuracy: training {:.1f}%, held-out {:.1f}% ({} of {}; required {:.0f}%)\n", 100 * train_accuracy,
             100 * test_accuracy, static_cast<std::size_t>(test_accuracy * static_cast<double>(y_test.size()) + 0.5),
             y_test.size(), 100 * kRequired);
  return test_accuracy >= kRequired ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "spiral: " << e.what() << "\n";
  return 2;
}
