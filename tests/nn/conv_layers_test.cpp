// Conv2d's and Conv1d's options beyond the window: groups (torch's weight shapes, initialiser
// bounds and printing, the 1-d grouped convolution against a plain loop, saving and loading),
// and their errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/conv.h"
#include "nn/serialize.h"
#include "tests/autograd/testing.h"
#include "tests/nn/conv_testing.h"

using namespace chainrule;
using Catch::Contains;
using testing::conv1d_by_loops;
using testing::numbers;

namespace {

using V = const std::vector<Tensor>&;

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
