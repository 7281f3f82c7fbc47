// A model written as a user would write one: nn::Module subclasses with their own forward, their own
// parameters and their own submodules. The model is a small residual network whose blocks follow
// ReZero (Bachlechner et al. 2020):
//
//   block(x) = x + alpha * fc2(tanh(fc1(x)))      alpha: a learnable scalar, initially 0
//
// so every block starts as the identity and training decides how much of it to switch on. The
// classifier is stem (Dense 2->16, tanh), three blocks, head (Dense 16->2, logits). The program
// prints the model, its named parameters, trains it briefly on a two-class spiral wound twice (a
// harder one than examples/spiral.cpp's) and prints the accuracy and the learnt alphas.
//
//   custom_model
#include <fmt/format.h>
#include <fmt/ranges.h>

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

// x + alpha * fc2(tanh(fc1(x))), x: [N, width] -> [N, width].
class ReZeroBlock : public nn::Module {
 public:
  ReZeroBlock(int64_t width, Generator& gen) : Module("ReZeroBlock") {
    fc1_ = register_module("fc1", std::make_shared<nn::Dense>(nn::DenseOptions(width, width).dtype(DType::float64), gen));
    fc2_ = register_module("fc2", std::make_shared<nn::Dense>(nn::DenseOptions(width, width).dtype(DType::float64), gen));
    alpha_ = register_parameter("alpha", zeros({}, DType::float64));  // a 0-d tensor: one number
  }

  Tensor forward(const Tensor& x) override { return x + alpha_ * fc2_->forward(tanh(fc1_->forward(x))); }

  double alpha() const { return alpha_.item(); }

 private:
  std::shared_ptr<nn::Dense> fc1_, fc2_;
  Tensor alpha_;
};

// stem -> blocks -> head: x [N, in] -> logits [N, classes].
class ResidualClassifier : public nn::Module {
 public:
  ResidualClassifier(int64_t in, int64_t width, int blocks, int64_t classes, Generator& gen)
      : Module("ResidualClassifier") {
    stem_ = register_module("stem", std::make_shared<nn::Dense>(nn::DenseOptions(in, width).dtype(DType::float64), gen));
    blocks_ = register_module("blocks", std::make_shared<nn::Sequential>());
    for (int b = 0; b < blocks; ++b) blocks_->push_back(std::make_shared<ReZeroBlock>(width, gen));
    head_ = register_module("head", std::make_shared<nn::Dense>(nn::DenseOptions(width, classes).dtype(DType::float64), gen));
  }

  Tensor forward(const Tensor& x) override { return head_->forward(blocks_->forward(tanh(stem_->forward(x)))); }

  std::vector<double> alphas() const {
    std::vector<double> out;
    for (std::size_t b = 0; b < blocks_->size(); ++b) out.push_back(blocks_->at<ReZeroBlock>(b)->alpha());
    return out;
  }

 private:
  std::shared_ptr<nn::Dense> stem_, head_;
  std::shared_ptr<nn::Sequential> blocks_;
};

}  // namespace

int main(int argc, char** argv) try {
  constexpr const char* kAbout =
      "Trains a small ReZero residual network (nn::Module subclasses) on a spiral and prints its learnt alphas.";
  if (const int stop = examples::no_arguments(argc, argv, "custom_model", kAbout); stop >= 0) return stop;
  Generator gen(11);
  auto model = std::make_shared<ResidualClassifier>(2, 16, 3, 2, gen);
  fmt::print("{}\n\nnamed parameters:\n", model->to_string());
  int64_t count = 0;
  for (const auto& [name, p] : model->named_parameters()) {
    fmt::print("  {:<20} {:<9} {}\n", name, p.shape().str(), dtype_name(p.dtype()));
    count += p.numel();
  }
  fmt::print("  {} numbers in all\n\n", count);

  const nn::Dataset data = nn::make_spiral({.points_per_class = 200, .turns = 2, .noise = 0.03, .seed = 3});
  const auto split = nn::train_validation_split(data.features.size(), 0.25, 4);
  const Tensor x = nn::rows_to_tensor(data.features, DType::float64);
  const std::vector<int64_t> labels = nn::to_labels(data.targets);
  const Tensor x_train = nn::batch_rows(x, split.train), x_test = nn::batch_rows(x, split.validation);
  const std::vector<int64_t> y_train = nn::batch_labels(labels, split.train),
                             y_test = nn::batch_labels(labels, split.validation);

  const nn::CrossEntropyLoss criterion;
  optim::Adam adam(model->parameters(), optim::AdamOptions(0.01));
  const auto result = optim::fit(adam, [&] { return criterion(model->forward(x_train), y_train); },
                                 optim::FitOptions().max_epochs(500).loss_below(0.02).quiet());
  fmt::print("trained on a spiral wound twice ({} points, {} held out) with {} and Adam(lr 0.01):\n", split.train.size(),
             split.validation.size(), criterion.to_string());
  fmt::print("  {} epochs in {:.2f} s: {} (cross-entropy {:.4f})\n", result.epochs, result.seconds,
             describe(result.reason), result.losses.back());

  NoGradGuard no_grad;
  const double train_accuracy = nn::accuracy(nn::argmax_labels(model->forward(x_train)), y_train);
  const double test_accuracy = nn::accuracy(nn::argmax_labels(model->forward(x_test)), y_test);
  fmt::print("accuracy: training {:.1f}%, held-out {:.1f}%\n", 100 * train_accuracy, 100 * test_accuracy);
  const auto alphas = model->alphas();
  fmt::print("learnt alphas (0 at the start): {:.3f}\n", fmt::join(alphas, ", "));
  return 0;
} catch (const std::exception& e) {
  std::cerr << "custom_model: " << e.what() << "\n";
  return 2;
}
