#include "nn/attention_decoder.h"

#include <fmt/format.h>

#include <stdexcept>

#include "nn/transformer_detail.h"

namespace chainrule::nn {

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerDecoderLayerOptions& options)
    : TransformerDecoderLayer(options, default_generator()) {}

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerDecoderLayerOptions& options, Generator& gen)
    : Module("TransformerDecoderLayer"), options_(detail::checked_layer_options("TransformerDecoderLayer", options)) {
  Generator own(options.seed().value_or(0));
  Generator& g = options.seed() ? own : gen;
  const int64_t d = options.d_model(), ff = options.dim_feedforward();
  const DType dtype = options.dtype();
  // torch's registration order: self_attn, multihead_attn, linear1, dropout, linear2, norm1, norm2,
  // norm3, dropout1, dropout2, dropout3.
  self_attn_ = register_module("self_attn", std::make_shared<MultiheadAttention>(detail::attention_options(options, 1), g));
  multihead_attn_ =
      register_module("multihead_attn", std::make_shared<MultiheadAttention>(detail::attention_options(options, 2), g));
  linear1_ = register_module("linear1", std::make_shared<Dense>(DenseOptions(d, ff).bias(options.bias()).dtype(dtype), g));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(detail::dropout_options(options, 3)));
  linear2_ = register_module("linear2", std::make_shared<Dense>(DenseOptions(ff, d).bias(options.bias()).dtype(dtype), g));
  norm1_ = register_module("norm1", std::make_shared<LayerNorm>(detail::norm_options(options)));
  norm2_ = register_module("norm2", std::make_shared<LayerNorm>(detail::norm_options(options)));
  norm3_ = register_module("norm3", std::make_shared<LayerNorm>(detail::norm_options(options)));
  dropout1_ = register_module("dropout1", std::make_shared<Dropout>(detail::dropout_options(options, 4)));
  dropout2_ = register_module("dropout2", std::make_shared<Dropout>(detail::dropout_options(options, 5)));
  dropout3_ = register_module("dropout3", std::make_shared<Dropout>(detail::dropout_options(options, 6)));
}

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory, const AttentionMask& tgt_mask,
                                        const AttentionMask& memory_mask, const AttentionMask& tgt_key_padding_mask,
                                        const AttentionMask& memory_key_padding_mask, bool tgt_is_causal,
                                        bool memory_is_causal) {
  if (!self_attn_)
    throw std::logic_error("TransformerDecoderLayer::forward: this TransformerDecoderLayer has no parameters (it was moved from)");
  detail::check_input_pair("TransformerDecoderLayer::forward", "tgt", tgt, "memory", memory, options_.d_model(),
                           options_.batch_first());
  const auto self_block = [&](const Tensor& x) {
    return dropout1_->forward(
        self_attn_->forward(x, x, x, tgt_key_padding_mask, false, tgt_mask, true, tgt_is_causal).output);
  };
  const auto cross_block = [&](const Tensor& x) {
    return dropout2_->forward(
        multihead_attn_->forward(x, memory, memory, memory_key_padding_mask, false, memory_mask, true, memory_is_causal)
            .output);
  };
  const auto feed_forward = [&](const Tensor& x) {
    return detail::feed_forward(x, options_.activation(), *linear1_, *dropout_, *linear2_, *dropout3_);
  };
  if (options_.norm_first()) {
    Tensor x = tgt + self_block(norm1_->forward(tgt));
    x = x + cross_block(norm2_->forward(x));
    return x + feed_forward(norm3_->forward(x));
  }
  Tensor x = norm1_->forward(tgt + self_block(tgt));
  x = norm2_->forward(x + cross_block(x));
  return norm3_->forward(x + feed_forward(x));
}

Tensor TransformerDecoderLayer::forward(const Tensor&) {
  throw std::invalid_argument(
      "TransformerDecoderLayer::forward: the decoder layer needs memory; call forward(tgt, memory, ...)");
}

std::string TransformerDecoderLayer::extra_repr() const {
  return fmt::format("activation={}, norm_first={}", detail::activation_name(options_.activation()), options_.norm_first());
}

}  // namespace chainrule::nn
