// RNNCell, LSTMCell, GRUCell, RNN, LSTM and GRU: values against loops over plain doubles (torch's
// formulas written out element by element), finite-difference checks of first and second order,
// torch's parameter names and shapes, saving and loading, errors, and a small learning run.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/dense.h"
#include "nn/loss.h"
#include "nn/recurrent.h"
#include "nn/sequential.h"
#include "nn/serialize.h"
#include "optim/adam.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;

namespace {

using V = const std::vector<Tensor>&;
using Vec = std::vector<double>;
const TensorOptions f64(DType::float64);

Tensor input(const Shape& shape, uint64_t seed, bool requires_grad = false) {
  testing::Numbers numbers(seed);
  return from_vector(numbers.uniform_vector(static_cast<std::size_t>(shape.numel()), -2, 2), shape,
                     TensorOptions(DType::float64).requires_grad(requires_grad));
}

// ---- the reference: torch's formulas, element by element ----

enum class Kind { Tanh, ReLU, LSTM, GRU };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Tanh: return "RNN (tanh)";
    case Kind::ReLU: return "RNN (relu)";
    case Kind::LSTM: return "LSTM";
    case Kind::GRU: return "GRU";
  }
  return "?";
}
double sigmoid_of(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// One cell's (or one layer's and direction's) parameters as plain numbers; no bias reads as zeros.
struct PlainWeights {
  Vec w_ih, w_hh, b_ih, b_hh;
  std::size_t in, hidden;
  explicit PlainWeights(const nn::RecurrentWeights& w)
      : w_ih(w.weight_ih.to_vector()), w_hh(w.weight_hh.to_vector()),
        in(static_cast<std::size_t>(w.weight_ih.size(1))), hidden(static_cast<std::size_t>(w.weight_hh.size(1))) {
    const std::size_t rows = static_cast<std::size_t>(w.weight_ih.size(0));
    b_ih = w.bias_ih.defined() ? w.bias_ih.to_vector() : Vec(rows, 0.0);
    b_hh = w.bias_hh.defined() ? w.bias_hh.to_vector() : Vec(rows, 0.0);
  }
  // Row j of x W_ih^T + b_ih, and of h W_hh^T + b_hh.
  double ih(std::size_t j, const Vec& x) const {
    double s = b_ih[j];
    for (std::size_t k = 0; k < in; ++k) s += w_ih[j * in + k] * x[k];
    return s;
  }
  double hh(std::size_t j, const Vec& h) const {
    double s = b_hh[j];
    for (std::size_t k = 0; k < hidden; ++k) s += w_hh[j * hidden + k] * h[k];
    return s;
  }
};

struct RefState {
  Vec h, c;
};

RefState ref_step(Kind kind, const PlainWeights& w, const Vec& x, const RefState& s) {
  const std::size_t n = w.hidden;
  RefState out{Vec(n), Vec(n)};
  for (std::size_t j = 0; j < n; ++j) {
    switch (kind) {
      case Kind::Tanh: out.h[j] = std::tanh(w.ih(j, x) + w.hh(j, s.h)); break;
      case Kind::ReLU: out.h[j] = std::max(0.0, w.ih(j, x) + w.hh(j, s.h)); break;
      case Kind::LSTM: {
        const double i = sigmoid_of(w.ih(j, x) + w.hh(j, s.h));
        const double f = sigmoid_of(w.ih(n + j, x) + w.hh(n + j, s.h));
        const double g = std::tanh(w.ih(2 * n + j, x) + w.hh(2 * n + j, s.h));
        const double o = sigmoid_of(w.ih(3 * n + j, x) + w.hh(3 * n + j, s.h));
        out.c[j] = f * s.c[j] + i * g;
        out.h[j] = o * std::tanh(out.c[j]);
        break;
      }
      case Kind::GRU: {
        const double r = sigmoid_of(w.ih(j, x) + w.hh(j, s.h));
        const double z = sigmoid_of(w.ih(n + j, x) + w.hh(n + j, s.h));
        const double m = std::tanh(w.ih(2 * n + j, x) + r * w.hh(2 * n + j, s.h));
        out.h[j] = (1 - z) * m + z * s.h[j];
        break;
      }
    }
  }
  return out;
}

// ---- the layers under test, behind one interface ----

struct Layer {
  std::shared_ptr<nn::RNNBase> module;
  std::function<nn::LSTMOutput(const Tensor&, const Tensor&, const Tensor&)> forward;  // c only for LSTM
};

template <class O>
O configured(O o, int64_t layers, bool batch_first, bool bidirectional, uint64_t seed) {
  return o.num_layers(layers).batch_first(batch_first).bidirectional(bidirectional).dtype(DType::float64).seed(seed);
}

Layer make_layer(Kind kind, int64_t in, int64_t hidden, int64_t layers, bool batch_first, bool bidirectional,
                 uint64_t seed = 1) {
  switch (kind) {
    case Kind::Tanh:
    case Kind::ReLU: {
      auto m = std::make_shared<nn::RNN>(
          configured(nn::RNNOptions(in, hidden), layers, batch_first, bidirectional, seed)
              .nonlinearity(kind == Kind::ReLU ? nn::Nonlinearity::ReLU : nn::Nonlinearity::Tanh));
      return {m, [m](const Tensor& x, const Tensor& h, const Tensor&) {
                nn::RNNOutput o = m->forward(x, h);
                return nn::LSTMOutput{o.output, o.h_n, Tensor()};
              }};
    }
    case Kind::LSTM: {
      auto m = std::make_shared<nn::LSTM>(configured(nn::LSTMOptions(in, hidden), layers, batch_first, bidirectional, seed));
      return {m, [m](const Tensor& x, const Tensor& h, const Tensor& c) { return m->forward(x, h, c); }};
    }
    case Kind::GRU: {
      auto m = std::make_shared<nn::GRU>(configured(nn::GRUOptions(in, hidden), layers, batch_first, bidirectional, seed));
      return {m, [m](const Tensor& x, const Tensor& h, const Tensor&) {
                nn::RNNOutput o = m->forward(x, h);
                return nn::LSTMOutput{o.output, o.h_n, Tensor()};
              }};
    }
  }
  return {};
}

struct Cell {
  std::shared_ptr<nn::RNNCellBase> module;
  std::function<nn::LSTMState(const Tensor&, const Tensor&, const Tensor&)> forward;
};

Cell make_cell(Kind kind, int64_t in, int64_t hidden, bool bias = true, uint64_t seed = 2) {
  switch (kind) {
    case Kind::Tanh:
    case Kind::ReLU: {
      auto m = std::make_shared<nn::RNNCell>(
          nn::RNNCellOptions(in, hidden).bias(bias).dtype(DType::float64).seed(seed).nonlinearity(
              kind == Kind::ReLU ? nn::Nonlinearity::ReLU : nn::Nonlinearity::Tanh));
      return {m, [m](const Tensor& x, const Tensor& h, const Tensor&) { return nn::LSTMState{m->forward(x, h), Tensor()}; }};
    }
    case Kind::LSTM: {
      auto m = std::make_shared<nn::LSTMCell>(nn::LSTMCellOptions(in, hidden).bias(bias).dtype(DType::float64).seed(seed));
      return {m, [m](const Tensor& x, const Tensor& h, const Tensor& c) { return m->forward(x, h, c); }};
    }
    case Kind::GRU: {
      auto m = std::make_shared<nn::GRUCell>(nn::GRUCellOptions(in, hidden).bias(bias).dtype(DType::float64).seed(seed));
      return {m, [m](const Tensor& x, const Tensor& h, const Tensor&) { return nn::LSTMState{m->forward(x, h), Tensor()}; }};
    }
  }
  return {};
}

nn::RecurrentWeights weights_of(const nn::RNNCellBase& cell) {
  return {cell.weight_ih(), cell.weight_hh(), cell.bias_ih(), cell.bias_hh()};
}

constexpr Kind kKinds[] = {Kind::Tanh, Kind::ReLU, Kind::LSTM, Kind::GRU};

// gradcheck and gradgradcheck of loss(x, h, c) through x, h and, for an LSTM, c (the parameters
// enter as constants there), and gradcheck_model through every parameter of `module` by name.
using Loss = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;
void check_all_orders(const Loss& loss, bool lstm, const Tensor& x, const Tensor& h, const Tensor& c,
                      const nn::Module& module) {
  if (lstm)
    testing::check_first_and_second_order([&](V in) { return loss(in[0], in[1], in[2]); }, {x, h, c});
  else
    testing::check_first_and_second_order([&](V in) { return loss(in[0], in[1], Tensor()); }, {x, h});
  const GradcheckReport model =
      gradcheck_model([&] { return loss(x.detach(), h.detach(), lstm ? c.detach() : Tensor()); }, module.named_parameters());
  INFO(model);
  CHECK(model.passed);
  CHECK(model.parameters.size() == module.named_parameters().size());
}

}  // namespace

TEST_CASE("nn: RNNCell, LSTMCell and GRUCell compute torch's formulas, batched and unbatched") {
  const int64_t n = 3, in = 4, hidden = 5;
  for (Kind kind : kKinds)
    for (bool bias : {true, false}) {
      INFO(kind_name(kind) << " cell, bias " << bias);
      const Cell cell = make_cell(kind, in, hidden, bias);
      const PlainWeights w(weights_of(*cell.module));
      const Tensor x = input({n, in}, 1), h = input({n, hidden}, 2), c = input({n, hidden}, 3);
      const bool lstm = kind == Kind::LSTM;
      const Vec xs = x.to_vector(), hs = h.to_vector(), cs = c.to_vector();
      const auto row = [](const Vec& v, int64_t r, int64_t width) {
        return Vec(v.begin() + r * width, v.begin() + (r + 1) * width);
      };
      for (bool given : {true, false}) {
        INFO("state given " << given);
        const nn::LSTMState got = cell.forward(x, given ? h : Tensor(), given && lstm ? c : Tensor());
        REQUIRE(got.h.shape() == Shape{n, hidden});
        CHECK(got.c.defined() == lstm);
        for (int64_t r = 0; r < n; ++r) {
          const RefState s0 = given ? RefState{row(hs, r, hidden), row(cs, r, hidden)}
                                    : RefState{Vec(hidden, 0.0), Vec(hidden, 0.0)};
          const RefState want = ref_step(kind, w, row(xs, r, in), s0);
          for (int64_t j = 0; j < hidden; ++j) {
            CHECK(got.h.at({r, j}) == Approx(want.h[static_cast<std::size_t>(j)]).epsilon(1e-12));
            if (lstm) CHECK(got.c.at({r, j}) == Approx(want.c[static_cast<std::size_t>(j)]).epsilon(1e-12));
          }
        }
        // Unbatched: row 1 alone, as [I] with h [H].
        const Tensor x1 = reshape(slice(x, 0, 1, 2), {in});
        const nn::LSTMState one = cell.forward(x1, given ? reshape(slice(h, 0, 1, 2), {hidden}) : Tensor(),
                                               given && lstm ? reshape(slice(c, 0, 1, 2), {hidden}) : Tensor());
        REQUIRE(one.h.shape() == Shape{hidden});
        CHECK(one.c.defined() == lstm);
        for (int64_t j = 0; j < hidden; ++j) {  // to rounding: one row's product is not the batch's kernel
          CHECK(one.h.at({j}) == Approx(got.h.at({1, j})).epsilon(1e-14));
          if (lstm) CHECK(one.c.at({j}) == Approx(got.c.at({1, j})).epsilon(1e-14));
        }
      }
      // The one-argument forward starts from zeros and returns h'.
      CHECK(cell.module->forward(x).to_vector() == cell.forward(x, Tensor(), Tensor()).h.to_vector());
    }
}

namespace {

// One configuration of a multi-step layer against the reference: T = 4 steps, N = 2 sequences (1
// unbatched), I = 3, H = 5; h0 (and c0) given, or left undefined for zeros.
struct Config {
  Kind kind;
  int64_t layers;
  bool bidirectional, batch_first, unbatched, given;
};

void check_against_reference(const Config& config) {
  const Kind kind = config.kind;
  const int64_t layers = config.layers;
  const bool bidirectional = config.bidirectional, batch_first = config.batch_first, unbatched = config.unbatched,
             given = config.given;
  const int64_t steps = 4, batch = 2, in = 3, hidden = 5;
  const Layer layer = make_layer(kind, in, hidden, layers, batch_first, bidirectional);
  const int64_t n = unbatched ? 1 : batch, dirs = bidirectional ? 2 : 1, states = layers * dirs;
  const bool lstm = kind == Kind::LSTM;
  testing::Numbers numbers(7);
  // xs[s][t], h0s[k][s], c0s[k][s]: the reference's inputs, then the tensors in the layout tested.
  std::vector<std::vector<Vec>> xs(static_cast<std::size_t>(n), std::vector<Vec>(static_cast<std::size_t>(steps)));
  for (auto& seq : xs)
    for (Vec& v : seq) v = numbers.uniform_vector(static_cast<std::size_t>(in), -2, 2);
  std::vector<std::vector<Vec>> h0s(static_cast<std::size_t>(states)), c0s(static_cast<std::size_t>(states));
  for (int64_t k = 0; k < states; ++k)
    for (int64_t s = 0; s < n; ++s) {
      h0s[k].push_back(given ? numbers.uniform_vector(static_cast<std::size_t>(hidden), -1, 1) : Vec(hidden, 0.0));
      c0s[k].push_back(given ? numbers.uniform_vector(static_cast<std::size_t>(hidden), -1, 1) : Vec(hidden, 0.0));
    }
  // Element (s, t, i) of x sits at time-major (t * N + s) * I + i, or batch-first (s * T + t) * I + i.
  const bool time_major = unbatched || !batch_first;
  const auto at = [&](int64_t s, int64_t t, int64_t width) {
    return static_cast<std::size_t>(((time_major ? t * n + s : s * steps + t) * width));
  };
  Vec xv(static_cast<std::size_t>(steps * n * in)), hv, cv;
  for (int64_t s = 0; s < n; ++s)
    for (int64_t t = 0; t < steps; ++t)
      std::copy(xs[s][t].begin(), xs[s][t].end(), xv.begin() + static_cast<std::ptrdiff_t>(at(s, t, in)));
  for (int64_t k = 0; k < states; ++k)
    for (int64_t s = 0; s < n; ++s) {
      hv.insert(hv.end(), h0s[k][s].begin(), h0s[k][s].end());
      cv.insert(cv.end(), c0s[k][s].begin(), c0s[k][s].end());
    }
  const Shape x_shape = unbatched ? Shape{steps, in} : batch_first ? Shape{n, steps, in} : Shape{steps, n, in};
  const Shape h_shape = unbatched ? Shape{states, hidden} : Shape{states, n, hidden};
  const Tensor x = from_vector(xv, x_shape, f64);
  const Tensor h0 = given ? from_vector(hv, h_shape, f64) : Tensor();
  const Tensor c0 = given && lstm ? from_vector(cv, h_shape, f64) : Tensor();
  const nn::LSTMOutput got = layer.forward(x, h0, c0);

  // The reference: each layer and direction over the sequence, step by step.
  std::vector<std::vector<Vec>> out(static_cast<std::size_t>(n));
  std::vector<std::vector<Vec>> h_n(static_cast<std::size_t>(states)), c_n(static_cast<std::size_t>(states));
  for (int64_t s = 0; s < n; ++s) {
    std::vector<Vec> seq = xs[s];
    for (int64_t l = 0; l < layers; ++l) {
      std::vector<Vec> next(static_cast<std::size_t>(steps));
      for (int64_t d = 0; d < dirs; ++d) {
        const int64_t k = l * dirs + d;
        const PlainWeights w(layer.module->weights(l, d == 1));
        RefState state{h0s[k][s], c0s[k][s]};
        for (int64_t i = 0; i < steps; ++i) {
          const int64_t t = d == 0 ? i : steps - 1 - i;
          state = ref_step(kind, w, seq[t], state);
          next[t].insert(next[t].end(), state.h.begin(), state.h.end());
        }
        h_n[k].push_back(state.h);
        c_n[k].push_back(state.c);
      }
      seq = next;
    }
    out[s] = seq;
  }

  const int64_t width = dirs * hidden;
  REQUIRE(got.output.shape() == (unbatched ? Shape{steps, width}
                                 : batch_first ? Shape{n, steps, width} : Shape{steps, n, width}));
  REQUIRE(got.h_n.shape() == h_shape);
  REQUIRE(got.c_n.defined() == lstm);
  if (lstm) REQUIRE(got.c_n.shape() == h_shape);
  const Vec output = got.output.to_vector(), hn = got.h_n.to_vector();
  const Vec cn = lstm ? got.c_n.to_vector() : Vec();
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t t = 0; t < steps; ++t)
      for (int64_t j = 0; j < width; ++j)
        CHECK(output[at(s, t, width) + static_cast<std::size_t>(j)] == Approx(out[s][t][j]).epsilon(1e-12));
    for (int64_t k = 0; k < states; ++k)
      for (int64_t j = 0; j < hidden; ++j) {
        const auto e = static_cast<std::size_t>((k * n + s) * hidden + j);
        CHECK(hn[e] == Approx(h_n[k][s][j]).epsilon(1e-12));
        if (lstm) CHECK(cn[e] == Approx(c_n[k][s][j]).epsilon(1e-12));
      }
    // The last layer's final states are outputs: forward at step T - 1, reverse at step 0.
    for (int64_t j = 0; j < hidden; ++j) {
      const auto last = static_cast<std::size_t>((((layers - 1) * dirs) * n + s) * hidden + j);
      CHECK(hn[last] == output[at(s, steps - 1, width) + static_cast<std::size_t>(j)]);
      if (bidirectional)
        CHECK(hn[last + static_cast<std::size_t>(n * hidden)] ==
              output[at(s, 0, width) + static_cast<std::size_t>(hidden + j)]);
    }
  }
  // Module::forward (what nn::Sequential calls) is the output sequence from zeros.
  if (!given) CHECK(layer.module->forward(x).to_vector() == output);
}

}  // namespace

TEST_CASE("nn: RNN, LSTM and GRU run torch's recurrences over layers, directions and layouts") {
  for (Kind kind : kKinds)
    for (int64_t layers : {1, 2})
      for (bool bidirectional : {false, true})
        for (bool batch_first : {false, true})
          for (bool unbatched : {false, true})
            for (bool given : {false, true}) {
              INFO(kind_name(kind) << ", num_layers " << layers << ", bidirectional " << bidirectional << ", batch_first "
                                   << batch_first << ", unbatched " << unbatched << ", h0 given " << given);
              check_against_reference({kind, layers, bidirectional, batch_first, unbatched, given});
            }
}

TEST_CASE("nn: the recurrent layers' gradients pass the finite-difference checks, first and second order") {
  // T = 3 steps of N = 2 sequences, I = 2, H = 3: through x and the initial states at both orders
  // (the weights enter as constants there), and through every parameter by name at first order.
  struct Case {
    Kind kind;
    int64_t layers;
    bool batch_first, bidirectional;
  };
  for (const Case& k : {Case{Kind::Tanh, 2, false, false}, Case{Kind::LSTM, 2, false, true}, Case{Kind::GRU, 1, true, true}}) {
    INFO(kind_name(k.kind) << ", num_layers " << k.layers << ", batch_first " << k.batch_first << ", bidirectional "
                           << k.bidirectional);
    const Layer layer = make_layer(k.kind, 2, 3, k.layers, k.batch_first, k.bidirectional, 5);
    const int64_t states = k.layers * (k.bidirectional ? 2 : 1), width = 3 * (k.bidirectional ? 2 : 1);
    const Tensor x = input(k.batch_first ? Shape{2, 3, 2} : Shape{3, 2, 2}, 11, true);
    const Tensor h0 = input({states, 2, 3}, 12, true), c0 = input({states, 2, 3}, 13, true);
    const Tensor r = input(k.batch_first ? Shape{2, 3, width} : Shape{3, 2, width}, 14), rh = input({states, 2, 3}, 15);
    const bool lstm = k.kind == Kind::LSTM;
    const auto loss = [&](const Tensor& xi, const Tensor& hi, const Tensor& ci) {
      const nn::LSTMOutput o = layer.forward(xi, hi, ci);
      Tensor l = sum(o.output * r) + sum(o.h_n * rh);
      return lstm ? l + sum(o.c_n * rh) : l;
    };
    check_all_orders(loss, lstm, x, h0, c0, *layer.module);
    CHECK(layer.module->named_parameters().size() == static_cast<std::size_t>(4 * states));
  }
  for (Kind kind : {Kind::Tanh, Kind::LSTM, Kind::GRU}) {
    INFO(kind_name(kind) << " cell");
    const Cell cell = make_cell(kind, 2, 3, true, 6);
    const Tensor x = input({2, 2}, 21, true), h = input({2, 3}, 22, true), c = input({2, 3}, 23, true);
    const Tensor r = input({2, 3}, 24);
    const bool lstm = kind == Kind::LSTM;
    const auto loss = [&](const Tensor& xi, const Tensor& hi, const Tensor& ci) {
      // Two steps, so that h' feeds the cell again.
      nn::LSTMState s = cell.forward(xi, hi, ci);
      s = cell.forward(xi * 0.5, s.h, s.c);
      return lstm ? sum(s.h * r) + sum(s.c * r) : sum(s.h * r);
    };
    check_all_orders(loss, lstm, x, h, c, *cell.module);
  }
}

TEST_CASE("nn: recurrent parameters have torch's names, shapes and initial distribution") {
  const auto names_and_shapes = [](const nn::Module& m) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, t] : m.named_parameters()) out.emplace_back(name, t.shape().str());
    return out;
  };
  using List = std::vector<std::pair<std::string, std::string>>;
  // torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True).state_dict(), in its order.
  CHECK(names_and_shapes(nn::LSTM(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true))) ==
        List{{"weight_ih_l0", "[16, 3]"},         {"weight_hh_l0", "[16, 4]"},
             {"bias_ih_l0", "[16]"},              {"bias_hh_l0", "[16]"},
             {"weight_ih_l0_reverse", "[16, 3]"}, {"weight_hh_l0_reverse", "[16, 4]"},
             {"bias_ih_l0_reverse", "[16]"},      {"bias_hh_l0_reverse", "[16]"},
             {"weight_ih_l1", "[16, 8]"},         {"weight_hh_l1", "[16, 4]"},
             {"bias_ih_l1", "[16]"},              {"bias_hh_l1", "[16]"},
             {"weight_ih_l1_reverse", "[16, 8]"}, {"weight_hh_l1_reverse", "[16, 4]"},
             {"bias_ih_l1_reverse", "[16]"},      {"bias_hh_l1_reverse", "[16]"}});
  // torch.nn.GRU(5, 2, num_layers=2, bias=False) and torch.nn.RNN(5, 2).
  CHECK(names_and_shapes(nn::GRU(nn::GRUOptions(5, 2).num_layers(2).bias(false))) ==
        List{{"weight_ih_l0", "[6, 5]"}, {"weight_hh_l0", "[6, 2]"}, {"weight_ih_l1", "[6, 2]"}, {"weight_hh_l1", "[6, 2]"}});
  CHECK(names_and_shapes(nn::RNN(nn::RNNOptions(5, 2))) ==
        List{{"weight_ih_l0", "[2, 5]"}, {"weight_hh_l0", "[2, 2]"}, {"bias_ih_l0", "[2]"}, {"bias_hh_l0", "[2]"}});
  // The cells: torch.nn.LSTMCell(3, 4), GRUCell(3, 4), RNNCell(3, 4, bias=False).
  CHECK(names_and_shapes(nn::LSTMCell(nn::LSTMCellOptions(3, 4))) ==
        List{{"weight_ih", "[16, 3]"}, {"weight_hh", "[16, 4]"}, {"bias_ih", "[16]"}, {"bias_hh", "[16]"}});
  CHECK(names_and_shapes(nn::GRUCell(nn::GRUCellOptions(3, 4))) ==
        List{{"weight_ih", "[12, 3]"}, {"weight_hh", "[12, 4]"}, {"bias_ih", "[12]"}, {"bias_hh", "[12]"}});
  CHECK(names_and_shapes(nn::RNNCell(nn::RNNCellOptions(3, 4).bias(false))) ==
        List{{"weight_ih", "[4, 3]"}, {"weight_hh", "[4, 4]"}});
  // Inside a Sequential, the child's index comes first, as torch's.
  nn::Sequential seq(std::make_shared<nn::GRU>(nn::GRUOptions(3, 4)), std::make_shared<nn::Dense>(nn::DenseOptions(4, 1)));
  CHECK(seq.named_parameters()[0].first == "0.weight_ih_l0");

  // U(-1/sqrt(H), 1/sqrt(H)) for every parameter, biases included; spread over the interval.
  nn::LSTM lstm(nn::LSTMOptions(3, 16).num_layers(2).seed(4));
  for (const auto& [name, t] : lstm.named_parameters()) {
    INFO(name);
    const Vec v = t.to_vector();
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    CHECK(*lo >= -0.25);
    CHECK(*hi <= 0.25);
    CHECK(*hi - *lo > 0.4);
  }
  // Seeded as the other layers: by the options, by a Generator, or by manual_seed.
  const auto first = [](const nn::Module& m) { return m.parameters()[0].to_vector(); };
  CHECK(first(nn::GRU(nn::GRUOptions(3, 4).seed(9))) == first(nn::GRU(nn::GRUOptions(3, 4).seed(9))));
  CHECK(first(nn::GRU(nn::GRUOptions(3, 4).seed(9))) != first(nn::GRU(nn::GRUOptions(3, 4).seed(10))));
  Generator g1(3), g2(3);
  CHECK(first(nn::RNNCell(nn::RNNCellOptions(3, 4), g1)) == first(nn::RNNCell(nn::RNNCellOptions(3, 4), g2)));
  nn::manual_seed(12);
  const Vec a = first(nn::LSTMCell(nn::LSTMCellOptions(3, 4)));
  nn::manual_seed(12);
  CHECK(first(nn::LSTMCell(nn::LSTMCellOptions(3, 4))) == a);
  // Each value is the seed's next draw, parameter by parameter in registration order (torch's
  // reset_parameters order), row-major within each.
  nn::RNN one(nn::RNNOptions(2, 4).seed(8));
  Generator replay(8);
  for (const Tensor& p : one.parameters())
    for (double v : p.to_vector()) CHECK(v == Approx(replay.uniform(-0.5, 0.5)).epsilon(1e-7));
}

TEST_CASE("nn: a recurrent model saves and loads under torch's names") {
  const testing::TempDir dir;
  const auto path = dir / "lstm.safetensors";
  const auto make = [](uint64_t seed) {
    return std::make_shared<nn::Sequential>(
        std::make_shared<nn::LSTM>(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true).dtype(DType::float64).seed(seed)),
        std::make_shared<nn::Dense>(nn::DenseOptions(8, 1).dtype(DType::float64).seed(seed)));
  };
  auto model = make(1), fresh = make(2);
  const Tensor x = input({5, 2, 3}, 31);
  REQUIRE(fresh->forward(x).to_vector() != model->forward(x).to_vector());
  nn::save(*model, path);
  const auto stored = nn::load_tensors(path);
  CHECK(stored.size() == 18);
  CHECK(stored.count("0.weight_hh_l1_reverse") == 1);
  CHECK(stored.at("0.weight_ih_l1").shape() == Shape{16, 8});
  nn::load(*fresh, path);
  CHECK(fresh->forward(x).to_vector() == model->forward(x).to_vector());
  // Strict names and shapes: a one-layer LSTM is not this file's model.
  auto other = std::make_shared<nn::Sequential>(
      std::make_shared<nn::LSTM>(nn::LSTMOptions(3, 4).bidirectional(true).dtype(DType::float64)),
      std::make_shared<nn::Dense>(nn::DenseOptions(8, 1).dtype(DType::float64)));
  CHECK_THROWS_WITH(nn::load(*other, path), Contains("unexpected \"0.weight_ih_l1\""));
}

TEST_CASE("nn: recurrent layers print as torch's") {
  CHECK(nn::LSTM(nn::LSTMOptions(10, 20).num_layers(2).batch_first(true)).to_string() ==
        "LSTM(10, 20, num_layers=2, batch_first=true)");
  CHECK(nn::GRU(nn::GRUOptions(10, 20)).to_string() == "GRU(10, 20)");
  CHECK(nn::RNN(nn::RNNOptions(3, 4).bias(false).nonlinearity(nn::Nonlinearity::ReLU).bidirectional(true).dtype(DType::float64))
            .to_string() == "RNN(3, 4, bias=false, nonlinearity=relu, bidirectional=true, dtype=float64)");
  CHECK(nn::LSTMCell(nn::LSTMCellOptions(3, 4)).to_string() == "LSTMCell(3, 4)");
  CHECK(nn::RNNCell(nn::RNNCellOptions(3, 4).nonlinearity(nn::Nonlinearity::ReLU)).to_string() ==
        "RNNCell(3, 4, nonlinearity=relu)");
  nn::GRUCell cell(nn::GRUCellOptions(3, 4).bias(false));
  cell.to(DType::float64);  // the parameters' dtype, not the options'
  CHECK(cell.to_string() == "GRUCell(3, 4, bias=false, dtype=float64)");
  CHECK(cell.forward(ones({2, 3}, DType::float64), Tensor()).dtype() == DType::float64);
}

TEST_CASE("nn: recurrent layers' errors name the layer and the shapes") {
  nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(2));
  CHECK_THROWS_AS(lstm.forward(zeros({5, 2, 2}), Tensor(), Tensor()), std::invalid_argument);
  CHECK_THROWS_WITH(lstm.forward(zeros({5, 2, 2}), Tensor(), Tensor()),
                    Contains("LSTM::forward: expected an input [T, N, 3] or, unbatched, [T, 3] (input_size=3), got [5, 2, 2]"));
  CHECK_THROWS_WITH(lstm.forward(zeros({3}), Tensor(), Tensor()), Contains("got [3]"));
  CHECK_THROWS_WITH(lstm.forward(zeros({1, 5, 2, 3}), Tensor(), Tensor()), Contains("got [1, 5, 2, 3]"));
  CHECK_THROWS_WITH(nn::GRU(nn::GRUOptions(3, 4).batch_first(true)).forward(zeros({2, 5, 4}), Tensor()),
                    Contains("GRU::forward: expected an input [N, T, 3] (batch_first=true) or, unbatched, [T, 3]"));
  CHECK_THROWS_WITH(lstm.forward(zeros({5, 2, 3}), zeros({1, 2, 4}), zeros({1, 2, 4})),
                    Contains("LSTM::forward: expected h0 of shape [2, 2, 4] (num_layers * directions, N, hidden_size), "
                             "got [1, 2, 4]"));
  CHECK_THROWS_WITH(lstm.forward(zeros({5, 2, 3}), zeros({2, 2, 4}), zeros({2, 4})),
                    Contains("expected c0 of shape [2, 2, 4]") && Contains("got [2, 4]"));
  CHECK_THROWS_WITH(lstm.forward(zeros({5, 3}), zeros({2, 1, 4}), zeros({2, 1, 4})),
                    Contains("expected h0 of shape [2, 4] (num_layers * directions, hidden_size, for an unbatched input)"));
  CHECK_THROWS_WITH(lstm.forward(zeros({5, 2, 3}), zeros({2, 2, 4}), Tensor()),
                    Contains("LSTM::forward: give both h0 and c0, or neither (zeros); got only h0"));
  CHECK_THROWS_WITH(lstm.forward(zeros({5, 2, 3}, DType::float64), Tensor(), Tensor()),
                    Contains("LSTM::forward: the input is float64 but the layer's parameters are float32"));
  CHECK_THROWS_WITH(lstm.forward(zeros({5, 2, 3}), zeros({2, 2, 4}, DType::float64), zeros({2, 2, 4})),
                    Contains("LSTM::forward: h0 is float64 but the layer's parameters are float32"));
  CHECK_THROWS_WITH(lstm.forward(zeros({0, 2, 3}), Tensor(), Tensor()),
                    Contains("LSTM::forward: the input [0, 2, 3] has no time steps"));
  CHECK_THROWS_WITH(lstm.forward(Tensor(), Tensor(), Tensor()), Contains("LSTM::forward: the input is undefined"));
  CHECK_THROWS_AS(lstm.weights(2), std::out_of_range);
  CHECK_THROWS_WITH(lstm.weights(2), Contains("LSTM::weights: layer 2 is out of range for num_layers=2"));
  CHECK_THROWS_WITH(lstm.weights(0, true), Contains("no reverse weights without bidirectional(true)"));

  nn::GRUCell cell(nn::GRUCellOptions(3, 4));
  CHECK_THROWS_WITH(cell.forward(zeros({2, 4}), Tensor()),
                    Contains("GRUCell::forward: expected an input [N, 3] or, unbatched, [3] (input_size=3), got [2, 4]"));
  CHECK_THROWS_WITH(cell.forward(zeros({1, 2, 3}), Tensor()), Contains("got [1, 2, 3]"));
  CHECK_THROWS_WITH(cell.forward(zeros({2, 3}), zeros({4})),
                    Contains("GRUCell::forward: expected h of shape [2, 4] (N, hidden_size), got [4]"));
  CHECK_THROWS_WITH(cell.forward(zeros({3}), zeros({1, 4})),
                    Contains("expected h of shape [4] (hidden_size, for an unbatched input), got [1, 4]"));
  CHECK_THROWS_WITH(nn::LSTMCell(nn::LSTMCellOptions(3, 4)).forward(zeros({2, 3}), Tensor(), zeros({2, 4})),
                    Contains("LSTMCell::forward: give both h and c, or neither (zeros); got only c"));
  CHECK_THROWS_WITH(nn::RNNCell(nn::RNNCellOptions(3, 4).dtype(DType::float64)).forward(zeros({2, 3}), Tensor()),
                    Contains("RNNCell::forward: the input is float32 but the layer's parameters are float64"));

  CHECK_THROWS_AS(nn::LSTM(nn::LSTMOptions(3, 0)), std::invalid_argument);
  CHECK_THROWS_WITH(nn::LSTM(nn::LSTMOptions(3, 0)), Contains("LSTM: hidden_size must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::GRU(nn::GRUOptions(0, 4)), Contains("GRU: input_size must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::RNN(nn::RNNOptions(3, 4).num_layers(0)), Contains("RNN: num_layers must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::RNN(nn::RNNOptions(3, 4).nonlinearity(nn::Nonlinearity::Sigmoid)),
                    Contains("RNN: nonlinearity must be Nonlinearity::Tanh or Nonlinearity::ReLU, got sigmoid"));
  CHECK_THROWS_WITH(nn::GRUCell(nn::GRUCellOptions(3, -2)), Contains("GRUCell: hidden_size must be >= 1, got -2"));
}

TEST_CASE("nn: an LSTM and a Dense learn to echo a sequence's first element") {
  // 32 sequences of 5 numbers in [-1, 1); the target is each sequence's first number, read from the
  // last step's hidden state: the LSTM has to carry it through four steps.
  const int64_t n = 32, steps = 5, hidden = 8;
  const Tensor x = input({n, steps, 1}, 41) * 0.5;
  const Tensor target = reshape(slice(x, 1, 0, 1), {n, 1});
  auto lstm = std::make_shared<nn::LSTM>(nn::LSTMOptions(1, hidden).batch_first(true).dtype(DType::float64).seed(3));
  auto head = std::make_shared<nn::Dense>(nn::DenseOptions(hidden, 1).dtype(DType::float64).seed(3));
  std::vector<Tensor> params = lstm->parameters();
  for (const Tensor& p : head->parameters()) params.push_back(p);
  optim::Adam opt(params, optim::AdamOptions(0.02));
  const auto loss_now = [&] {
    const Tensor last = reshape(lstm->forward(x, Tensor(), Tensor()).h_n, {n, hidden});
    return nn::mse_loss(head->forward(last), target);
  };
  const double first = loss_now().item();
  double last = first;
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    const Tensor loss = loss_now();
    loss.backward();
    opt.step();
    last = loss.item();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(first > 0.1);
  CHECK(last < 0.005);
}
