// Initialisers: PyTorch's gains and fans, the bounds and spreads of each distribution, exact values,
// reproducibility from seeds, and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "nn/init.h"

using namespace chainrule;
using Catch::Contains;

namespace {

struct Stats {
  double mean = 0, stddev = 0, max_abs = 0;
};

Stats stats(const Tensor& t) {
  const std::vector<double> v = t.to_vector();
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) {
    s.stddev += (x - s.mean) * (x - s.mean);
    s.max_abs = std::max(s.max_abs, std::abs(x));
  }
  s.stddev = std::sqrt(s.stddev / static_cast<double>(v.size()));
  return s;
}

Tensor filled(const nn::Init& init, const Shape& shape, uint64_t seed = 1) {
  Generator gen(seed);
  Tensor t = zeros(shape, DType::float64);
  init.apply(t, gen);
  return t;
}

}  // namespace

TEST_CASE("nn: calculate_gain and compute_fans follow PyTorch") {
  CHECK(nn::calculate_gain(nn::Nonlinearity::Linear) == 1.0);
  CHECK(nn::calculate_gain(nn::Nonlinearity::Sigmoid) == 1.0);
  CHECK(nn::calculate_gain(nn::Nonlinearity::Tanh) == Approx(5.0 / 3.0));
  CHECK(nn::calculate_gain(nn::Nonlinearity::ReLU) == Approx(std::sqrt(2.0)));
  CHECK(nn::calculate_gain(nn::Nonlinearity::LeakyReLU, 0.2) == Approx(std::sqrt(2.0 / 1.04)));
  const nn::Fans f = nn::compute_fans({30, 20});
  CHECK(f.fan_in == 20);
  CHECK(f.fan_out == 30);
  const nn::Fans conv = nn::compute_fans({8, 4, 3, 3});
  CHECK(conv.fan_in == 36);
  CHECK(conv.fan_out == 72);
  CHECK_THROWS_AS(nn::compute_fans({5}), std::invalid_argument);
  CHECK_THROWS_WITH(nn::compute_fans({5}), Contains("at least 2 dims") && Contains("[5]"));
}

TEST_CASE("nn: Init::uniform(-1, 1), the lecture's, stays in range and covers it") {
  const Stats s = stats(filled(nn::Init::uniform(-1, 1), {100, 100}));
  CHECK(s.max_abs < 1.0);
  CHECK(s.max_abs > 0.99);
  CHECK(s.mean == Approx(0.0).margin(0.02));
  CHECK(s.stddev == Approx(1.0 / std::sqrt(3.0)).epsilon(0.02));
}

TEST_CASE("nn: Xavier/Glorot uniform and normal use gain * sqrt(6 or 2 / (fan_in + fan_out))") {
  const Shape shape{200, 300};  // fan_in 300, fan_out 200
  const double a = 2.0 * std::sqrt(6.0 / 500.0);
  const Stats u = stats(filled(nn::Init::xavier_uniform(2.0), shape));
  CHECK(u.max_abs <= a);
  CHECK(u.max_abs > 0.99 * a);
  const Stats n = stats(filled(nn::Init::xavier_normal(), shape));
  CHECK(n.stddev == Approx(std::sqrt(2.0 / 500.0)).epsilon(0.02));
  CHECK(n.mean == Approx(0.0).margin(0.003));
}

TEST_CASE("nn: He/Kaiming uniform and normal use gain / sqrt(fan) with fan_in by default") {
  const Shape shape{200, 300};
  const double relu_bound = std::sqrt(2.0) * std::sqrt(3.0 / 300.0);  // = sqrt(6 / fan_in)
  const Stats u = stats(filled(nn::Init::kaiming_uniform(), shape));
  CHECK(u.max_abs <= relu_bound);
  CHECK(u.max_abs > 0.99 * relu_bound);
  const Stats n = stats(filled(nn::Init::kaiming_normal(), shape));
  CHECK(n.stddev == Approx(std::sqrt(2.0 / 300.0)).epsilon(0.02));
  const Stats out = stats(filled(nn::Init::kaiming_normal(nn::Nonlinearity::Tanh, nn::FanMode::FanOut), shape));
  CHECK(out.stddev == Approx(5.0 / 3.0 / std::sqrt(200.0)).epsilon(0.02));
  const double leaky = std::sqrt(2.0 / (1 + 0.01)) * std::sqrt(3.0 / 300.0);
  CHECK(stats(filled(nn::Init::kaiming_uniform(nn::Nonlinearity::LeakyReLU, nn::FanMode::FanIn, 0.1), shape))
            .max_abs <= leaky);
}

TEST_CASE("nn: torch_default is U(-1/sqrt(fan_in), 1/sqrt(fan_in))") {
  const Stats s = stats(filled(nn::Init::torch_default(), {50, 64}));
  CHECK(s.max_abs <= 0.125);
  CHECK(s.max_abs > 0.12);
}

TEST_CASE("nn: constant, values and set_values give exact numbers") {
  CHECK(filled(nn::Init::constant(0.25), {2, 2}).to_vector() == std::vector<double>(4, 0.25));
  CHECK(filled(nn::Init::zeros(), {3}).to_vector() == std::vector<double>(3, 0.0));
  CHECK(filled(nn::Init::values({{1.0, 2.0}, {3.0, 4.0}}), {2, 2}).to_vector() ==
        std::vector<double>{1, 2, 3, 4});
  Tensor w = zeros({3, 2}, TensorOptions(DType::float64).requires_grad(true));  // a parameter
  const uint32_t version = w.version();
  nn::set_values(w, {{-0.2, -0.4}, {0.4, -0.7}, {-1.0, -0.8}});
  CHECK(w.to_vector() == std::vector<double>{-0.2, -0.4, 0.4, -0.7, -1.0, -0.8});
  CHECK(w.version() > version);  // an in-place change, seen by the version counter
  CHECK(w.requires_grad());
  Tensor f = zeros({2});
  nn::set_values(f, {0.1, -0.2});
  CHECK(f.at({0}) == Approx(0.1f));
}

TEST_CASE("nn: initialisers reject bad arguments and shapes, naming them") {
  CHECK_THROWS_AS(nn::Init::uniform(1, -1), std::invalid_argument);
  CHECK_THROWS_WITH(nn::Init::uniform(1, -1), Contains("a=1 b=-1"));
  CHECK_THROWS_WITH(nn::Init::normal(0, -2), Contains("stddev=-2"));
  CHECK_THROWS_WITH(nn::Init::xavier_uniform(0), Contains("gain must be finite and > 0, got 0"));
  Tensor w = zeros({3, 2});
  CHECK_THROWS_WITH(nn::set_values(w, {1.0, 2.0}), Contains("shape [2] but the tensor has shape [3, 2]"));
  Tensor b = zeros({3});
  Generator gen(0);
  CHECK_THROWS_WITH(nn::Init::xavier_uniform().apply(b, gen), Contains("at least 2 dims"));
  nn::Init::xavier_uniform().apply(b, gen, nn::Fans{2, 3});  // a bias with its layer's fans
  CHECK(stats(b).max_abs <= std::sqrt(6.0 / 5.0));
  // Non-finite gains and slopes, and a finite gain whose bound overflows, used to fill NaN or inf.
  CHECK_THROWS_WITH(nn::Init::xavier_normal(INFINITY), Contains("gain must be finite and > 0, got inf"));
  CHECK_THROWS_WITH(nn::Init::kaiming_uniform(nn::Nonlinearity::LeakyReLU, nn::FanMode::FanIn, NAN),
                    Contains("negative_slope must be finite, got nan"));
  Tensor big = zeros({3, 2});
  CHECK_THROWS_WITH(nn::Init::xavier_uniform(1e308).apply(big, gen), Contains("is not finite"));
  CHECK(big.to_vector() == std::vector<double>(6, 0.0));
  CHECK_THROWS_WITH(nn::Init::constant(NAN), Contains("Init::constant: the value must be finite, got nan"));
  Tensor f32 = zeros({2});  // float32: 1e300 would be inf
  CHECK_THROWS_WITH(nn::Init::constant(1e300).apply(f32, gen), Contains("is not finite in float32"));
  CHECK(f32.to_vector() == std::vector<double>(2, 0.0));
  // uniform and normal drew values that float32 cannot hold, and wrote infinities.
  CHECK_THROWS_WITH(nn::Init::uniform(-1e300, 1e300).apply(f32, gen), Contains("is not finite in float32") &&
                                                                        Contains("nothing was written"));
  CHECK_THROWS_WITH(nn::Init::normal(0, 1e300).apply(f32, gen), Contains("Init::apply(normal("));
  CHECK(f32.to_vector() == std::vector<double>(2, 0.0));
  Tensor f64 = zeros({2}, DType::float64);
  nn::Init::uniform(-1e300, 1e300).apply(f64, gen);  // fine in float64
  CHECK(std::isfinite(f64.to_vector()[0]));
  CHECK_THROWS_WITH(nn::Init::torch_default().apply(big, gen, nn::Fans{-4, 0}), Contains("the fan is -4"));
}

TEST_CASE("nn: initialisation is reproducible: same seed, same values, another seed, others") {
  for (const nn::Init& init : {nn::Init::uniform(-1, 1), nn::Init::normal(0, 1), nn::Init::xavier_normal(),
                               nn::Init::kaiming_uniform()}) {
    INFO(init.to_string());
    CHECK(filled(init, {4, 3}, 9).to_vector() == filled(init, {4, 3}, 9).to_vector());
    CHECK(filled(init, {4, 3}, 9).to_vector() != filled(init, {4, 3}, 10).to_vector());
  }
  CHECK(nn::Init::uniform(-1, 1).to_string() == "uniform(-1, 1)");
  CHECK(nn::Init::kaiming_normal().to_string() == "kaiming_normal(relu, fan_in)");
}

TEST_CASE("nn: init_weight_bias draws the weight, then the bias with the weight's fans, from the seed or gen",
          "[init]") {
  // The draws by hand: Generator(seed)'s uniform numbers, the weight's [3, 2, 2] first, then the
  // bias's [3], both within 1/sqrt(fan_in) = 1/sqrt(2 * 2).
  const double bound = 0.5;
  std::vector<double> want(15);
  Generator by_hand(21);
  for (double& v : want) v = by_hand.uniform(-bound, bound);
  struct Options : nn::WeightBiasOptions<Options> {};
  auto check = [&](const Tensor& weight, const Tensor& bias) {
    std::vector<double> got = weight.to_vector();
    for (double b : bias.to_vector()) got.push_back(b);
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-15));
  };
  Tensor weight = zeros({3, 2, 2}, DType::float64), bias = zeros({3}, DType::float64);
  Generator unused(5);
  Options().dtype(DType::float64).seed(21).init_weight_bias(weight, bias, unused);
  check(weight, bias);
  Generator given(21);
  weight = zeros({3, 2, 2}, DType::float64), bias = zeros({3}, DType::float64);
  Options().init_weight_bias(weight, bias, given);
  check(weight, bias);
  // Without a bias, only the weight's draws.
  Generator again(21);
  weight = zeros({3, 2, 2}, DType::float64);
  Options().init_weight_bias(weight, Tensor(), again);
  CHECK(weight.to_vector() == std::vector<double>(want.begin(), want.begin() + 12));
}
