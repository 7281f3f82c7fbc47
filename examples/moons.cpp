// micrograd's demo in C++: two interleaving half circles ("moons", 100 points with noise 0.1), a
// 2-16-16-1 network of Scalars built neuron by neuron as micrograd's nn.py builds it, the max-margin
// loss with L2 regularisation, and 100 steps of full-batch gradient descent with a decaying rate.
// Every neuron, product and sum is a node of the recorded graph (7,914 per step), and
// backward() runs the chain rule through all of them, as micrograd's Value does. Prints the loss
// and accuracy as the demo does, then the decision regions.
//
//   moons      exits 1 if the final accuracy is below 95% (micrograd's demo reaches 100%)
#include <fmt/format.h>

#include <iostream>
#include <string>
#include <vector>

#include "examples/cli.h"
#include "examples/micrograd_mlp.h"
#include "nn/data.h"

using namespace chainrule;

int main(int argc, char** argv) try {
  constexpr const char* kAbout =
      "micrograd's demo with chainrule's Scalars: a 2-16-16-1 MLP learns two moons (100 points),\n"
      "max-margin loss, 100 steps of gradient descent; prints loss and accuracy, then the decision map.";
  if (const int code = examples::no_arguments(argc, argv, "moons", kAbout); code >= 0) return code;

  const nn::Dataset data = nn::make_moons({.n_samples = 100, .noise = 0.1, .seed = 1});
  std::vector<double> y;  // micrograd's labels: -1 and +1
  for (const auto& t : data.targets) y.push_back(t[0] * 2 - 1);

  Generator gen(1337);
  micrograd::MLP model(2, {16, 16, 1}, gen);
  fmt::print("MLP of [2, 16, 16, 1], {} parameters, every one a Scalar leaf\n", model.parameters().size());

  constexpr int kSteps = 100;
  for (int k = 0; k < kSteps; ++k) {
    const micrograd::Loss l = micrograd::loss(model, data.features, y);
    if (k % 10 == 0 || k == kSteps - 1)
      fmt::print("step {:3} loss {:.6f}, accuracy {:.1f}%\n", k, l.total.value(), 100 * l.accuracy);
    micrograd::sgd_step(model, l.total, k);
  }
  const double accuracy = micrograd::loss(model, data.features, y).accuracy;
  fmt::print("after {} steps: accuracy {:.1f}%\n\n", kSteps, 100 * accuracy);

  // The decision regions over [-1.5, 2.5] x [-1, 1.5]: '.' where the score is negative (class 0,
  // the upper moon), '+' where positive; the points on top as their class's digit.
  constexpr int kColumns = 64, kRows = 20;
  std::vector<std::string> map(kRows, std::string(kColumns, ' '));
  const auto column = [](double x1) { return static_cast<int>((x1 + 1.5) / 4.0 * kColumns); };
  const auto row = [](double x2) { return static_cast<int>((1.5 - x2) / 2.5 * kRows); };
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kColumns; ++c) {
      const double x1 = -1.5 + (c + 0.5) * 4.0 / kColumns, x2 = 1.5 - (r + 0.5) * 2.5 / kRows;
      map[r][c] = model({Scalar(x1), Scalar(x2)})[0].value() > 0 ? '+' : '.';
    }
  for (std::size_t i = 0; i < data.features.size(); ++i) {
    const int c = column(data.features[i][0]), r = row(data.features[i][1]);
    if (r >= 0 && r < kRows && c >= 0 && c < kColumns) map[r][c] = data.targets[i][0] > 0 ? '1' : '0';
  }
  for (const std::string& line : map) fmt::print("  {}\n", line);
  return accuracy >= 0.95 ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "moons: " << e.what() << "\n";
  return 1;
}
