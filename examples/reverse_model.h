#pragma once
// A tiny Transformer that learns to reverse sequences of digits: the custom-model pieces of
// chainrule together (examples/reverse.cpp runs it; tests/examples/reverse_test.cpp checks it).
//
//   tokens [N, L] (digits 0-9) -> token embedding + position embedding -> TransformerEncoder
//   (2 layers, d_model 32, 4 heads, batch_first) -> Dense(32, 10) per position -> logits [N, L, 10]
//   loss: cross-entropy of every position against the reversed sequence (logits as [N, 10, L],
//   torch's K-dimensional form); AdamW with OneCycleLR, one schedule step per batch.
//
// Reversal needs each position to read its mirror's token: attention finds it through the
// position embeddings, so no recurrence is involved.
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/nn.h"
#include "optim/optim.h"

namespace chainrule::examples::reverse {

inline constexpr int64_t kDigits = 10, kLength = 6, kModel = 32;

class Reverser : public nn::Module {
 public:
  explicit Reverser(uint64_t seed) : Module("Reverser") {
    tokens_ = register_module("tokens", std::make_shared<nn::Embedding>(nn::EmbeddingOptions(kDigits, kModel).seed(seed)));
    positions_ = register_module(
        "positions", std::make_shared<nn::Embedding>(nn::EmbeddingOptions(kLength, kModel).seed(seed + 1)));
    const auto layer = nn::TransformerEncoderLayerOptions(kModel, 4).dim_feedforward(64).dropout(0.0).batch_first(true);
    encoder_ = register_module("encoder",
                               std::make_shared<nn::TransformerEncoder>(
                                   nn::TransformerEncoderOptions(nn::TransformerEncoderLayerOptions(layer).seed(seed + 2), 2)));
    head_ = register_module("head", std::make_shared<nn::Dense>(nn::DenseOptions(kModel, kDigits).seed(seed + 3)));
  }

  // tokens [N, L] of whole numbers -> logits [N, L, 10].
  Tensor forward(const Tensor& tokens) override {
    std::vector<double> places(static_cast<size_t>(kLength));
    for (int64_t i = 0; i < kLength; ++i) places[static_cast<size_t>(i)] = static_cast<double>(i);
    const Tensor x = tokens_->forward(tokens) + positions_->forward(from_vector(places, {kLength}));
    return head_->forward(encoder_->forward(x));
  }

 private:
  std::shared_ptr<nn::Embedding> tokens_, positions_;
  std::shared_ptr<nn::TransformerEncoder> encoder_;
  std::shared_ptr<nn::Dense> head_;
};

// n random digit sequences [n, L] and their reversals.
struct Batch {
  Tensor tokens, reversed;
};
inline Batch sequences(int64_t n, Generator& gen) {
  std::vector<double> tokens(static_cast<size_t>(n * kLength)), reversed(tokens.size());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < kLength; ++i) {
      const double digit = std::floor(gen.uniform(0, kDigits));
      tokens[static_cast<size_t>(r * kLength + i)] = digit;
      reversed[static_cast<size_t>(r * kLength + kLength - 1 - i)] = digit;
    }
  return {from_vector(tokens, {n, kLength}), from_vector(reversed, {n, kLength})};
}

// The mean cross-entropy over every position of every sequence.
inline Tensor loss(Reverser& model, const Batch& b) {
  return nn::cross_entropy(permute(model.forward(b.tokens), {0, 2, 1}), b.reversed);
}

// The model's most likely digit at every position of tokens [n, L], row-major.
inline std::vector<int64_t> predict(Reverser& model, const Tensor& tokens) {
  NoGradGuard no_grad;
  const std::vector<double> logits = model.forward(tokens).to_vector();
  std::vector<int64_t> digits(logits.size() / kDigits);
  for (size_t k = 0; k < digits.size(); ++k) {
    int64_t best = 0;
    for (int64_t c = 1; c < kDigits; ++c)
      if (logits[k * kDigits + static_cast<size_t>(c)] > logits[k * kDigits + static_cast<size_t>(best)]) best = c;
    digits[k] = best;
  }
  return digits;
}

// The fraction of positions whose most likely digit is the right one.
inline double accuracy(Reverser& model, const Batch& b) {
  const std::vector<int64_t> digits = predict(model, b.tokens);
  const std::vector<double> want = b.reversed.to_vector();
  int64_t right = 0;
  for (size_t k = 0; k < want.size(); ++k) right += static_cast<double>(digits[k]) == want[k];
  return static_cast<double>(right) / static_cast<double>(want.size());
}

// Trains `steps` batches of `batch` fresh sequences; calls report(step, loss) every `every` steps.
template <class Report>
void train(Reverser& model, int64_t steps, int64_t batch, Generator& data, int64_t every, Report report) {
  optim::AdamW opt(model.parameters(), optim::AdamWOptions(1e-3).weight_decay(0.01));
  optim::OneCycleLR schedule(opt, optim::OneCycleLROptions(1e-2, steps));
  for (int64_t step = 0; step < steps; ++step) {
    const Tensor l = loss(model, sequences(batch, data));
    if (step % every == 0 || step + 1 == steps) report(step, l.item());
    opt.zero_grad();
    l.backward();
    opt.step();
    schedule.step();
  }
}

}  // namespace chainrule::examples::reverse
