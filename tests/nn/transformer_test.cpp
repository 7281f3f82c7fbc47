// TransformerEncoder, TransformerDecoder and Transformer: the whole model's values and gradients
// against LibTorch 1.13, torch's parameter names, the stacks' shared initial weights, Transformer's
// xavier_uniform redraw, seeds, batch_first and unbatched inputs, and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "nn/init.h"
#include "nn/serialize.h"
#include "nn/transformer.h"
#include "tests/autograd/testing.h"
#include "tests/nn/transformer_reference.h"

using namespace chainrule;
using Catch::Contains;
namespace tr = chainrule::testing::transformer;

namespace {

using Vec = std::vector<double>;

void check_near(const Vec& got, const Vec& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).epsilon(1e-9).margin(1e-12));
  }
}

// The fixture's model: d_model 4, 2 heads, 2 + 2 layers, dim_feedforward 6, float64, no dropout.
nn::TransformerOptions small() {
  return nn::TransformerOptions(4, 2).num_encoder_layers(2).num_decoder_layers(2).dim_feedforward(6).dropout(0.0)
      .dtype(DType::float64).seed(11);
}

Tensor forward_all_masks(nn::Transformer& model, const Tensor& src, const Tensor& tgt) {
  return model.forward(src, tgt, tr::src_mask(), tr::tgt_mask(), tr::memory_mask(), tr::memory_padding(),
                       tr::tgt_padding(), tr::memory_padding());
}

std::vector<std::string> prefixed(const std::string& prefix, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& n : names) out.push_back(prefix + n);
  return out;
}

const std::vector<std::string> kAttention = {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"};
const std::vector<std::string> kFeedForward = {"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"};

// torch's named_parameters() of a TransformerEncoderLayer / TransformerDecoderLayer.
std::vector<std::string> encoder_layer_names() {
  std::vector<std::string> n = prefixed("self_attn.", kAttention);
  n.insert(n.end(), kFeedForward.begin(), kFeedForward.end());
  for (const char* s : {"norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"}) n.push_back(s);
  return n;
}
std::vector<std::string> decoder_layer_names() {
  std::vector<std::string> n = prefixed("self_attn.", kAttention);
  for (const std::string& s : prefixed("multihead_attn.", kAttention)) n.push_back(s);
  n.insert(n.end(), kFeedForward.begin(), kFeedForward.end());
  for (const char* s : {"norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "norm3.weight", "norm3.bias"}) n.push_back(s);
  return n;
}

std::vector<std::string> names_of(const nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& [name, t] : m.named_parameters()) names.push_back(name);
  return names;
}

}  // namespace

TEST_CASE("transformer: Transformer matches LibTorch 1.13 in values and gradients", "[transformer]") {
  nn::Transformer model(small());
  model.eval();
  tr::fill(model);
  const Tensor src = tr::memory_input(), tgt = tr::tgt_input();
  const Tensor y = forward_all_masks(model, src, tgt);
  CHECK(y.shape() == Shape{3, 2, 4});
  const tr::TransformerFixture& want = tr::transformer_2_2();
  check_near(y.to_vector(), want.y);
  tr::weighted_sum(y).backward();
  check_near(src.grad().to_vector(), want.dsrc);
  check_near(tgt.grad().to_vector(), want.dtgt);
  const auto params = model.named_parameters();
  REQUIRE(params.size() == want.checksums.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    INFO(params[i].first);
    CHECK(params[i].first == want.checksums[i].first);  // torch's names, in torch's order
    CHECK(tr::checksum(params[i].second.grad()) == Approx(want.checksums[i].second).epsilon(1e-9).margin(1e-12));
  }
}

TEST_CASE("transformer: the stacks and Transformer have torch's parameter names", "[transformer]") {
  const nn::TransformerEncoder encoder(
      nn::TransformerEncoderOptions(nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(6), 2).norm(true));
  std::vector<std::string> want = prefixed("layers.0.", encoder_layer_names());
  for (const std::string& s : prefixed("layers.1.", encoder_layer_names())) want.push_back(s);
  want.push_back("norm.weight");
  want.push_back("norm.bias");
  CHECK(names_of(encoder) == want);
  CHECK_THAT(encoder.to_string(), Catch::StartsWith("TransformerEncoder(num_layers=2\n  (layers): ModuleList(\n"
                                                    "    (0): TransformerEncoderLayer(activation=relu, norm_first=false\n"));
  CHECK_THAT(encoder.to_string(), Contains("  (norm): LayerNorm([4], eps=1e-05, elementwise_affine=true)\n)"));

  const nn::TransformerDecoder decoder(nn::TransformerDecoderOptions(nn::TransformerDecoderLayerOptions(4, 2), 3));
  CHECK(decoder.layers().size() == 3);
  CHECK(decoder.norm() == nullptr);
  CHECK(names_of(decoder).back() == "layers.2.norm3.bias");
  CHECK(names_of(decoder).size() == 3 * decoder_layer_names().size());

  const nn::Transformer model(nn::TransformerOptions(4, 2).num_encoder_layers(1).num_decoder_layers(2).dim_feedforward(6));
  want = prefixed("encoder.layers.0.", encoder_layer_names());
  for (const char* s : {"encoder.norm.weight", "encoder.norm.bias"}) want.push_back(s);
  for (const char* layer : {"decoder.layers.0.", "decoder.layers.1."})
    for (const std::string& s : prefixed(layer, decoder_layer_names())) want.push_back(s);
  for (const char* s : {"decoder.norm.weight", "decoder.norm.bias"}) want.push_back(s);
  CHECK(names_of(model) == want);
  // torch's defaults: d_model 512, nhead 8, 6 + 6 layers, dim_feedforward 2048.
  const nn::TransformerOptions defaults;
  CHECK(defaults.d_model() == 512);
  CHECK(defaults.nhead() == 8);
  CHECK(defaults.num_encoder_layers() == 6);
  CHECK(defaults.num_decoder_layers() == 6);
  CHECK(defaults.dim_feedforward() == 2048);
  CHECK(defaults.dropout() == 0.1);
}

TEST_CASE("transformer: every layer of a stack starts with the first layer's weights, as torch's deepcopy", "[transformer]") {
  for (bool seeded : {false, true}) {
    INFO("seeded " << seeded);
    auto layer = nn::TransformerDecoderLayerOptions(4, 2).dim_feedforward(6);
    if (seeded) layer.seed(21);
    nn::manual_seed(5);
    const nn::TransformerDecoder decoder(nn::TransformerDecoderOptions(layer, 3));
    const auto first = nn::state_dict(*decoder.layers()[0]);
    for (std::size_t i = 1; i < 3; ++i)
      for (const auto& [name, t] : nn::state_dict(*decoder.layers()[i])) {
        INFO("layer " << i << " " << name);
        CHECK(t.to_vector() == first.at(name).to_vector());
      }
    // Equal values in separate tensors: changing one layer leaves the others.
    Generator gen(1);
    nn::Init::constant(0.5).apply(decoder.layers()[1]->linear1()->weight(), gen);
    CHECK(decoder.layers()[0]->linear1()->weight().to_vector() == first.at("linear1.weight").to_vector());
    // Layer 0 is what a lone layer of these options would be (the others draw nothing).
    nn::manual_seed(5);
    const nn::TransformerDecoderLayer lone(layer);
    CHECK(lone.linear2()->weight().to_vector() == decoder.layers()[0]->linear2()->weight().to_vector());
    if (!seeded) {
      nn::manual_seed(5);
      (void)nn::TransformerDecoder(nn::TransformerDecoderOptions(layer, 3));
      const double x = nn::default_generator().uniform(0, 1);
      nn::manual_seed(5);
      (void)nn::TransformerDecoderLayer(layer);
      CHECK(nn::default_generator().uniform(0, 1) == x);
    }
  }
}

TEST_CASE("transformer: the stacks run their layers in order, then the norm", "[transformer]") {
  const Tensor src = tr::memory_input(), tgt = tr::tgt_input();
  nn::TransformerEncoder encoder(nn::TransformerEncoderOptions(
      nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(6).dtype(DType::float64).seed(1), 2).norm(true));
  nn::TransformerDecoder decoder(
      nn::TransformerDecoderOptions(nn::TransformerDecoderLayerOptions(4, 2).dim_feedforward(6).dtype(DType::float64).seed(2), 2));
  encoder.eval();
  decoder.eval();
  tr::fill(encoder);
  tr::fill(decoder);  // the fixtures' weights differ per layer (the names differ)
  Tensor x = src;
  for (const auto& layer : encoder.layers()) x = layer->forward(x, tr::src_mask(), tr::memory_padding());
  const Tensor memory = encoder.norm()->forward(x);
  check_near(encoder.forward(src, tr::src_mask(), tr::memory_padding()).to_vector(), memory.to_vector());
  Tensor t = tgt;
  for (const auto& layer : decoder.layers()) t = layer->forward(t, memory, tr::tgt_mask(), tr::memory_mask());
  check_near(decoder.forward(tgt, memory, tr::tgt_mask(), tr::memory_mask()).to_vector(), t.to_vector());
  // is_causal reaches every layer.
  check_near(decoder.forward(tgt, memory, nn::AttentionMask(), nn::AttentionMask(), nn::AttentionMask(), nn::AttentionMask(),
                             true).to_vector(),
             decoder.forward(tgt, memory, tr::tgt_mask()).to_vector());
  // No layers: the norm alone (or the identity), as torch's.
  nn::TransformerEncoder empty(nn::TransformerEncoderOptions(nn::TransformerEncoderLayerOptions(4, 2).dtype(DType::float64), 0));
  CHECK(empty.forward(src).to_vector() == src.to_vector());
}

TEST_CASE("transformer: Transformer redraws its matrices with xavier_uniform, as torch's _reset_parameters", "[transformer]") {
  const nn::Transformer model(nn::TransformerOptions(8, 2).num_encoder_layers(2).num_decoder_layers(2).dim_feedforward(16).seed(3));
  for (const auto& [name, p] : model.named_parameters()) {
    INFO(name);
    if (p.dim() > 1) {
      const double bound = std::sqrt(6.0 / static_cast<double>(p.size(0) + p.size(1)));
      double largest = 0;
      for (const double v : p.to_vector()) largest = std::max(largest, std::abs(v));
      CHECK(largest <= bound);
      CHECK(largest > 0.5 * bound);
    }
  }
  // Matrices differ between the layers of a stack; 1-dim parameters keep the shared defaults.
  const auto state = nn::state_dict(model);
  CHECK(state.at("encoder.layers.0.linear1.weight").to_vector() != state.at("encoder.layers.1.linear1.weight").to_vector());
  CHECK(state.at("decoder.layers.0.self_attn.out_proj.weight").to_vector() !=
        state.at("decoder.layers.1.self_attn.out_proj.weight").to_vector());
  CHECK(state.at("decoder.layers.0.linear2.bias").to_vector() == state.at("decoder.layers.1.linear2.bias").to_vector());
  CHECK(state.at("encoder.layers.0.linear1.bias").to_vector() != state.at("decoder.layers.0.linear1.bias").to_vector());
  for (const double v : state.at("decoder.norm.weight").to_vector()) CHECK(v == 1);
  // One seed, one model.
  const nn::Transformer again(nn::TransformerOptions(8, 2).num_encoder_layers(2).num_decoder_layers(2).dim_feedforward(16).seed(3));
  const auto same = nn::state_dict(again);
  for (const auto& [name, t] : state) CHECK(same.at(name).to_vector() == t.to_vector());
  CHECK(nn::Transformer::generate_square_subsequent_mask(3).to_vector() == nn::causal_mask(3, 3).to_vector());
}

TEST_CASE("transformer: Transformer takes batch_first and unbatched inputs", "[transformer]") {
  nn::Transformer seq_first(small()), batch_first(small().batch_first(true));
  for (nn::Transformer* m : {&seq_first, &batch_first}) {
    m->eval();
    tr::fill(*m);
  }
  const Tensor src = tr::memory_input(), tgt = tr::tgt_input();
  const Tensor want = forward_all_masks(seq_first, src, tgt);
  const Tensor got = forward_all_masks(batch_first, transpose(src, 0, 1), transpose(tgt, 0, 1));
  check_near(transpose(got, 0, 1).to_vector(), want.to_vector());
  // Sequence 1 alone (no padding there but its last target).
  const auto one = [](const Tensor& x) { return reshape(slice(x, 1, 1, 2), {x.size(0), x.size(2)}); };
  const Tensor alone = seq_first.forward(one(src), one(tgt), tr::src_mask(), tr::tgt_mask(), tr::memory_mask(),
                                         nn::AttentionMask(), nn::AttentionMask::masked(tensor({0, 0, 1})));
  check_near(alone.to_vector(), one(want).to_vector());
}

TEST_CASE("transformer: the stacks' and Transformer's errors name them and the shapes", "[transformer]") {
  const auto invalid = [](auto f) { return testing::message_of<std::invalid_argument>(f); };
  CHECK(invalid([] { nn::TransformerEncoder e(nn::TransformerEncoderOptions(nn::TransformerEncoderLayerOptions(4, 2), -1)); }) ==
        "TransformerEncoder: num_layers must be >= 0, got -1");
  CHECK(invalid([] { nn::TransformerDecoder d(nn::TransformerDecoderOptions(nn::TransformerDecoderLayerOptions(6, 4), 0)); }) ==
        "TransformerDecoder: d_model (6) must be >= 1 and divisible by nhead (4)");
  CHECK(invalid([] { nn::Transformer t(nn::TransformerOptions(4, 2).num_decoder_layers(-2)); }) ==
        "Transformer: num_encoder_layers and num_decoder_layers must be >= 0, got 6 and -2");
  CHECK(invalid([] { nn::Transformer t(nn::TransformerOptions(4, 2).dropout(1.5)); }) ==
        "Transformer: dropout must be in [0, 1], got 1.5");

  nn::Transformer model(nn::TransformerOptions(4, 2).num_encoder_layers(1).num_decoder_layers(1).dim_feedforward(4));
  const auto forward_error = [&](const Tensor& src, const Tensor& tgt) {
    return testing::message_of<std::invalid_argument>([&] { (void)model.forward(src, tgt); });
  };
  CHECK(forward_error(Tensor(), zeros({3, 2, 4})) ==
        "Transformer::forward: src and tgt must both be defined, got src undefined, tgt defined");
  CHECK(forward_error(zeros({5, 2, 4}), zeros({3, 4})) ==
        "Transformer::forward: src and tgt must be both 3-D (batched) or both 2-D (unbatched), got src [5, 2, 4], tgt [3, 4]");
  CHECK(forward_error(zeros({5, 2, 4}), zeros({3, 1, 4})) ==
        "Transformer::forward: src and tgt must have the same batch size (dim 1), got src [5, 2, 4], tgt [3, 1, 4]");
  CHECK(forward_error(zeros({5, 2, 4}), zeros({3, 2, 8})) ==
        "Transformer::forward: expected the last dims of src and tgt to be d_model=4, got src [5, 2, 4], tgt [3, 2, 8]");
  CHECK_THAT(invalid([&] { (void)model.forward(zeros({5, 2, 4})); }), Contains("Transformer::forward: the model takes src and tgt"));
  CHECK_THAT(invalid([&] {
               (void)model.forward(zeros({5, 2, 4}), zeros({3, 2, 4}), nn::AttentionMask(), nn::AttentionMask(),
                                   nn::AttentionMask(), nn::AttentionMask::masked(zeros({2, 4})));
             }),
             Contains("MultiheadAttention::forward: expected key_padding_mask of shape [N, S] = [2, 5], got masked [2, 4]"));

  nn::TransformerDecoder decoder(nn::TransformerDecoderOptions(nn::TransformerDecoderLayerOptions(4, 2).dim_feedforward(4), 1));
  CHECK(invalid([&] { (void)decoder.forward(zeros({3, 2, 4}), Tensor()); }) ==
        "TransformerDecoder::forward: tgt and memory must both be defined, got tgt defined, memory undefined");
  CHECK_THAT(invalid([&] { (void)decoder.forward(zeros({3, 2, 4}), zeros({5, 3, 4})); }),
             Contains("TransformerDecoder::forward: tgt and memory must have the same batch size (dim 1)"));
  CHECK_THAT(invalid([&] { (void)decoder.forward(zeros({3, 2, 4})); }), Contains("the decoder needs memory"));
  nn::TransformerEncoder encoder(nn::TransformerEncoderOptions(nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(4), 1));
  CHECK(invalid([&] { (void)encoder.forward(Tensor()); }) == "TransformerEncoder::forward: src is undefined");
  nn::TransformerEncoder moved(std::move(encoder));
  CHECK_THAT(testing::message_of<std::logic_error>([&] { (void)encoder.forward(zeros({3, 2, 4})); }),
             Contains("TransformerEncoder::forward: this TransformerEncoder has no layers (it was moved from)"));
}
