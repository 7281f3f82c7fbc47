#include "nn/attention_encoder.h"

#include <fmt/format.h>

#include <stdexcept>

#include "nn/transformer_detail.h"

namespace chainrule::nn {

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerEncoderLayerOptions& options)
    : TransformerEncoderLayer(options, default_generator()) {}

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerEncoderLayerOptions& options, Generator& gen)
    : Module("TransformerEncoderLayer"), options_(detail::checked_layer_options("TransformerEncoderLayer", options)) {
  Generator own(options.seed().value_or(0));
  Generator& g = options.seed() ? own : gen;
  const int64_t d = options.d_model(), ff = options.dim_feedforward();
  const DType dtype = options.dtype();
  // torch's registration order: self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2.
  self_attn_ = register_module("self_attn", std::make_shared<MultiheadAttention>(detail::attention_options(options, 1), g));
  linear1_ = register_module("linear1", std::make_shared<Dense>(DenseOptions(d, ff).bias(options.bias()).dtype(dtype), g));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(detail::dropout_options(options, 2)));
  linear2_ = register_module("linear2", std::make_shared<Dense>(DenseOptions(ff, d).bias(options.bias()).dtype(dtype), g));
  norm1_ = register_module("norm1", std::make_shared<LayerNorm>(detail::norm_options(options)));
  norm2_ = register_module("norm2", std::make_shared<LayerNorm>(detail::norm_options(options)));
  dropout1_ = register_module("dropout1", std::make_shared<Dropout>(detail::dropout_options(options, 3)));
  dropout2_ = register_module("dropout2", std::make_shared<Dropout>(detail::dropout_options(options, 4)));
}

Tensor TransformerEncoderLayer::feed_forward(const Tensor& x) {
  return detail::feed_forward(x, options_.activation(), *linear1_, *dropout_, *linear2_, *dropout2_);
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const AttentionMask& src_mask,
                                        const AttentionMask& src_key_padding_mask, bool is_causal) {
  if (!self_attn_)
    throw std::logic_error("TransformerEncoderLayer::forward: this TransformerEncoderLayer has no parameters (it was moved from)");
  if (!src.defined()) throw std::invalid_argument("TransformerEncoderLayer::forward: src is undefined");
  const auto attend = [&](const Tensor& x) {
    return dropout1_->forward(self_attn_->forward(x, x, x, src_key_padding_mask, false, src_mask, true, is_causal).output);
  };
  if (options_.norm_first()) {
    const Tensor x = src + attend(norm1_->forward(src));
    return x + feed_forward(norm2_->forward(x));
  }
  const Tensor x = norm1_->forward(src + attend(src));
  return norm2_->forward(x + feed_forward(x));
}

std::string TransformerEncoderLayer::extra_repr() const {
  return fmt::format("activation={}, norm_first={}", detail::activation_name(options_.activation()), options_.norm_first());
}

}  // namespace chainrule::nn
