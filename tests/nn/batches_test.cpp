#include "nn/batches.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/autograd/testing.h"

using chainrule::nn::make_batches;
using chainrule::nn::permutation;
using chainrule::nn::train_validation_split;
using Indices = std::vector<std::size_t>;

using chainrule::testing::message_of;

namespace {

Indices iota_n(std::size_t n) {
  Indices v(n);
  std::iota(v.begin(), v.end(), std::size_t{0});
  return v;
}

}  // namespace

TEST_CASE("batches: permutation is pinned for a seed on every standard library", "[nn][batches]") {
  // Cross-checked against an independent Python implementation of mt19937_64 (seeded with the
  // standard's seed(value) recurrence) running the same Fisher-Yates and rejection sampling.
  CHECK(permutation(10, 42) == Indices{1, 7, 9, 0, 3, 8, 4, 2, 5, 6});
  CHECK(permutation(10, 0) == Indices{7, 2, 0, 8, 3, 9, 6, 1, 5, 4});
  CHECK(permutation(10, 42) == permutation(10, 42));
  CHECK(permutation(10, 42) != permutation(10, 43));
  CHECK(permutation(0, 1).empty());
  CHECK(permutation(1, 1) == Indices{0});

  Indices p = permutation(1000, 7);
  std::sort(p.begin(), p.end());
  CHECK(p == iota_n(1000));
}

TEST_CASE("batches: permutation is uniform over positions", "[nn][batches]") {
  // 4 x 4 position counts over 8000 seeds; each cell expects 2000 (sd about 39).
  int counts[4][4] = {};
  for (std::uint64_t seed = 0; seed < 8000; ++seed) {
    const Indices p = permutation(4, seed);
    for (std::size_t i = 0; i < 4; ++i) ++counts[i][p[i]];
  }
  for (auto& row : counts)
    for (int c : row) CHECK(std::abs(c - 2000) < 200);
}

TEST_CASE("batches: make_batches in order, with a smaller last batch or drop_last", "[nn][batches]") {
  using Batches = std::vector<Indices>;
  CHECK(make_batches(5, 2, false, 0) == Batches{{0, 1}, {2, 3}, {4}});
  CHECK(make_batches(5, 2, false, 0, true) == Batches{{0, 1}, {2, 3}});
  CHECK(make_batches(4, 2, false, 0, true) == Batches{{0, 1}, {2, 3}});
  CHECK(make_batches(3, 10, false, 0) == Batches{{0, 1, 2}});
  CHECK(make_batches(3, 10, false, 0, true).empty());
  CHECK(make_batches(0, 4, true, 9).empty());
  CHECK(make_batches(3, 1, false, 0) == Batches{{0}, {1}, {2}});
}

TEST_CASE("batches: shuffled batches cover every row once and follow the seed", "[nn][batches]") {
  const auto batches = make_batches(10, 4, true, 42);
  REQUIRE(batches.size() == 3);
  CHECK(batches[0] == Indices{1, 7, 9, 0});
  CHECK(batches[1] == Indices{3, 8, 4, 2});
  CHECK(batches[2] == Indices{5, 6});
  Indices all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  CHECK(all == iota_n(10));
  CHECK(make_batches(10, 4, true, 42) == batches);
  CHECK(make_batches(10, 4, true, 1) != batches);
}

TEST_CASE("batches: batch_size 0 is an error", "[nn][batches]") {
  CHECK_THAT(message_of<std::invalid_argument>([] { make_batches(10, 0, false, 0); }),
             Catch::Contains("batch_size must be >= 1, got 0"));
}

TEST_CASE("batches: train_validation_split sizes, disjointness and determinism", "[nn][batches]") {
  const auto [train, validation] = train_validation_split(10, 0.2, 42);
  CHECK(train == Indices{0, 2, 3, 4, 5, 6, 8, 9});
  CHECK(validation == Indices{1, 7});  // the first two of permutation(10, 42), sorted

  Indices all = train;
  all.insert(all.end(), validation.begin(), validation.end());
  std::sort(all.begin(), all.end());
  CHECK(all == iota_n(10));

  CHECK(train_validation_split(10, 0.0, 1).validation.empty());
  CHECK(train_validation_split(10, 0.0, 1).train == iota_n(10));
  CHECK(train_validation_split(100, 0.07, 3).validation.size() == 7);  // 0.07 * 100 = 7.000000000000001
  CHECK(train_validation_split(5, 0.3, 3).validation.size() == 2);     // ceil(1.5), as sklearn
  CHECK(train_validation_split(10, 0.01, 3).validation.size() == 1);
  CHECK(train_validation_split(0, 0.5, 3).train.empty());
  CHECK(train_validation_split(10, 0.2, 42).validation == validation);
}

TEST_CASE("batches: train_validation_split rejects bad fractions", "[nn][batches]") {
  for (double bad : {-0.1, 1.0, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    INFO(bad);
    CHECK_THAT(message_of<std::invalid_argument>([&] { train_validation_split(10, bad, 0); }),
               Catch::Contains("must be in [0, 1)"));
  }
  CHECK_THAT(message_of<std::invalid_argument>([] { train_validation_split(1, 0.5, 0); }),
             Catch::Contains("leaves no training row"));
}
