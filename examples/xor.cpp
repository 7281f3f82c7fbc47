// XOR: the function no single neuron can learn (its two classes are not separable by a line), learnt
// by a 2-4-1 network with one hidden layer: Dense + Tanh + Dense + Sigmoid, binary cross-entropy,
// Adam, trained full-batch on the four rows of the truth table by optim::fit until the loss is
// below 0.01. Prints the network, how training stopped, and the truth table with the outputs.
//
//   xor        exits 0 when all four rows are classified right (output > 0.5 means 1)
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "examples/cli.h"
#include "nn/nn.h"
#include "optim/optim.h"
#include "optim/trainer.h"

using namespace chainrule;

int main(int argc, char** argv) try {
  constexpr const char* kAbout =
      "Trains a 2-4-1 network on XOR with Adam; exits 0 when all four rows are classified right.";
  if (const int stop = examples::no_arguments(argc, argv, "xor", kAbout); stop >= 0) return stop;
  const Tensor x = tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}}, DType::float64);
  const Tensor y = tensor({{0}, {1}, {1}, {0}}, DType::float64);

  Generator gen(3);
  const auto dense = [&](int64_t in, int64_t out, nn::Nonlinearity after) {
    return std::make_shared<nn::Dense>(
        nn::DenseOptions(in, out).dtype(DType::float64).init(nn::Init::xavier_uniform(nn::calculate_gain(after))),
        gen);
  };
  auto model = std::make_shared<nn::Sequential>(dense(2, 4, nn::Nonlinearity::Tanh), std::make_shared<nn::Tanh>(),
                                                dense(4, 1, nn::Nonlinearity::Sigmoid), std::make_shared<nn::Sigmoid>());
  const nn::BCELoss criterion;
  optim::Adam adam(model->parameters(), optim::AdamOptions(0.05));

  fmt::print("XOR with a 2-4-1 network, {} and Adam(lr 0.05):\n{}\n", criterion.to_string(), model->to_string());
  const auto result = optim::fit(adam, [&] { return criterion(model->forward(x), y); },
                                 optim::FitOptions().max_epochs(5000).loss_below(0.01).quiet());
  fmt::print("stopped after {} epochs ({:.3f} s): {} (loss {:.6g}, goal < 0.01)\n\n", result.epochs, result.seconds,
             describe(result.reason), result.losses.back());

  Tensor out;
  {
    NoGradGuard no_grad;
    out = model->forward(x);
  }
  fmt::print("  x1  x2 | XOR | output | predicted\n");
  int right = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const double o = out.at({i, 0});
    const int predicted = o > 0.5 ? 1 : 0, target = static_cast<int>(y.at({i, 0}));
    right += predicted == target;
    fmt::print("  {:>2}  {:>2} | {:>3} | {:>6.4f} | {:>9}{}\n", x.at({i, 0}), x.at({i, 1}), target, o, predicted,
               predicted == target ? "" : "  (wrong)");
  }
  fmt::print("\naccuracy {}/4 ({:.0f}%)\n", right, 100.0 * right / 4);
  return right == 4 ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "xor: " << e.what() << "\n";
  return 2;
}
