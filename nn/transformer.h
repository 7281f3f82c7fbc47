#pragma once
// Stacks of Transformer layers and the whole model, as torch.nn's: TransformerEncoder,
// TransformerDecoder and Transformer. Compositions of TransformerEncoderLayer,
// TransformerDecoderLayer and LayerNorm; no derivative is defined here.
//
//   TransformerEncoder:  x = src;  x = layers[i](x, masks) for i = 0 .. num_layers - 1;  norm(x) if any
//   TransformerDecoder:  x = tgt;  x = layers[i](x, memory, masks) for each i;             norm(x) if any
//   Transformer:         memory = encoder(src, src masks);  decoder(tgt, memory, tgt and memory masks)
//
// Children, with torch's names (so nn::save/load read torch's state dicts):
//   TransformerEncoder / TransformerDecoder: layers (a ModuleList: layers.0, layers.1, ...), then norm
//     (only with norm(true)): parameters layers.0.self_attn.in_proj_weight, ..., norm.weight, norm.bias
//   Transformer: encoder (a TransformerEncoder with norm), decoder (a TransformerDecoder with norm):
//     encoder.layers.0.self_attn.in_proj_weight, ..., encoder.norm.bias, decoder.layers.0..., decoder.norm.bias
//
// Initial weights. torch builds one layer and deep-copies it num_layers times, so every layer of a
// TransformerEncoder or TransformerDecoder starts with the same weights; here layer 0 is built from
// the options (drawing from the Generator given, or from the options' seed, exactly as a lone
// layer would) and every other layer is built and then given copies of layer 0's values (as
// torch's deepcopy: equal values, separate tensors, trained apart). The other layers draw nothing
// from the Generator given. Transformer then redraws every parameter of 2 or more dims with
// xavier_uniform (torch's Transformer._reset_parameters), so its layers start apart; its 1-dim
// parameters (biases, norm weights) keep their layers' defaults, equal across a stack as in torch.
//
// Seeds. With a seed s in the layer options, layer i of a stack is built with seed s + 10 * i: its
// dropout masks (and, for layer 0, its weights) come from there, as each layer's header describes.
// Transformer with seed s: the encoder's layers get s + 10 * i, the decoder's s + 10 * (E + i)
// (E = num_encoder_layers), and the xavier_uniform redraw Generator(s + 10 * (E + D)).
//
//   auto model = std::make_shared<nn::Transformer>(
//       nn::TransformerOptions(64, 4).num_encoder_layers(2).num_decoder_layers(2).dim_feedforward(128));
//   Tensor y = model->forward(src, tgt, nn::AttentionMask(),
//                             nn::AttentionMask::additive(nn::Transformer::generate_square_subsequent_mask(T)));
//   // src [S, N, 64], tgt [T, N, 64] -> y [T, N, 64]
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/attention_decoder.h"
#include "nn/attention_encoder.h"

namespace chainrule::nn {

// The options of a stack of num_layers layers of options LayerOptions (TransformerEncoderOptions,
// TransformerDecoderOptions).
template <class LayerOptions>
struct TransformerStackOptions {
  // num_layers >= 0 (0: the stack is the final norm alone, or the identity; as torch).
  TransformerStackOptions(LayerOptions layer, int64_t num_layers) : layer_(std::move(layer)), num_layers_(num_layers) {}
  // A final LayerNorm([d_model]) with the layer options' layer_norm_eps, bias and dtype (default
  // false: torch's norm=None). torch.nn.Transformer builds its stacks with one.
  TransformerStackOptions& norm(bool on) { norm_ = on; return *this; }

  const LayerOptions& layer() const { return layer_; }
  int64_t num_layers() const { return num_layers_; }
  bool norm() const { return norm_; }

 private:
  LayerOptions layer_;
  int64_t num_layers_;
  bool norm_ = false;
};
using TransformerEncoderOptions = TransformerStackOptions<TransformerEncoderLayerOptions>;
using TransformerDecoderOptions = TransformerStackOptions<TransformerDecoderLayerOptions>;

// torch.nn.TransformerEncoder(encoder_layer, num_layers, norm).
class TransformerEncoder : public Module {
 public:
  // std::invalid_argument naming TransformerEncoder for a negative num_layers or bad layer options.
  explicit TransformerEncoder(const TransformerEncoderOptions& options);
  TransformerEncoder(const TransformerEncoderOptions& options, Generator& gen);

  // Every layer gets the same masks (TransformerEncoderLayer::forward's; mask is its src_mask).
  // std::invalid_argument naming TransformerEncoder::forward for an undefined src; the layers'
  // errors otherwise.
  Tensor forward(const Tensor& src, const AttentionMask& mask, const AttentionMask& src_key_padding_mask = AttentionMask(),
                 bool is_causal = false);
  Tensor forward(const Tensor& src) override { return forward(src, AttentionMask()); }

  const std::vector<std::shared_ptr<TransformerEncoderLayer>>& layers() const { return layers_; }
  const std::shared_ptr<LayerNorm>& norm() const { return norm_; }  // null without norm(true)
  const TransformerEncoderOptions& options() const { return options_; }

  std::string extra_repr() const override;  // "num_layers=2"

 private:
  TransformerEncoderOptions options_;
  std::shared_ptr<Module> list_;  // "layers"; null once moved from
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layers_;
  std::shared_ptr<LayerNorm> norm_;
};

// torch.nn.TransformerDecoder(decoder_layer, num_layers, norm).
class TransformerDecoder : public Module {
 public:
  // std::invalid_argument naming TransformerDecoder for a negative num_layers or bad layer options.
  explicit TransformerDecoder(const TransformerDecoderOptions& options);
  TransformerDecoder(const TransformerDecoderOptions& options, Generator& gen);

  // Every layer gets memory and the same masks (TransformerDecoderLayer::forward's).
  // std::invalid_argument naming TransformerDecoder::forward and both shapes for tgt and memory
  // that do not pair up (TransformerDecoderLayer::forward's checks); the layers' errors otherwise.
  Tensor forward(const Tensor& tgt, const Tensor& memory, const AttentionMask& tgt_mask = AttentionMask(),
                 const AttentionMask& memory_mask = AttentionMask(),
                 const AttentionMask& tgt_key_padding_mask = AttentionMask(),
                 const AttentionMask& memory_key_padding_mask = AttentionMask(), bool tgt_is_causal = false,
                 bool memory_is_causal = false);
  // There is no one-input form (the decoder needs memory): std::invalid_argument saying so.
  Tensor forward(const Tensor& tgt) override;

  const std::vector<std::shared_ptr<TransformerDecoderLayer>>& layers() const { return layers_; }
  const std::shared_ptr<LayerNorm>& norm() const { return norm_; }  // null without norm(true)
  const TransformerDecoderOptions& options() const { return options_; }

  std::string extra_repr() const override;  // "num_layers=2"

 private:
  TransformerDecoderOptions options_;
  std::shared_ptr<Module> list_;
  std::vector<std::shared_ptr<TransformerDecoderLayer>> layers_;
  std::shared_ptr<LayerNorm> norm_;
};

// torch.nn.Transformer's options: the layers' (TransformerLayerOptions) with torch's defaults
// d_model 512, nhead 8, and the two stacks' depths.
struct TransformerOptions : TransformerLayerOptions<TransformerOptions> {
  explicit TransformerOptions(int64_t d_model = 512, int64_t nhead = 8) : TransformerLayerOptions(d_model, nhead) {}
  TransformerOptions& num_encoder_layers(int64_t n) { num_encoder_layers_ = n; return *this; }  // >= 0, 6
  TransformerOptions& num_decoder_layers(int64_t n) { num_decoder_layers_ = n; return *this; }  // >= 0, 6

  int64_t num_encoder_layers() const { return num_encoder_layers_; }
  int64_t num_decoder_layers() const { return num_decoder_layers_; }

 private:
  int64_t num_encoder_layers_ = 6, num_decoder_layers_ = 6;
};

// torch.nn.Transformer: encoder and decoder stacks, each ending with a LayerNorm, every parameter of
// 2 or more dims redrawn with xavier_uniform (see above). No custom_encoder / custom_decoder.
class Transformer : public Module {
 public:
  // std::invalid_argument naming Transformer and the value for bad options.
  explicit Transformer(const TransformerOptions& options = TransformerOptions());
  Transformer(const TransformerOptions& options, Generator& gen);

  // src [S, N, d_model], tgt [T, N, d_model] ([N, ., d_model] with batch_first; unbatched [S, d_model],
  // [T, d_model]) -> [T, N, d_model]. Masks, in torch's order:
  //   src_mask [S, S], tgt_mask [T, T], memory_mask [T, S] (or [N * nhead, ., .]);
  //   src_key_padding_mask [N, S], tgt_key_padding_mask [N, T], memory_key_padding_mask [N, S];
  //   src_is_causal, tgt_is_causal, memory_is_causal as MultiheadAttention's is_causal.
  // std::invalid_argument naming Transformer::forward and both shapes when src and tgt are not
  // both batched or both unbatched, differ in batch size or have a last dim other than d_model
  // (torch's checks); the layers' errors otherwise.
  Tensor forward(const Tensor& src, const Tensor& tgt, const AttentionMask& src_mask = AttentionMask(),
                 const AttentionMask& tgt_mask = AttentionMask(), const AttentionMask& memory_mask = AttentionMask(),
                 const AttentionMask& src_key_padding_mask = AttentionMask(),
                 const AttentionMask& tgt_key_padding_mask = AttentionMask(),
                 const AttentionMask& memory_key_padding_mask = AttentionMask(), bool src_is_causal = false,
                 bool tgt_is_causal = false, bool memory_is_causal = false);
  // There is no one-input form: std::invalid_argument saying so.
  Tensor forward(const Tensor& src) override;

  // torch's Transformer.generate_square_subsequent_mask: causal_mask(size, size, dtype), the additive
  // [size, size] mask with -inf above the diagonal; pass it as AttentionMask::additive(...).
  static Tensor generate_square_subsequent_mask(int64_t size, DType dtype = DType::float32) {
    return causal_mask(size, size, dtype);
  }

  const std::shared_ptr<TransformerEncoder>& encoder() const { return encoder_; }
  const std::shared_ptr<TransformerDecoder>& decoder() const { return decoder_; }
  const TransformerOptions& options() const { return options_; }

 private:
  TransformerOptions options_;
  std::shared_ptr<TransformerEncoder> encoder_;
  std::shared_ptr<TransformerDecoder> decoder_;
};

}  // namespace chainrule::nn
