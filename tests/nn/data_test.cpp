#include "nn/data.h"
#include "nn/batches.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/tensor.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Matchers::Contains;
using Rows = std::vector<std::vector<double>>;

using chainrule::testing::message_of;

TEST_CASE("data: rows_to_tensor gives [N, D] in the dtype asked for", "[nn][data]") {
  const Rows rows = {{1, 2}, {3, 4.25}, {5, -6}};
  const Tensor t64 = nn::rows_to_tensor(rows, DType::float64);
  CHECK(t64.shape() == Shape{3, 2});
  CHECK(t64.dtype() == DType::float64);
  CHECK(t64.to_vector() == std::vector<double>{1, 2, 3, 4.25, 5, -6});
  CHECK(t64.at({1, 1}) == 4.25);
  CHECK_FALSE(t64.requires_grad());

  const Tensor t32 = nn::rows_to_tensor({{0.1}, {0.2}});  // float32 by default, one column
  CHECK(t32.shape() == Shape{2, 1});
  CHECK(t32.dtype() == DType::float32);
  CHECK(t32.at({0, 0}) == static_cast<double>(0.1f));
}

TEST_CASE("data: rows_to_tensor rejects no rows, empty rows and ragged rows", "[nn][data]") {
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::rows_to_tensor({}); }), Contains("no rows"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::rows_to_tensor({{}, {}}); }), Contains("row 0 is empty"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::rows_to_tensor({{1, 2}, {3, 4}, {5, 6, 7}}); }),
             Contains("row 2 has 3 values, row 0 has 2"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::rows_to_tensor({{1, 2}, {3}}); }),
             Contains("row 1 has 1 values, row 0 has 2"));
}

TEST_CASE("data: batch_rows picks rows in the order given, repeats allowed", "[nn][data]") {
  const Tensor x = nn::rows_to_tensor({{0, 1}, {10, 11}, {20, 21}, {30, 31}, {40, 41}}, DType::float64);
  const Tensor b = nn::batch_rows(x, {4, 0, 2, 0});
  CHECK(b.shape() == Shape{4, 2});
  CHECK(b.dtype() == DType::float64);
  CHECK(b.to_vector() == std::vector<double>{40, 41, 0, 1, 20, 21, 0, 1});

  // float32 and higher-dimensional data: each row is a whole [2, 2] slab.
  const Tensor cube = from_vector({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2}, DType::float32);
  const Tensor c = nn::batch_rows(cube, {1});
  CHECK(c.shape() == Shape{1, 2, 2});
  CHECK(c.dtype() == DType::float32);
  CHECK(c.to_vector() == std::vector<double>{4, 5, 6, 7});

  // 1-D data: rows are single numbers.
  CHECK(nn::batch_rows(from_vector({5, 6, 7}, {3}), {2, 1}).to_vector() == std::vector<double>{7, 6});

  // The batch is a copy: changing it leaves the data alone.
  Tensor copy = nn::batch_rows(x, {1});
  copy.set({0, 0}, -1);
  CHECK(x.at({1, 0}) == 10);
}

TEST_CASE("data: batch_rows names a bad index, its position and N", "[nn][data]") {
  const Tensor x = nn::rows_to_tensor({{1}, {2}, {3}, {4}, {5}});
  CHECK_THAT(message_of<std::out_of_range>([&] { nn::batch_rows(x, {0, 7}); }),
             Contains("index 7 (position 1) is out of range for 5 rows"));
  CHECK_THAT(message_of<std::out_of_range>([&] { nn::batch_rows(x, {5}); }),
             Contains("index 5 (position 0) is out of range for 5 rows"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::batch_rows(x, {}); }), Contains("no indices"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::batch_rows(Tensor(), {0}); }), Contains("undefined"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::batch_rows(Tensor(2.0), {0}); }), Contains("0-d"));
  const Tensor w = zeros({3, 2}, TensorOptions().requires_grad(true));
  CHECK_THAT(message_of<std::invalid_argument>([&] { nn::batch_rows(w, {0}); }), Contains("requires grad"));
  CHECK(nn::batch_rows(w.detach(), {2}).shape() == Shape{1, 2});
}

TEST_CASE("data: to_labels and batch_labels", "[nn][data]") {
  CHECK(nn::to_labels(std::vector<double>{0, 2, 1, 2}) == std::vector<int64_t>{0, 2, 1, 2});
  CHECK(nn::to_labels(Rows{{1}, {0}, {3}}) == std::vector<int64_t>{1, 0, 3});
  CHECK(nn::to_labels(std::vector<double>{}).empty());

  CHECK_THAT(message_of<std::invalid_argument>([] { nn::to_labels(std::vector<double>{0, 0.5}); }),
             Contains("row 1 holds 0.5"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::to_labels(std::vector<double>{-1}); }),
             Contains("row 0 holds -1"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::to_labels(std::vector<double>{NAN}); }),
             Contains("row 0 holds nan"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::to_labels(Rows{{1}, {0, 1}}); }),
             Contains("row 1 has 2 values, expected 1"));

  const std::vector<int64_t> labels = {3, 1, 4, 1, 5};
  CHECK(nn::batch_labels(labels, {4, 0, 0}) == std::vector<int64_t>{5, 3, 3});
  CHECK_THAT(message_of<std::out_of_range>([&] { nn::batch_labels(labels, {1, 2, 9}); }),
             Contains("index 9 (position 2) is out of range for 5 rows"));
}

TEST_CASE("data: impossible counts and ranges are errors naming the function", "[nn][data]") {
  // They threw a bare length_error from the standard library, or grew a vector until the process
  // was killed; a range as wide as [-1e308, 1e308] gave infinite features.
  CHECK_THROWS_WITH(nn::permutation(SIZE_MAX, 0), Contains("permutation: 18446744073709551615 elements"));
  CHECK_THROWS_WITH(nn::make_batches(SIZE_MAX, 1, false, 0), Contains("make_batches:"));
  CHECK_THROWS_WITH(nn::make_spiral({.points_per_class = SIZE_MAX}), Contains("make_spiral:"));
  CHECK_THROWS_WITH(nn::make_noisy_sine({.n = SIZE_MAX}), Contains("make_noisy_sine:"));
  CHECK_THROWS_AS(nn::make_noisy_sine({.n = SIZE_MAX}), std::length_error);
  const nn::Dataset wide = nn::make_noisy_sine({.n = 20, .low = -1e308, .high = 1e308});
  for (const auto& row : wide.features) CHECK(std::isfinite(row[0]));
  for (const auto& row : wide.targets) CHECK(std::isfinite(row[0]));
}

TEST_CASE("data: argmax_labels and accuracy", "[nn][data]") {
  const Tensor scores = tensor({{0.1, 2.0, -1.0}, {5.0, 5.0, 1.0}, {-3.0, -2.0, -1.0}});
  CHECK(nn::argmax_labels(scores) == std::vector<int64_t>{1, 0, 2});  // ties: the first
  CHECK(nn::argmax_labels(tensor({0.2, 0.7, 0.1}, DType::float64)) == std::vector<int64_t>{1});
  // NaN is the largest score, at its first position, wherever it sits (as PyTorch's argmax).
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(nn::argmax_labels(tensor({{nan, 2.0, nan}, {1.0, nan, 3.0}, {1.0, 2.0, nan}}, DType::float64)) ==
        std::vector<int64_t>{0, 1, 2});
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::argmax_labels(zeros({2, 2, 2})); }), Contains("[2, 2, 2]"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::argmax_labels(Tensor(1.0)); }), Contains("[]"));

  CHECK(nn::accuracy({1, 0, 2, 2}, {1, 0, 1, 2}) == 0.75);
  CHECK(nn::accuracy({0}, {0}) == 1.0);
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::accuracy({0, 1}, {0}); }),
             Contains("2 predictions for 1 labels"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::accuracy({}, {}); }), Contains("0 predictions"));
}

TEST_CASE("data: make_spiral is pinned by its seed and has the documented shape", "[nn][data]") {
  const nn::Dataset a = nn::make_spiral({.points_per_class = 50, .turns = 1.5, .noise = 0.05, .seed = 9});
  const nn::Dataset b = nn::make_spiral({.points_per_class = 50, .turns = 1.5, .noise = 0.05, .seed = 9});
  const nn::Dataset c = nn::make_spiral({.points_per_class = 50, .turns = 1.5, .noise = 0.05, .seed = 10});
  CHECK(a.features == b.features);
  CHECK(a.targets == b.targets);
  CHECK(a.features != c.features);
  CHECK(a.feature_names == std::vector<std::string>{"x1", "x2"});
  CHECK(a.target_names == std::vector<std::string>{"class"});
  REQUIRE(a.features.size() == 100);
  REQUIRE(a.targets.size() == 100);
  for (std::size_t i = 0; i < 100; ++i) {
    REQUIRE(a.features[i].size() == 2);
    CHECK(a.targets[i] == std::vector<double>{static_cast<double>(i % 2)});  // the classes alternate
    CHECK(std::hypot(a.features[i][0], a.features[i][1]) < 1 + 6 * 0.05);
  }

  // Without noise every point lies on its arm: radius r in [inner_radius, 1), angle 2 pi turns r + c pi.
  const nn::Dataset clean =
      nn::make_spiral({.points_per_class = 20, .turns = 1.5, .inner_radius = 0.2, .noise = 0, .seed = 1});
  for (std::size_t i = 0; i < clean.features.size(); ++i) {
    const double x1 = clean.features[i][0], x2 = clean.features[i][1], r = std::hypot(x1, x2);
    CHECK(r >= 0.2 - 1e-12);
    CHECK(r < 1);
    const double angle = 2 * std::numbers::pi * 1.5 * r + clean.targets[i][0] * std::numbers::pi;
    CHECK(x1 == Approx(r * std::cos(angle)).margin(1e-12));
    CHECK(x2 == Approx(r * std::sin(angle)).margin(1e-12));
  }
}

TEST_CASE("data: make_moons lays two half circles as scikit-learn's, pinned by the seed", "[nn][data]") {
  const nn::Dataset a = nn::make_moons({.n_samples = 100, .noise = 0.1, .seed = 3});
  CHECK(a.features == nn::make_moons({.n_samples = 100, .noise = 0.1, .seed = 3}).features);
  CHECK(a.features != nn::make_moons({.n_samples = 100, .noise = 0.1, .seed = 4}).features);
  CHECK(a.feature_names == std::vector<std::string>{"x1", "x2"});
  CHECK(a.target_names == std::vector<std::string>{"class"});

  // Without noise, 7 points: 3 on the upper half circle (angles 0, pi/2, pi), 4 on the lower one
  // (angles 0, pi/3, 2pi/3, pi), alternating while both last.
  const nn::Dataset clean = nn::make_moons({.n_samples = 7, .noise = 0});
  const double h = std::sqrt(3.0) / 2;
  const std::vector<std::vector<double>> expected{{1, 0},   {0, 0.5},      {0, 1},        {0.5, 0.5 - h},
                                                  {-1, 0},  {1.5, 0.5 - h}, {2, 0.5}};
  const std::vector<double> classes{0, 1, 0, 1, 0, 1, 1};
  REQUIRE(clean.features.size() == 7);
  for (std::size_t i = 0; i < 7; ++i) {
    INFO("row " << i);
    CHECK(clean.features[i][0] == Approx(expected[i][0]).margin(1e-12));
    CHECK(clean.features[i][1] == Approx(expected[i][1]).margin(1e-12));
    CHECK(clean.targets[i][0] == classes[i]);
  }
  CHECK_THROWS_WITH(nn::make_moons({.n_samples = 1}), "make_moons: n_samples must be >= 2, got 1");
  CHECK_THROWS_WITH(nn::make_moons({.noise = -0.1}), "make_moons: noise must be finite and >= 0, got -0.1");
}

TEST_CASE("data: make_noisy_sine is pinned by its seed and follows sin(x)", "[nn][data]") {
  const nn::Dataset a = nn::make_noisy_sine({.n = 500, .low = -3, .high = 3, .noise = 0.1, .seed = 4});
  CHECK(a.features == nn::make_noisy_sine({.n = 500, .low = -3, .high = 3, .noise = 0.1, .seed = 4}).features);
  CHECK(a.feature_names == std::vector<std::string>{"x"});
  CHECK(a.target_names == std::vector<std::string>{"y"});
  REQUIRE(a.features.size() == 500);
  double sum_sq = 0, low = 1e9, high = -1e9;
  for (std::size_t i = 0; i < 500; ++i) {
    const double x = a.features[i][0], residual = a.targets[i][0] - std::sin(x);
    low = std::min(low, x);
    high = std::max(high, x);
    sum_sq += residual * residual;
  }
  CHECK(low >= -3);
  CHECK(high < 3);
  CHECK(high - low > 5.9);  // spread over the whole interval
  // The residuals' variance is the noise's, 0.01, within sampling error (about 6% for 500 draws).
  CHECK(sum_sq / 500 == Approx(0.01).epsilon(0.2));

  const nn::Dataset exact = nn::make_noisy_sine({.n = 10, .noise = 0, .seed = 1});
  for (std::size_t i = 0; i < 10; ++i) CHECK(exact.targets[i][0] == std::sin(exact.features[i][0]));
}

TEST_CASE("data: generators reject options out of range, naming them", "[nn][data]") {
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::make_spiral({.points_per_class = 0}); }),
             Contains("points_per_class must be >= 1, got 0"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::make_spiral({.turns = -1}); }),
             Contains("turns must be finite and > 0, got -1"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::make_spiral({.inner_radius = 1}); }),
             Contains("inner_radius must be in [0, 1), got 1"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::make_spiral({.noise = -0.1}); }),
             Contains("noise must be finite and >= 0, got -0.1"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::make_noisy_sine({.n = 0}); }), Contains("n must be >= 1, got 0"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::make_noisy_sine({.low = 2, .high = 1}); }),
             Contains("low 2 and high 1"));
  CHECK_THAT(message_of<std::invalid_argument>([] { nn::make_noisy_sine({.noise = INFINITY}); }),
             Contains("noise must be finite and >= 0, got inf"));
}
