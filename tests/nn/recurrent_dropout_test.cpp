// Dropout between the layers of RNN, LSTM and GRU (torch's `dropout` option), and the functional
// nn::dropout it is made of: a two-layer network in training equals its two layers run one after
// the other with nn::dropout between them, from the same generator state; evaluation and one layer
// have no dropout; the seeded layer's masks are reproducible; printing and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/dropout.h"
#include "nn/recurrent.h"
#include "nn/serialize.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;

namespace {

Tensor input(const Shape& shape, uint64_t seed) {
  testing::Numbers numbers(seed);
  return from_vector(numbers.uniform_vector(static_cast<std::size_t>(shape.numel()), -2, 2), shape,
                     TensorOptions(DType::float64));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> u = a.to_vector(), v = b.to_vector();
  double m = 0;
  for (std::size_t i = 0; i < u.size(); ++i) m = std::max(m, std::abs(u[i] - v[i]));
  return m;
}

// The entries of a two-layer module's state dict that belong to `layer`, renamed as layer 0's.
std::map<std::string, Tensor> layer_state(const nn::Module& two, int layer) {
  const std::string from = "_l" + std::to_string(layer);
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : nn::state_dict(two)) {
    const auto at = name.find(from);
    if (at == std::string::npos) continue;
    out[name.substr(0, at) + "_l0" + name.substr(at + from.size())] = t;
  }
  return out;
}

// Options with one layer and the input size `in`, from a two-layer layer's options.
template <class Options>
Options one_layer(Options o, int64_t in) {
  Options r(in, o.hidden_size());
  return r.bias(o.bias()).dtype(o.dtype()).batch_first(o.batch_first()).bidirectional(o.bidirectional());
}

// `two` (two layers, dropout p) in training against its layers one at a time with nn::dropout
// between them, both from default_generator() reseeded to the same state.
template <class Layer, class Options>
void check_against_composition(const Options& options, const Tensor& x) {
  Generator init(3);
  Layer two(options, init);
  const int64_t features = options.hidden_size() * (options.bidirectional() ? 2 : 1);
  Layer first(one_layer(options, options.input_size()), init), second(one_layer(options, features), init);
  nn::load_state_dict(first, layer_state(two, 0));
  nn::load_state_dict(second, layer_state(two, 1));

  nn::manual_seed(11);
  const Tensor trained = two.forward(x);
  nn::manual_seed(11);
  // The masks are drawn in the layers' time-major order, [T, N, features], whatever the layout.
  const auto time_major = [&](const Tensor& t) { return options.batch_first() ? transpose(t, 0, 1) : t; };
  const Tensor dropped =
      time_major(nn::dropout(time_major(first.forward(x)), options.dropout(), true, nn::default_generator()));
  CHECK(max_abs_diff(trained, second.forward(dropped)) == 0);

  // The mask did something: some of the first layer's outputs were zeroed.
  const std::vector<double> d = dropped.to_vector();
  CHECK(std::count(d.begin(), d.end(), 0.0) > 0);

  // Evaluation: no dropout, the layers as they are.
  two.eval();
  CHECK(max_abs_diff(two.forward(x), second.forward(first.forward(x))) == 0);
}

}  // namespace

TEST_CASE("nn: recurrent dropout is nn::dropout on every layer's output but the last, in training only",
          "[recurrent][dropout]") {
  const Tensor x = input({6, 3, 4}, 5);  // [T, N, I]
  SECTION("RNN") { check_against_composition<nn::RNN>(nn::RNNOptions(4, 5).num_layers(2).dropout(0.5).dtype(DType::float64), x); }
  SECTION("LSTM") {
    check_against_composition<nn::LSTM>(nn::LSTMOptions(4, 5).num_layers(2).dropout(0.3).dtype(DType::float64), x);
  }
  SECTION("GRU, bidirectional and batch_first") {
    check_against_composition<nn::GRU>(
        nn::GRUOptions(4, 3).num_layers(2).dropout(0.4).bidirectional(true).batch_first(true).dtype(DType::float64), x);
  }
}

TEST_CASE("nn: recurrent dropout with one layer, or p = 0, changes nothing, and p = 1 zeroes the layer below",
          "[recurrent][dropout]") {
  const Tensor x = input({4, 2, 3}, 8);
  nn::LSTM plain(nn::LSTMOptions(3, 4).num_layers(1).dtype(DType::float64).seed(1));
  nn::LSTM one(nn::LSTMOptions(3, 4).num_layers(1).dropout(0.9).dtype(DType::float64).seed(1));
  CHECK(max_abs_diff(plain.forward(x), one.forward(x)) == 0);

  nn::GRU a(nn::GRUOptions(3, 4).num_layers(3).dtype(DType::float64).seed(2));
  nn::GRU b(nn::GRUOptions(3, 4).num_layers(3).dropout(0).dtype(DType::float64).seed(2));
  CHECK(max_abs_diff(a.forward(x), b.forward(x)) == 0);

  // p = 1: the top layer reads zeros, so its output is what it makes of a zero input, whatever x.
  nn::RNN all(nn::RNNOptions(3, 4).num_layers(2).dropout(1).dtype(DType::float64).seed(4));
  CHECK(max_abs_diff(all.forward(x), all.forward(input({4, 2, 3}, 9))) == 0);
  all.eval();
  CHECK(max_abs_diff(all.forward(x), all.forward(input({4, 2, 3}, 9))) > 0.01);
}

TEST_CASE("nn: a seeded recurrent layer draws reproducible masks from its own generator", "[recurrent][dropout]") {
  const Tensor x = input({5, 2, 3}, 6);
  const auto options = nn::LSTMOptions(3, 4).num_layers(2).dropout(0.5).dtype(DType::float64).seed(21);
  nn::LSTM a(options), b(options);
  nn::manual_seed(1);
  const Tensor a1 = a.forward(x), a2 = a.forward(x);
  nn::manual_seed(2);  // the global generator plays no part
  const Tensor b1 = b.forward(x), b2 = b.forward(x);
  CHECK(max_abs_diff(a1, b1) == 0);
  CHECK(max_abs_diff(a2, b2) == 0);
  CHECK(max_abs_diff(a1, a2) > 1e-3);  // a new mask per forward
}

TEST_CASE("nn: recurrent dropout prints as torch's and is checked", "[recurrent][dropout]") {
  CHECK(nn::GRU(nn::GRUOptions(3, 4).num_layers(2).batch_first(true).dropout(0.25).bidirectional(true)).extra_repr() ==
        "3, 4, num_layers=2, batch_first=true, dropout=0.25, bidirectional=true");
  for (double p : {-0.1, 1.5, std::nan("")}) {
    CHECK_THROWS_WITH(nn::LSTM(nn::LSTMOptions(3, 4).dropout(p)), Contains("LSTM: dropout must be in [0, 1], got"));
    CHECK_THROWS_AS(nn::RNN(nn::RNNOptions(3, 4).dropout(p)), std::invalid_argument);
  }
}

TEST_CASE("nn: nn::dropout, the functional form, masks as asked and checks its arguments", "[dropout]") {
  Generator gen(4);
  const Tensor x = ones({200, 3}, TensorOptions(DType::float64));
  CHECK(nn::dropout(x, 0.5, false, gen).impl() == x.impl());  // evaluation: the same tensor
  CHECK(nn::dropout(x, 0, true, gen).impl() == x.impl());

  // One draw per row ([200, 1] broadcast over the 3 columns): every row all 0 or all 2.
  const std::vector<double> rows = nn::dropout(x, 0.5, true, gen, Shape{200, 1}).to_vector();
  int zeros = 0;
  for (std::size_t r = 0; r < 200; ++r) {
    CHECK((rows[3 * r] == 0 || rows[3 * r] == 2));
    CHECK(rows[3 * r + 1] == rows[3 * r]);
    CHECK(rows[3 * r + 2] == rows[3 * r]);
    zeros += rows[3 * r] == 0;
  }
  CHECK(zeros > 60);  // about 100 of 200; below 60 has probability ~1e-8
  CHECK(zeros < 140);

  CHECK_THROWS_WITH(nn::dropout(x, 1.2, true, gen), "dropout: p must be in [0, 1], got 1.2");
  CHECK_THROWS_WITH(nn::dropout(x, 0.5, true, gen, Shape{200, 2}),
                    "dropout: a mask of shape [200, 2] does not cover the input [200, 3] (each dim 1 or the input's)");
  CHECK_THROWS_WITH(nn::dropout(x, 0.5, true, gen, Shape{200}), Contains("does not cover the input [200, 3]"));
  CHECK_THROWS_WITH(nn::dropout(Tensor(), 0.5, true, gen), "dropout: the input is undefined");
  CHECK_THROWS_WITH(nn::Dropout(nn::DropoutOptions(-1)), "Dropout: p must be in [0, 1], got -1");
}

TEST_CASE("nn: recurrent layers take a batch of no sequences", "[recurrent]") {
  nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(2).dropout(0.5).bidirectional(true).seed(1));
  const nn::LSTMOutput out = lstm.forward(zeros({5, 0, 3}), Tensor(), Tensor());
  CHECK(out.output.shape() == Shape{5, 0, 8});
  CHECK(out.h_n.shape() == Shape{4, 0, 4});
  CHECK(out.c_n.shape() == Shape{4, 0, 4});
  sum(out.output).backward();  // no sequences: every weight's gradient is zero
  for (const Tensor& p : lstm.parameters()) {
    REQUIRE(p.grad().defined());
    const std::vector<double> g = p.grad().to_vector();
    CHECK(std::all_of(g.begin(), g.end(), [](double v) { return v == 0; }));
  }
  nn::GRUCell cell(nn::GRUCellOptions(3, 4).seed(1));
  CHECK(cell.forward(zeros({0, 3}), Tensor()).shape() == Shape{0, 4});
}
