// scaled_dot_product_attention: values against a loop over plain doubles (torch's formula written
// out element by element), the three kinds of mask, causal, scale, fully masked rows, dropout with a
// seeded Generator, finite-difference checks of first and second order, and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/attention.h"
#include "tests/autograd/testing.h"
#include "tests/nn/attention_reference.h"

using namespace chainrule;
using testing::attention::check_close;
using testing::attention::input;
using Catch::Contains;

namespace {

using Vec = std::vector<double>;
using V = const std::vector<Tensor>&;
constexpr double kInf = std::numeric_limits<double>::infinity();

// One [L, E] x [S, E] x [S, Ev] slice: softmax(q k^T * scale + bias(i, j)) v, a row that is all
// -inf giving 0; `keep(i, j)` multiplies weight (i, j) after the softmax (dropout). Returns the
// output [L, Ev]; `weights` [L, S] if given.
Vec ref_attention(const Vec& q, const Vec& k, const Vec& v, std::size_t l, std::size_t s, std::size_t e, std::size_t ev,
                  double scale, const std::function<double(std::size_t, std::size_t)>& bias,
                  const std::function<double(std::size_t, std::size_t)>& keep = nullptr, Vec* weights = nullptr) {
  Vec out(l * ev, 0.0), w(l * s, 0.0);
  for (std::size_t i = 0; i < l; ++i) {
    Vec row(s);
    double m = -kInf;
    for (std::size_t j = 0; j < s; ++j) {
      double dot = 0;
      for (std::size_t c = 0; c < e; ++c) dot += q[i * e + c] * k[j * e + c];
      row[j] = dot * scale + bias(i, j);
      m = std::max(m, row[j]);
    }
    if (m == -kInf) continue;  // no key left: weights and output 0
    double z = 0;
    for (std::size_t j = 0; j < s; ++j) z += std::exp(row[j] - m);
    for (std::size_t j = 0; j < s; ++j) {
      w[i * s + j] = std::exp(row[j] - m) / z * (keep ? keep(i, j) : 1.0);
      for (std::size_t c = 0; c < ev; ++c) out[i * ev + c] += w[i * s + j] * v[j * ev + c];
    }
  }
  if (weights) *weights = w;
  return out;
}

double none(std::size_t, std::size_t) { return 0.0; }

// Slice b of a [B, rows, cols] tensor's values.
Vec slice_of(const Tensor& t, std::size_t b) {
  const Vec all = t.to_vector();
  const std::size_t n = static_cast<std::size_t>(t.size(-2) * t.size(-1));
  return Vec(all.begin() + static_cast<std::ptrdiff_t>(b * n), all.begin() + static_cast<std::ptrdiff_t>((b + 1) * n));
}

}  // namespace

TEST_CASE("attention: scaled_dot_product_attention computes torch's formula", "[attention]") {
  const std::size_t b = 2, l = 3, s = 4, e = 5, ev = 2;
  const Tensor q = input({2, 3, 5}, 1), k = input({2, 4, 5}, 2), v = input({2, 4, 2}, 3);
  const auto reference = [&](double scale, const std::function<double(std::size_t, std::size_t)>& bias) {
    Vec all;
    for (std::size_t i = 0; i < b; ++i) {
      const Vec o = ref_attention(slice_of(q, i), slice_of(k, i), slice_of(v, i), l, s, e, ev, scale, bias);
      all.insert(all.end(), o.begin(), o.end());
    }
    return all;
  };
  SECTION("no mask, scale 1 / sqrt(E)") {
    const Tensor y = nn::scaled_dot_product_attention(q, k, v);
    CHECK(y.shape() == Shape({2, 3, 2}));
    check_close(y.to_vector(), reference(1 / std::sqrt(5.0), none));
  }
  SECTION("a scale given") {
    check_close(nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().scale(0.7)).to_vector(), reference(0.7, none));
  }
  SECTION("causal: query i sees keys j <= i (top-left aligned when L != S)") {
    const auto causal = [](std::size_t i, std::size_t j) { return j <= i ? 0.0 : -kInf; };
    check_close(nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().is_causal(true)).to_vector(),
                reference(1 / std::sqrt(5.0), causal));
    check_close(nn::causal_mask(3, 4, DType::float64).to_vector(), {0, -kInf, -kInf, -kInf, 0, 0, -kInf, -kInf, 0, 0, 0, -kInf});
  }
  // One [L, S] pattern, broadcast over the batch, in each of the three kinds.
  const Tensor keep = tensor({{1, 0, 1, 1}, {0, 1, 1, 0}, {1, 1, 1, 1}});
  const auto kept = [&](std::size_t i, std::size_t j) { return keep.at({int64_t(i), int64_t(j)}) != 0 ? 0.0 : -kInf; };
  SECTION("allowed: nonzero takes part (torch's bool mask)") {
    check_close(nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::allowed(keep)))
                    .to_vector(),
                reference(1 / std::sqrt(5.0), kept));
  }
  SECTION("masked: nonzero is left out; any nonzero value counts, as where's condition") {
    check_close(nn::scaled_dot_product_attention(
                    q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::masked((1.0 - keep) * 3.0)))
                    .to_vector(),
                reference(1 / std::sqrt(5.0), kept));
  }
  SECTION("additive: added to the scaled scores, finite values bias") {
    const Tensor add = input({3, 4}, 9);
    const auto biased = [&](std::size_t i, std::size_t j) { return add.at({int64_t(i), int64_t(j)}); };
    check_close(nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::additive(add)))
                    .to_vector(),
                reference(1 / std::sqrt(5.0), biased));
  }
  SECTION("a per-batch mask [B, 1, S] (key padding) and broadcast batch dims") {
    const Tensor pad = tensor({{{1, 1, 0, 0}}, {{1, 1, 1, 0}}});
    const Tensor y = nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::allowed(pad)));
    for (std::size_t i = 0; i < b; ++i) {
      const auto padded = [&](std::size_t, std::size_t j) { return j < 2 + i ? 0.0 : -kInf; };
      check_close(slice_of(y, i), ref_attention(slice_of(q, i), slice_of(k, i), slice_of(v, i), l, s, e, ev,
                                                1 / std::sqrt(5.0), padded));
    }
    // k and v shared by two heads: [2, 1, 4, 5] broadcast against q [2, 2, 3, 5].
    const Tensor q4 = input({2, 2, 3, 5}, 4);
    const Tensor y4 = nn::scaled_dot_product_attention(q4, reshape(k, {2, 1, 4, 5}), reshape(v, {2, 1, 4, 2}));
    CHECK(y4.shape() == Shape({2, 2, 3, 2}));
    for (std::size_t i = 0; i < 4; ++i)
      check_close(slice_of(y4, i), ref_attention(slice_of(reshape(q4, {4, 3, 5}), i), slice_of(k, i / 2),
                                                 slice_of(v, i / 2), l, s, e, ev, 1 / std::sqrt(5.0), none));
  }
}

TEST_CASE("attention: a fully masked row gives 0 and gradient 0, not NaN, and a finite penalty is a shift", "[attention]") {
  const Tensor q = input({3, 2}, 1, true), k = input({4, 2}, 2, true), v = input({4, 3}, 3, true);
  const Tensor keep = tensor({{1, 1, 0, 0}, {0, 0, 0, 0}, {0, 0, 1, 0}});
  const Tensor y =
      nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::allowed(keep)));
  const Vec out = y.to_vector();
  for (std::size_t c = 0; c < 3; ++c) CHECK(out[3 + c] == 0.0);  // row 1: no key
  for (double o : out) CHECK(std::isfinite(o));
  sum(y * y).backward();
  for (const Tensor& t : {q, k, v})
    for (double g : t.grad().to_vector()) CHECK(std::isfinite(g));
  CHECK(q.grad().at({1, 0}) == 0.0);
  CHECK(q.grad().at({1, 1}) == 0.0);
  // The same row with a large finite penalty on every key is an ordinary row: softmax ignores a
  // shift, so it attends as without the penalty (only -inf removes a key).
  const Tensor penalty = tensor({{0.0, 0, 0, 0}, {-1e9, -1e9, -1e9, -1e9}, {0, 0, 0, 0}}, DType::float64);
  const Tensor u = nn::scaled_dot_product_attention(q.detach(), k.detach(), v.detach(),
                                                    nn::SDPAOptions().attn_mask(nn::AttentionMask::additive(penalty)));
  const Tensor unpenalised = nn::scaled_dot_product_attention(q.detach(), k.detach(), v.detach());
  for (int64_t c = 0; c < 3; ++c) CHECK(u.at({1, c}) == Approx(unpenalised.at({1, c})).margin(1e-6));
}

TEST_CASE("attention: scaled_dot_product_attention passes first- and second-order finite-difference checks",
          "[attention]") {
  const Tensor q = input({2, 3, 4}, 1, true), k = input({2, 5, 4}, 2, true), v = input({2, 5, 3}, 3, true);
  SECTION("no mask") {
    testing::check_first_and_second_order([](V in) { return nn::scaled_dot_product_attention(in[0], in[1], in[2]); },
                                          {q, k, v});
  }
  SECTION("causal") {
    testing::check_first_and_second_order(
        [](V in) { return nn::scaled_dot_product_attention(in[0], in[1], in[2], nn::SDPAOptions().is_causal(true)); },
        {q, k, v});
  }
  SECTION("allowed mask with a fully masked row") {
    const Tensor keep = tensor({{1, 0, 1, 0, 1}, {0, 0, 0, 0, 0}, {0, 1, 1, 1, 0}});
    testing::check_first_and_second_order(
        [&](V in) {
          return nn::scaled_dot_product_attention(in[0], in[1], in[2],
                                                  nn::SDPAOptions().attn_mask(nn::AttentionMask::allowed(keep)));
        },
        {q, k, v});
  }
  SECTION("a learned additive mask, differentiated too") {
    const Tensor bias = input({3, 5}, 8, true);
    testing::check_first_and_second_order(
        [](V in) {
          return nn::scaled_dot_product_attention(in[0], in[1], in[2],
                                                  nn::SDPAOptions().attn_mask(nn::AttentionMask::additive(in[3])).scale(0.3));
        },
        {q, k, v, bias});
  }
}

TEST_CASE("attention: dropout draws from the Generator given, at every call with dropout_p > 0", "[attention]") {
  const Tensor q = input({3, 2}, 1), k = input({4, 2}, 2), v = input({4, 3}, 3);
  const double p = 0.4;
  Generator gen(5);
  const Tensor y = nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().dropout_p(p).generator(gen));
  // The reference draws the same numbers in the same (row-major) order.
  Generator replay(5);
  Vec mask(12);
  for (double& m : mask) m = replay.uniform(0.0, 1.0) < 1 - p ? 1 / (1 - p) : 0.0;
  CHECK(std::count(mask.begin(), mask.end(), 0.0) > 0);
  const Vec want = ref_attention(q.to_vector(), k.to_vector(), v.to_vector(), 3, 4, 2, 3, 1 / std::sqrt(2.0), none,
                                 [&](std::size_t i, std::size_t j) { return mask[i * 4 + j]; });
  check_close(y.to_vector(), want);
  // The next call draws a new mask; the same seed gives the same one again.
  CHECK(nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().dropout_p(p).generator(gen)).to_vector() !=
        y.to_vector());
  Generator again(5);
  CHECK(nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().dropout_p(p).generator(again)).to_vector() ==
        y.to_vector());
  // p = 1 drops everything; p = 0 draws nothing.
  for (double o : nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().dropout_p(1).generator(gen)).to_vector())
    CHECK(o == 0.0);
  Generator untouched(5);
  (void)nn::scaled_dot_product_attention(q, k, v, nn::SDPAOptions().generator(untouched));
  CHECK(untouched.uniform(0, 1) == Generator(5).uniform(0, 1));
}

TEST_CASE("attention: scaled_dot_product_attention's errors name the op and the shapes", "[attention]") {
  const Tensor q = input({2, 3, 4}, 1), k = input({2, 5, 4}, 2), v = input({2, 5, 3}, 3);
  const auto sdpa = [](const Tensor& a, const Tensor& b, const Tensor& c, nn::SDPAOptions o = nn::SDPAOptions()) {
    return testing::message_of<std::invalid_argument>([&] { (void)nn::scaled_dot_product_attention(a, b, c, o); });
  };
  CHECK(sdpa(q, input({2, 5, 3}, 2), v) ==
        "scaled_dot_product_attention: query and key must have the same last dim E, got query [2, 3, 4], key [2, 5, 3], "
        "value [2, 5, 3]");
  CHECK_THAT(sdpa(q, k, input({2, 4, 3}, 3)), Contains("key and value must have the same length S (dim -2)"));
  CHECK_THAT(sdpa(input({4}, 1), k, v), Contains("need at least 2 dims ([..., L, E]), got query [4]"));
  CHECK_THAT(sdpa(q, input({3, 5, 4}, 2), input({3, 5, 3}, 3)),
             Contains("the batch dims of query [2, 3, 4], key [3, 5, 4] and value [3, 5, 3] do not broadcast"));
  CHECK_THAT(sdpa(q, input({2, 0, 4}, 2), input({2, 0, 3}, 3)), Contains("at least one key"));
  CHECK_THAT(sdpa(q.to(DType::float32), k, v), Contains("one dtype, got float32, float64 and float64"));
  CHECK_THAT(sdpa(q, k, v, nn::SDPAOptions().is_causal(true).attn_mask(nn::AttentionMask::allowed(ones({3, 5})))),
             Contains("give attn_mask (allowed [3, 5]) or is_causal, not both"));
  CHECK(sdpa(q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::masked(ones({5, 3})))) ==
        "scaled_dot_product_attention: attn_mask [5, 3] does not broadcast to the scores' shape [2, 3, 5] ([..., L, S])");
  CHECK_THAT(sdpa(q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::masked(ones({4, 3, 5})))),
             Contains("attn_mask [4, 3, 5] does not broadcast"));
  CHECK_THAT(sdpa(q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::additive(zeros({3, 5})))),
             Contains("the additive mask is float32 but the scores are float64; convert it with .to(DType::float64)"));
  CHECK_THAT(sdpa(q, k, v, nn::SDPAOptions().attn_mask(nn::AttentionMask::allowed(Tensor()))),
             Contains("the allowed (undefined) mask's tensor is undefined"));
  CHECK_THAT(sdpa(q, k, v, nn::SDPAOptions().dropout_p(1.5)), Contains("dropout_p must be in [0, 1], got 1.5"));
  CHECK_THAT(sdpa(q, k, v, nn::SDPAOptions().scale(kInf)), Contains("scale must be finite, got inf"));
  CHECK_THAT(sdpa(Tensor(), k, v), Contains("query, key and value must all be defined"));
  CHECK(nn::AttentionMask().str() == "none");
  CHECK(testing::message_of<std::invalid_argument>([] { (void)nn::causal_mask(-1, 2); }) ==
        "causal_mask: sizes must be >= 0, got -1 and 2");
}
