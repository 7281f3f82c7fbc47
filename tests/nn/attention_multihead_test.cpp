// MultiheadAttention: values against loops over plain doubles (torch's multi_head_attention_forward
// written out per batch and head), masks, layouts, dropout in training and evaluation, torch's
// parameter names, shapes and initial bounds, finite-difference checks of first and second order,
// printing, saving and loading, and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/attention.h"
#include "nn/sequential.h"
#include "nn/serialize.h"
#include "tests/autograd/testing.h"
#include "tests/nn/attention_reference.h"

using namespace chainrule;
using testing::attention::check_close;
using testing::attention::input;
using Catch::Contains;

namespace {

using Vec = std::vector<double>;
using V = const std::vector<Tensor>&;
using testing::attention::Bias;
using testing::attention::Reference;
using testing::attention::reference;
constexpr double kInf = std::numeric_limits<double>::infinity();

std::shared_ptr<nn::MultiheadAttention> make(nn::MultiheadAttentionOptions o, uint64_t seed = 1) {
  return std::make_shared<nn::MultiheadAttention>(o.dtype(DType::float64).seed(seed));
}

// x[0] of a batch-major x: one unbatched sequence.
Tensor select_first(const Tensor& x) { return squeeze(slice(x, 0, 0, 1), 0); }

Bias no_bias() {
  return [](std::size_t, std::size_t, std::size_t, std::size_t) { return 0.0; };
}

// The weights averaged over heads: [N, H, L, S] -> [N, L, S].
Vec averaged(const Vec& w, std::size_t n, std::size_t heads, std::size_t ls) {
  Vec out(n * ls, 0.0);
  for (std::size_t b = 0; b < n; ++b)
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t x = 0; x < ls; ++x) out[b * ls + x] += w[(b * heads + h) * ls + x] / double(heads);
  return out;
}

}  // namespace

TEST_CASE("attention: MultiheadAttention computes torch's multi_head_attention_forward", "[attention]") {
  const Tensor query = input({2, 3, 4}, 1), key = input({2, 5, 4}, 2), value = input({2, 5, 4}, 3);  // [N, T, E]
  const auto mha = make(nn::MultiheadAttentionOptions(4, 2).batch_first(true));
  SECTION("no masks; the weights averaged over heads, or per head") {
    const Reference want = reference(*mha, query, key, value, no_bias());
    nn::MultiheadAttentionOutput r = mha->forward(query, key, value);
    CHECK(r.output.shape() == Shape({2, 3, 4}));
    check_close(r.output.to_vector(), want.output);
    CHECK(r.weights.shape() == Shape({2, 3, 5}));
    check_close(r.weights.to_vector(), averaged(want.weights, 2, 2, 15));
    r = mha->forward(query, key, value, nn::AttentionMask(), true, nn::AttentionMask(), false);
    CHECK(r.weights.shape() == Shape({2, 2, 3, 5}));
    check_close(r.weights.to_vector(), want.weights);
    CHECK_FALSE(mha->forward(query, key, value, nn::AttentionMask(), false).weights.defined());
  }
  SECTION("key_padding_mask (masked: nonzero = padding) and a per-head additive attn_mask [N * H, L, S]") {
    const Tensor pad = tensor({{0, 0, 0, 1, 1}, {0, 0, 0, 0, 1}}, DType::float64);
    const Tensor add = input({4, 3, 5}, 7);
    const Bias bias = [&](std::size_t b, std::size_t h, std::size_t i, std::size_t j) {
      return (pad.at({int64_t(b), int64_t(j)}) != 0 ? -kInf : 0.0) + add.at({int64_t(b * 2 + h), int64_t(i), int64_t(j)});
    };
    const Reference want = reference(*mha, query, key, value, bias);
    const nn::MultiheadAttentionOutput r = mha->forward(query, key, value, nn::AttentionMask::masked(pad), true,
                                                        nn::AttentionMask::additive(add), false);
    check_close(r.output.to_vector(), want.output);
    check_close(r.weights.to_vector(), want.weights);
  }
  SECTION("attn_mask [L, S], allowed or masked; is_causal alone builds the causal mask") {
    const Tensor allow = tensor({{1, 1, 0, 0, 0}, {1, 1, 1, 0, 0}, {1, 0, 1, 1, 1}});
    const Bias bias = [&](std::size_t, std::size_t, std::size_t i, std::size_t j) {
      return allow.at({int64_t(i), int64_t(j)}) != 0 ? 0.0 : -kInf;
    };
    const Vec want = reference(*mha, query, key, value, bias).output;
    check_close(mha->forward(query, key, value, {}, false, nn::AttentionMask::allowed(allow)).output.to_vector(), want);
    check_close(mha->forward(query, key, value, {}, false, nn::AttentionMask::masked(1.0 - allow)).output.to_vector(), want);
    const Bias causal = [](std::size_t, std::size_t, std::size_t i, std::size_t j) { return j <= i ? 0.0 : -kInf; };
    check_close(mha->forward(query, key, value, {}, true, {}, true, true).output.to_vector(),
                reference(*mha, query, key, value, causal).output);
    // With a mask, is_causal is torch's hint: the mask given is what applies.
    check_close(mha->forward(query, key, value, {}, false, nn::AttentionMask::allowed(allow), true, true).output.to_vector(),
                want);
  }
  SECTION("sequence-first (torch's default) and unbatched layouts give the same numbers") {
    const auto seq_first = make(nn::MultiheadAttentionOptions(4, 2));
    const nn::MultiheadAttentionOutput batch = mha->forward(query, key, value);
    const nn::MultiheadAttentionOutput r =
        seq_first->forward(transpose(query, 0, 1), transpose(key, 0, 1), transpose(value, 0, 1));
    CHECK(r.output.shape() == Shape({3, 2, 4}));
    check_close(transpose(r.output, 0, 1).to_vector(), batch.output.to_vector());
    check_close(r.weights.to_vector(), batch.weights.to_vector());  // [N, L, S] either way
    const Tensor pad = tensor({0, 0, 1, 0, 1});
    const nn::MultiheadAttentionOutput one = seq_first->forward(select_first(query), select_first(key), select_first(value),
                                                                nn::AttentionMask::masked(pad), true, {}, false);
    const nn::MultiheadAttentionOutput first = mha->forward(slice(query, 0, 0, 1), slice(key, 0, 0, 1), slice(value, 0, 0, 1),
                                                            nn::AttentionMask::masked(reshape(pad, {1, 5})), true, {}, false);
    CHECK(one.output.shape() == Shape({3, 4}));
    CHECK(one.weights.shape() == Shape({2, 3, 5}));
    check_close(one.output.to_vector(), first.output.to_vector());
    check_close(one.weights.to_vector(), first.weights.to_vector());
  }
  SECTION("kdim and vdim: separate projections") {
    const auto cross = make(nn::MultiheadAttentionOptions(4, 2).batch_first(true).kdim(3).vdim(6));
    const Tensor k3 = input({2, 5, 3}, 5), v6 = input({2, 5, 6}, 6);
    const Reference want = reference(*cross, query, k3, v6, no_bias());
    const nn::MultiheadAttentionOutput r = cross->forward(query, k3, v6);
    check_close(r.output.to_vector(), want.output);
    check_close(r.weights.to_vector(), averaged(want.weights, 2, 2, 15));
  }
  SECTION("bias(false); forward(x) is self-attention's output") {
    const auto plain = make(nn::MultiheadAttentionOptions(4, 4).batch_first(true).bias(false));
    check_close(plain->forward(query).to_vector(), reference(*plain, query, query, query, no_bias()).output);
  }
}

TEST_CASE("attention: MultiheadAttention has torch's parameters, in torch's order, with torch's initial bounds",
          "[attention]") {
  const auto names_and_shapes = [](const nn::Module& m) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, t] : m.named_parameters()) out.emplace_back(name, t.shape().str());
    return out;
  };
  using List = std::vector<std::pair<std::string, std::string>>;
  // torch.nn.MultiheadAttention(8, 2).state_dict(), and with kdim=3, vdim=5, and with bias=False.
  CHECK(names_and_shapes(nn::MultiheadAttention(nn::MultiheadAttentionOptions(8, 2))) ==
        List{{"in_proj_weight", "[24, 8]"}, {"in_proj_bias", "[24]"}, {"out_proj.weight", "[8, 8]"}, {"out_proj.bias", "[8]"}});
  CHECK(names_and_shapes(nn::MultiheadAttention(nn::MultiheadAttentionOptions(8, 2).kdim(3).vdim(5))) ==
        List{{"q_proj_weight", "[8, 8]"},
             {"k_proj_weight", "[8, 3]"},
             {"v_proj_weight", "[8, 5]"},
             {"in_proj_bias", "[24]"},
             {"out_proj.weight", "[8, 8]"},
             {"out_proj.bias", "[8]"}});
  CHECK(names_and_shapes(nn::MultiheadAttention(nn::MultiheadAttentionOptions(8, 2).bias(false))) ==
        List{{"in_proj_weight", "[24, 8]"}, {"out_proj.weight", "[8, 8]"}});
  nn::Sequential seq(std::make_shared<nn::MultiheadAttention>(nn::MultiheadAttentionOptions(4, 1)));
  CHECK(seq.named_parameters()[2].first == "0.out_proj.weight");

  // xavier_uniform: U(+-sqrt(6 / (fan_in + fan_out))); out_proj: U(+-1/sqrt(E)); biases 0.
  const auto spread = [](const Tensor& t, double bound) {
    const Vec v = t.to_vector();
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    CHECK(*lo >= -bound);
    CHECK(*hi <= bound);
    CHECK(*hi - *lo > bound);  // spread over the interval, not a narrower one
  };
  const nn::MultiheadAttention m(nn::MultiheadAttentionOptions(16, 4).seed(3));
  spread(m.in_proj_weight(), std::sqrt(6.0 / (16 + 48)));
  spread(m.out_proj()->weight(), 1 / std::sqrt(16.0));
  for (double b : m.in_proj_bias().to_vector()) CHECK(b == 0.0);
  for (double b : m.out_proj()->bias().to_vector()) CHECK(b == 0.0);
  const nn::MultiheadAttention cross(nn::MultiheadAttentionOptions(16, 4).kdim(4).vdim(32).seed(3));
  spread(cross.q_proj_weight(), std::sqrt(6.0 / 32));
  spread(cross.k_proj_weight(), std::sqrt(6.0 / 20));
  spread(cross.v_proj_weight(), std::sqrt(6.0 / 48));
  // Drawn as torch draws them: out_proj.weight first, then in_proj_weight, row-major.
  const nn::MultiheadAttention small(nn::MultiheadAttentionOptions(2, 1).seed(8));
  Generator replay(8);
  for (double v : small.out_proj()->weight().to_vector()) CHECK(v == Approx(replay.uniform(-std::sqrt(0.5), std::sqrt(0.5))));
  for (double v : small.in_proj_weight().to_vector()) CHECK(v == Approx(replay.uniform(-std::sqrt(0.75), std::sqrt(0.75))));
  // Seeded by the options, a Generator or manual_seed, as the other layers.
  Generator g1(4), g2(4);
  CHECK(nn::MultiheadAttention(nn::MultiheadAttentionOptions(4, 2), g1).in_proj_weight().to_vector() ==
        nn::MultiheadAttention(nn::MultiheadAttentionOptions(4, 2), g2).in_proj_weight().to_vector());
  CHECK(nn::MultiheadAttention(nn::MultiheadAttentionOptions(4, 2).dtype(DType::float64)).in_proj_weight().dtype() ==
        DType::float64);
}

TEST_CASE("attention: MultiheadAttention drops attention weights in training only, reproducibly with a seed",
          "[attention]") {
  const Tensor x = input({2, 3, 4}, 1);
  const auto a = make(nn::MultiheadAttentionOptions(4, 2).batch_first(true).dropout(0.5), 7);
  const auto b = make(nn::MultiheadAttentionOptions(4, 2).batch_first(true).dropout(0.5), 7);
  const auto none = make(nn::MultiheadAttentionOptions(4, 2).batch_first(true), 7);  // same weights, no dropout
  const Vec plain = none->forward(x).to_vector();
  // Training (the default): weights dropped and the survivors scaled by 2; the returned weights too.
  const nn::MultiheadAttentionOutput ra = a->forward(x, x, x, {}, true, {}, false);
  CHECK(ra.output.to_vector() == b->forward(x, x, x, {}, true, {}, false).output.to_vector());
  CHECK(ra.output.to_vector() != plain);
  const Vec w = ra.weights.to_vector(), w0 = none->forward(x, x, x, {}, true, {}, false).weights.to_vector();
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i] == 0) ++dropped;
    else CHECK(w[i] == Approx(2 * w0[i]));
  }
  CHECK(dropped > 0);
  CHECK(dropped < w.size());
  CHECK(a->forward(x).to_vector() != ra.output.to_vector());  // a new mask per call
  // Evaluation: no dropout at all.
  a->eval();
  check_close(a->forward(x).to_vector(), plain);
}

TEST_CASE("attention: MultiheadAttention passes first- and second-order finite-difference checks", "[attention]") {
  const auto mha = make(nn::MultiheadAttentionOptions(4, 2));
  const Tensor q = input({3, 2, 4}, 1, true), kv = input({4, 2, 4}, 2, true);
  const Tensor pad = tensor({{0, 0, 1, 0}, {0, 1, 1, 0}});
  const auto loss = [&](const Tensor& a, const Tensor& b) {
    const nn::MultiheadAttentionOutput r = mha->forward(a, b, b, nn::AttentionMask::masked(pad));
    return sum(r.output * r.output) + sum(r.weights * input({2, 3, 4}, 5));
  };
  testing::check_first_and_second_order([&](V in) { return loss(in[0], in[1]); }, {q, kv});
  const GradcheckReport model = gradcheck_model([&] { return loss(q.detach(), kv.detach()); }, mha->named_parameters());
  INFO(model);
  CHECK(model.passed);
  CHECK(model.parameters.size() == 4);
  const auto causal = make(nn::MultiheadAttentionOptions(4, 1).kdim(3).vdim(2).batch_first(true));
  const Tensor k = input({2, 3, 3}, 3), v = input({2, 3, 2}, 4), x = input({2, 3, 4}, 6);
  const GradcheckReport cross = gradcheck_model(
      [&] { return sum(causal->forward(x, k, v, {}, false, {}, true, true).output); }, causal->named_parameters());
  INFO(cross);
  CHECK(cross.passed);
}

TEST_CASE("attention: MultiheadAttention prints, saves and loads under torch's names", "[attention]") {
  CHECK(nn::MultiheadAttention(nn::MultiheadAttentionOptions(8, 2)).to_string() ==
        "MultiheadAttention(embed_dim=8, num_heads=2\n  (out_proj): Dense(in_features=8, out_features=8, bias=true)\n)");
  CHECK(nn::MultiheadAttention(
            nn::MultiheadAttentionOptions(8, 2).dropout(0.1).bias(false).batch_first(true).kdim(3).vdim(5).dtype(DType::float64))
            .extra_repr() == "embed_dim=8, num_heads=2, dropout=0.1, bias=false, batch_first=true, kdim=3, vdim=5, dtype=float64");

  const testing::TempDir dir;
  const auto path = dir / "mha.safetensors";
  const auto model = make(nn::MultiheadAttentionOptions(4, 2), 1);
  nn::save(*model, path);
  const auto fresh = make(nn::MultiheadAttentionOptions(4, 2), 2);
  const Tensor x = input({3, 1, 4}, 1);
  CHECK(fresh->forward(x).to_vector() != model->forward(x).to_vector());
  nn::load(*fresh, path);
  CHECK(fresh->forward(x).to_vector() == model->forward(x).to_vector());
  std::vector<std::string> names;
  for (const auto& [name, t] : nn::load_tensors(path)) names.push_back(name);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"in_proj_bias", "in_proj_weight", "out_proj.bias", "out_proj.weight"});
}

TEST_CASE("attention: MultiheadAttention's errors name the layer, the numbers and the shapes", "[attention]") {
  const auto build = [](nn::MultiheadAttentionOptions o) {
    return testing::message_of<std::invalid_argument>([&] { nn::MultiheadAttention m(o); });
  };
  CHECK(build(nn::MultiheadAttentionOptions(10, 3)) == "MultiheadAttention: embed_dim (10) must be divisible by num_heads (3)");
  CHECK(build(nn::MultiheadAttentionOptions(0, 1)) == "MultiheadAttention: embed_dim must be >= 1, got 0");
  CHECK(build(nn::MultiheadAttentionOptions(4, 0)) == "MultiheadAttention: num_heads must be >= 1, got 0");
  CHECK(build(nn::MultiheadAttentionOptions(4, 2).kdim(0)) == "MultiheadAttention: kdim and vdim must be >= 1, got 0 and 4");
  CHECK(build(nn::MultiheadAttentionOptions(4, 2).dropout(-0.1)) == "MultiheadAttention: dropout must be in [0, 1], got -0.1");

  const auto mha = make(nn::MultiheadAttentionOptions(4, 2).dropout(0.5), 3);  // training: draws masks
  const Tensor q = input({3, 2, 4}, 1), kv = input({5, 2, 4}, 2);
  const auto fails = [&](const Tensor& a, const Tensor& b, const Tensor& c, const nn::AttentionMask& pad = {},
                         const nn::AttentionMask& mask = {}) {
    return testing::message_of<std::invalid_argument>([&] { (void)mha->forward(a, b, c, pad, true, mask); });
  };
  CHECK(fails(q, kv, input({5, 2}, 1)) ==
        "MultiheadAttention::forward: query, key and value must be all 3-D (batched) or all 2-D (unbatched), got query "
        "[3, 2, 4], key [5, 2, 4], value [5, 2]");
  CHECK_THAT(fails(q, input({5, 2, 3}, 2), kv), Contains("expected the last dims of query, key and value to be embed_dim=4, "
                                                         "kdim=4, vdim=4, got query [3, 2, 4], key [5, 2, 3]"));
  CHECK_THAT(fails(q, kv, input({6, 2, 4}, 3)), Contains("key and value must have the same leading dims"));
  CHECK_THAT(fails(q, input({5, 3, 4}, 2), input({5, 3, 4}, 3)), Contains("query and key must have the same batch size (dim 1)"));
  CHECK_THAT(fails(q.to(DType::float32), kv, kv), Contains("float32"));
  CHECK(fails(q, kv, kv, nn::AttentionMask::masked(zeros({5, 2}))) ==
        "MultiheadAttention::forward: expected key_padding_mask of shape [N, S] = [2, 5], got masked [5, 2]");
  CHECK(fails(q, kv, kv, {}, nn::AttentionMask::masked(zeros({2, 3, 5}))) ==
        "MultiheadAttention::forward: expected attn_mask of shape [L, S] = [3, 5] or [N * num_heads, L, S] = [4, 3, 5], "
        "got masked [2, 3, 5]");
  CHECK_THAT(fails(q, kv, kv, {}, nn::AttentionMask::additive(zeros({3, 5}))), Contains("the additive mask is float32"));
  CHECK_THAT(fails(q, kv, kv, nn::AttentionMask::masked(Tensor())), Contains("key_padding_mask is a mask of an undefined tensor"));
  CHECK_THAT(fails(q, input({0, 2, 4}, 2), input({0, 2, 4}, 2)), Contains("at least one key"));
  CHECK_THAT(fails(Tensor(), kv, kv), Contains("query, key and value must all be defined"));
  CHECK_THAT(testing::message_of<std::invalid_argument>([&] {
               const auto first = [](const Tensor& x) { return squeeze(slice(x, 1, 0, 1), 1); };  // batch 0 of [T, N, E]
               (void)mha->forward(first(q), first(kv), first(kv), nn::AttentionMask::masked(zeros({2, 5})));
             }),
             Contains("expected key_padding_mask of shape [S] = [5], got masked [2, 5]"));
  // A throwing forward leaves the layer as it was: its parameters and its dropout generator.
  const auto twin = make(nn::MultiheadAttentionOptions(4, 2).dropout(0.5), 3);
  CHECK(mha->forward(q).to_vector() == twin->forward(q).to_vector());
}
