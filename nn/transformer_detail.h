#pragma once
// Internal to nn/attention_encoder.cpp, nn/attention_decoder.cpp and nn/transformer.cpp: what the
// Transformer layers share once their options are known.
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "nn/attention_core.h"
#include "nn/attention_encoder.h"

namespace chainrule::nn::detail {

// The options, checked here and not only by the children, so that the message names the layer
// (`op`) and its option.
template <class Self>
const Self& checked_layer_options(const char* op, const TransformerLayerOptions<Self>& o) {
  if (o.d_model() < 1 || o.nhead() < 1 || o.d_model() % o.nhead() != 0)
    throw std::invalid_argument(fmt::format("{}: d_model ({}) must be >= 1 and divisible by nhead ({})", op, o.d_model(),
                                            o.nhead()));
  if (o.dim_feedforward() < 1)
    throw std::invalid_argument(fmt::format("{}: dim_feedforward must be >= 1, got {}", op, o.dim_feedforward()));
  check_probability(op, "dropout", o.dropout());
  if (!(o.layer_norm_eps() > 0) || !std::isfinite(o.layer_norm_eps()))
    throw std::invalid_argument(fmt::format("{}: layer_norm_eps must be a finite number > 0, got {}", op, o.layer_norm_eps()));
  return static_cast<const Self&>(o);
}

// A Dropout child with the layer's p, seeded with seed + offset when the layer has a seed.
template <class Self>
DropoutOptions dropout_options(const TransformerLayerOptions<Self>& o, uint64_t offset) {
  DropoutOptions d(o.dropout());
  if (o.seed()) d.seed(*o.seed() + offset);
  return d;
}

// An attention child (self_attn, multihead_attn), seeded with seed + offset when the layer has one.
template <class Self>
MultiheadAttentionOptions attention_options(const TransformerLayerOptions<Self>& o, uint64_t offset) {
  MultiheadAttentionOptions attn = MultiheadAttentionOptions(o.d_model(), o.nhead())
                                       .dropout(o.dropout())
                                       .bias(o.bias())
                                       .batch_first(o.batch_first())
                                       .dtype(o.dtype());
  if (o.seed()) attn.seed(*o.seed() + offset);
  return attn;
}

// The norms: LayerNorm([d_model]) with the layer's eps, bias and dtype.
template <class Self>
LayerNormOptions norm_options(const TransformerLayerOptions<Self>& o) {
  return LayerNormOptions({o.d_model()}).eps(o.layer_norm_eps()).bias(o.bias()).dtype(o.dtype());
}

// The feed-forward block: out_dropout(linear2(dropout(activation(linear1(x))))).
inline Tensor feed_forward(const Tensor& x, TransformerActivation activation, Dense& linear1, Dropout& dropout,
                           Dense& linear2, Dropout& out_dropout) {
  const Tensor h = linear1.forward(x);
  const Tensor a = activation == TransformerActivation::gelu ? gelu(h) : relu(h);
  return out_dropout.forward(linear2.forward(dropout.forward(a)));
}

// The same options for another kind of layer (Transformer's options for its encoder's layers).
template <class To, class From>
To same_layer_options(const TransformerLayerOptions<From>& o) {
  To to(o.d_model(), o.nhead());
  to.dim_feedforward(o.dim_feedforward()).dropout(o.dropout()).activation(o.activation()).layer_norm_eps(o.layer_norm_eps());
  to.batch_first(o.batch_first()).norm_first(o.norm_first()).bias(o.bias()).dtype(o.dtype());
  if (o.seed()) to.seed(*o.seed());
  return to;
}

// The two inputs of a decoder (tgt, memory) or of a Transformer (src, tgt), before either
// attention sees them (MultiheadAttention's messages would speak of query and key): std::invalid_argument
// naming `op` and both shapes unless both are defined, both 3-D (batched) or both 2-D (unbatched),
// of one batch size (dim 0 with batch_first, else 1) and with last dims d_model.
inline void check_input_pair(const char* op, const char* a_name, const Tensor& a, const char* b_name, const Tensor& b,
                             int64_t d_model, bool batch_first) {
  if (!a.defined() || !b.defined())
    throw std::invalid_argument(fmt::format("{}: {} and {} must both be defined, got {} {}, {} {}", op, a_name, b_name, a_name,
                                            a.defined() ? "defined" : "undefined", b_name,
                                            b.defined() ? "defined" : "undefined"));
  const std::string shapes = fmt::format("{} {}, {} {}", a_name, a.shape().str(), b_name, b.shape().str());
  if ((a.dim() != 2 && a.dim() != 3) || b.dim() != a.dim())
    throw std::invalid_argument(fmt::format("{}: {} and {} must be both 3-D (batched) or both 2-D (unbatched), got {}", op,
                                            a_name, b_name, shapes));
  const int batch_dim = batch_first ? 0 : 1;
  if (a.dim() == 3 && a.size(batch_dim) != b.size(batch_dim))
    throw std::invalid_argument(fmt::format("{}: {} and {} must have the same batch size (dim {}), got {}", op, a_name,
                                            b_name, batch_dim, shapes));
  if (a.size(-1) != d_model || b.size(-1) != d_model)
    throw std::invalid_argument(fmt::format("{}: expected the last dims of {} and {} to be d_model={}, got {}", op, a_name,
                                            b_name, d_model, shapes));
}

// How far apart the seeds of two layers of a stack are (nn/transformer.h); a layer's children use
// offsets 0 to 6 of its own seed.
inline constexpr uint64_t kLayerSeedStride = 10;

inline const char* activation_name(TransformerActivation a) { return a == TransformerActivation::gelu ? "gelu" : "relu"; }

}  // namespace chainrule::nn::detail
