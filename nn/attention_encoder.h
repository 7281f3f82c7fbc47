#pragma once
// nn::TransformerEncoderLayer, as torch.nn's: self-attention then a feed-forward block, each with a
// residual connection and a LayerNorm. A composition of the layers it holds (MultiheadAttention,
// Dense, LayerNorm, Dropout) and of relu or gelu; no derivative is defined here.
//
//   post-norm (default):  x = norm1(x + dropout1(self_attn(x, x, x, masks)))
//                         x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))
//   norm_first(true):     x = x + dropout1(self_attn(norm1(x), ..., masks))
//                         x = x + dropout2(linear2(dropout(activation(linear1(norm2(x))))))
//   x [S, N, d_model] ([N, S, d_model] with batch_first, unbatched [S, d_model]) -> the same shape.
//
// Children, with torch's names, in torch's order (so nn::save/load read torch's state dicts):
//   self_attn  MultiheadAttention(d_model, nhead, dropout, bias, batch_first)
//   linear1    Dense(d_model, dim_feedforward)      dropout   Dropout(dropout)
//   linear2    Dense(dim_feedforward, d_model)      norm1, norm2   LayerNorm([d_model], layer_norm_eps)
//   dropout1, dropout2  Dropout(dropout)
// Parameters: self_attn.in_proj_weight, self_attn.in_proj_bias, self_attn.out_proj.weight,
// self_attn.out_proj.bias, linear1.weight, linear1.bias, linear2.weight, linear2.bias, norm1.weight,
// norm1.bias, norm2.weight, norm2.bias; each initialised as its layer's own default (torch's).
// Dropout is active in training only (eval() turns every child's off).
//
//   auto layer = std::make_shared<nn::TransformerEncoderLayer>(
//       nn::TransformerEncoderLayerOptions(16, 4).dim_feedforward(64).batch_first(true));
//   Tensor y = layer->forward(x, nn::AttentionMask(), nn::AttentionMask::masked(padding));  // x [N, S, 16]
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/dense.h"
#include "nn/dropout.h"
#include "nn/normalization.h"

namespace chainrule::nn {

// The feed-forward block's activation (torch's activation="relu" or "gelu").
enum class TransformerActivation { relu, gelu };

// The options of torch's Transformer layers (TransformerEncoderLayer, TransformerDecoderLayer),
// as a base of each layer's options struct (Self), so that each setter returns the layer's own
// options for chaining. The layers check them when built (std::invalid_argument naming the layer).
template <class Self>
struct TransformerLayerOptions {
  // d_model >= 1, nhead >= 1 dividing it.
  TransformerLayerOptions(int64_t d_model, int64_t nhead) : d_model_(d_model), nhead_(nhead) {}
  Self& dim_feedforward(int64_t d) { dim_feedforward_ = d; return self(); }  // >= 1, 2048
  Self& dropout(double p) { dropout_ = p; return self(); }  // [0, 1], 0.1
  Self& activation(TransformerActivation a) { activation_ = a; return self(); }  // relu
  Self& layer_norm_eps(double e) { layer_norm_eps_ = e; return self(); }  // > 0, 1e-5
  Self& batch_first(bool on) { batch_first_ = on; return self(); }  // false
  Self& norm_first(bool on) { norm_first_ = on; return self(); }  // false
  // Biases of the attention, the linear layers and the norms (default true).
  Self& bias(bool on) { bias_ = on; return self(); }
  Self& dtype(DType d) { dtype_ = d; return self(); }  // float32
  // Seeds every child, as each layer describes. Without it: weights from the Generator given (or
  // default_generator()), masks from default_generator().
  Self& seed(uint64_t s) { seed_ = s; return self(); }

  int64_t d_model() const { return d_model_; }
  int64_t nhead() const { return nhead_; }
  int64_t dim_feedforward() const { return dim_feedforward_; }
  double dropout() const { return dropout_; }
  TransformerActivation activation() const { return activation_; }
  double layer_norm_eps() const { return layer_norm_eps_; }
  bool batch_first() const { return batch_first_; }
  bool norm_first() const { return norm_first_; }
  bool bias() const { return bias_; }
  DType dtype() const { return dtype_; }
  const std::optional<uint64_t>& seed() const { return seed_; }

 private:
  Self& self() { return static_cast<Self&>(*this); }
  int64_t d_model_, nhead_;
  int64_t dim_feedforward_ = 2048;
  double dropout_ = 0.1;
  TransformerActivation activation_ = TransformerActivation::relu;
  double layer_norm_eps_ = 1e-5;
  bool batch_first_ = false;
  bool norm_first_ = false;
  bool bias_ = true;
  DType dtype_ = DType::float32;
  std::optional<uint64_t> seed_;
};

// With a seed s: linear1 and linear2 draw from Generator(s), self_attn gets seed s + 1 (its weights
// and masks), dropout, dropout1 and dropout2 seeds s + 2, + 3, + 4.
struct TransformerEncoderLayerOptions : TransformerLayerOptions<TransformerEncoderLayerOptions> {
  using TransformerLayerOptions::TransformerLayerOptions;
};

class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(const TransformerEncoderLayerOptions& options);
  TransformerEncoderLayer(const TransformerEncoderLayerOptions& options, Generator& gen);

  // src as above; src_mask [S, S] or [N * nhead, S, S] and src_key_padding_mask [N, S] ([S]
  // unbatched) as MultiheadAttention's attn_mask and key_padding_mask; is_causal as there (alone:
  // the causal mask). Errors are MultiheadAttention::forward's, or std::invalid_argument naming
  // TransformerEncoderLayer::forward for an undefined src.
  Tensor forward(const Tensor& src, const AttentionMask& src_mask, const AttentionMask& src_key_padding_mask = AttentionMask(),
                 bool is_causal = false);
  Tensor forward(const Tensor& src) override { return forward(src, AttentionMask()); }

  const std::shared_ptr<MultiheadAttention>& self_attn() const { return self_attn_; }
  const std::shared_ptr<Dense>& linear1() const { return linear1_; }
  const std::shared_ptr<Dense>& linear2() const { return linear2_; }
  const std::shared_ptr<LayerNorm>& norm1() const { return norm1_; }
  const std::shared_ptr<LayerNorm>& norm2() const { return norm2_; }
  const TransformerEncoderLayerOptions& options() const { return options_; }

  // "activation=relu, norm_first=false" (the children print the rest).
  std::string extra_repr() const override;

 private:
  Tensor feed_forward(const Tensor& x);
  TransformerEncoderLayerOptions options_;
  std::shared_ptr<MultiheadAttention> self_attn_;
  std::shared_ptr<Dense> linear1_, linear2_;
  std::shared_ptr<Dropout> dropout_, dropout1_, dropout2_;
  std::shared_ptr<LayerNorm> norm1_, norm2_;
};

}  // namespace chainrule::nn
