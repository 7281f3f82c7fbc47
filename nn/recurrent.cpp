#include "nn/recurrent.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <utility>

#include "nn/dropout.h"

namespace chainrule::nn {

namespace {

int64_t gate_count(RecurrentMode mode) {
  switch (mode) {
    case RecurrentMode::RNN: return 1;
    case RecurrentMode::LSTM: return 4;
    case RecurrentMode::GRU: return 3;
  }
  return 1;
}

const RecurrentSettings& checked(const char* name, RecurrentMode mode, const RecurrentSettings& s) {
  if (s.input_size < 1) throw std::invalid_argument(fmt::format("{}: input_size must be >= 1, got {}", name, s.input_size));
  if (s.hidden_size < 1)
    throw std::invalid_argument(fmt::format("{}: hidden_size must be >= 1, got {}", name, s.hidden_size));
  if (s.num_layers < 1) throw std::invalid_argument(fmt::format("{}: num_layers must be >= 1, got {}", name, s.num_layers));
  if (!(s.dropout >= 0 && s.dropout <= 1))
    throw std::invalid_argument(fmt::format("{}: dropout must be in [0, 1], got {}", name, s.dropout));
  if (mode == RecurrentMode::RNN && s.nonlinearity != Nonlinearity::Tanh && s.nonlinearity != Nonlinearity::ReLU)
    throw std::invalid_argument(fmt::format("{}: nonlinearity must be Nonlinearity::Tanh or Nonlinearity::ReLU, got {}",
                                            name, nonlinearity_name(s.nonlinearity)));
  return s;
}

// Registers (through `reg`) and initialises one cell's, or one layer's and direction's, four
// parameters, in torch's order, each from U(-1/sqrt(H), 1/sqrt(H)) as torch's reset_parameters.
template <class Register>
RecurrentWeights new_weights(Register reg, const std::string& suffix, RecurrentMode mode, int64_t input_size,
                             const RecurrentSettings& s, Generator& gen) {
  const int64_t h = s.hidden_size, rows = gate_count(mode) * h;
  const double bound = 1.0 / std::sqrt(static_cast<double>(h));
  const Init init = Init::uniform(-bound, bound);
  const auto parameter = [&](const char* name, const Shape& shape) {
    Tensor t = reg(name + suffix, zeros(shape, s.dtype));
    init.apply(t, gen);
    return t;
  };
  RecurrentWeights w;
  w.weight_ih = parameter("weight_ih", {rows, input_size});
  w.weight_hh = parameter("weight_hh", {rows, h});
  if (s.bias) {
    w.bias_ih = parameter("bias_ih", {rows});
    w.bias_hh = parameter("bias_hh", {rows});
  }
  return w;
}

// One step of the recurrence: xw = x W_ih^T + b_ih (computed by the caller, for a whole sequence
// at once in RNNBase), s the state before the step; returns the state after it.
LSTMState step_from_projection(RecurrentMode mode, Nonlinearity nonlinearity, const Tensor& xw, const LSTMState& s,
                               const RecurrentWeights& w) {
  const Tensor hw = linear(s.h, w.weight_hh, w.bias_hh);
  const int64_t h = s.h.size(-1);
  const auto block = [h](const Tensor& t, int64_t k) { return slice(t, -1, k * h, (k + 1) * h); };
  switch (mode) {
    case RecurrentMode::RNN:
      return {nonlinearity == Nonlinearity::ReLU ? relu(xw + hw) : tanh(xw + hw), Tensor()};
    case RecurrentMode::LSTM: {
      const Tensor gates = xw + hw;
      const Tensor c = sigmoid(block(gates, 1)) * s.c + sigmoid(block(gates, 0)) * tanh(block(gates, 2));
      return {sigmoid(block(gates, 3)) * tanh(c), c};
    }
    case RecurrentMode::GRU: {
      const Tensor r = sigmoid(block(xw, 0) + block(hw, 0));
      const Tensor z = sigmoid(block(xw, 1) + block(hw, 1));
      const Tensor n = tanh(block(xw, 2) + r * block(hw, 2));
      return {(1.0 - z) * n + z * s.h, Tensor()};
    }
  }
  return {};
}

// `given` if defined (checked against `shape` and `dtype`), else zeros; `dims` names the shape's dims.
Tensor state_or_zeros(const std::string& op, const char* what, const Tensor& given, const Shape& shape,
                      const char* dims, DType dtype) {
  if (!given.defined()) return zeros(shape, dtype);
  if (!(given.shape() == shape))
    throw std::invalid_argument(
        fmt::format("{}: expected {} of shape {} ({}), got {}", op, what, shape.str(), dims, given.shape().str()));
  if (given.dtype() != dtype)
    throw std::invalid_argument(fmt::format("{}: {} is {} but the layer's parameters are {}; convert with {}.to(DType::{})",
                                            op, what, dtype_name(given.dtype()), dtype_name(dtype), what,
                                            dtype_name(dtype)));
  return given;
}

void check_pair(const std::string& op, const char* h, const char* c, const Tensor& ht, const Tensor& ct) {
  if (ht.defined() != ct.defined())
    throw std::invalid_argument(fmt::format("{}: give both {} and {}, or neither (zeros); got only {}", op, h, c,
                                            ht.defined() ? h : c));
}

void check_defined(const std::string& op, const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument(op + ": the input is undefined");
}

std::string dtype_suffix(const Tensor& weight) {
  return weight.defined() && weight.dtype() != DType::float32 ? fmt::format(", dtype={}", dtype_name(weight.dtype()))
                                                              : std::string();
}

std::string common_repr(RecurrentMode mode, const RecurrentSettings& s, bool layers) {
  std::string r = fmt::format("{}, {}", s.input_size, s.hidden_size);
  if (layers && s.num_layers != 1) r += fmt::format(", num_layers={}", s.num_layers);
  if (!s.bias) r += ", bias=false";
  if (mode == RecurrentMode::RNN && s.nonlinearity != Nonlinearity::Tanh)
    r += fmt::format(", nonlinearity={}", nonlinearity_name(s.nonlinearity));
  if (layers && s.batch_first) r += ", batch_first=true";
  if (layers && s.dropout != 0) r += fmt::format(", dropout={}", s.dropout);
  if (layers && s.bidirectional) r += ", bidirectional=true";
  return r;
}

}  // namespace

// ---- cells ----

RNNCellBase::RNNCellBase(const char* name, RecurrentMode mode, const RecurrentSettings& settings, Generator& gen)
    : Module(name), mode_(mode), settings_(checked(name, mode, settings)) {
  Generator own(settings.seed.value_or(0));
  weights_ = new_weights([this](std::string n, Tensor t) { return register_parameter(std::move(n), std::move(t)); },
                         "", mode, settings.input_size, settings, settings.seed ? own : gen);
}

LSTMState RNNCellBase::step(const Tensor& x, const Tensor& h, const Tensor& c) {
  const std::string op = name() + "::forward";
  check_defined(op, x);
  if (!weights_.weight_ih.defined())
    throw std::logic_error(fmt::format("{}: this {} has no weights (it was moved from)", op, name()));
  const int64_t in = settings_.input_size, hidden = settings_.hidden_size;
  if ((x.dim() != 1 && x.dim() != 2) || x.size(-1) != in)
    throw std::invalid_argument(fmt::format("{}: expected an input [N, {}] or, unbatched, [{}] (input_size={}), got {}",
                                            op, in, in, in, x.shape().str()));
  check_input_dtype(op.c_str(), x, weights_.weight_ih);
  const bool unbatched = x.dim() == 1;
  const int64_t n = unbatched ? 1 : x.size(0);
  const Shape shape = unbatched ? Shape{hidden} : Shape{n, hidden};
  const char* dims = unbatched ? "hidden_size, for an unbatched input" : "N, hidden_size";
  const DType dtype = weights_.weight_ih.dtype();
  LSTMState s{state_or_zeros(op, "h", h, shape, dims, dtype), Tensor()};
  if (mode_ == RecurrentMode::LSTM) s.c = state_or_zeros(op, "c", c, shape, dims, dtype);
  if (unbatched) {
    s.h = reshape(s.h, {1, hidden});
    if (s.c.defined()) s.c = reshape(s.c, {1, hidden});
  }
  const Tensor xb = unbatched ? reshape(x, {1, in}) : x;
  LSTMState next = step_from_projection(mode_, settings_.nonlinearity, linear(xb, weights_.weight_ih, weights_.bias_ih),
                                        s, weights_);
  if (unbatched) {
    next.h = reshape(std::move(next.h), {hidden});
    if (next.c.defined()) next.c = reshape(std::move(next.c), {hidden});
  }
  return next;
}

std::string RNNCellBase::extra_repr() const {
  return common_repr(mode_, settings_, false) + dtype_suffix(weights_.weight_ih);
}

RNNCell::RNNCell(const RNNCellOptions& options) : RNNCell(options, default_generator()) {}
RNNCell::RNNCell(const RNNCellOptions& options, Generator& gen)
    : RNNCellBase("RNNCell", RecurrentMode::RNN, options.settings(), gen), options_(options) {}
Tensor RNNCell::forward(const Tensor& x, const Tensor& h) { return step(x, h, Tensor()).h; }

LSTMCell::LSTMCell(const LSTMCellOptions& options) : LSTMCell(options, default_generator()) {}
LSTMCell::LSTMCell(const LSTMCellOptions& options, Generator& gen)
    : RNNCellBase("LSTMCell", RecurrentMode::LSTM, options.settings(), gen), options_(options) {}
LSTMState LSTMCell::forward(const Tensor& x, const Tensor& h, const Tensor& c) {
  check_pair("LSTMCell::forward", "h", "c", h, c);
  return step(x, h, c);
}

GRUCell::GRUCell(const GRUCellOptions& options) : GRUCell(options, default_generator()) {}
GRUCell::GRUCell(const GRUCellOptions& options, Generator& gen)
    : RNNCellBase("GRUCell", RecurrentMode::GRU, options.settings(), gen), options_(options) {}
Tensor GRUCell::forward(const Tensor& x, const Tensor& h) { return step(x, h, Tensor()).h; }

// ---- multi-step layers ----

RNNBase::RNNBase(const char* name, RecurrentMode mode, const RecurrentSettings& settings, Generator& gen)
    : Module(name), mode_(mode), settings_(checked(name, mode, settings)) {
  if (settings.seed) own_.emplace(*settings.seed);
  Generator& g = own_ ? *own_ : gen;
  const int64_t directions = settings.bidirectional ? 2 : 1;
  for (int64_t layer = 0; layer < settings.num_layers; ++layer)
    for (int64_t d = 0; d < directions; ++d) {
      const int64_t in = layer == 0 ? settings.input_size : settings.hidden_size * directions;
      weights_.push_back(
          new_weights([this](std::string n, Tensor t) { return register_parameter(std::move(n), std::move(t)); },
                      fmt::format("_l{}{}", layer, d == 1 ? "_reverse" : ""), mode, in, settings, g));
    }
}

const RecurrentWeights& RNNBase::weights(int64_t layer, bool reverse) const {
  if (layer < 0 || layer >= settings_.num_layers)
    throw std::out_of_range(fmt::format("{}::weights: layer {} is out of range for num_layers={}", name(), layer,
                                        settings_.num_layers));
  if (reverse && !settings_.bidirectional)
    throw std::out_of_range(fmt::format("{}::weights: no reverse weights without bidirectional(true)", name()));
  if (weights_.empty())
    throw std::logic_error(fmt::format("{}::weights: this {} has no weights (it was moved from)", name(), name()));
  return weights_[static_cast<std::size_t>(layer * (settings_.bidirectional ? 2 : 1) + (reverse ? 1 : 0))];
}

LSTMOutput RNNBase::run(const Tensor& x, const Tensor& h0, const Tensor& c0) {
  const std::string op = name() + "::forward";
  check_defined(op, x);
  if (weights_.empty()) throw std::logic_error(fmt::format("{}: this {} has no weights (it was moved from)", op, name()));
  const RecurrentSettings& s = settings_;
  const int64_t in = s.input_size, hidden = s.hidden_size, directions = s.bidirectional ? 2 : 1;
  const int64_t states = s.num_layers * directions;
  if ((x.dim() != 2 && x.dim() != 3) || x.size(-1) != in)
    throw std::invalid_argument(fmt::format("{}: expected an input {}{} or, unbatched, [T, {}] (input_size={}), got {}",
                                            op, s.batch_first ? fmt::format("[N, T, {}]", in) : fmt::format("[T, N, {}]", in),
                                            s.batch_first ? " (batch_first=true)" : "", in, in, x.shape().str()));
  const DType dtype = weights_[0].weight_ih.dtype();
  check_input_dtype(op.c_str(), x, weights_[0].weight_ih);
  const bool unbatched = x.dim() == 2;
  // seq: [T, N, features] from here on, whatever the caller's layout.
  Tensor seq = unbatched ? reshape(x, {x.size(0), 1, in}) : s.batch_first ? transpose(x, 0, 1) : x;
  const int64_t steps = seq.size(0), n = seq.size(1);
  if (steps == 0) throw std::invalid_argument(fmt::format("{}: the input {} has no time steps", op, x.shape().str()));

  const Shape shape = unbatched ? Shape{states, hidden} : Shape{states, n, hidden};
  const char* dims =
      unbatched ? "num_layers * directions, hidden_size, for an unbatched input" : "num_layers * directions, N, hidden_size";
  const bool lstm = mode_ == RecurrentMode::LSTM;
  if (lstm) check_pair(op, "h0", "c0", h0, c0);
  const Tensor h_all = reshape(state_or_zeros(op, "h0", h0, shape, dims, dtype), {states, n, hidden});
  const Tensor c_all = lstm ? reshape(state_or_zeros(op, "c0", c0, shape, dims, dtype), {states, n, hidden}) : Tensor();
  const auto initial = [&](const Tensor& all, int64_t k) {
    return all.defined() ? reshape(slice(all, 0, k, k + 1), {n, hidden}) : Tensor();
  };

  std::vector<Tensor> h_n, c_n;
  for (int64_t layer = 0; layer < s.num_layers; ++layer) {
    std::vector<Tensor> outputs;  // per direction, [T, N, H]
    for (int64_t d = 0; d < directions; ++d) {
      const int64_t k = layer * directions + d;
      const RecurrentWeights& w = weights_[static_cast<std::size_t>(k)];
      // The input's projection for every step at once: one product instead of T.
      const Tensor xw = linear(seq, w.weight_ih, w.bias_ih);  // [T, N, G*H]
      LSTMState state{initial(h_all, k), initial(c_all, k)};
      std::vector<Tensor> hs(static_cast<std::size_t>(steps));
      for (int64_t i = 0; i < steps; ++i) {
        const int64_t t = d == 0 ? i : steps - 1 - i;
        state = step_from_projection(mode_, s.nonlinearity, reshape(slice(xw, 0, t, t + 1), {n, xw.size(2)}), state, w);
        hs[static_cast<std::size_t>(t)] = state.h;
      }
      outputs.push_back(stack(hs, 0));
      h_n.push_back(state.h);
      if (lstm) c_n.push_back(state.c);
    }
    seq = directions == 1 ? outputs[0] : concat(outputs, 2);
    if (layer + 1 < s.num_layers)
      seq = dropout(seq, s.dropout, is_training(), own_ ? *own_ : default_generator(), op.c_str());
  }

  LSTMOutput out;
  out.output = unbatched ? reshape(std::move(seq), {steps, directions * hidden}) : s.batch_first ? transpose(seq, 0, 1) : seq;
  out.h_n = reshape(stack(h_n, 0), shape.to_vector());
  if (lstm) out.c_n = reshape(stack(c_n, 0), shape.to_vector());
  return out;
}

RNNOutput RNNBase::run(const Tensor& x, const Tensor& h0) {
  LSTMOutput out = run(x, h0, Tensor());
  return {std::move(out.output), std::move(out.h_n)};
}

std::string RNNBase::extra_repr() const {
  return common_repr(mode_, settings_, true) + dtype_suffix(weights_.empty() ? Tensor() : weights_[0].weight_ih);
}

RNN::RNN(const RNNOptions& options) : RNN(options, default_generator()) {}
RNN::RNN(const RNNOptions& options, Generator& gen)
    : RNNBase("RNN", RecurrentMode::RNN, options.settings(), gen), options_(options) {}
RNNOutput RNN::forward(const Tensor& x, const Tensor& h0) { return run(x, h0); }

LSTM::LSTM(const LSTMOptions& options) : LSTM(options, default_generator()) {}
LSTM::LSTM(const LSTMOptions& options, Generator& gen)
    : RNNBase("LSTM", RecurrentMode::LSTM, options.settings(), gen), options_(options) {}
LSTMOutput LSTM::forward(const Tensor& x, const Tensor& h0, const Tensor& c0) { return run(x, h0, c0); }

GRU::GRU(const GRUOptions& options) : GRU(options, default_generator()) {}
GRU::GRU(const GRUOptions& options, Generator& gen)
    : RNNBase("GRU", RecurrentMode::GRU, options.settings(), gen), options_(options) {}
RNNOutput GRU::forward(const Tensor& x, const Tensor& h0) { return run(x, h0); }

}  // namespace chainrule::nn
