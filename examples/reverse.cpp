// A tiny Transformer learns to reverse sequences of six digits (examples/reverse_model.h): token and
// position embeddings, a two-layer TransformerEncoder, a Dense head, cross-entropy over every
// position, AdamW with a one-cycle schedule. Prints the loss as it trains, the accuracy on fresh
// sequences, and a few of them reversed by the model; exits non-zero below 99%.
//
//   reverse
#include <fmt/format.h>

#include <iostream>

#include "examples/cli.h"
#include "examples/reverse_model.h"

using namespace chainrule;
using namespace chainrule::examples::reverse;

int main(int argc, char** argv) {
  const int code = examples::no_arguments(
      argc, argv, "reverse",
      "Trains a two-layer Transformer encoder to reverse six-digit sequences and prints its accuracy and "
      "examples.");
  if (code >= 0) return code;

  Reverser model(1);
  std::cout << model << "\n\n";
  Generator data(7);
  train(model, 400, 64, data, 50, [](int64_t step, double l) { fmt::print("step {:3} loss {:.4f}\n", step, l); });

  Generator held_out(99);
  const Batch test = sequences(1000, held_out);
  const double acc = accuracy(model, test);
  fmt::print("\naccuracy on 1000 fresh sequences: {:.2f}% of digits\n\n", 100 * acc);
  const Batch show = sequences(4, held_out);
  const std::vector<double> in = show.tokens.to_vector();
  const std::vector<int64_t> out = predict(model, show.tokens);
  for (int64_t r = 0; r < 4; ++r) {
    std::string from, to;
    for (int64_t i = 0; i < kLength; ++i) {
      from += fmt::format("{}", in[static_cast<size_t>(r * kLength + i)]);
      to += fmt::format("{}", out[static_cast<size_t>(r * kLength + i)]);
    }
    fmt::print("{} -> {}\n", from, to);
  }
  return acc >= 0.99 ? 0 : 1;
}
