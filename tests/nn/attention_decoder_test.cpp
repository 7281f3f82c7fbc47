// TransformerDecoderLayer: values and gradients against LibTorch 1.13 (post-norm with relu,
// norm_first with gelu, all four masks), batch_first and unbatched inputs, the causal flags,
// torch's child and parameter names, dropout in training only, finite-difference checks and errors.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/attention_decoder.h"
#include "nn/serialize.h"
#include "tests/autograd/testing.h"
#include "tests/nn/transformer_reference.h"

using namespace chainrule;
using Catch::Contains;
namespace tr = chainrule::testing::transformer;

namespace {

using Vec = std::vector<double>;
using V = const std::vector<Tensor>&;

// Element by element, to LibTorch's float64 rounding.
void check_near(const Vec& got, const Vec& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).epsilon(1e-9).margin(1e-12));
  }
}

// The fixtures' layer: d_model 4, 2 heads, dim_feedforward 6, float64, no dropout.
nn::TransformerDecoderLayerOptions small(bool norm_first = false,
                                         nn::TransformerActivation act = nn::TransformerActivation::relu) {
  return nn::TransformerDecoderLayerOptions(4, 2).dim_feedforward(6).dropout(0.0).norm_first(norm_first).activation(act)
      .dtype(DType::float64).seed(3);
}

// The layer of `options`, in evaluation, with the fixtures' weights.
nn::TransformerDecoderLayer filled(const nn::TransformerDecoderLayerOptions& options) {
  nn::TransformerDecoderLayer layer(options);
  layer.eval();
  tr::fill(layer);
  return layer;
}

Tensor forward_all_masks(nn::TransformerDecoderLayer& layer, const Tensor& tgt, const Tensor& memory) {
  return layer.forward(tgt, memory, tr::tgt_mask(), tr::memory_mask(), tr::tgt_padding(), tr::memory_padding());
}

// Sequence n of a sequence-first [T, N, D] tensor, as an unbatched [T, D] one.
Tensor sequence(const Tensor& x, int64_t n) { return reshape(slice(x, 1, n, n + 1), {x.size(0), x.size(2)}); }

}  // namespace

TEST_CASE("transformer: TransformerDecoderLayer matches LibTorch 1.13 in values and gradients", "[transformer]") {
  struct Case {
    const char* name;
    bool norm_first;
    nn::TransformerActivation act;
    const tr::LayerFixture& want;
  };
  for (const Case& c : {Case{"post-norm, relu", false, nn::TransformerActivation::relu, tr::decoder_post_norm()},
                        Case{"norm_first, gelu", true, nn::TransformerActivation::gelu, tr::decoder_norm_first()}}) {
    INFO(c.name);
    nn::TransformerDecoderLayer layer = filled(small(c.norm_first, c.act));
    const Tensor tgt = tr::tgt_input(), memory = tr::memory_input();
    const Tensor y = forward_all_masks(layer, tgt, memory);
    CHECK(y.shape() == Shape{3, 2, 4});
    check_near(y.to_vector(), c.want.y);
    tr::weighted_sum(y).backward();
    check_near(tgt.grad().to_vector(), c.want.dtgt);
    check_near(memory.grad().to_vector(), c.want.dmemory);
    const auto params = layer.named_parameters();
    REQUIRE(params.size() == c.want.grads.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      INFO(params[i].first);
      CHECK(params[i].first == c.want.grads[i].first);  // torch's names, in torch's order
      check_near(params[i].second.grad().to_vector(), c.want.grads[i].second);
    }
  }
}

TEST_CASE("transformer: TransformerDecoderLayer takes batch_first and unbatched inputs", "[transformer]") {
  for (bool norm_first : {false, true}) {
    INFO("norm_first " << norm_first);
    nn::TransformerDecoderLayer seq_first = filled(small(norm_first));
    nn::TransformerDecoderLayer batch_first = filled(small(norm_first).batch_first(true));
    const Tensor tgt = tr::tgt_input(), memory = tr::memory_input();
    const Tensor want = forward_all_masks(seq_first, tgt, memory);
    const Tensor got = forward_all_masks(batch_first, transpose(tgt, 0, 1), transpose(memory, 0, 1));
    CHECK(got.shape() == Shape{2, 3, 4});
    check_near(transpose(got, 0, 1).to_vector(), want.to_vector());
    // Unbatched: each sequence alone, its padding rows as [T] and [S] masks.
    const Tensor pads[2][2] = {{tensor({0, 0, 0}), tensor({0, 0, 0, 1})}, {tensor({0, 0, 1}), tensor({0, 0, 0, 0})}};
    for (int64_t n = 0; n < 2; ++n) {
      const Tensor one = seq_first.forward(sequence(tgt, n), sequence(memory, n), tr::tgt_mask(), tr::memory_mask(),
                                           nn::AttentionMask::masked(pads[n][0]), nn::AttentionMask::masked(pads[n][1]));
      CHECK(one.shape() == Shape{3, 4});
      check_near(one.to_vector(), sequence(want, n).to_vector());
    }
  }
}

TEST_CASE("transformer: TransformerDecoderLayer's causal flags are the causal masks", "[transformer]") {
  nn::TransformerDecoderLayer layer = filled(small());
  const Tensor tgt = tr::tgt_input(), memory = tr::memory_input();
  const Tensor masked = layer.forward(tgt, memory, tr::tgt_mask());
  const Tensor flagged = layer.forward(tgt, memory, nn::AttentionMask(), nn::AttentionMask(), nn::AttentionMask(),
                                       nn::AttentionMask(), true);
  CHECK(flagged.to_vector() == masked.to_vector());
  const Tensor memory_masked =
      layer.forward(tgt, memory, nn::AttentionMask(), nn::AttentionMask::additive(nn::causal_mask(3, 4, DType::float64)));
  const Tensor memory_flagged = layer.forward(tgt, memory, nn::AttentionMask(), nn::AttentionMask(), nn::AttentionMask(),
                                              nn::AttentionMask(), false, true);
  CHECK(memory_flagged.to_vector() == memory_masked.to_vector());
  CHECK(memory_flagged.to_vector() != layer.forward(tgt, memory).to_vector());
}

TEST_CASE("transformer: TransformerDecoderLayer has torch's children, parameters and initialisation", "[transformer]") {
  const nn::TransformerDecoderLayer layer(nn::TransformerDecoderLayerOptions(8, 2).dim_feedforward(16));
  std::vector<std::string> names;
  for (const auto& [name, t] : layer.named_parameters()) names.push_back(name + " " + t.shape().str());
  // torch.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16).state_dict(), in its order.
  CHECK(names == std::vector<std::string>{
                     "self_attn.in_proj_weight [24, 8]", "self_attn.in_proj_bias [24]", "self_attn.out_proj.weight [8, 8]",
                     "self_attn.out_proj.bias [8]", "multihead_attn.in_proj_weight [24, 8]",
                     "multihead_attn.in_proj_bias [24]", "multihead_attn.out_proj.weight [8, 8]",
                     "multihead_attn.out_proj.bias [8]", "linear1.weight [16, 8]", "linear1.bias [16]",
                     "linear2.weight [8, 16]", "linear2.bias [8]", "norm1.weight [8]", "norm1.bias [8]", "norm2.weight [8]",
                     "norm2.bias [8]", "norm3.weight [8]", "norm3.bias [8]"});
  std::vector<std::string> children;
  for (const auto& [name, c] : layer.named_children()) children.push_back(name);
  CHECK(children == std::vector<std::string>{"self_attn", "multihead_attn", "linear1", "dropout", "linear2", "norm1",
                                             "norm2", "norm3", "dropout1", "dropout2", "dropout3"});
  CHECK_THAT(layer.to_string(), Catch::StartsWith("TransformerDecoderLayer(activation=relu, norm_first=false\n"
                                                  "  (self_attn): MultiheadAttention(embed_dim=8, num_heads=2, dropout=0.1\n"));
  CHECK_THAT(layer.to_string(), Contains("  (norm3): LayerNorm([8], eps=1e-05, elementwise_affine=true)\n"
                                         "  (dropout1): Dropout(p=0.1)\n  (dropout2): Dropout(p=0.1)\n"
                                         "  (dropout3): Dropout(p=0.1)\n)"));
  // torch's defaults: in-projection biases 0, norms 1 and 0, the two attentions drawn apart.
  for (const double v : layer.multihead_attn()->in_proj_bias().to_vector()) CHECK(v == 0);
  for (const double v : layer.norm3()->weight().to_vector()) CHECK(v == 1);
  CHECK(layer.self_attn()->in_proj_weight().to_vector() != layer.multihead_attn()->in_proj_weight().to_vector());
  // One seed, one layer; saved and loaded under torch's names.
  nn::TransformerDecoderLayer a(small(true).seed(1)), b(small(true).seed(1)), c(small(true).seed(2));
  CHECK(nn::state_dict(a).at("linear2.weight").to_vector() == nn::state_dict(b).at("linear2.weight").to_vector());
  CHECK(nn::state_dict(a).at("linear2.weight").to_vector() != nn::state_dict(c).at("linear2.weight").to_vector());
  const testing::TempDir dir;
  a.eval();
  c.eval();
  const Tensor tgt = tr::tgt_input(), memory = tr::memory_input();
  CHECK(a.forward(tgt, memory).to_vector() != c.forward(tgt, memory).to_vector());
  nn::save(a, dir / "decoder.safetensors");
  nn::load(c, dir / "decoder.safetensors");
  CHECK(a.forward(tgt, memory).to_vector() == c.forward(tgt, memory).to_vector());
}

TEST_CASE("transformer: TransformerDecoderLayer drops in training only and passes the gradient checks", "[transformer]") {
  const Tensor tgt = tr::tgt_input(), memory = tr::memory_input();
  nn::TransformerDecoderLayer a(small().dropout(0.3)), b(small().dropout(0.3));
  const Vec train = a.forward(tgt, memory).to_vector();
  CHECK(train == b.forward(tgt, memory).to_vector());  // the same seed, the same masks
  CHECK(a.forward(tgt, memory).to_vector() != train);  // new masks per call
  // Each of the six dropouts takes part in training: turning any one off changes the output.
  for (const char* child : {"self_attn", "multihead_attn", "dropout", "dropout1", "dropout2", "dropout3"}) {
    INFO(child);
    nn::TransformerDecoderLayer c(small().dropout(0.3));
    for (const auto& [name, m] : c.named_children())
      if (name == child) m->eval();
    CHECK(c.forward(tgt, memory).to_vector() != train);
  }
  a.eval();
  nn::TransformerDecoderLayer none(small().dropout(0.0));
  none.eval();
  check_near(a.forward(tgt, memory).to_vector(), none.forward(tgt, memory).to_vector());

  // A tiny layer (d_model 2, one head, dim_feedforward 3) with every mask.
  const Tensor t = tr::seq({2, 2, 2}, 0.9, 0.1), m = tr::seq({3, 2, 2}, 0.4, 0.6);
  const Tensor w = tr::seq({2, 2, 2}, 1.3, 0.2).detach();
  const auto tgt_pad = nn::AttentionMask::masked(tensor({{0, 0}, {0, 1}}));
  const auto mem_pad = nn::AttentionMask::masked(tensor({{0, 1, 0}, {0, 0, 0}}));
  const auto mem_mask = nn::AttentionMask::additive(tensor({{0.1, -0.2, 0.3}, {0.0, 0.2, -0.1}}, DType::float64));
  for (bool norm_first : {false, true}) {
    INFO("norm_first " << norm_first);
    nn::TransformerDecoderLayer layer(nn::TransformerDecoderLayerOptions(2, 1).dim_feedforward(3).norm_first(norm_first)
                                          .activation(nn::TransformerActivation::gelu).dtype(DType::float64).seed(7));
    layer.eval();
    const auto loss = [&](const Tensor& x, const Tensor& mem) {
      return sum(layer.forward(x, mem, nn::AttentionMask(), mem_mask, tgt_pad, mem_pad, true) * w);
    };
    testing::check_first_and_second_order([&](V in) { return loss(in[0], in[1]); }, {t, m});
    const GradcheckReport model = gradcheck_model([&] { return loss(t.detach(), m.detach()); }, layer.named_parameters());
    INFO(model);
    CHECK(model.passed);
  }
}

TEST_CASE("transformer: TransformerDecoderLayer's errors name the layer and the shapes", "[transformer]") {
  const auto build = [](nn::TransformerDecoderLayerOptions o) {
    return testing::message_of<std::invalid_argument>([&] { nn::TransformerDecoderLayer m(o); });
  };
  CHECK(build(nn::TransformerDecoderLayerOptions(10, 3)) ==
        "TransformerDecoderLayer: d_model (10) must be >= 1 and divisible by nhead (3)");
  CHECK(build(nn::TransformerDecoderLayerOptions(8, 2).dim_feedforward(0)) ==
        "TransformerDecoderLayer: dim_feedforward must be >= 1, got 0");
  CHECK(build(nn::TransformerDecoderLayerOptions(8, 2).dropout(-0.5)) ==
        "TransformerDecoderLayer: dropout must be in [0, 1], got -0.5");
  CHECK(build(nn::TransformerDecoderLayerOptions(8, 2).layer_norm_eps(-1)) ==
        "TransformerDecoderLayer: layer_norm_eps must be a finite number > 0, got -1");

  nn::TransformerDecoderLayer layer(nn::TransformerDecoderLayerOptions(4, 2).dim_feedforward(4));
  const auto forward_error = [&](const Tensor& tgt, const Tensor& memory) {
    return testing::message_of<std::invalid_argument>([&] { (void)layer.forward(tgt, memory); });
  };
  CHECK(forward_error(zeros({3, 2, 4}), Tensor()) ==
        "TransformerDecoderLayer::forward: tgt and memory must both be defined, got tgt defined, memory undefined");
  CHECK(forward_error(zeros({3, 2, 4}), zeros({5, 4})) ==
        "TransformerDecoderLayer::forward: tgt and memory must be both 3-D (batched) or both 2-D (unbatched), "
        "got tgt [3, 2, 4], memory [5, 4]");
  CHECK(forward_error(zeros({3, 2, 4}), zeros({5, 2, 6})) ==
        "TransformerDecoderLayer::forward: expected the last dims of tgt and memory to be d_model=4, "
        "got tgt [3, 2, 4], memory [5, 2, 6]");
  CHECK(forward_error(zeros({3, 2, 4}), zeros({5, 3, 4})) ==
        "TransformerDecoderLayer::forward: tgt and memory must have the same batch size (dim 1), "
        "got tgt [3, 2, 4], memory [5, 3, 4]");
  CHECK_THAT(testing::message_of<std::invalid_argument>([&] {
               (void)layer.forward(zeros({3, 2, 4}), zeros({5, 2, 4}), nn::AttentionMask(),
                                   nn::AttentionMask::masked(zeros({3, 3})));
             }),
             Contains("MultiheadAttention::forward: expected attn_mask of shape [L, S] = [3, 5]"));
  CHECK_THAT(testing::message_of<std::invalid_argument>([&] { (void)layer.forward(zeros({3, 2, 4})); }),
             Contains("TransformerDecoderLayer::forward: the decoder layer needs memory"));
  nn::TransformerDecoderLayer moved(std::move(layer));
  CHECK_THAT(testing::message_of<std::logic_error>([&] { (void)layer.forward(zeros({3, 2, 4}), zeros({5, 2, 4})); }),
             Contains("it was moved from"));
}
