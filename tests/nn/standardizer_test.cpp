#include "nn/standardizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/autograd/testing.h"

using chainrule::nn::Standardizer;
using Rows = std::vector<std::vector<double>>;

using chainrule::testing::message_of;

namespace {

// The lecture's five shown observations (slide rows 1, 2, 3, 9, 10): X1, X2 raw and z-scored.
const Rows kLectureRaw = {{2, 1.5}, {2.8, 1.2}, {1.5, 1}, {2.5, 2}, {7.7, 3.5}};
const Rows kLectureZ = {{-0.97, -0.80}, {-0.69, -0.97}, {-1.14, -1.09}, {-0.79, -0.52}, {1.04, 0.34}};

double max_abs_diff(const Rows& a, const Rows& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < a[i].size(); ++j) m = std::max(m, std::abs(a[i][j] - b[i][j]));
  return m;
}

}  // namespace

TEST_CASE("standardizer: mean and sample sd by hand", "[nn][standardizer]") {
  Standardizer z;  // ddof = 1
  CHECK_FALSE(z.fitted());
  z.fit({{2, 1.5}, {2.8, 1.2}, {1.5, 1}});
  REQUIRE(z.fitted());
  CHECK(z.width() == 2);
  // X1: mean 2.1, deviations -0.1, 0.7, -0.6, sum of squares 0.86, / (3 - 1) = 0.43.
  // X2: mean 3.7/3, sum of squares 0.38/3, / 2.
  CHECK(z.mean()[0] == Approx(2.1));
  CHECK(z.mean()[1] == Approx(3.7 / 3));
  CHECK(z.stddev()[0] == Approx(std::sqrt(0.43)));
  CHECK(z.stddev()[1] == Approx(std::sqrt(0.38 / 6)));
  const auto row = z.transform_row({2, 1.5});
  CHECK(row[0] == Approx(-0.1 / std::sqrt(0.43)));  // -0.1525
  CHECK(row[1] == Approx((1.5 - 3.7 / 3) / std::sqrt(0.38 / 6)));  // 1.0596
  CHECK(row[0] == Approx(-0.1525).margin(5e-5));
  CHECK(row[1] == Approx(1.0596).margin(5e-5));
}

TEST_CASE("standardizer: ddof chooses sample or population sd", "[nn][standardizer]") {
  const Rows rows = {{1}, {2}, {3}, {4}};
  Standardizer sample({.ddof = 1}), population({.ddof = 0});
  sample.fit(rows);
  population.fit(rows);
  CHECK(sample.mean()[0] == 2.5);
  CHECK(population.mean()[0] == 2.5);
  CHECK(sample.stddev()[0] == Approx(std::sqrt(5.0 / 3)));
  CHECK(population.stddev()[0] == Approx(std::sqrt(1.25)));
  CHECK(population.transform_row({4})[0] == Approx(1.5 / std::sqrt(1.25)));
}

TEST_CASE("standardizer: fit, transform, inverse_transform round trip", "[nn][standardizer]") {
  const Rows rows = {{1e6 + 1, -3, 0.5}, {1e6 + 2, 7, 0.25}, {1e6 + 4, 2, -0.75}, {1e6 + 9, 0, 2}};
  Standardizer z;
  z.fit(rows);
  const Rows scaled = z.transform(rows);
  for (std::size_t j = 0; j < 3; ++j) {
    double sum = 0, ss = 0;
    for (const auto& r : scaled) sum += r[j], ss += r[j] * r[j];
    CHECK(sum == Approx(0).margin(1e-9));
    CHECK(ss / 3 == Approx(1));  // unit sample variance
  }
  CHECK(max_abs_diff(z.inverse_transform(scaled), rows) < 1e-9);
  CHECK(z.inverse_transform_row(z.transform_row(rows[2]))[0] == Approx(rows[2][0]));
  CHECK(z.transform(Rows{}).empty());
}

TEST_CASE("standardizer: the lecture's slide parameters reproduce its z-scores", "[nn][standardizer]") {
  // Recovered by least squares from the five shown (raw, z) pairs; see standardizer.h.
  const auto z = Standardizer::from_values({4.7484, 2.9054}, {2.8400, 1.7522});
  CHECK(max_abs_diff(z.transform(kLectureRaw), kLectureZ) < 0.005);  // the slides round to 2 decimals
  CHECK(max_abs_diff(z.inverse_transform(kLectureZ), kLectureRaw) < 0.015);
}

TEST_CASE("standardizer: a fit on the five shown rows only", "[nn][standardizer]") {
  Standardizer sample({.ddof = 1}), population({.ddof = 0});
  sample.fit(kLectureRaw);
  population.fit(kLectureRaw);
  CHECK(sample.mean()[0] == Approx(3.3));
  CHECK(sample.mean()[1] == Approx(1.84));
  CHECK(sample.stddev()[0] == Approx(2.508984).epsilon(1e-6));
  CHECK(sample.stddev()[1] == Approx(1.001499).epsilon(1e-6));
  CHECK(population.stddev()[0] == Approx(2.244103).epsilon(1e-6));
  CHECK(population.stddev()[1] == Approx(0.895768).epsilon(1e-6));
  // Neither can match the slides, which were standardised over all 10 observations.
  CHECK(max_abs_diff(sample.transform(kLectureRaw), kLectureZ) == Approx(1.318).margin(0.001));
  CHECK(max_abs_diff(population.transform(kLectureRaw), kLectureZ) == Approx(1.513).margin(0.001));
  CHECK(sample.transform_row({7.7, 3.5})[0] == Approx(1.7537).margin(1e-4));
}

TEST_CASE("standardizer: a constant column gets sd 1 and transforms to 0", "[nn][standardizer]") {
  Standardizer z;
  z.fit({{0.1, 1}, {0.1, 2}, {0.1, 3}});
  CHECK(z.mean()[0] == 0.1);
  CHECK(z.stddev()[0] == 1.0);
  CHECK(z.transform_row({0.1, 2})[0] == 0.0);
  CHECK(z.transform_row({1.1, 2})[0] == Approx(1.0));

  Standardizer one_row({.ddof = 0});
  one_row.fit({{5, -2}});
  CHECK(one_row.stddev() == std::vector<double>{1, 1});
  CHECK(one_row.transform_row({5, -2}) == std::vector<double>{0, 0});
}

TEST_CASE("standardizer: errors name what was expected and what was received", "[nn][standardizer]") {
  Standardizer z;
  CHECK_THAT(message_of<std::logic_error>([&] { z.transform({{1, 2}}); }), Catch::Contains("not fitted"));
  CHECK_THROWS_AS(z.transform(Rows{}), std::logic_error);
  CHECK_THROWS_AS(z.transform_row({1}), std::logic_error);
  CHECK_THROWS_AS(z.inverse_transform({{1}}), std::logic_error);

  CHECK_THAT(message_of<std::invalid_argument>([&] { z.fit({}); }), Catch::Contains("no rows"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { z.fit({{1}}); }),
             Catch::Contains("1 row(s)") && Catch::Contains("ddof = 1") && Catch::Contains("ddof = 0"));
  CHECK_THROWS_AS(z.fit({{}, {}}), std::invalid_argument);
  CHECK_THAT(message_of<std::invalid_argument>([&] { z.fit({{1, 2}, {3}}); }),
             Catch::Contains("row 1 has 1 values, row 0 has 2"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { z.fit({{1, 2}, {3, std::nan("")}}); }),
             Catch::Contains("row 1 column 1"));

  z.fit({{1, 2}, {3, 4}});
  CHECK_THROWS_AS(z.fit({{1, 2, 3}, {4}}), std::invalid_argument);
  CHECK(z.width() == 2);  // a failed fit keeps the previous one
  CHECK_THAT(message_of<std::invalid_argument>([&] { z.transform({{1, 2}, {1, 2, 3}}); }),
             Catch::Contains("row 1 has 3 values, expected 2"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { z.inverse_transform_row({1}); }),
             Catch::Contains("1 values, expected 2"));

  CHECK_THROWS_AS(Standardizer::from_values({}, {}), std::invalid_argument);
  CHECK_THROWS_AS(Standardizer::from_values({1, 2}, {1}), std::invalid_argument);
  CHECK_THAT(message_of<std::invalid_argument>([&] { Standardizer::from_values({1}, {0}); }),
             Catch::Contains("sd[0] = 0"));
  CHECK_THROWS_AS(Standardizer::from_values({std::nan("")}, {1}), std::invalid_argument);
}

TEST_CASE("standardizer: from_values keeps the options it was fitted with") {
  const auto z = chainrule::nn::Standardizer::from_values({1.0}, {2.0}, {.ddof = 0});
  CHECK(z.options().ddof == 0);
  CHECK(chainrule::nn::Standardizer::from_values({1.0}, {2.0}).options().ddof == 1);
}

// Found by fuzzing: finite values near the ends of a double's range made fit() store an infinite
// mean, or an sd of 0 or infinity, which transform() divided by and from_values() (nn::load) refused.
TEST_CASE("standardizer: fit on values near a double's limits gives a usable fit or an error", "[nn][standardizer]") {
  Standardizer z;
  z.fit({{1.7e308}, {1.6e308}});  // the sum overflows; the mean and sd do not
  CHECK(z.mean()[0] == Approx(1.65e308));
  CHECK(z.stddev()[0] == Approx(0.1e308 / std::sqrt(2.0)));
  CHECK_NOTHROW(Standardizer::from_values(z.mean(), z.stddev()));
  CHECK(z.transform_row({1.7e308})[0] == Approx(1 / std::sqrt(2.0)));

  Standardizer tiny(Standardizer::Options{.ddof = 1});
  tiny.fit({{0}, {5e-324}, {1e-323}});  // the squared deviations underflow to 0; the sd does not
  CHECK(tiny.stddev()[0] > 0);
  CHECK(tiny.transform_row({1e-323})[0] == Approx(1.0));

  Standardizer wide;
  wide.fit({{-1e200}, {1e200}});  // the squares overflow; the sd does not
  CHECK(wide.mean()[0] == 0);
  CHECK(wide.stddev()[0] == Approx(std::sqrt(2.0) * 1e200));

  z.fit({{1, 2}, {3, 4}});
  CHECK_THROWS_AS(z.fit({{-1.7e308}, {1.7e308}}), std::invalid_argument);
  CHECK_THROWS_WITH(z.fit({{-1.7e308}, {1.7e308}}),
                    Catch::Contains("Standardizer::fit: column 0 (values from -1.7e+308 to 1.7e+308)") &&
                        Catch::Contains("overflows a double"));
  Standardizer pop(Standardizer::Options{.ddof = 0});
  CHECK_THROWS_WITH(pop.fit({{0}, {5e-324}}), Catch::Contains("column 0") && Catch::Contains("underflows to 0"));
  CHECK(z.width() == 2);  // the failed fits kept the previous one
  CHECK(z.mean() == std::vector<double>{2, 3});
}

TEST_CASE("standardizer: a huge ddof is reported as it is", "[nn][standardizer]") {
  Standardizer z(Standardizer::Options{.ddof = std::numeric_limits<std::size_t>::max()});
  CHECK_THROWS_WITH(z.fit({{0}, {1}}), Catch::Contains("2 row(s) but ddof = 18446744073709551615 needs more than "
                                                       "18446744073709551615"));
}
