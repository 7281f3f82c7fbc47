// README.md's quick tour, run as written (generated into the build from the README's ```cpp block;
// see tests/CMakeLists.txt), and what it computes checked by hand: a README example that no longer
// compiles, or that computes something else, fails here.
#include <cmath>

#include <catch2/catch.hpp>

#include "tests/examples/readme_tour.h"

using namespace chainrule;

TEST_CASE("README quick tour: compiles as written and computes micrograd's and the chain rule's numbers", "[docs]") {
  const testing::ReadmeTour tour = testing::readme_tour();

  // c = a b + b^3 = 0, then c += c + 1 gives c = 2 (a b + b^3) + 1 = 1; dc/da = 2 b = 4,
  // dc/db = 2 (a + 3 b^2) = 16.
  CHECK(tour.c.value() == Approx(1.0).margin(1e-15));
  CHECK(tour.a.grad() == Approx(4.0).epsilon(1e-15));
  CHECK(tour.b.grad() == Approx(16.0).epsilon(1e-15));

  // d sum(sigmoid(x W^T)) / dW[j][i] = s_j (1 - s_j) x_i with s_j = sigmoid(x . W[j]).
  const double x[2] = {-0.97, -0.80};
  const std::vector<double> w = tour.w.to_vector(), dw = tour.w.grad().to_vector();
  REQUIRE(w.size() == 6);
  REQUIRE(dw.size() == 6);
  for (int j = 0; j < 3; ++j) {
    const double s = 1 / (1 + std::exp(-(x[0] * w[2 * j] + x[1] * w[2 * j + 1])));
    for (int i = 0; i < 2; ++i) CHECK(dw[2 * j + i] == Approx(s * (1 - s) * x[i]).epsilon(1e-12));
  }

  // g = d sum(exp(W)) / dW = exp(W); its product with ones differentiated again: exp(W) too.
  REQUIRE(tour.g.size() == 1);
  REQUIRE(tour.hvp.size() == 1);
  const std::vector<double> g = tour.g[0].to_vector(), hvp = tour.hvp[0].to_vector();
  REQUIRE(hvp.size() == 6);
  for (int k = 0; k < 6; ++k) {
    CHECK(g[k] == Approx(std::exp(w[k])).epsilon(1e-12));
    CHECK(hvp[k] == Approx(std::exp(w[k])).epsilon(1e-12));
  }
}
