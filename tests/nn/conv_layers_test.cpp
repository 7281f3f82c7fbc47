// Conv2d's and Conv1d's options beyond the window: groups (torch's weight shapes, initialiser
// bounds and printing, the 1-d grouped convolution against a plain loop, saving and loading),
// padding=same / valid (torch's asymmetric split for even kernels) and padding_mode, against plain
// loops, with their finite-difference checks, printing and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/conv.h"
#include "nn/serialize.h"
#include "tests/autograd/testing.h"
#include "tests/nn/conv_testing.h"

using namespace chainrule;
using Catch::Contains;
using nn::PaddingMode;
using testing::conv1d_by_loops;
using testing::conv_by_loops;
using testing::numbers;

namespace {

using V = const std::vector<Tensor>&;

void check_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-14));
}

// Every element within +-bound, and, for enough elements, spread out (not all near 0).
void check_within(const Tensor& t, double bound) {
  const std::vector<double> v = t.to_vector();
  CHECK(*std::max_element(v.begin(), v.end()) <= bound);
  CHECK(*std::min_element(v.begin(), v.end()) >= -bound);
  if (v.size() >= 16) CHECK(*std::max_element(v.begin(), v.end()) > bound / 2);
}

}  // namespace

TEST_CASE("nn: Conv2d and Conv1d with groups hold torch's weight [O, C / groups, k...] and init bounds", "[conv]") {
  // torch.nn.Conv2d(4, 6, (3, 2), groups=2).weight.shape == (6, 2, 3, 2); bound 1/sqrt(2 * 3 * 2).
  nn::Conv2d conv(nn::Conv2dOptions(4, 6, {3, 2}).groups(2).seed(3));
  CHECK(conv.weight().shape() == Shape{6, 2, 3, 2});
  CHECK(conv.bias().shape() == Shape{6});
  check_within(conv.weight(), 1 / std::sqrt(2.0 * 3 * 2));
  check_within(conv.bias(), 1 / std::sqrt(2.0 * 3 * 2));
  // Depthwise: torch.nn.Conv2d(8, 8, 3, groups=8).weight.shape == (8, 1, 3, 3), bound 1/3.
  nn::Conv2d depthwise(nn::Conv2dOptions(8, 8, 3).groups(8).padding(1).seed(4));
  CHECK(depthwise.weight().shape() == Shape{8, 1, 3, 3});
  check_within(depthwise.weight(), 1 / 3.0);
  const Tensor x = numbers({2, 8, 5, 5}, 5).to(DType::float32);
  CHECK(depthwise.forward(x).to_vector() ==
        nn::conv2d(x, depthwise.weight(), depthwise.bias(), {1, 1}, {1, 1}, {1, 1}, 8).to_vector());
  nn::Conv1d conv1(nn::Conv1dOptions(6, 9, 4).groups(3).seed(6));
  CHECK(conv1.weight().shape() == Shape{9, 2, 4});
  check_within(conv1.weight(), 1 / std::sqrt(2.0 * 4));
  check_within(conv1.bias(), 1 / std::sqrt(2.0 * 4));
}

TEST_CASE("nn: conv1d with groups is the grouped convolution of the definition", "[conv]") {
  const Tensor x = numbers({2, 6, 9}, 7), w = numbers({9, 2, 3}, 8), b = numbers({9}, 9);
  for (const auto& [s, p, d] : {std::array<int64_t, 3>{1, 0, 1}, {2, 1, 1}, {1, 2, 2}}) {
    INFO("stride " << s << " padding " << p << " dilation " << d);
    const std::vector<double> want = conv1d_by_loops(x, w, b, s, p, d, (9 + 2 * p - d * 2 - 1) / s + 1, 3);
    const std::vector<double> got = nn::conv1d(x, w, b, s, p, d, 3).to_vector();
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-14));
  }
  // Depthwise (groups = C).
  const Tensor dw = numbers({6, 1, 3}, 10), db = numbers({6}, 11);
  const std::vector<double> want = conv1d_by_loops(x, dw, db, 1, 1, 1, 9, 6);
  const std::vector<double> got = nn::conv1d(x, dw, db, 1, 1, 1, 6).to_vector();
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-14));
  testing::check_first_and_second_order([](V in) { return nn::conv1d(in[0], in[1], in[2], 2, 1, 1, 3); },
                                        {numbers({2, 6, 7}, 12, true), numbers({3, 2, 3}, 13, true),
                                         numbers({3}, 14, true)});
}

TEST_CASE("nn: grouped layers print groups as torch's, and save and load", "[conv]") {
  CHECK(nn::Conv2d(nn::Conv2dOptions(4, 8, 3).groups(4)).to_string() ==
        "Conv2d(4, 8, kernel_size=[3, 3], stride=[1, 1], groups=4)");
  CHECK(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).groups(2).dilation(2).bias(false)).to_string() ==
        "Conv2d(4, 4, kernel_size=[3, 3], stride=[1, 1], dilation=[2, 2], groups=2, bias=false)");
  CHECK(nn::Conv1d(nn::Conv1dOptions(3, 3, 5).groups(3).padding(2)).to_string() ==
        "Conv1d(3, 3, kernel_size=[5], stride=[1], padding=[2], groups=3)");
  CHECK(nn::Conv2d(nn::Conv2dOptions(4, 8, 3)).to_string() == "Conv2d(4, 8, kernel_size=[3, 3], stride=[1, 1])");
  testing::TempDir dir;
  nn::Conv2d saved(nn::Conv2dOptions(4, 6, 3).groups(2).seed(1));
  nn::save(saved, dir.path() / "grouped.safetensors");
  nn::Conv2d loaded(nn::Conv2dOptions(4, 6, 3).groups(2).seed(2));
  nn::load(loaded, dir.path() / "grouped.safetensors");
  CHECK(loaded.weight().to_vector() == saved.weight().to_vector());
  CHECK(loaded.bias().to_vector() == saved.bias().to_vector());
  // An ungrouped layer's weight [6, 4, 3, 3] is refused with both shapes.
  nn::Conv2d ungrouped(nn::Conv2dOptions(4, 6, 3));
  CHECK_THROWS_WITH(nn::load(ungrouped, dir.path() / "grouped.safetensors"),
                    Contains("\"weight\": shape [6, 2, 3, 3] in the file vs [6, 4, 3, 3] in the model"));
}

TEST_CASE("nn: Conv2d and Conv1d reject groups that do not divide the channels, naming them", "[conv]") {
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(4, 6, 3).groups(0)), Contains("Conv2d: groups must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(3, 6, 3).groups(2)),
                    Contains("Conv2d: in_channels must be divisible by groups, got 3 and groups=2"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(4, 6, 3).groups(4)),
                    Contains("Conv2d: out_channels must be divisible by groups, got 6 and groups=4"));
  CHECK_THROWS_WITH(nn::Conv1d(nn::Conv1dOptions(4, 5, 3).groups(2)),
                    Contains("Conv1d: out_channels must be divisible by groups, got 5 and groups=2"));
  CHECK_THROWS_WITH(nn::Conv1d(nn::Conv1dOptions(4, 4, 3).groups(-1)), Contains("Conv1d: groups must be >= 1, got -1"));
  nn::Conv2d conv(nn::Conv2dOptions(4, 4, 3).groups(2));
  CHECK_THROWS_WITH(conv.forward(zeros({1, 2, 5, 5})),
                    Contains("Conv2d::forward: expected an input [N, 4, H, W] (in_channels=4), got [1, 2, 5, 5]"));
}

TEST_CASE("nn: padding=same keeps the size, an even kernel's extra padding at the right and bottom", "[conv]") {
  const Tensor x = numbers({2, 2, 5, 6}, 20);
  struct Case {
    std::array<int64_t, 2> kernel, dilation, before;  // before: torch's top and left pads
  };
  // Kernel 3 pads (1, 1); kernel 4 pads (1, 2); kernel 4 dilated by 2 pads 6 as (3, 3); kernel 2
  // dilated by 3 pads (1, 2); kernel 5 pads (2, 2).
  for (const Case& c : {Case{{3, 3}, {1, 1}, {1, 1}}, Case{{4, 4}, {1, 1}, {1, 1}}, Case{{4, 3}, {2, 1}, {3, 1}},
                        Case{{2, 5}, {3, 1}, {1, 2}}}) {
    INFO("kernel [" << c.kernel[0] << ", " << c.kernel[1] << "] dilation [" << c.dilation[0] << ", " << c.dilation[1] << "]");
    nn::Conv2d conv(nn::Conv2dOptions(2, 3, nn::Size2d(c.kernel[0], c.kernel[1]))
                        .padding(nn::kSame)
                        .dilation(nn::Size2d(c.dilation[0], c.dilation[1]))
                        .dtype(DType::float64));
    const Tensor y = conv.forward(x);
    REQUIRE(y.shape() == Shape{2, 3, 5, 6});
    // The loop pads by `before` and runs over 5 x 6 outputs: the rest of the padding is after.
    check_close(y.to_vector(), conv_by_loops(x, conv.weight(), conv.bias(), {1, 1}, c.before, c.dilation, 5, 6));
  }
  // Conv1d: kernel 4 pads (1, 2); with groups too.
  const Tensor s = numbers({2, 4, 7}, 21);
  nn::Conv1d conv1(nn::Conv1dOptions(4, 2, 4).padding(nn::kSame).groups(2).dtype(DType::float64));
  REQUIRE(conv1.forward(s).shape() == Shape{2, 2, 7});
  check_close(conv1.forward(s).to_vector(), conv1d_by_loops(s, conv1.weight(), conv1.bias(), 1, 1, 1, 7, 2));
  // valid is no padding.
  nn::Conv2d valid(nn::Conv2dOptions(2, 3, 3).padding(nn::kValid).dtype(DType::float64));
  CHECK(valid.forward(x).shape() == Shape{2, 3, 3, 4});
  check_close(valid.forward(x).to_vector(), conv_by_loops(x, valid.weight(), valid.bias(), {1, 1}, {0, 0}, {1, 1}, 3, 4));
  // The numbers again after a kind, and a kind after numbers.
  CHECK(nn::Conv2dOptions(1, 1, 3).padding(nn::kSame).padding(2).padding_kind() == std::nullopt);
  CHECK(nn::Conv2dOptions(1, 1, 3).padding(2).padding(nn::kSame).padding() == std::array<int64_t, 2>{0, 0});
}

TEST_CASE("nn: padding_mode fills the padding by reflecting, replicating or wrapping the input", "[conv]") {
  const Tensor x = numbers({2, 2, 5, 6}, 22);
  for (const auto& [mode, pad_mode] : {std::pair{PaddingMode::Reflect, nn::PadMode::Reflect},
                                       std::pair{PaddingMode::Replicate, nn::PadMode::Replicate},
                                       std::pair{PaddingMode::Circular, nn::PadMode::Circular},
                                       std::pair{PaddingMode::Zeros, nn::PadMode::Constant}}) {
    INFO("padding_mode " << nn::padding_mode_name(mode));
    // Numbers: (2, 2) rows and (1, 1) columns, with a stride.
    nn::Conv2d conv(nn::Conv2dOptions(2, 3, 3).padding({2, 1}).stride(2).padding_mode(mode).dtype(DType::float64));
    const Tensor padded = testing::pad_by_loops(x, {2, 2, 1, 1}, pad_mode);
    const Tensor y = conv.forward(x);
    REQUIRE(y.shape() == Shape{2, 3, 4, 3});
    check_close(y.to_vector(), conv_by_loops(padded, conv.weight(), conv.bias(), {2, 2}, {0, 0}, {1, 1}, 4, 3));
    // same with an even kernel: (1, 2) rows, (0, 1) columns.
    nn::Conv2d same(nn::Conv2dOptions(2, 2, {4, 2}).padding(nn::kSame).padding_mode(mode).groups(2).dtype(DType::float64));
    const Tensor padded_same = testing::pad_by_loops(x, {1, 2, 0, 1}, pad_mode);
    check_close(same.forward(x).to_vector(),
                conv_by_loops(padded_same, same.weight(), same.bias(), {1, 1}, {0, 0}, {1, 1}, 5, 6, 2));
    // Conv1d, as the 2-d case over one row.
    nn::Conv1d conv1(nn::Conv1dOptions(2, 3, 3).padding(2).padding_mode(mode).dtype(DType::float64));
    const Tensor s = numbers({2, 2, 6}, 23);
    const Tensor padded_row = testing::pad_by_loops(reshape(s, {2, 2, 1, 6}), {0, 0, 2, 2}, pad_mode);
    check_close(conv1.forward(s).to_vector(),
                conv1d_by_loops(reshape(padded_row, {2, 2, 10}), conv1.weight(), conv1.bias(), 1, 0, 1, 8));
  }
}

TEST_CASE("nn: the padded layers' gradients pass the finite-difference checks, first and second order", "[conv]") {
  const Tensor x = numbers({1, 2, 4, 5}, 24, true);
  for (PaddingMode mode : {PaddingMode::Zeros, PaddingMode::Reflect, PaddingMode::Replicate, PaddingMode::Circular}) {
    INFO("padding_mode " << nn::padding_mode_name(mode));
    auto same = std::make_shared<nn::Conv2d>(
        nn::Conv2dOptions(2, 2, {2, 3}).padding(nn::kSame).padding_mode(mode).groups(2).dtype(DType::float64));
    testing::check_first_and_second_order([same](V in) { return same->forward(in[0]); }, {x});
    auto conv1 = std::make_shared<nn::Conv1d>(nn::Conv1dOptions(2, 3, 2).padding(nn::kSame).padding_mode(mode).dtype(DType::float64));
    testing::check_first_and_second_order([conv1](V in) { return conv1->forward(in[0]); }, {numbers({2, 2, 5}, 25, true)});
  }
}

TEST_CASE("nn: padding options print as torch's and survive save and load", "[conv]") {
  CHECK(nn::Conv2d(nn::Conv2dOptions(2, 3, 4).padding(nn::kSame).padding_mode(PaddingMode::Reflect)).to_string() ==
        "Conv2d(2, 3, kernel_size=[4, 4], stride=[1, 1], padding=same, padding_mode=reflect)");
  CHECK(nn::Conv2d(nn::Conv2dOptions(2, 3, 3).padding(nn::kValid)).to_string() ==
        "Conv2d(2, 3, kernel_size=[3, 3], stride=[1, 1], padding=valid)");
  CHECK(nn::Conv2d(nn::Conv2dOptions(2, 2, 3).padding(1).groups(2).bias(false).padding_mode(PaddingMode::Circular)
                       .dtype(DType::float64))
            .to_string() == "Conv2d(2, 2, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], groups=2, bias=false, "
                            "padding_mode=circular, dtype=float64)");
  CHECK(nn::Conv1d(nn::Conv1dOptions(1, 1, 2).padding(nn::kSame).padding_mode(PaddingMode::Replicate)).to_string() ==
        "Conv1d(1, 1, kernel_size=[2], stride=[1], padding=same, padding_mode=replicate)");
  CHECK(nn::Conv1d(nn::Conv1dOptions(1, 1, 3).padding_mode(PaddingMode::Zeros)).to_string() ==
        "Conv1d(1, 1, kernel_size=[3], stride=[1])");
  testing::TempDir dir;
  const auto options = nn::Conv2dOptions(2, 3, 4).padding(nn::kSame).padding_mode(PaddingMode::Reflect);
  nn::Conv2d saved(nn::Conv2dOptions(options).seed(1)), loaded(nn::Conv2dOptions(options).seed(2));
  nn::save(saved, dir.path() / "same.safetensors");
  nn::load(loaded, dir.path() / "same.safetensors");
  const Tensor x = numbers({1, 2, 5, 5}, 26).to(DType::float32);
  CHECK(loaded.forward(x).to_vector() == saved.forward(x).to_vector());
}

TEST_CASE("nn: padding errors name the layer, the stride and the sizes", "[conv]") {
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(1, 1, 3).padding(nn::kSame).stride({1, 2})),
                    Contains("Conv2d: padding=same is not supported for strided convolutions (as torch), got stride [1, 2]"));
  CHECK_THROWS_WITH(nn::Conv1d(nn::Conv1dOptions(1, 1, 3).padding(nn::kSame).stride(2)),
                    Contains("Conv1d: padding=same is not supported for strided convolutions (as torch), got stride [2]"));
  CHECK_NOTHROW(nn::Conv2d(nn::Conv2dOptions(1, 1, 3).padding(nn::kValid).stride(2)));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(1, 1, {3, 2}).padding(nn::kSame).dilation({INT64_MAX / 2 + 1, 1})),
                    Contains("Conv2d: padding=same overflows: dilation 4611686018427387904 times kernel 3 - 1"));
  // Reflect cannot fill a padding as wide as the input: nn::pad says so at forward.
  nn::Conv2d conv(nn::Conv2dOptions(1, 1, 3).padding(3).padding_mode(PaddingMode::Reflect));
  CHECK_THROWS_WITH(conv.forward(zeros({1, 1, 3, 8})),
                    Contains("pad: reflect padding (3, 3) of dim 2 must be less than its size 3 (input [1, 1, 3, 8]"));
}

TEST_CASE("nn: conv2d and conv1d take kSame and kValid as the layers do", "[conv]") {
  const Tensor x = numbers({2, 2, 5, 6}, 22, true);
  const Tensor w = numbers({3, 2, 4, 3}, 23, true), b = numbers({3}, 24, true);
  // Kernel 4 dilated by 2 pads 6 rows as (3, 3); kernel 3 pads (1, 1). An even split: the
  // convolution's own padding.
  const Tensor y = nn::conv2d(x, w, b, {1, 1}, nn::kSame, {2, 1});
  REQUIRE(y.shape() == Shape{2, 3, 5, 6});
  check_close(y.to_vector(), conv_by_loops(x, w, b, {1, 1}, {3, 1}, {2, 1}, 5, 6));
  // Kernel 4 undilated pads (1, 2): an uneven split, padded before the convolution.
  const Tensor z = nn::conv2d(x, w, b, {1, 1}, nn::kSame);
  REQUIRE(z.shape() == Shape{2, 3, 5, 6});
  check_close(z.to_vector(), conv_by_loops(x, w, b, {1, 1}, {1, 1}, {1, 1}, 5, 6));
  check_close(nn::conv2d(x, w, b, {2, 1}, nn::kValid).to_vector(),
              nn::conv2d(x, w, b, {2, 1}, {0, 0}).to_vector());
  const GradcheckReport r = gradcheck([](V in) { return nn::conv2d(in[0], in[1], in[2], {1, 1}, nn::kSame); }, {x, w, b});
  INFO(r);
  CHECK(r.passed);
  // conv1d: kernel 4 pads (1, 2), with groups.
  const Tensor s = numbers({2, 4, 7}, 25), w1 = numbers({2, 2, 4}, 26);
  const Tensor y1 = nn::conv1d(s, w1, Tensor(), 1, nn::kSame, 1, 2);
  REQUIRE(y1.shape() == Shape{2, 2, 7});
  check_close(y1.to_vector(), conv1d_by_loops(s, w1, Tensor(), 1, 1, 1, 7, 2));
  // torch refuses padding='same' with a stride, as the layers do; a bad weight is named first.
  CHECK_THROWS_WITH(nn::conv2d(x, w, b, {2, 1}, nn::kSame),
                    Contains("conv2d: padding=same is not supported for strided convolutions (as torch), got stride [2, 1]"));
  CHECK_THROWS_WITH(nn::conv1d(s, w1, Tensor(), 3, nn::kSame, 1, 2), Contains("conv1d: padding=same") && Contains("[3]"));
  CHECK_THROWS_WITH(nn::conv2d(x, numbers({3, 2, 4}, 27), b, {1, 1}, nn::kSame), Contains("conv2d: expected a weight"));
  CHECK_THROWS_WITH(nn::conv2d(x, w, b, {1, 1}, nn::kSame, {0, 1}), Contains("conv2d") && Contains("dilation [0, 1]"));
}
