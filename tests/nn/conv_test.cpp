// Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and Flatten: values against plain loops, PyTorch's conventions
// (cross-correlation, -inf padding for max, zeros counted for average, default initialiser bounds),
// errors, and the finite-difference checks of first and second derivatives.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <tuple>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/data.h"
#include "nn/dense.h"
#include "nn/loss.h"
#include "nn/sequential.h"
#include "optim/sgd.h"
#include "tests/autograd/testing.h"
#include "tests/nn/conv_testing.h"

using namespace chainrule;
using Catch::Contains;
using testing::conv_by_loops;
using testing::numbers;
using V = const std::vector<Tensor>&;

TEST_CASE("nn: conv2d is the cross-correlation of the definition, with stride, padding and dilation") {
  struct Case {
    Shape x, w;
    std::array<int64_t, 2> stride, padding, dilation;
    Shape out;
  };
  for (const Case& c : {Case{{2, 3, 5, 6}, {4, 3, 3, 2}, {1, 1}, {0, 0}, {1, 1}, {2, 4, 3, 5}},
                        Case{{1, 2, 7, 7}, {3, 2, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 3, 4, 4}},
                        Case{{1, 1, 6, 5}, {2, 1, 2, 2}, {1, 2}, {0, 1}, {2, 1}, {1, 2, 4, 3}}}) {
    INFO("x " << c.x.str() << " w " << c.w.str());
    const Tensor x = numbers(c.x, 1), w = numbers(c.w, 2), b = numbers({c.w[0]}, 3);
    const Tensor y = nn::conv2d(x, w, b, c.stride, c.padding, c.dilation);
    REQUIRE(y.shape() == c.out);
    const std::vector<double> want = conv_by_loops(x, w, b, c.stride, c.padding, c.dilation, c.out[2], c.out[3]);
    const std::vector<double> got = y.to_vector();
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-14));
    CHECK(nn::conv2d(x, w, Tensor(), c.stride, c.padding, c.dilation).shape() == c.out);
  }
}

TEST_CASE("nn: conv2d's gradients pass the finite-difference checks, first and second order") {
  const Tensor x = numbers({2, 2, 4, 4}, 4, true), w = numbers({3, 2, 2, 3}, 5, true), b = numbers({3}, 6, true);
  testing::check_first_and_second_order(
      [](V in) { return nn::conv2d(in[0], in[1], in[2], {2, 1}, {1, 1}); }, {x, w, b});
}

TEST_CASE("nn: conv2d with groups convolves each block of channels with its own filters", "[conv]") {
  struct Case {
    Shape x, w;
    int64_t groups;
    std::array<int64_t, 2> stride, padding, dilation;
  };
  // Two groups, depthwise (groups = C), depthwise with a channel multiplier of 2, groups = 3 with
  // stride, padding and dilation.
  for (const Case& c : {Case{{2, 4, 5, 6}, {6, 2, 3, 2}, 2, {1, 1}, {0, 0}, {1, 1}},
                        Case{{2, 3, 5, 5}, {3, 1, 3, 3}, 3, {1, 1}, {1, 1}, {1, 1}},
                        Case{{1, 3, 6, 5}, {6, 1, 2, 3}, 3, {2, 1}, {1, 0}, {1, 2}},
                        Case{{1, 6, 7, 7}, {9, 2, 3, 3}, 3, {2, 2}, {1, 2}, {2, 1}}}) {
    INFO("x " << c.x.str() << " w " << c.w.str() << " groups " << c.groups);
    const Tensor x = numbers(c.x, 11), w = numbers(c.w, 12), b = numbers({c.w[0]}, 13);
    const Tensor y = nn::conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
    const auto [oh, ow] = Window2d{.kernel = {c.w[2], c.w[3]}, .stride = c.stride, .padding = c.padding,
                                   .dilation = c.dilation}.output_size(c.x[2], c.x[3]);
    REQUIRE(y.shape() == Shape{c.x[0], c.w[0], oh, ow});
    const std::vector<double> want = conv_by_loops(x, w, b, c.stride, c.padding, c.dilation, oh, ow, c.groups);
    const std::vector<double> got = y.to_vector();
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-14));
  }
  // groups = 1 is the plain convolution, and a grouped one is the plain one of a block-diagonal weight.
  const Tensor x = numbers({1, 4, 5, 5}, 14), w = numbers({4, 2, 3, 3}, 15);
  const Tensor full_w = concat({concat({slice(w, 0, 0, 2), zeros({2, 2, 3, 3}, DType::float64)}, 1),
                                concat({zeros({2, 2, 3, 3}, DType::float64), slice(w, 0, 2, 4)}, 1)},
                               0);
  const std::vector<double> grouped = nn::conv2d(x, w, Tensor(), {1, 1}, {1, 1}, {1, 1}, 2).to_vector();
  const std::vector<double> plain = nn::conv2d(x, full_w, Tensor(), {1, 1}, {1, 1}).to_vector();
  for (std::size_t i = 0; i < plain.size(); ++i) CHECK(grouped[i] == Approx(plain[i]).epsilon(1e-12).margin(1e-14));
}

TEST_CASE("nn: grouped and depthwise conv2d pass the finite-difference checks, first and second order", "[conv]") {
  const Tensor x = numbers({2, 4, 4, 4}, 16, true), b = numbers({4}, 18, true);
  const Tensor w2 = numbers({4, 2, 2, 3}, 17, true), depthwise = numbers({4, 1, 3, 3}, 19, true);
  testing::check_first_and_second_order(
      [](V in) { return nn::conv2d(in[0], in[1], in[2], {2, 1}, {1, 1}, {1, 1}, 2); }, {x, w2, b});
  testing::check_first_and_second_order(
      [](V in) { return nn::conv2d(in[0], in[1], in[2], {1, 1}, {1, 1}, {1, 1}, 4); }, {x, depthwise, b});
}

TEST_CASE("nn: conv2d's groups errors name the groups and the shapes", "[conv]") {
  const Tensor x = zeros({2, 4, 8, 8});
  CHECK_THROWS_WITH(nn::conv2d(x, zeros({4, 2, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 0),
                    Contains("conv2d: groups must be >= 1, got 0"));
  CHECK_THROWS_WITH(nn::conv2d(x, zeros({4, 1, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                    Contains("conv2d: the input [2, 4, 8, 8] has 4 channels but the weight [4, 1, 3, 3] with groups=2 "
                             "expects 1 per group"));
  CHECK_THROWS_WITH(nn::conv2d(x, zeros({4, 1, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 3),
                    Contains("conv2d: the input [2, 4, 8, 8] has 4 channels but the weight [4, 1, 3, 3] with groups=3"));
  CHECK_THROWS_WITH(nn::conv2d(x, zeros({5, 2, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                    Contains("conv2d: the weight [5, 2, 3, 3] has 5 out channels, not divisible by groups=2"));
  CHECK_THROWS_WITH(nn::conv1d(zeros({2, 4, 8}), zeros({4, 4, 3}), Tensor(), 1, 0, 1, 2),
                    Contains("conv1d: the input [2, 4, 8] has 4 channels but the weight [4, 4, 3] with groups=2 "
                             "expects 4 per group"));
}

TEST_CASE("nn: max_pool2d and avg_pool2d take each window's maximum and mean") {
  const Tensor x = reshape(tensor({1.0, 5, 2, 0, -1, 3, 4, 8, 7, 6, -2, -3, 0, 9, 1, 2}, DType::float64), {1, 1, 4, 4});
  CHECK(nn::max_pool2d(x, {2, 2}).to_vector() == std::vector<double>{5, 8, 9, 2});
  CHECK(nn::avg_pool2d(x, {2, 2}).to_vector() == std::vector<double>{2, 3.5, 5.5, -0.5});
  CHECK(nn::max_pool2d(x, {3, 3}, std::array<int64_t, 2>{1, 1}).to_vector() == std::vector<double>{7, 8, 9, 9});
  // Padding: -inf for max (an all-negative image keeps its values), zeros counted for average.
  const Tensor neg = full({1, 1, 2, 2}, -3.0, DType::float64);
  CHECK(nn::max_pool2d(neg, {2, 2}, std::array<int64_t, 2>{1, 1}, {1, 1}).to_vector() == std::vector<double>(9, -3.0));
  CHECK(nn::avg_pool2d(neg, {2, 2}, std::array<int64_t, 2>{2, 2}, {1, 1}).to_vector() ==
        std::vector<double>{-0.75, -0.75, -0.75, -0.75});
  // Channels and batch items pool apart.
  const Tensor many = numbers({2, 3, 4, 6}, 7);
  const Tensor pooled = nn::MaxPool2d(2).forward(many);
  REQUIRE(pooled.shape() == Shape{2, 3, 2, 3});
  CHECK(pooled.at({1, 2, 1, 2}) == std::max({many.at({1, 2, 2, 4}), many.at({1, 2, 2, 5}), many.at({1, 2, 3, 4}), many.at({1, 2, 3, 5})}));
  // The gradient of max goes to each window's maximum.
  const Tensor leaf_x = x.detach().set_requires_grad(true);
  sum(nn::max_pool2d(leaf_x, {2, 2})).backward();
  CHECK(leaf_x.grad().to_vector() == std::vector<double>{0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1});
  // Ties: the first maximum of the window takes the whole gradient (PyTorch's), and a NaN wins.
  const Tensor tied = ones({1, 1, 2, 2}, TensorOptions(DType::float64).requires_grad(true));
  sum(nn::max_pool2d(tied, {2, 2})).backward();
  CHECK(tied.grad().to_vector() == std::vector<double>{1, 0, 0, 0});
  CHECK(std::isnan(nn::max_pool2d(tensor({{{{1.0, NAN}, {3.0, 2.0}}}}), {2, 2}).item()));
  // With dilation a window can lie wholly in the padding: -inf there, and no gradient.
  const Tensor row = tensor({{{{1.0, 2.0, 3.0}}}}, TensorOptions(DType::float64).requires_grad(true));
  const Tensor dilated = max_pool2d(row, {.kernel = {1, 2}, .stride = {1, 1}, .padding = {0, 1}, .dilation = {1, 4}});
  CHECK(dilated.to_vector() == std::vector<double>{-INFINITY});  // taps at -1 and 3 of a row of 3
  sum(dilated).backward();
  CHECK(row.grad().to_vector() == std::vector<double>{0, 0, 0});
}

TEST_CASE("nn: pooling's gradients pass the finite-difference checks, first and second order") {
  const Tensor x = numbers({1, 2, 5, 5}, 8, true);  // continuous values: no ties in a window
  testing::check_first_and_second_order([](V in) { return nn::max_pool2d(in[0], {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 1}); }, {x});
  testing::check_first_and_second_order([](V in) { return nn::avg_pool2d(in[0], {2, 3}, std::array<int64_t, 2>{1, 2}, {1, 1}); }, {x});
}

TEST_CASE("nn: adaptive_avg_pool2d averages torch's windows, for any input size") {
  // Each cell against its window by plain loops: output sizes that divide the input (one pooling
  // op), that do not (overlapping windows: 5 rows into 3 are rows 0-1, 1-3, 3-4), and [1, 1].
  const Tensor x = numbers({2, 3, 5, 7}, 9);
  const std::vector<double> v = x.to_vector();
  for (const std::array<int64_t, 2> out : {std::array<int64_t, 2>{3, 2}, {5, 7}, {1, 1}, {1, 7}, {2, 3}, {4, 1}}) {
    INFO("output [" << out[0] << ", " << out[1] << "]");
    const Tensor y = nn::AdaptiveAvgPool2d(nn::Size2d(out[0], out[1])).forward(x);
    REQUIRE(y.shape() == Shape{2, 3, out[0], out[1]});
    for (int64_t plane = 0; plane < 6; ++plane)
      for (int64_t i = 0; i < out[0]; ++i)
        for (int64_t j = 0; j < out[1]; ++j) {
          const int64_t r0 = i * 5 / out[0], r1 = ((i + 1) * 5 + out[0] - 1) / out[0];
          const int64_t c0 = j * 7 / out[1], c1 = ((j + 1) * 7 + out[1] - 1) / out[1];
          double total = 0;
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = c0; c < c1; ++c) total += v[static_cast<std::size_t>((plane * 5 + r) * 7 + c)];
          CHECK(y.to_vector()[static_cast<std::size_t>((plane * out[0] + i) * out[1] + j)] ==
                Approx(total / static_cast<double>((r1 - r0) * (c1 - c0))).epsilon(1e-14));
        }
  }
  CHECK(nn::AdaptiveAvgPool2d(1).to_string() == "AdaptiveAvgPool2d(output_size=[1, 1])");
  const Tensor leaf = numbers({1, 2, 5, 4}, 10, true);
  testing::check_first_and_second_order([](V in) { return nn::adaptive_avg_pool2d(in[0], {3, 3}); }, {leaf});
  testing::check_first_and_second_order([](V in) { return nn::adaptive_avg_pool2d(in[0], {1, 2}); }, {leaf});
  CHECK_THROWS_WITH(nn::AdaptiveAvgPool2d(nn::Size2d(0, 2)),
                    Contains("AdaptiveAvgPool2d: the output size must be >= 1 in each dim, got [0, 2]"));
  CHECK_THROWS_WITH(nn::adaptive_avg_pool2d(zeros({2, 3}), {1, 1}),
                    Contains("adaptive_avg_pool2d: expected an image batch [N, C, H, W], got [2, 3]"));
  CHECK_THROWS_WITH(nn::adaptive_avg_pool2d(zeros({1, 1, 0, 3}), {1, 1}),
                    Contains("adaptive_avg_pool2d: the input [1, 1, 0, 3] has an empty image"));
}

TEST_CASE("nn: the adaptive pools refuse an output size whose windows overflow, naming the op", "[pool]") {
  // Window i ends at ceil((i + 1) H / OH): for OH near int64's largest, (i + 1) H overflowed and the
  // error named avg_pool2d with a kernel of -1.
  const int64_t top = std::numeric_limits<int64_t>::max();
  const Tensor x = zeros({1, 1, 3, 4});
  const std::string overflow = "the output size [9223372036854775807, 1] for the input [1, 1, 3, 4] overflows";
  CHECK_THROWS_WITH(nn::adaptive_avg_pool2d(x, {top, 1}), Contains("adaptive_avg_pool2d: " + overflow));
  CHECK_THROWS_WITH(nn::adaptive_max_pool2d(x, {top, 1}), Contains("adaptive_max_pool2d: " + overflow));
  CHECK_THROWS_WITH(nn::adaptive_max_pool1d(zeros({1, 1, 3}), top),
                    Contains("adaptive_max_pool1d: the output size 9223372036854775807 for the input [1, 1, 3] "
                             "overflows"));
  // Larger than the input is fine (torch's windows, overlapping).
  CHECK(nn::adaptive_max_pool2d(x, {7, 9}).shape() == Shape{1, 1, 7, 9});
}

TEST_CASE("nn: the adaptive pools make an output larger than the input in one op, with torch's windows", "[pool]") {
  // Over 3 columns, 5 cells: torch's windows [0], [0, 1], [1], [1, 2], [2]. Each cell was its own
  // slice and pool, concatenated: 200000 cells made 200000 ops of about a kilobyte each, and
  // {1, 2^40} ran the machine out of memory instead of throwing.
  const auto run = [](const std::vector<double>& v, bool max) {
    const Tensor x = from_vector(v, {1, 1, 1, 3}, TensorOptions(DType::float64).requires_grad(true));
    const Tensor y = max ? nn::adaptive_max_pool2d(x, {1, 5}) : nn::adaptive_avg_pool2d(x, {1, 5});
    sum(y * from_vector({1.0, 1.1, 1.2, 1.3, 1.4}, {1, 1, 1, 5}, DType::float64)).backward();
    return std::tuple{y.grad_fn_name(), y.to_vector(), x.grad().to_vector()};
  };
  const auto [avg_op, avg, avg_dx] = run({1, 5, 2}, false);
  CHECK(avg_op == "div");  // the pairs' sums over the windows' lengths
  CHECK(avg == std::vector<double>{1, 3, 5, 3.5, 2});
  CHECK_THAT(avg_dx, Catch::Matchers::Approx(std::vector<double>{1.55, 2.4, 2.05}).margin(1e-15));
  const auto [max_op, mx, max_dx] = run({1, 5, 2}, true);
  CHECK(max_op == "max_pool2d");
  CHECK(mx == std::vector<double>{1, 5, 5, 5, 2});
  CHECK_THAT(max_dx, Catch::Matchers::Approx(std::vector<double>{1, 3.6, 1.4}).margin(1e-15));
  // Ties: each window's first element gets its gradient, as torch's.
  CHECK_THAT(std::get<2>(run({4, 4, 4}, true)),
             Catch::Matchers::Approx(std::vector<double>{2.1, 2.5, 1.4}).margin(1e-15));
  // An infinite element stays itself in a one-element window (the appended 0 adds nothing).
  CHECK(std::get<1>(run({INFINITY, 1, 2}, false))[0] == INFINITY);
  // Rows and columns at once, and a large output, in one op per dim.
  const Tensor x = numbers({2, 3, 2, 3}, 3, true);
  CHECK(nn::adaptive_max_pool2d(x, {7, 200000}).shape() == Shape{2, 3, 7, 200000});
  testing::check_first_and_second_order([](V in) { return nn::adaptive_avg_pool2d(in[0], {5, 7}); }, {x});
  testing::check_first_and_second_order([](V in) { return nn::adaptive_max_pool2d(in[0], {3, 4}); }, {x});
}

TEST_CASE("nn: Conv2d registers torch's parameters and initialises them within torch's bound") {
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, {3, 5}).padding(1).seed(4));
  CHECK(conv.weight().shape() == Shape{8, 3, 3, 5});
  CHECK(conv.bias().shape() == Shape{8});
  const double bound = 1 / std::sqrt(3.0 * 3 * 5);
  for (const Tensor& t : {conv.weight(), conv.bias()}) {
    const std::vector<double> v = t.to_vector();
    CHECK(*std::max_element(v.begin(), v.end()) <= bound);
    CHECK(*std::min_element(v.begin(), v.end()) >= -bound);
    CHECK(*std::max_element(v.begin(), v.end()) > bound / 2);  // spread out, not all near 0
  }
  CHECK(conv.to_string() == "Conv2d(3, 8, kernel_size=[3, 5], stride=[1, 1], padding=[1, 1])");
  CHECK(conv.forward(zeros({2, 3, 6, 6})).shape() == Shape{2, 8, 6, 4});
  CHECK(nn::Conv2d(nn::Conv2dOptions(1, 2, 3).bias(false).dilation(2).dtype(DType::float64)).to_string() ==
        "Conv2d(1, 2, kernel_size=[3, 3], stride=[1, 1], dilation=[2, 2], bias=false, dtype=float64)");
  CHECK(nn::MaxPool2d(2).to_string() == "MaxPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0])");
  CHECK(nn::AvgPool2d({3, 2}, nn::Size2d(1), 1).to_string() == "AvgPool2d(kernel_size=[3, 2], stride=[1, 1], padding=[1, 1])");
  CHECK(nn::Flatten().to_string() == "Flatten(start_dim=1, end_dim=-1)");
}

TEST_CASE("nn: Flatten merges dims start_dim..end_dim") {
  const Tensor x = zeros({2, 3, 4, 5});
  CHECK(nn::Flatten().forward(x).shape() == Shape{2, 60});
  CHECK(nn::Flatten(0).forward(x).shape() == Shape{120});
  CHECK(nn::Flatten(1, 2).forward(x).shape() == Shape{2, 12, 5});
  CHECK(nn::Flatten(-2).forward(x).shape() == Shape{2, 3, 20});
  CHECK(nn::Flatten().forward(Tensor(2.0)).shape() == Shape{1});
  CHECK_THROWS_WITH(nn::Flatten(2, 1).forward(x), Contains("Flatten::forward: start_dim 2 comes after end_dim 1 for an input [2, 3, 4, 5]"));
  CHECK_THROWS_AS(nn::Flatten(4).forward(x), std::out_of_range);
}

TEST_CASE("nn: convolution and pooling errors name the op, the shapes and the sizes") {
  const Tensor x = zeros({2, 3, 8, 8});
  CHECK_THROWS_WITH(nn::conv2d(zeros({3, 8, 8}), zeros({4, 3, 3, 3})),
                    Contains("conv2d: expected an image batch [N, C, H, W], got [3, 8, 8]"));
  CHECK_THROWS_WITH(nn::conv2d(x, zeros({4, 2, 3, 3})),
                    Contains("conv2d: the input [2, 3, 8, 8] has 3 channels but the weight [4, 2, 3, 3] expects 2"));
  CHECK_THROWS_WITH(nn::conv2d(x, zeros({4, 3, 3})), Contains("conv2d: expected a weight [O, C / groups, kh, kw], got [4, 3, 3]"));
  CHECK_THROWS_WITH(nn::conv2d(x, zeros({4, 3, 3, 3}), zeros({3})),
                    Contains("conv2d: bias has shape [3], expected [4] (the weight's out channels)"));
  CHECK_THROWS_WITH(nn::conv2d(x, zeros({4, 3, 3, 3}, DType::float64)), Contains("conv2d: the input is float32 but the weight is float64"));
  CHECK_THROWS_WITH(nn::conv2d(x, zeros({4, 3, 9, 3})), Contains("unfold: the input [2, 3, 8, 8] is smaller than the window"));
  nn::Conv2d conv(nn::Conv2dOptions(3, 4, 3));
  CHECK_THROWS_WITH(conv.forward(zeros({2, 1, 8, 8})),
                    Contains("Conv2d::forward: expected an input [N, 3, H, W] (in_channels=3), got [2, 1, 8, 8]"));
  CHECK_THROWS_WITH(conv.forward(zeros({2, 3, 8, 8}, DType::float64)),
                    Contains("Conv2d::forward: the input is float64 but the layer's parameters are float32"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(0, 4, 3)),
                    Contains("Conv2d: in_channels, out_channels and the kernel size must be >= 1, got 0, 4 and [3, 3]"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).stride(0)), Contains("Conv2d: kernel, stride and dilation must be >= 1 and padding >= 0, got kernel [3, 3], stride [0, 0]"));
  CHECK_THROWS_WITH(nn::MaxPool2d(2, nn::Size2d(2), 2), Contains("MaxPool2d: padding [2, 2] must be at most half the kernel [2, 2]"));
  CHECK_THROWS_WITH(nn::AvgPool2d(0), Contains("AvgPool2d: kernel, stride and dilation must be >= 1 and padding >= 0, got kernel [0, 0], stride [0, 0]"));
  CHECK_THROWS_WITH(nn::max_pool2d(zeros({1, 1, 1, 1}), {2, 2}), Contains("max_pool2d: the input [1, 1, 1, 1] is smaller than the window"));
  CHECK_THROWS_WITH(max_pool2d(zeros({1, 1, 4, 4}), {.kernel = {2, 2}, .padding = {2, 0}}),
                    Contains("max_pool2d: the padding must be at most half the kernel, got kernel [2, 2], stride [1, 1], padding [2, 0]"));
}

TEST_CASE("nn: a small CNN learns to tell a vertical bar from a horizontal one") {
  // 6x6 images with one bright row (label 0) or column (label 1) at a random place, plus noise.
  Generator gen(11);
  const int64_t n = 32;
  std::vector<double> pixels(static_cast<std::size_t>(n * 36));
  std::vector<int64_t> labels(static_cast<std::size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    labels[static_cast<std::size_t>(k)] = k % 2;
    const auto line = static_cast<int64_t>(gen.uniform(0, 6));
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t j = 0; j < 6; ++j)
        pixels[static_cast<std::size_t>(k * 36 + i * 6 + j)] = ((k % 2 ? j : i) == line ? 1.0 : 0.0) + gen.uniform(-0.1, 0.1);
  }
  const Tensor x = from_vector(pixels, {n, 1, 6, 6}, DType::float64);
  nn::manual_seed(3);
  auto net = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 4, 3).padding(1).dtype(DType::float64)),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Dense>(nn::DenseOptions(4 * 3 * 3, 2).dtype(DType::float64)));
  optim::SGD opt(net->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    const Tensor loss = nn::cross_entropy(net->forward(x), labels);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(last < first / 10);
  CHECK(nn::accuracy(nn::argmax_labels(net->forward(x)), labels) == 1.0);
}
