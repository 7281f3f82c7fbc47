// The pools' torch options: ceil_mode, count_include_pad, divisor_override and max pooling's
// dilation, against values LibTorch 1.13 gives (torch::nn::functional, float64) and by
// finite differences; the layers, their text and their errors.
//
// The fixtures: x[i] = 2 sin(0.7 i + 0.3) in row-major order, the output weighted by
// w[k] = 1 + 0.1 k before summing, so that dx shows where each output's gradient went.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "nn/pool.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::message_of;

namespace {

Tensor input(const Shape& shape) {
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 2.0 * std::sin(0.7 * static_cast<double>(i) + 0.3);
  return from_vector(v, shape, TensorOptions(DType::float64).requires_grad(true));
}

struct Expected {
  std::vector<int64_t> shape;
  std::vector<double> y, dx;
};

void check_against(const Shape& in, const std::function<Tensor(const Tensor&)>& f, const Expected& want) {
  const Tensor x = input(in);
  const Tensor y = f(x);
  CHECK(y.shape() == Shape(want.shape));
  std::vector<double> w(static_cast<size_t>(y.numel()));
  for (size_t k = 0; k < w.size(); ++k) w[k] = 1.0 + 0.1 * static_cast<double>(k);
  sum(y * from_vector(w, y.shape(), DType::float64)).backward();
  const std::vector<double> got = y.to_vector(), dx = x.grad().to_vector();
  REQUIRE(got.size() == want.y.size());
  for (size_t k = 0; k < got.size(); ++k) CHECK(got[k] == Approx(want.y[k]).margin(1e-14));
  REQUIRE(dx.size() == want.dx.size());
  for (size_t k = 0; k < dx.size(); ++k) CHECK(dx[k] == Approx(want.dx[k]).margin(1e-14));
}

}  // namespace

TEST_CASE("nn: max_pool2d with ceil_mode and dilation gives LibTorch's values and gradients", "[pool]") {
  check_against({1, 1, 5, 5}, [](const Tensor& x) { return nn::max_pool2d(x, nn::MaxPool2dOptions(2).ceil_mode(true)); },
                {{1, 1, 3, 3},
                 {1.682941969615793, 1.9833296209049371, 0.62308272702675571, 1.9787164932467638, 1.3259384601643667,
                  1.7183236297129916, 1.9735439285492267, 0.015926367571874687, -1.9681300101632855},
                 {0, 1, 1.1, 0, 0, 0, 0, 0, 0, 1.2, 0, 1.3, 1.4, 0, 0, 0, 0, 0, 0, 1.5, 1.6, 0, 1.7, 0, 1.8}});
  std::vector<double> dx(84, 0.0);
  dx[10] = 3.3;
  dx[38] = 9.3;
  dx[64] = 8.6;
  dx[66] = 2.1;
  dx[82] = 10;
  check_against({1, 2, 6, 7},
                [](const Tensor& x) {
                  return nn::max_pool2d(x, nn::MaxPool2dOptions(3).stride(2).padding(1).dilation(2).ceil_mode(true));
                },
                {{1, 2, 3, 3},
                 {1.7008732412571288, 1.7008732412571288, 1.7008732412571288, 1.9615264954903058, 1.9615264954903058,
                  1.9615264954903058, 1.9615264954903058, 1.9615264954903058, 1.9615264954903058, 1.7981944802891578,
                  1.7981944802891578, 1.1683931688265827, 1.7981944802891578, 1.8266146630243236, 1.8266146630243236,
                  1.7981944802891578, 1.8266146630243236, 1.8266146630243236},
                 dx});
  // A window longer than the image: one output, rounding up.
  check_against({1, 1, 2, 2},
                [](const Tensor& x) { return nn::max_pool2d(x, nn::MaxPool2dOptions(3).stride(2).ceil_mode(true)); },
                {{1, 1, 1, 1}, {1.9833296209049371}, {0, 0, 1, 0}});
  check_against({1, 1, 8}, [](const Tensor& x) { return nn::max_pool1d(x, nn::MaxPool1dOptions(3).stride(2).ceil_mode(true)); },
                {{1, 1, 4},
                 {1.9833296209049371, 1.9833296209049371, 0.083161324866581871, -1.7669093114403072},
                 {0, 0, 2.1, 0, 1.2, 0, 0, 1.3}});
}

TEST_CASE("nn: avg_pool2d with ceil_mode, count_include_pad and divisor_override gives LibTorch's values", "[pool]") {
  const auto pool = nn::AvgPool2dOptions(3).stride(2).padding(1).ceil_mode(true);
  check_against({1, 1, 5, 6}, [&](const Tensor& x) { return nn::avg_pool2d(x, pool); },
                {{1, 1, 3, 4},
                 {-0.16088746264800319, 0.3472908930610008, 0.50144937395712164, 0.12583345189355433,
                  0.0029769191432176515, -0.006844398056622748, -0.0095860254736262404, -0.0023259059871314123,
                  -0.14769576234956339, 0.36218972225620605, 0.49222445903895246, 0.11526667075688975},
                 {0.1111111111111111, 0.23333333333333334, 0.12222222222222223, 0.25555555555555554,
                  0.13333333333333333, 0.35, 0.26666666666666666, 0.55555555555555558, 0.28888888888888886, 0.6,
                  0.31111111111111112, 0.81111111111111112, 0.15555555555555556, 0.32222222222222219,
                  0.16666666666666666, 0.34444444444444444, 0.17777777777777778, 0.46111111111111114,
                  0.35555555555555557, 0.73333333333333328, 0.37777777777777777, 0.77777777777777779, 0.4,
                  1.0333333333333334, 0.2, 0.41111111111111109, 0.21111111111111111, 0.43333333333333335,
                  0.22222222222222221, 0.57222222222222219}});
  check_against({1, 1, 5, 6}, [&](const Tensor& x) { return nn::avg_pool2d(x, nn::AvgPool2dOptions(pool).count_include_pad(false)); },
                {{1, 1, 3, 4},
                 {-0.36199679095800719, 0.52093633959150121, 0.7521740609356824, 0.37750035568066298,
                  0.0044653787148264774, -0.006844398056622748, -0.0095860254736262404, -0.0046518119742628245,
                  -0.33231546528651762, 0.54328458338430907, 0.73833668855842871, 0.34580001227066925},
                 {0.25, 0.43333333333333335, 0.18333333333333335, 0.3833333333333333, 0.2, 0.85,
                  0.48333333333333328, 0.83333333333333326, 0.35, 0.72777777777777775, 0.37777777777777777,
                  1.5944444444444446, 0.23333333333333331, 0.4, 0.16666666666666666, 0.34444444444444444,
                  0.17777777777777778, 0.74444444444444458, 0.68333333333333335, 1.1666666666666665,
                  0.48333333333333328, 0.99444444444444446, 0.51111111111111107, 2.1277777777777782, 0.45,
                  0.76666666666666661, 0.31666666666666665, 0.65, 0.33333333333333331, 1.3833333333333333}});
  check_against({1, 1, 4, 4},
                [](const Tensor& x) {
                  return nn::avg_pool2d(x, nn::AvgPool2dOptions(3).stride(1).padding(1).count_include_pad(false));
                },
                {{1, 1, 4, 4},
                 {0.28335698147990401, 0.19361621858239342, 0.011918770494515618, -0.096928391190815311,
                  0.1681262205476497, 0.30421110556864128, 0.48602056494419354, 0.54864602829010523,
                  0.018377375236418029, -0.15489600449336893, -0.42283064157081368, -0.54239892836422587,
                  0.31270467710934108, 0.28359177531812146, 0.19003492575310268, 0.11689399414628626},
                 {0.83333333333333326, 1.211111111111111, 1.336111111111111, 0.98611111111111116, 1.3444444444444443,
                  1.9444444444444442, 2.1194444444444445, 1.5583333333333336, 1.8444444444444446, 2.6444444444444444,
                  2.8194444444444446, 2.0583333333333336, 1.4444444444444444, 2.0666666666666664, 2.1916666666666669,
                  1.5972222222222223}});
  check_against({1, 1, 3, 5},
                [](const Tensor& x) { return nn::avg_pool2d(x, nn::AvgPool2dOptions(2).ceil_mode(true).divisor_override(3)); },
                {{1, 1, 2, 3},
                 {-0.30159787809238647, 0.27319778030215297, 0.23541468396444587, 1.2265299115012975,
                  0.45849643702369408, -0.41671376592858805},
                 {1.0 / 3, 1.0 / 3, 0.3666666666666667, 0.3666666666666667, 0.4, 1.0 / 3, 1.0 / 3, 0.3666666666666667,
                  0.3666666666666667, 0.4, 0.43333333333333335, 0.43333333333333335, 0.46666666666666662,
                  0.46666666666666662, 0.5}});
  check_against({1, 1, 8},
                [](const Tensor& x) {
                  return nn::avg_pool1d(x, nn::AvgPool1dOptions(3).stride(2).padding(1).ceil_mode(true).count_include_pad(false));
                },
                {{1, 1, 5},
                 {1.1369911914692361, 1.6723993172076774, 0.07012396802781555, -1.6485617762186464,
                  -1.7669093114403072},
                 {0.5, 0.8666666666666667, 0.3666666666666667, 0.76666666666666661, 0.4, 0.83333333333333326,
                  0.43333333333333335, 1.8333333333333333}});
}

TEST_CASE("nn: the pools' torch options pass gradcheck and gradgradcheck", "[pool]") {
  chainrule::testing::Numbers rng(31);
  const Tensor x = from_vector(rng.uniform_vector(2 * 2 * 5 * 7, -1, 1), {2, 2, 5, 7}, DType::float64);
  const std::vector<std::function<Tensor(const Tensor&)>> pools = {
      [](const Tensor& v) { return nn::max_pool2d(v, nn::MaxPool2dOptions({3, 2}).stride(2).padding(1).ceil_mode(true)); },
      [](const Tensor& v) { return nn::max_pool2d(v, nn::MaxPool2dOptions(2).stride(1).dilation({2, 3})); },
      [](const Tensor& v) { return nn::avg_pool2d(v, nn::AvgPool2dOptions(3).stride(2).padding(1).ceil_mode(true)); },
      [](const Tensor& v) {
        return nn::avg_pool2d(v, nn::AvgPool2dOptions({2, 3}).stride(2).padding(1).count_include_pad(false).ceil_mode(true));
      },
      [](const Tensor& v) { return nn::avg_pool2d(v, nn::AvgPool2dOptions(2).divisor_override(5)); },
      [](const Tensor& v) { return nn::max_pool1d(reshape(v, {4, 5, 7}), nn::MaxPool1dOptions(3).stride(2).ceil_mode(true)); },
  };
  for (size_t k = 0; k < pools.size(); ++k) {
    CAPTURE(k);
    const auto f = [&](const std::vector<Tensor>& in) { return pools[k](in[0]); };
    const GradcheckReport first = gradcheck(f, {x});
    INFO(first);
    CHECK(first.passed);
    const GradcheckReport second = gradgradcheck(f, {x});
    INFO(second);
    CHECK(second.passed);
  }
}

TEST_CASE("nn: the pools' defaults keep their values, and the layers take the options", "[pool]") {
  const Tensor x = input({1, 2, 6, 6});
  // Explicit defaults are the positional forms.
  const Tensor a = nn::max_pool2d(x, {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 1});
  const Tensor b = nn::max_pool2d(x, nn::MaxPool2dOptions(3).stride(2).padding(1));
  CHECK(a.to_vector() == b.to_vector());
  const Tensor c = nn::avg_pool2d(x, {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 1});
  const Tensor d = nn::avg_pool2d(x, nn::AvgPool2dOptions(3).stride(2).padding(1).count_include_pad(true));
  CHECK(c.to_vector() == d.to_vector());
  // ceil_mode adds a window only where one starts inside the image or its left padding: 6 rows,
  // kernel 2, stride 2 divide evenly, so nothing changes.
  CHECK(nn::max_pool2d(x, nn::MaxPool2dOptions(2).ceil_mode(true)).shape() == Shape{1, 2, 3, 3});
  CHECK(nn::max_pool2d(x, nn::MaxPool2dOptions(3).stride(2).ceil_mode(true)).shape() == Shape{1, 2, 3, 3});
  CHECK(nn::max_pool2d(x, nn::MaxPool2dOptions(3).stride(2)).shape() == Shape{1, 2, 2, 2});

  nn::MaxPool2d max(nn::MaxPool2dOptions(3).stride(2).ceil_mode(true));
  CHECK(max.forward(x).to_vector() == nn::max_pool2d(x, nn::MaxPool2dOptions(3).stride(2).ceil_mode(true)).to_vector());
  CHECK(max.to_string() == "MaxPool2d(kernel_size=[3, 3], stride=[2, 2], padding=[0, 0], ceil_mode=true)");
  CHECK(nn::MaxPool2d(2).to_string() == "MaxPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0])");
  CHECK(nn::MaxPool2d(nn::MaxPool2dOptions(2).dilation({1, 2})).to_string() ==
        "MaxPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0], dilation=[1, 2])");
  nn::AvgPool2d avg(nn::AvgPool2dOptions(3).padding(1).stride(1).count_include_pad(false).divisor_override(4));
  CHECK(avg.forward(x).shape() == Shape{1, 2, 6, 6});
  CHECK(avg.to_string() ==
        "AvgPool2d(kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], count_include_pad=false, divisor_override=4)");
  CHECK(nn::MaxPool1d(nn::MaxPool1dOptions(3).dilation(2).ceil_mode(true)).to_string() ==
        "MaxPool1d(kernel_size=[3], stride=[3], padding=[0], dilation=[2], ceil_mode=true)");
  CHECK(nn::AvgPool1d(nn::AvgPool1dOptions(4).ceil_mode(true)).forward(input({1, 1, 9})).shape() == Shape{1, 1, 3});
}

TEST_CASE("nn: the pools' options are checked, naming the op and the window", "[pool]") {
  const Tensor x = input({1, 1, 4, 4});
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::MaxPool2d(nn::MaxPool2dOptions(2).padding(2)); }),
             Contains("MaxPool2d") && Contains("padding [2, 2] must be at most half the kernel [2, 2]"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::MaxPool2d(nn::MaxPool2dOptions(2).dilation(0)); }),
             Contains("MaxPool2d") && Contains("dilation [0, 0]"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::AvgPool2d(nn::AvgPool2dOptions(2).divisor_override(0)); }),
             Contains("AvgPool2d: divisor_override must not be 0"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::avg_pool2d(x, nn::AvgPool2dOptions(2).divisor_override(0)); }),
             Contains("avg_pool2d: divisor_override must not be 0"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::AvgPool1d(nn::AvgPool1dOptions(3).stride(0)); }),
             Contains("AvgPool1d") && Contains("stride 0"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::max_pool2d(input({1, 4, 4}), nn::MaxPool2dOptions(2)); }),
             Contains("max_pool2d") && Contains("[1, 4, 4]"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::max_pool1d(input({1, 1, 2}), nn::MaxPool1dOptions(3)); }),
             Contains("max_pool1d") && Contains("shorter than the window"));
  // Sizes whose window arithmetic overflows are refused, not wrapped.
  const int64_t huge = INT64_MAX / 2;
  CHECK_THAT(message_of<std::invalid_argument>(
                 [&] { nn::max_pool2d(x, nn::MaxPool2dOptions({1, 2}).stride({1, huge}).dilation({1, huge}).ceil_mode(true)); }),
             Contains("max_pool2d") && Contains("overflow"));
}
