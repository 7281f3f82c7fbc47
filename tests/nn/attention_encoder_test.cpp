// TransformerEncoderLayer: values against plain-double loops (post-norm and norm_first, relu and
// gelu, with a padding mask), torch's child and parameter names, dropout in training and
// evaluation, finite-difference checks, printing and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/attention_encoder.h"
#include "nn/serialize.h"
#include "tests/autograd/testing.h"
#include "tests/nn/attention_reference.h"

using namespace chainrule;
using testing::attention::check_close;
using testing::attention::input;
using Catch::Contains;
using testing::attention::Bias;
using testing::attention::dense_ref;
using testing::attention::kInf;
using testing::attention::layer_norm_ref;
using testing::attention::reference;

namespace {

using Vec = std::vector<double>;
using V = const std::vector<Tensor>&;

nn::TransformerEncoderLayerOptions small(bool norm_first, nn::TransformerActivation act) {
  return nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(6).batch_first(true).norm_first(norm_first)
      .activation(act).dtype(DType::float64).seed(5);
}

// torch's TransformerEncoderLayer.forward in evaluation, on batch-major x [N, S, D].
Vec encoder_ref(const nn::TransformerEncoderLayer& layer, const Tensor& x, const Bias& bias) {
  const Shape shape = x.shape();
  const auto attend = [&](const Vec& v) {
    return reference(*layer.self_attn(), from_vector(v, shape, DType::float64), from_vector(v, shape, DType::float64),
                     from_vector(v, shape, DType::float64), bias)
        .output;
  };
  const auto feed_forward = [&](const Vec& v) {
    Vec h = dense_ref(v, *layer.linear1());
    for (double& a : h)
      a = layer.options().activation() == nn::TransformerActivation::gelu ? a / 2 * (1 + std::erf(a / std::sqrt(2.0)))
                                                                           : std::max(a, 0.0);
    return dense_ref(h, *layer.linear2());
  };
  const auto plus = [](Vec a, const Vec& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  };
  const Vec src = x.to_vector();
  if (layer.options().norm_first()) {
    const Vec h = plus(src, attend(layer_norm_ref(src, *layer.norm1())));
    return plus(h, feed_forward(layer_norm_ref(h, *layer.norm2())));
  }
  const Vec h = layer_norm_ref(plus(src, attend(src)), *layer.norm1());
  return layer_norm_ref(plus(h, feed_forward(h)), *layer.norm2());
}

}  // namespace

TEST_CASE("attention: TransformerEncoderLayer computes torch's post-norm and norm_first blocks", "[attention]") {
  const Tensor x = input({2, 3, 4}, 1);
  const Tensor pad = tensor({{0, 0, 1}, {0, 0, 0}}, DType::float64);
  const Bias padded = [&](std::size_t n, std::size_t, std::size_t, std::size_t j) {
    return pad.at({int64_t(n), int64_t(j)}) != 0 ? -kInf : 0.0;
  };
  for (bool norm_first : {false, true})
    for (auto act : {nn::TransformerActivation::relu, nn::TransformerActivation::gelu}) {
      INFO("norm_first " << norm_first << ", gelu " << (act == nn::TransformerActivation::gelu));
      nn::TransformerEncoderLayer layer(small(norm_first, act));
      layer.eval();
      const Vec want = encoder_ref(layer, x, padded);
      const Vec got = layer.forward(x, nn::AttentionMask(), nn::AttentionMask::masked(pad)).to_vector();
      check_close(got, want);
    }
  // Sequence-first (torch's default) gives the same numbers transposed; causal as MultiheadAttention's.
  nn::TransformerEncoderLayer bf(small(false, nn::TransformerActivation::relu));
  nn::TransformerEncoderLayer sf(small(false, nn::TransformerActivation::relu).batch_first(false));
  bf.eval();
  sf.eval();
  CHECK(transpose(sf.forward(transpose(x, 0, 1)), 0, 1).to_vector() == bf.forward(x).to_vector());
  const Bias causal = [](std::size_t, std::size_t, std::size_t i, std::size_t j) { return j <= i ? 0.0 : -kInf; };
  const Vec want = encoder_ref(bf, x, causal);
  const Vec got = bf.forward(x, nn::AttentionMask(), nn::AttentionMask(), true).to_vector();
  check_close(got, want);
}

TEST_CASE("attention: TransformerEncoderLayer has torch's children and parameters", "[attention]") {
  const nn::TransformerEncoderLayer layer(nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16));
  std::vector<std::string> names;
  for (const auto& [name, t] : layer.named_parameters()) names.push_back(name + " " + t.shape().str());
  // torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16).state_dict(), in its order.
  CHECK(names == std::vector<std::string>{"self_attn.in_proj_weight [24, 8]", "self_attn.in_proj_bias [24]",
                                          "self_attn.out_proj.weight [8, 8]", "self_attn.out_proj.bias [8]",
                                          "linear1.weight [16, 8]", "linear1.bias [16]", "linear2.weight [8, 16]",
                                          "linear2.bias [8]", "norm1.weight [8]", "norm1.bias [8]", "norm2.weight [8]",
                                          "norm2.bias [8]"});
  std::vector<std::string> children;
  for (const auto& [name, c] : layer.named_children()) children.push_back(name);
  CHECK(children ==
        std::vector<std::string>{"self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2"});
  CHECK(layer.to_string() ==
        "TransformerEncoderLayer(activation=relu, norm_first=false\n"
        "  (self_attn): MultiheadAttention(embed_dim=8, num_heads=2, dropout=0.1\n"
        "    (out_proj): Dense(in_features=8, out_features=8, bias=true)\n  )\n"
        "  (linear1): Dense(in_features=8, out_features=16, bias=true)\n"
        "  (dropout): Dropout(p=0.1)\n"
        "  (linear2): Dense(in_features=16, out_features=8, bias=true)\n"
        "  (norm1): LayerNorm([8], eps=1e-05, elementwise_affine=true)\n"
        "  (norm2): LayerNorm([8], eps=1e-05, elementwise_affine=true)\n"
        "  (dropout1): Dropout(p=0.1)\n"
        "  (dropout2): Dropout(p=0.1)\n)");
  // Saved and loaded under those names.
  const testing::TempDir dir;
  const auto path = dir / "encoder.safetensors";
  nn::TransformerEncoderLayer a(small(true, nn::TransformerActivation::gelu).seed(1));
  nn::TransformerEncoderLayer b(small(true, nn::TransformerActivation::gelu).seed(2));
  a.eval();
  b.eval();
  const Tensor x = input({2, 3, 4}, 3);
  CHECK(a.forward(x).to_vector() != b.forward(x).to_vector());
  nn::save(a, path);
  nn::load(b, path);
  CHECK(a.forward(x).to_vector() == b.forward(x).to_vector());
}

TEST_CASE("attention: TransformerEncoderLayer drops in training only and passes the gradient checks", "[attention]") {
  const Tensor x = input({2, 3, 4}, 1, true);
  nn::TransformerEncoderLayer a(small(false, nn::TransformerActivation::gelu).dropout(0.3));
  nn::TransformerEncoderLayer b(small(false, nn::TransformerActivation::gelu).dropout(0.3));
  const Vec train = a.forward(x).to_vector();
  CHECK(train == b.forward(x).to_vector());  // the same seed, the same masks
  CHECK(a.forward(x).to_vector() != train);  // new masks per call
  a.eval();
  nn::TransformerEncoderLayer none(small(false, nn::TransformerActivation::gelu).dropout(0.0));
  const Vec evaluated = a.forward(x).to_vector(), plain = none.forward(x).to_vector();
  check_close(evaluated, plain);

  // Each of the four dropouts (the three children and self_attn's) takes part in training: with the
  // same seed, turning any one of them off changes the output.
  for (const char* child : {"self_attn", "dropout", "dropout1", "dropout2"}) {
    INFO(child);
    nn::TransformerEncoderLayer c(small(false, nn::TransformerActivation::gelu).dropout(0.3));
    for (const auto& [name, m] : c.named_children())
      if (name == child) m->eval();
    CHECK(c.forward(x).to_vector() != train);
  }

  const Tensor pad = tensor({{0, 1, 0}, {0, 0, 0}});
  const Tensor w = input({2, 3, 4}, 9);
  for (bool norm_first : {false, true}) {
    nn::TransformerEncoderLayer layer(small(norm_first, nn::TransformerActivation::gelu));
    layer.eval();
    const auto loss = [&](const Tensor& src) {
      return sum(layer.forward(src, nn::AttentionMask(), nn::AttentionMask::masked(pad)) * w);
    };
    testing::check_first_and_second_order([&](V in) { return loss(in[0]); }, {x});
    const GradcheckReport model = gradcheck_model([&] { return loss(x.detach()); }, layer.named_parameters());
    INFO(model);
    CHECK(model.passed);
  }
}

TEST_CASE("attention: TransformerEncoderLayer's errors name the layer and the values", "[attention]") {
  const auto build = [](nn::TransformerEncoderLayerOptions o) {
    return testing::message_of<std::invalid_argument>([&] { nn::TransformerEncoderLayer m(o); });
  };
  CHECK(build(nn::TransformerEncoderLayerOptions(10, 3)) ==
        "TransformerEncoderLayer: d_model (10) must be >= 1 and divisible by nhead (3)");
  CHECK(build(nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(0)) ==
        "TransformerEncoderLayer: dim_feedforward must be >= 1, got 0");
  CHECK(build(nn::TransformerEncoderLayerOptions(8, 2).dropout(2)) == "TransformerEncoderLayer: dropout must be in [0, 1], got 2");
  CHECK(build(nn::TransformerEncoderLayerOptions(8, 2).layer_norm_eps(0)) ==
        "TransformerEncoderLayer: layer_norm_eps must be a finite number > 0, got 0");
  nn::TransformerEncoderLayer layer(nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(4));
  CHECK_THAT(testing::message_of<std::invalid_argument>([&] { (void)layer.forward(Tensor()); }),
             Contains("TransformerEncoderLayer::forward: src is undefined"));
  CHECK_THAT(testing::message_of<std::invalid_argument>([&] { (void)layer.forward(zeros({3, 2, 5})); }),
             Contains("MultiheadAttention::forward: expected the last dims of query, key and value to be embed_dim=4"));
  // A moved-from layer says so, where it dereferenced a null child.
  nn::TransformerEncoderLayer taken = std::move(layer);
  CHECK_THAT(testing::message_of<std::logic_error>([&] { (void)layer.forward(zeros({3, 2, 4})); }),  // NOLINT(bugprone-use-after-move)
             Contains("TransformerEncoderLayer::forward: this TransformerEncoderLayer has no parameters (it was moved from)"));
  CHECK(taken.forward(zeros({3, 2, 4})).shape() == Shape{3, 2, 4});
}
