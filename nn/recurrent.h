#pragma once
// Recurrent layers, as torch.nn's: the one-step cells RNNCell, LSTMCell and GRUCell, and the
// multi-step, multi-layer RNN, LSTM and GRU. Compositions of autograd ops (linear, sigmoid, tanh,
// relu, slice, stack, concat, + and *; no derivative is defined here), so gradcheck and
// create_graph work through them as through any other graph.
//
// One step, x [N, I] the input, h [N, H] the hidden state (and c [N, H] the LSTM's cell state);
// x W^T is linear(x, W), the weights' blocks are H rows each, in torch's order:
//
//   RNN:  h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)           (or relu: nonlinearity(ReLU))
//   LSTM: i, f, g, o = the four blocks of x W_ih^T + b_ih + h W_hh^T + b_hh
//         c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
//         h' = sigmoid(o) * tanh(c')
//   GRU:  r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)         (blocks r, z, n)
//         z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
//         n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
//         h' = (1 - z) * n + z * h
//
// Parameters, with torch's names and shapes (G = 1 for RNN, 4 for LSTM, 3 for GRU), so that
// nn::save writes and nn::load reads torch's state dicts:
//   cells:        weight_ih [G*H, I], weight_hh [G*H, H], bias_ih [G*H], bias_hh [G*H]
//   RNN/LSTM/GRU: the same per layer k, named weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
//                 bias_hh_l{k}, and with bidirectional(true) also ..._l{k}_reverse; layer k > 0
//                 takes the layer below's output, so its weight_ih is [G*H, H * directions].
//   bias(false) leaves out both biases. Every parameter starts from U(-1/sqrt(H), 1/sqrt(H))
//   (torch's), drawn in registration order (per layer, per direction: weight_ih, weight_hh,
//   bias_ih, bias_hh) from the options' seed, the Generator given, or default_generator().
//
// Multi-step shapes (T time steps, N sequences, D = 2 if bidirectional else 1, L = num_layers):
//   x:          [T, N, I], or [N, T, I] with batch_first(true), or unbatched [T, I]
//   h0, c0:     [L * D, N, H] (unbatched [L * D, H]), whatever batch_first; undefined: zeros
//   output:     the last layer's h at every step, [T, N, D * H] ([N, T, D * H] with batch_first,
//               [T, D * H] unbatched); with D = 2 each step's forward h, then its reverse h
//   h_n, c_n:   each layer's and direction's final state, shaped as h0 (row k * D + d: layer k,
//               direction d); the reverse direction runs from step T - 1 down to 0, so its final
//               state is the one at step 0
// Cells: x [N, I] or unbatched [I]; h, c [N, H] or [H] (undefined: zeros); h', c' shaped as h.
//
// dropout(p) on RNN, LSTM and GRU (torch's `dropout`): in training, each layer's output sequence
// but the last one's goes through nn::dropout (elements zeroed with probability p, the rest scaled
// by 1 / (1 - p)) before the next layer reads it; nothing in evaluation (eval()) or with one layer
// (torch warns there; chainrule accepts it, as a no-op). The masks come from the layer's own
// Generator when the options have a seed (the one that drew the weights, continued), else from
// default_generator() (manual_seed()), as nn::Dropout's.
//
// The virtual forward(x) (the one nn::Sequential calls) starts from zeros and returns the output
// sequence (cells: h'). Not offered: LSTM's proj_size and packed sequences.
// Caller mistakes throw std::invalid_argument naming the layer ("LSTM::forward") and the shapes.
//
//   auto lstm = std::make_shared<nn::LSTM>(nn::LSTMOptions(10, 20).num_layers(2).batch_first(true));
//   nn::LSTMOutput out = lstm->forward(x, Tensor(), Tensor());  // x [N, T, 10]; zeros as h0, c0
//   out.output;  // [N, T, 20]      out.h_n, out.c_n: [2, N, 20]
//
//   nn::LSTMCell cell(nn::LSTMCellOptions(10, 20));
//   nn::LSTMState s;                                  // h and c undefined: zeros
//   for (const Tensor& x_t : steps) s = cell.forward(x_t, s.h, s.c);
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nn/init.h"
#include "nn/module.h"

namespace chainrule::nn {

// Which recurrence a layer computes (torch's RNNBase `mode`); RNN's nonlinearity is in its options.
enum class RecurrentMode { RNN, LSTM, GRU };

// What every recurrent layer's options hold; the options structs below set it.
struct RecurrentSettings {
  int64_t input_size = 0, hidden_size = 0;
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;
  bool bidirectional = false;
  double dropout = 0;                              // RNN, LSTM and GRU: between layers
  Nonlinearity nonlinearity = Nonlinearity::Tanh;  // RNN and RNNCell only: Tanh or ReLU
  DType dtype = DType::float32;
  std::optional<uint64_t> seed;
};

// The options of every cell. input_size and hidden_size must be >= 1 (checked by the layer,
// std::invalid_argument with the value).
template <class Self>
struct RecurrentCellOptionsBase {
  RecurrentCellOptionsBase(int64_t input_size, int64_t hidden_size) {
    settings_.input_size = input_size;
    settings_.hidden_size = hidden_size;
  }
  // Whether the layer has bias_ih and bias_hh (default true).
  Self& bias(bool on) { settings_.bias = on; return self(); }
  // The parameters' dtype (default float32).
  Self& dtype(DType d) { settings_.dtype = d; return self(); }
  // A seed for the layer's own Generator, as WeightBiasOptions::seed.
  Self& seed(uint64_t s) { settings_.seed = s; return self(); }

  int64_t input_size() const { return settings_.input_size; }
  int64_t hidden_size() const { return settings_.hidden_size; }
  bool bias() const { return settings_.bias; }
  DType dtype() const { return settings_.dtype; }
  const std::optional<uint64_t>& seed() const { return settings_.seed; }
  const RecurrentSettings& settings() const { return settings_; }

 protected:
  Self& self() { return static_cast<Self&>(*this); }
  RecurrentSettings settings_;
};

// The options of RNN, LSTM and GRU: a cell's, and the stacking and the layout.
template <class Self>
struct RecurrentOptionsBase : RecurrentCellOptionsBase<Self> {
  using RecurrentCellOptionsBase<Self>::RecurrentCellOptionsBase;
  // Layers stacked, each reading the sequence of the one below (>= 1, default 1).
  Self& num_layers(int64_t n) { this->settings_.num_layers = n; return this->self(); }
  // Input and output as [N, T, ...] instead of [T, N, ...] (default false); h0 and h_n keep
  // [L * D, N, H] either way (as torch).
  Self& batch_first(bool on) { this->settings_.batch_first = on; return this->self(); }
  // A second set of weights per layer that reads the sequence backwards (default false).
  Self& bidirectional(bool on) { this->settings_.bidirectional = on; return this->self(); }
  // Dropout on every layer's output but the last, in training (this file's header); p in [0, 1]
  // (checked by the layer, std::invalid_argument with the value), default 0.
  Self& dropout(double p) { this->settings_.dropout = p; return this->self(); }

  int64_t num_layers() const { return this->settings_.num_layers; }
  bool batch_first() const { return this->settings_.batch_first; }
  bool bidirectional() const { return this->settings_.bidirectional; }
  double dropout() const { return this->settings_.dropout; }
};

struct RNNCellOptions : RecurrentCellOptionsBase<RNNCellOptions> {
  using RecurrentCellOptionsBase::RecurrentCellOptionsBase;
  // Nonlinearity::Tanh (default) or Nonlinearity::ReLU; any other throws when the layer is built.
  RNNCellOptions& nonlinearity(Nonlinearity n) { settings_.nonlinearity = n; return *this; }
  Nonlinearity nonlinearity() const { return settings_.nonlinearity; }
};
struct LSTMCellOptions : RecurrentCellOptionsBase<LSTMCellOptions> {
  using RecurrentCellOptionsBase::RecurrentCellOptionsBase;
};
struct GRUCellOptions : RecurrentCellOptionsBase<GRUCellOptions> {
  using RecurrentCellOptionsBase::RecurrentCellOptionsBase;
};
struct RNNOptions : RecurrentOptionsBase<RNNOptions> {
  using RecurrentOptionsBase::RecurrentOptionsBase;
  // As RNNCellOptions::nonlinearity.
  RNNOptions& nonlinearity(Nonlinearity n) { settings_.nonlinearity = n; return *this; }
  Nonlinearity nonlinearity() const { return settings_.nonlinearity; }
};
struct LSTMOptions : RecurrentOptionsBase<LSTMOptions> {
  using RecurrentOptionsBase::RecurrentOptionsBase;
};
struct GRUOptions : RecurrentOptionsBase<GRUOptions> {
  using RecurrentOptionsBase::RecurrentOptionsBase;
};

// The parameters of one cell, or of one layer and direction of RNN, LSTM and GRU (handles: the
// layer's own tensors). bias_ih and bias_hh are undefined without bias.
struct RecurrentWeights {
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

// An LSTM's state: the hidden state h and the cell state c (LSTMCell's input and result).
struct LSTMState {
  Tensor h, c;
};

// What RNN and GRU return: the output sequence and the final hidden states.
struct RNNOutput {
  Tensor output, h_n;
};
// What LSTM returns: the output sequence and the final hidden and cell states.
struct LSTMOutput {
  Tensor output, h_n, c_n;
};

// The cells' shared parts (torch's RNNCellBase).
class RNNCellBase : public Module {
 public:
  // The parameters (handles: set_values(cell.weight_ih(), ...) changes the cell's weights).
  const Tensor& weight_ih() const { return weights_.weight_ih; }  // [G*H, I]
  const Tensor& weight_hh() const { return weights_.weight_hh; }  // [G*H, H]
  const Tensor& bias_ih() const { return weights_.bias_ih; }      // [G*H], undefined without bias
  const Tensor& bias_hh() const { return weights_.bias_hh; }      // [G*H], undefined without bias

  // "10, 20" and, where not the default, ", bias=false", ", nonlinearity=relu", ", dtype=float64"
  // (torch's order).
  std::string extra_repr() const override;

 protected:
  RNNCellBase(const char* name, RecurrentMode mode, const RecurrentSettings& settings, Generator& gen);
  // One step from (h, c), each undefined for zeros; c only for LSTM (undefined in the result otherwise).
  LSTMState step(const Tensor& x, const Tensor& h, const Tensor& c);

 private:
  RecurrentMode mode_;
  RecurrentSettings settings_;
  RecurrentWeights weights_;
};

class RNNCell : public RNNCellBase {
 public:
  explicit RNNCell(const RNNCellOptions& options);
  RNNCell(const RNNCellOptions& options, Generator& gen);
  // h' from x [N, I] (or [I]) and h [N, H] (or [H]; undefined: zeros).
  Tensor forward(const Tensor& x, const Tensor& h);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }
  const RNNCellOptions& options() const { return options_; }

 private:
  RNNCellOptions options_;
};

class LSTMCell : public RNNCellBase {
 public:
  explicit LSTMCell(const LSTMCellOptions& options);
  LSTMCell(const LSTMCellOptions& options, Generator& gen);
  // (h', c') from x [N, I] (or [I]) and h, c [N, H] (or [H]): both given, or both undefined for
  // zeros (as torch's hx tuple).
  LSTMState forward(const Tensor& x, const Tensor& h, const Tensor& c);
  // h' from zeros.
  Tensor forward(const Tensor& x) override { return forward(x, Tensor(), Tensor()).h; }
  const LSTMCellOptions& options() const { return options_; }

 private:
  LSTMCellOptions options_;
};

class GRUCell : public RNNCellBase {
 public:
  explicit GRUCell(const GRUCellOptions& options);
  GRUCell(const GRUCellOptions& options, Generator& gen);
  // h' from x [N, I] (or [I]) and h [N, H] (or [H]; undefined: zeros).
  Tensor forward(const Tensor& x, const Tensor& h);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }
  const GRUCellOptions& options() const { return options_; }

 private:
  GRUCellOptions options_;
};

// The multi-step layers' shared parts (torch's RNNBase).
class RNNBase : public Module {
 public:
  // The parameters of layer `layer` (0 is the one reading x), forward or reverse direction;
  // std::out_of_range for a layer or direction the module does not have.
  const RecurrentWeights& weights(int64_t layer, bool reverse = false) const;

  // "10, 20" and, where not the default, ", num_layers=2", ", bias=false", ", nonlinearity=relu",
  // ", batch_first=true", ", dropout=0.5", ", bidirectional=true", ", dtype=float64" (torch's order; torch's RNN
  // does not print its nonlinearity, chainrule's does, as its RNNCell does).
  std::string extra_repr() const override;

 protected:
  RNNBase(const char* name, RecurrentMode mode, const RecurrentSettings& settings, Generator& gen);
  // The whole sequence, through every layer; c0 and c_n only for LSTM (c_n undefined otherwise).
  LSTMOutput run(const Tensor& x, const Tensor& h0, const Tensor& c0);
  // The same without a cell state (RNN, GRU).
  RNNOutput run(const Tensor& x, const Tensor& h0);

 private:
  RecurrentMode mode_;
  RecurrentSettings settings_;
  std::vector<RecurrentWeights> weights_;  // layer * directions + direction
  std::optional<Generator> own_;           // with a seed: drew the weights, then draws the masks
};

class RNN : public RNNBase {
 public:
  explicit RNN(const RNNOptions& options);
  RNN(const RNNOptions& options, Generator& gen);
  // The output sequence and h_n, from h0 (undefined: zeros). Shapes: this file's header.
  RNNOutput forward(const Tensor& x, const Tensor& h0);
  // The output sequence, from zeros.
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()).output; }
  const RNNOptions& options() const { return options_; }

 private:
  RNNOptions options_;
};

class LSTM : public RNNBase {
 public:
  explicit LSTM(const LSTMOptions& options);
  LSTM(const LSTMOptions& options, Generator& gen);
  // The output sequence, h_n and c_n, from h0 and c0: both given, or both undefined for zeros.
  LSTMOutput forward(const Tensor& x, const Tensor& h0, const Tensor& c0);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor(), Tensor()).output; }
  const LSTMOptions& options() const { return options_; }

 private:
  LSTMOptions options_;
};

class GRU : public RNNBase {
 public:
  explicit GRU(const GRUOptions& options);
  GRU(const GRUOptions& options, Generator& gen);
  RNNOutput forward(const Tensor& x, const Tensor& h0);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()).output; }
  const GRUOptions& options() const { return options_; }

 private:
  GRUOptions options_;
};

}  // namespace chainrule::nn
