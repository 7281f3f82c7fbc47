#include "nn/transformer.h"

#include <fmt/format.h>

#include <stdexcept>

#include "nn/init.h"
#include "nn/sequential.h"
#include "nn/serialize.h"
#include "nn/transformer_detail.h"

namespace chainrule::nn {

namespace {

// The layers of a stack, as torch's deepcopy of one layer gives them: layer 0 drawn from `gen` (or
// its seed), each other layer built with its own seed (for its dropout masks) from a throwaway
// Generator, then given copies of layer 0's values.
template <class Layer, class LayerOptions>
std::vector<std::shared_ptr<Layer>> build_layers(const char* op, const TransformerStackOptions<LayerOptions>& o,
                                                 Generator& gen, ModuleList& list) {
  if (o.num_layers() < 0) throw std::invalid_argument(fmt::format("{}: num_layers must be >= 0, got {}", op, o.num_layers()));
  detail::checked_layer_options(op, o.layer());  // also when there are no layers to check them
  std::vector<std::shared_ptr<Layer>> layers;
  Generator unused;
  for (int64_t i = 0; i < o.num_layers(); ++i) {
    LayerOptions options = o.layer();
    if (options.seed()) options.seed(*options.seed() + detail::kLayerSeedStride * static_cast<uint64_t>(i));
    layers.push_back(std::make_shared<Layer>(options, i == 0 ? gen : unused));
    list.push_back(layers.back());
    if (i > 0) load_state_dict(*layers.back(), state_dict(*layers.front()));
  }
  return layers;
}

template <class LayerOptions>
std::shared_ptr<LayerNorm> final_norm(const TransformerStackOptions<LayerOptions>& o) {
  return o.norm() ? std::make_shared<LayerNorm>(detail::norm_options(o.layer())) : nullptr;
}

void check_not_moved(const char* op, const std::shared_ptr<Module>& list) {
  if (!list) throw std::logic_error(fmt::format("{}::forward: this {} has no layers (it was moved from)", op, op));
}

}  // namespace

TransformerEncoder::TransformerEncoder(const TransformerEncoderOptions& options)
    : TransformerEncoder(options, default_generator()) {}

TransformerEncoder::TransformerEncoder(const TransformerEncoderOptions& options, Generator& gen)
    : Module("TransformerEncoder"), options_(options) {
  auto list = std::make_shared<ModuleList>();
  layers_ = build_layers<TransformerEncoderLayer>("TransformerEncoder", options, gen, *list);
  list_ = register_module("layers", list);
  if (options.norm()) norm_ = register_module("norm", final_norm(options));
}

Tensor TransformerEncoder::forward(const Tensor& src, const AttentionMask& mask, const AttentionMask& src_key_padding_mask,
                                   bool is_causal) {
  check_not_moved("TransformerEncoder", list_);
  if (!src.defined()) throw std::invalid_argument("TransformerEncoder::forward: src is undefined");
  Tensor x = src;
  for (const auto& layer : layers_) x = layer->forward(x, mask, src_key_padding_mask, is_causal);
  return norm_ ? norm_->forward(x) : x;
}

std::string TransformerEncoder::extra_repr() const { return fmt::format("num_layers={}", options_.num_layers()); }

TransformerDecoder::TransformerDecoder(const TransformerDecoderOptions& options)
    : TransformerDecoder(options, default_generator()) {}

TransformerDecoder::TransformerDecoder(const TransformerDecoderOptions& options, Generator& gen)
    : Module("TransformerDecoder"), options_(options) {
  auto list = std::make_shared<ModuleList>();
  layers_ = build_layers<TransformerDecoderLayer>("TransformerDecoder", options, gen, *list);
  list_ = register_module("layers", list);
  if (options.norm()) norm_ = register_module("norm", final_norm(options));
}

Tensor TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory, const AttentionMask& tgt_mask,
                                   const AttentionMask& memory_mask, const AttentionMask& tgt_key_padding_mask,
                                   const AttentionMask& memory_key_padding_mask, bool tgt_is_causal, bool memory_is_causal) {
  check_not_moved("TransformerDecoder", list_);
  detail::check_input_pair("TransformerDecoder::forward", "tgt", tgt, "memory", memory, options_.layer().d_model(),
                           options_.layer().batch_first());
  Tensor x = tgt;
  for (const auto& layer : layers_)
    x = layer->forward(x, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal,
                       memory_is_causal);
  return norm_ ? norm_->forward(x) : x;
}

Tensor TransformerDecoder::forward(const Tensor&) {
  throw std::invalid_argument("TransformerDecoder::forward: the decoder needs memory; call forward(tgt, memory, ...)");
}

std::string TransformerDecoder::extra_repr() const { return fmt::format("num_layers={}", options_.num_layers()); }

Transformer::Transformer(const TransformerOptions& options) : Transformer(options, default_generator()) {}

Transformer::Transformer(const TransformerOptions& options, Generator& gen)
    : Module("Transformer"), options_(detail::checked_layer_options("Transformer", options)) {
  const int64_t e = options.num_encoder_layers(), d = options.num_decoder_layers();
  if (e < 0 || d < 0)
    throw std::invalid_argument(
        fmt::format("Transformer: num_encoder_layers and num_decoder_layers must be >= 0, got {} and {}", e, d));
  auto encoder_layer = detail::same_layer_options<TransformerEncoderLayerOptions>(options);
  auto decoder_layer = detail::same_layer_options<TransformerDecoderLayerOptions>(options);
  if (options.seed()) decoder_layer.seed(*options.seed() + detail::kLayerSeedStride * static_cast<uint64_t>(e));
  encoder_ = register_module("encoder",
                             std::make_shared<TransformerEncoder>(TransformerEncoderOptions(encoder_layer, e).norm(true), gen));
  decoder_ = register_module("decoder",
                             std::make_shared<TransformerDecoder>(TransformerDecoderOptions(decoder_layer, d).norm(true), gen));
  // torch's _reset_parameters: xavier_uniform_ on every parameter of 2 or more dims, in order.
  Generator own(options.seed().value_or(0) + detail::kLayerSeedStride * static_cast<uint64_t>(e + d));
  Generator& g = options.seed() ? own : gen;
  for (const Tensor& p : parameters())
    if (p.dim() > 1) Init::xavier_uniform().apply(p, g);
}

Tensor Transformer::forward(const Tensor& src, const Tensor& tgt, const AttentionMask& src_mask,
                            const AttentionMask& tgt_mask, const AttentionMask& memory_mask,
                            const AttentionMask& src_key_padding_mask, const AttentionMask& tgt_key_padding_mask,
                            const AttentionMask& memory_key_padding_mask, bool src_is_causal, bool tgt_is_causal,
                            bool memory_is_causal) {
  const char* op = "Transformer::forward";
  if (!encoder_ || !decoder_)
    throw std::logic_error(fmt::format("{}: this Transformer has no layers (it was moved from)", op));
  detail::check_input_pair(op, "src", src, "tgt", tgt, options_.d_model(), options_.batch_first());
  const Tensor memory = encoder_->forward(src, src_mask, src_key_padding_mask, src_is_causal);
  return decoder_->forward(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
                           tgt_is_causal, memory_is_causal);
}

Tensor Transformer::forward(const Tensor&) {
  throw std::invalid_argument("Transformer::forward: the model takes src and tgt; call forward(src, tgt, ...)");
}

}  // namespace chainrule::nn
