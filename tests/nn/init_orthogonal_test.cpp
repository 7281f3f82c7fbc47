// Init::orthogonal and Init::trunc_normal: orthonormal rows or columns on tall, wide, square and
// higher-dimensional tensors with the gain; the truncated normal's support, mean and standard
// deviation against its closed forms; seeds, printing and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include "nn/init.h"

using namespace chainrule;
using Catch::Contains;

namespace {

// The [rows, cols] matrix `w` (row-major) times its transpose, on the side that should be the
// identity (W W^T for rows <= cols, else W^T W), divided by gain^2; the largest distance from I.
double distance_from_orthonormal(const std::vector<double>& w, std::size_t rows, std::size_t cols, double gain) {
  const bool wide = rows <= cols;
  const std::size_t n = wide ? rows : cols, len = wide ? cols : rows;
  const auto at = [&](std::size_t vec, std::size_t k) { return wide ? w[vec * cols + k] : w[k * cols + vec]; };
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double dot = 0;
      for (std::size_t k = 0; k < len; ++k) dot += at(i, k) * at(j, k);
      worst = std::max(worst, std::abs(dot / (gain * gain) - (i == j ? 1.0 : 0.0)));
    }
  return worst;
}

}  // namespace

TEST_CASE("init: orthogonal gives orthonormal rows or columns, times the gain", "[nn][init]") {
  struct Case {
    Shape shape;
    double gain;
    DType dtype;
    double tolerance;
  };
  for (const Case& c : {Case{{5, 3}, 1.0, DType::float64, 1e-13}, Case{{3, 5}, 1.0, DType::float64, 1e-13},
                        Case{{6, 6}, 2.0, DType::float64, 1e-13}, Case{{4, 2, 3}, 1.0, DType::float64, 1e-13},
                        Case{{64, 64}, std::sqrt(2.0), DType::float32, 1e-5}}) {
    INFO("shape " << c.shape.str() << ", gain " << c.gain);
    Tensor w = zeros(c.shape, c.dtype);
    Generator gen(3);
    nn::Init::orthogonal(c.gain).apply(w, gen);
    const std::size_t rows = static_cast<std::size_t>(c.shape[0]), cols = static_cast<std::size_t>(w.numel()) / rows;
    CHECK(distance_from_orthonormal(w.to_vector(), rows, cols, c.gain) < c.tolerance);
    Tensor again = zeros(c.shape, c.dtype);
    Generator same(3);
    nn::Init::orthogonal(c.gain).apply(again, same);
    CHECK(again.to_vector() == w.to_vector());
  }
}

TEST_CASE("init: orthogonal matrices are spread as the Haar measure's first moments say", "[nn][init]") {
  // For a Haar-random 2 x 2 orthogonal matrix each entry has mean 0 and mean square 1/2, and the
  // two entries of a row are uncorrelated. 4,000 draws: standard errors about 0.011 and 0.006.
  Generator gen(11);
  double sum = 0, sum_sq = 0, cross = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    Tensor w = zeros({2, 2}, DType::float64);
    nn::Init::orthogonal().apply(w, gen);
    const std::vector<double> v = w.to_vector();
    sum += v[0];
    sum_sq += v[0] * v[0];
    cross += v[0] * v[1];
  }
  CHECK(std::abs(sum / n) < 0.05);
  CHECK(std::abs(sum_sq / n - 0.5) < 0.03);
  CHECK(std::abs(cross / n) < 0.03);
}

TEST_CASE("init: trunc_normal stays in [a, b] with the truncated normal's mean and spread", "[nn][init]") {
  // N(0.5, 1) cut to [-1, 1.5]: alpha = -1.5, beta = 1; Z = Phi(beta) - Phi(alpha);
  // mean = mu + sigma (phi(alpha) - phi(beta)) / Z, var = sigma^2 (1 + (alpha phi(alpha) - beta phi(beta)) / Z
  // - ((phi(alpha) - phi(beta)) / Z)^2).
  const double mu = 0.5, sigma = 1, lo = -1, hi = 1.5, alpha = (lo - mu) / sigma, beta = (hi - mu) / sigma;
  const auto phi = [](double x) { return std::exp(-x * x / 2) / std::sqrt(2 * std::numbers::pi); };
  const auto Phi = [](double x) { return (1 + std::erf(x / std::sqrt(2.0))) / 2; };
  const double z = Phi(beta) - Phi(alpha), shift = (phi(alpha) - phi(beta)) / z;
  const double mean = mu + sigma * shift;
  const double sd = sigma * std::sqrt(1 + (alpha * phi(alpha) - beta * phi(beta)) / z - shift * shift);

  Tensor w = zeros({200, 100}, DType::float64);
  Generator gen(5);
  nn::Init::trunc_normal(mu, sigma, lo, hi).apply(w, gen);
  const std::vector<double> v = w.to_vector();
  double s = 0, s2 = 0, low = hi, high = lo;
  for (double x : v) {
    s += x;
    s2 += x * x;
    low = std::min(low, x);
    high = std::max(high, x);
  }
  const double n = static_cast<double>(v.size()), m = s / n, var = s2 / n - m * m;
  CHECK(low >= lo);
  CHECK(high <= hi);
  CHECK(low < lo + 0.01);  // the support is filled to its ends
  CHECK(high > hi - 0.01);
  CHECK(m == Approx(mean).margin(4 * sd / std::sqrt(n)));
  CHECK(std::sqrt(var) == Approx(sd).epsilon(0.02));
}

TEST_CASE("init: orthogonal and trunc_normal print and check their arguments", "[nn][init]") {
  CHECK(nn::Init::orthogonal(2).to_string() == "orthogonal(gain=2)");
  CHECK(nn::Init::trunc_normal(0, 0.02).to_string() == "trunc_normal(mean=0, std=0.02, a=-2, b=2)");
  CHECK_THROWS_WITH(nn::Init::orthogonal(0), "Init::orthogonal: gain must be finite and > 0, got 0");
  CHECK_THROWS_WITH(nn::Init::trunc_normal(0, 1, 1, 1),
                    "Init::trunc_normal: need finite mean, std > 0 and a < b, got mean=0 std=1 a=1 b=1");
  CHECK_THROWS_WITH(nn::Init::trunc_normal(0, 1, 5, 6), Contains("too far in the tail"));
  Generator gen(1);
  Tensor bias = zeros({4}, DType::float64);
  CHECK_THROWS_WITH(nn::Init::orthogonal().apply(bias, gen),
                    "Init::apply(orthogonal): needs a tensor of 2 or more dims, got shape [4]");
  Tensor empty = zeros({0, 3}, DType::float64);
  nn::Init::orthogonal().apply(empty, gen);  // nothing to fill, nothing thrown
  CHECK(empty.numel() == 0);
}
