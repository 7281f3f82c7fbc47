// nn::pad, as torch.nn.functional.pad: each mode on small cases worked out by hand, several dims
// against a plain loop, crops by negative pads, the finite-difference checks of first and second
// derivatives, and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/pad.h"
#include "tests/autograd/testing.h"
#include "tests/nn/conv_testing.h"

using namespace chainrule;
using Catch::Contains;
using nn::PadMode;
using testing::at;
using testing::numbers;
using V = const std::vector<Tensor>&;

namespace {

Tensor row(const std::vector<double>& v) {
  return from_vector(v, {1, 1, static_cast<int64_t>(v.size())}, DType::float64);
}

std::vector<double> padded(const std::vector<double>& v, const std::vector<int64_t>& pads, PadMode mode,
                           double value = 0) {
  return nn::pad(row(v), pads, mode, value).to_vector();
}

}  // namespace

TEST_CASE("nn: pad's constant mode surrounds the last dims with the value, and crops where negative", "[pad]") {
  CHECK(padded({1, 2, 3}, {1, 2}, PadMode::Constant) == std::vector<double>{0, 1, 2, 3, 0, 0});
  CHECK(padded({1, 2, 3}, {0, 1}, PadMode::Constant, -7.5) == std::vector<double>{1, 2, 3, -7.5});
  CHECK(padded({1, 2, 3, 4}, {-1, 1}, PadMode::Constant, 9) == std::vector<double>{2, 3, 4, 9});
  CHECK(padded({1, 2, 3, 4}, {-1, -2}, PadMode::Constant) == std::vector<double>{2});
  CHECK(nn::pad(row({1, 2}), {-1, -1}).shape() == Shape{1, 1, 0});
  // Two dims: {left, right, top, bottom}.
  const Tensor x = tensor({{1.0, 2.0}, {3.0, 4.0}}, DType::float64);  // [2, 2]
  const Tensor y = nn::pad(x, {1, 0, 0, 1}, PadMode::Constant, 5);
  REQUIRE(y.shape() == Shape{3, 3});
  CHECK(y.to_vector() == std::vector<double>{5, 1, 2, 5, 3, 4, 5, 5, 5});
  // Float32 in, float32 out; no pads (or zeros) give x itself.
  CHECK(nn::pad(zeros({2, 3}), {1, 1}).dtype() == DType::float32);
  CHECK(nn::pad(x, {}).to_vector() == x.to_vector());
  CHECK(nn::pad(x, {0, 0, 0, 0}).shape() == Shape{2, 2});
}

TEST_CASE("nn: pad's reflect, replicate and circular modes, worked out by hand", "[pad]") {
  const std::vector<double> v{1, 2, 3, 4};
  CHECK(padded(v, {2, 2}, PadMode::Reflect) == std::vector<double>{3, 2, 1, 2, 3, 4, 3, 2});
  CHECK(padded(v, {3, 0}, PadMode::Reflect) == std::vector<double>{4, 3, 2, 1, 2, 3, 4});
  CHECK(padded(v, {0, 3}, PadMode::Reflect) == std::vector<double>{1, 2, 3, 4, 3, 2, 1});
  CHECK(padded(v, {2, 1}, PadMode::Replicate) == std::vector<double>{1, 1, 1, 2, 3, 4, 4});
  CHECK(padded(v, {0, 5}, PadMode::Replicate) == std::vector<double>{1, 2, 3, 4, 4, 4, 4, 4, 4});
  CHECK(padded(v, {2, 1}, PadMode::Circular) == std::vector<double>{3, 4, 1, 2, 3, 4, 1});
  CHECK(padded(v, {4, 4}, PadMode::Circular) == std::vector<double>{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4});
  // Negative pads crop in these modes too (as torch's circular).
  CHECK(padded(v, {-1, 2}, PadMode::Circular) == std::vector<double>{2, 3, 4, 1, 2});
  CHECK(padded(v, {1, -2}, PadMode::Reflect) == std::vector<double>{2, 1, 2});
  CHECK(padded(v, {-3, 1}, PadMode::Replicate) == std::vector<double>{4, 4});
  // The value does not matter outside constant mode.
  CHECK(padded(v, {1, 1}, PadMode::Reflect, 99) == std::vector<double>{2, 1, 2, 3, 4, 3});
  CHECK(std::string(nn::pad_mode_name(PadMode::Replicate)) == "replicate");
}

TEST_CASE("nn: pad over three dims of a batch matches the definition, in every mode", "[pad]") {
  const Tensor x = numbers({2, 3, 4, 5}, 1);
  const std::vector<double> xs = x.to_vector();
  const std::vector<int64_t> pads{2, 1, 0, 3, 1, -1};  // W by (2, 1), H by (0, 3), C by (1, -1)
  for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Replicate, PadMode::Circular}) {
    INFO("mode " << nn::pad_mode_name(mode));
    const Tensor y = nn::pad(x, pads, mode, 0.25);
    REQUIRE(y.shape() == Shape{2, 3, 7, 8});
    const std::vector<double> ys = y.to_vector();
    std::size_t k = 0;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = -1; c < 2; ++c)
        for (int64_t h = 0; h < 7; ++h)
          for (int64_t w = -2; w < 6; ++w, ++k) {
            const int64_t sc = testing::pad_source(mode, c, 3), sh = testing::pad_source(mode, h, 4),
                          sw = testing::pad_source(mode, w, 5);
            const double want = sc < 0 || sh < 0 || sw < 0 ? 0.25 : xs[at(((n * 3 + sc) * 4 + sh) * 5 + sw)];
            CHECK(ys[k] == want);
          }
  }
}

TEST_CASE("nn: pad's gradients pass the finite-difference checks, first and second order", "[pad]") {
  const Tensor x = numbers({2, 2, 4, 5}, 2, true);
  for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Replicate, PadMode::Circular}) {
    INFO("mode " << nn::pad_mode_name(mode));
    testing::check_first_and_second_order([mode](V in) { return nn::pad(in[0], {3, 2, 1, -1}, mode, 0.5); }, {x});
    testing::check_first_and_second_order([mode](V in) { return nn::pad(in[0], {-1, 4}, mode, 0.5); }, {x});
  }
  // The gradient of a reflected element adds up over its copies: [1, 2, 3] by (2, 2) is
  // [3, 2, 1, 2, 3, 2, 1], so x[0] and x[2] appear twice, x[1] three times.
  const Tensor leaf = tensor({{{1.0, 2.0, 3.0}}}, TensorOptions(DType::float64).requires_grad(true));
  sum(nn::pad(leaf, {2, 2}, PadMode::Reflect)).backward();
  CHECK(leaf.grad().to_vector() == std::vector<double>{2, 3, 2});
}

TEST_CASE("nn: pad's errors name the input, the pads and the mode", "[pad]") {
  const Tensor x = zeros({1, 2, 3});
  CHECK_THROWS_WITH(nn::pad(Tensor(), {1, 1}), Contains("pad: the input is undefined"));
  CHECK_THROWS_WITH(nn::pad(x, {1, 1, 1}),
                    Contains("pad: expected an even number of pads, at most 2 per dim of the input [1, 2, 3] (3 dims), "
                             "got 3 pads [1, 1, 1]"));
  CHECK_THROWS_WITH(nn::pad(x, {1, 1, 1, 1, 1, 1, 1, 1}), Contains("at most 2 per dim of the input [1, 2, 3] (3 dims)"));
  CHECK_THROWS_WITH(nn::pad(x, {0, 3}, PadMode::Reflect),
                    Contains("pad: reflect padding (0, 3) of dim 2 must be less than its size 3 (input [1, 2, 3], pads "
                             "[0, 3], mode reflect)"));
  CHECK_THROWS_WITH(nn::pad(x, {1, 1, 2, 0}, PadMode::Reflect),
                    Contains("pad: reflect padding (2, 0) of dim 1 must be less than its size 2"));
  CHECK_THROWS_WITH(nn::pad(x, {4, 0}, PadMode::Circular),
                    Contains("pad: circular padding (4, 0) of dim 2 wraps around more than once: at most its size 3"));
  CHECK_THROWS_WITH(nn::pad(zeros({2, 0}), {1, 0}, PadMode::Replicate),
                    Contains("pad: replicate padding (1, 0) of dim 1 has no edge to repeat: the dim is empty"));
  CHECK_THROWS_WITH(nn::pad(x, {-2, -2}),
                    Contains("pad: the padding (-2, -2) of dim 2 (size 3) leaves a negative size -1 (input [1, 2, 3], "
                             "pads [-2, -2], mode constant)"));
  CHECK_THROWS_WITH(nn::pad(x, {INT64_MAX, 1}), Contains("pad: the padding (9223372036854775807, 1) of dim 2 overflows"));
  CHECK_THROWS_WITH(nn::pad(x, {INT64_MIN, INT64_MAX}, PadMode::Replicate),
                    Contains("pad: the padding (-9223372036854775808, 9223372036854775807) of dim 2 crops more than its "
                             "size 3"));
  CHECK_THROWS_WITH(nn::pad(x, {2, -4}), Contains("pad: the padding (2, -4) of dim 2 crops more than its size 3"));
}

TEST_CASE("nn: pad refuses an output too large for memory before it builds anything", "[pad]") {
  // Each dim's padded size fits in int64 but their product does not. The first dims' index lists
  // and blocks were built before an allocation failed (here 0.5 GB, then "out of memory" for the
  // second dim; for Conv2d's padding 2^31 with padding_mode replicate, a 32 GB std::vector of
  // indices, std::bad_alloc or the OOM killer).
  const Tensor x = zeros({1, 1, 4, 4, 4});
  const int64_t p = int64_t{1} << 21;
  for (PadMode mode : {PadMode::Replicate, PadMode::Constant})
    CHECK_THROWS_WITH(nn::pad(x, {p, p, p, p, p, p}, mode),
                      Contains("pad: the output [1, 1, 4194308, 4194308, 4194308] needs more than 2^63 - 1 bytes "
                               "(input [1, 1, 4, 4, 4], pads [2097152, 2097152, 2097152, 2097152, 2097152, 2097152]"));
  // Below the bound the output is made as before.
  CHECK(nn::pad(zeros({1, 1, 2}), {3, 1}, PadMode::Replicate).shape() == Shape{1, 1, 6});
}
