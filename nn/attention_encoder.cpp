#include "nn/attention_encoder.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "nn/attention_core.h"

namespace chainrule::nn {

namespace {

// Checked here, not only by the children, so that the message names this layer and its option.
const TransformerEncoderLayerOptions& checked(const TransformerEncoderLayerOptions& o) {
  const char* op = "TransformerEncoderLayer";
  if (o.d_model() < 1 || o.nhead() < 1 || o.d_model() % o.nhead() != 0)
    throw std::invalid_argument(fmt::format("{}: d_model ({}) must be >= 1 and divisible by nhead ({})", op, o.d_model(),
                                            o.nhead()));
  if (o.dim_feedforward() < 1)
    throw std::invalid_argument(fmt::format("{}: dim_feedforward must be >= 1, got {}", op, o.dim_feedforward()));
  detail::check_probability(op, "dropout", o.dropout());
  if (!(o.layer_norm_eps() > 0) || !std::isfinite(o.layer_norm_eps()))
    throw std::invalid_argument(fmt::format("{}: layer_norm_eps must be a finite number > 0, got {}", op, o.layer_norm_eps()));
  return o;
}

DropoutOptions dropout_options(const TransformerEncoderLayerOptions& o, uint64_t offset) {
  DropoutOptions d(o.dropout());
  if (o.seed()) d.seed(*o.seed() + offset);
  return d;
}

}  // namespace

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerEncoderLayerOptions& options)
    : TransformerEncoderLayer(options, default_generator()) {}

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerEncoderLayerOptions& options, Generator& gen)
    : Module("TransformerEncoderLayer"), options_(checked(options)) {
  Generator own(options.seed().value_or(0));
  Generator& g = options.seed() ? own : gen;
  const int64_t d = options.d_model(), ff = options.dim_feedforward();
  const DType dtype = options.dtype();
  MultiheadAttentionOptions attn = MultiheadAttentionOptions(d, options.nhead())
                                       .dropout(options.dropout())
                                       .bias(options.bias())
                                       .batch_first(options.batch_first())
                                       .dtype(dtype);
  if (options.seed()) attn.seed(*options.seed() + 1);
  // torch's registration order: self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2.
  self_attn_ = register_module("self_attn", std::make_shared<MultiheadAttention>(attn, g));
  linear1_ = register_module("linear1", std::make_shared<Dense>(DenseOptions(d, ff).bias(options.bias()).dtype(dtype), g));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(dropout_options(options, 2)));
  linear2_ = register_module("linear2", std::make_shared<Dense>(DenseOptions(ff, d).bias(options.bias()).dtype(dtype), g));
  const LayerNormOptions norm =
      LayerNormOptions({d}).eps(options.layer_norm_eps()).bias(options.bias()).dtype(dtype);
  norm1_ = register_module("norm1", std::make_shared<LayerNorm>(norm));
  norm2_ = register_module("norm2", std::make_shared<LayerNorm>(norm));
  dropout1_ = register_module("dropout1", std::make_shared<Dropout>(dropout_options(options, 3)));
  dropout2_ = register_module("dropout2", std::make_shared<Dropout>(dropout_options(options, 4)));
}

Tensor TransformerEncoderLayer::feed_forward(const Tensor& x) {
  const Tensor h = linear1_->forward(x);
  const Tensor a = options_.activation() == TransformerActivation::gelu ? gelu(h) : relu(h);
  return dropout2_->forward(linear2_->forward(dropout_->forward(a)));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const AttentionMask& src_mask,
                                        const AttentionMask& src_key_padding_mask, bool is_causal) {
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
  return fmt::format("activation={}, norm_first={}",
                     options_.activation() == TransformerActivation::gelu ? "gelu" : "relu", options_.norm_first());
}

}  // namespace chainrule::nn
