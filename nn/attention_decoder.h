#pragma once
// nn::TransformerDecoderLayer, as torch.nn's: self-attention over the target, cross-attention from
// the target to the encoder's output (`memory`), then a feed-forward block, each with a residual
// connection and a LayerNorm. A composition of the layers it holds (MultiheadAttention, Dense,
// LayerNorm, Dropout) and of relu or gelu; no derivative is defined here.
//
//   post-norm (default):  x = norm1(x + dropout1(self_attn(x, x, x, tgt masks)))
//                         x = norm2(x + dropout2(multihead_attn(x, memory, memory, memory masks)))
//                         x = norm3(x + dropout3(linear2(dropout(activation(linear1(x))))))
//   norm_first(true):     x = x + dropout1(self_attn(norm1(x), ..., tgt masks))
//                         x = x + dropout2(multihead_attn(norm2(x), memory, memory, memory masks))
//                         x = x + dropout3(linear2(dropout(activation(linear1(norm3(x))))))
//   tgt [T, N, d_model], memory [S, N, d_model] ([N, T, d_model] and [N, S, d_model] with
//   batch_first; unbatched [T, d_model] and [S, d_model]) -> the shape of tgt.
//
// Children, with torch's names, in torch's order (so nn::save/load read torch's state dicts):
//   self_attn, multihead_attn  MultiheadAttention(d_model, nhead, dropout, bias, batch_first)
//   linear1    Dense(d_model, dim_feedforward)      dropout   Dropout(dropout)
//   linear2    Dense(dim_feedforward, d_model)      norm1, norm2, norm3   LayerNorm([d_model], layer_norm_eps)
//   dropout1, dropout2, dropout3  Dropout(dropout)
// Parameters: self_attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias}, the same
// four of multihead_attn, linear1.weight, linear1.bias, linear2.weight, linear2.bias, norm1.weight,
// norm1.bias, norm2.*, norm3.*; each initialised as its layer's own default (torch's), drawn in
// torch's order (self_attn, multihead_attn, linear1, linear2). Dropout is active in training only.
//
// Seeds (TransformerDecoderLayerOptions::seed(s)): linear1 and linear2 draw from Generator(s),
// self_attn gets seed s + 1 and multihead_attn s + 2 (weights and masks), dropout, dropout1,
// dropout2 and dropout3 seeds s + 3, + 4, + 5, + 6.
//
//   auto layer = std::make_shared<nn::TransformerDecoderLayer>(
//       nn::TransformerDecoderLayerOptions(16, 4).dim_feedforward(64).batch_first(true));
//   Tensor y = layer->forward(tgt, memory, nn::AttentionMask::additive(nn::causal_mask(T, T)));
//   // tgt [N, T, 16], memory [N, S, 16] -> y [N, T, 16]
#include <cstdint>
#include <memory>
#include <string>

#include "nn/attention_encoder.h"

namespace chainrule::nn {

// The options of TransformerEncoderLayer (see TransformerLayerOptions): d_model, nhead,
// dim_feedforward 2048, dropout 0.1, activation relu, layer_norm_eps 1e-5, batch_first, norm_first,
// bias, dtype, seed.
struct TransformerDecoderLayerOptions : TransformerLayerOptions<TransformerDecoderLayerOptions> {
  using TransformerLayerOptions::TransformerLayerOptions;
};

class TransformerDecoderLayer : public Module {
 public:
  // std::invalid_argument naming TransformerDecoderLayer and the option for bad options.
  explicit TransformerDecoderLayer(const TransformerDecoderLayerOptions& options);
  // The same, drawing the weights from `gen` (unless the options carry a seed).
  TransformerDecoderLayer(const TransformerDecoderLayerOptions& options, Generator& gen);

  // tgt and memory as above (both batched or both unbatched, one batch size, last dims d_model).
  //   tgt_mask [T, T] or [N * nhead, T, T], tgt_key_padding_mask [N, T] ([T] unbatched): the
  //     self-attention's attn_mask and key_padding_mask (MultiheadAttention's)
  //   memory_mask [T, S] or [N * nhead, T, S], memory_key_padding_mask [N, S] ([S] unbatched): the
  //     cross-attention's
  //   tgt_is_causal, memory_is_causal: as MultiheadAttention's is_causal (alone: the causal mask
  //     [T, T], resp. [T, S] top-left aligned; with a mask: a hint that changes nothing)
  // std::invalid_argument naming TransformerDecoderLayer::forward and both shapes for an undefined
  // input or mismatched tgt and memory; the masks' errors are MultiheadAttention::forward's.
  Tensor forward(const Tensor& tgt, const Tensor& memory, const AttentionMask& tgt_mask = AttentionMask(),
                 const AttentionMask& memory_mask = AttentionMask(),
                 const AttentionMask& tgt_key_padding_mask = AttentionMask(),
                 const AttentionMask& memory_key_padding_mask = AttentionMask(), bool tgt_is_causal = false,
                 bool memory_is_causal = false);
  // There is no one-input form (the layer needs memory): std::invalid_argument saying so.
  Tensor forward(const Tensor& tgt) override;

  const std::shared_ptr<MultiheadAttention>& self_attn() const { return self_attn_; }
  const std::shared_ptr<MultiheadAttention>& multihead_attn() const { return multihead_attn_; }
  const std::shared_ptr<Dense>& linear1() const { return linear1_; }
  const std::shared_ptr<Dense>& linear2() const { return linear2_; }
  const std::shared_ptr<LayerNorm>& norm1() const { return norm1_; }
  const std::shared_ptr<LayerNorm>& norm2() const { return norm2_; }
  const std::shared_ptr<LayerNorm>& norm3() const { return norm3_; }
  const TransformerDecoderLayerOptions& options() const { return options_; }

  // "activation=relu, norm_first=false" (the children print the rest).
  std::string extra_repr() const override;

 private:
  TransformerDecoderLayerOptions options_;
  std::shared_ptr<MultiheadAttention> self_attn_, multihead_attn_;
  std::shared_ptr<Dense> linear1_, linear2_;
  std::shared_ptr<Dropout> dropout_, dropout1_, dropout2_, dropout3_;
  std::shared_ptr<LayerNorm> norm1_, norm2_, norm3_;
};

}  // namespace chainrule::nn
