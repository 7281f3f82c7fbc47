// The reduction and broadcast kernels' own paths (autograd/tensor_reduce.cpp, for_each_broadcast in
// autograd/tensor_loops.h), each against a plain loop written here: a reduction of everything into
// one element runs in interleaved partial folds, expanding one element is a fill, and broadcast
// loops walk the innermost dim as a row. Lengths around multiples of the fold's lanes, both
// dtypes, NaN in every position, and broadcasts on the innermost dim and on outer ones.
#include <cmath>
#include <limits>
#include <vector>

#include "tests/autograd/testing.h"

namespace chainrule {
namespace {

using testing::Numbers;

TEST_CASE("sum and max of every element agree with a plain loop, at every length and dtype", "[tensor][reduce]") {
  Numbers numbers(5);
  for (DType dtype : {DType::float64, DType::float32}) {
    for (int64_t n : {0, 1, 2, 7, 8, 9, 15, 16, 17, 23, 64, 1001}) {
      const std::vector<double> v = numbers.uniform_vector(static_cast<std::size_t>(n), -2.0, 2.0);
      const Tensor x = from_vector(v, {n}, dtype);
      // The reference folds the values as the tensor holds them (float32 rounds them first).
      const std::vector<double> held = x.to_vector();
      long double total = 0;
      double best = -std::numeric_limits<double>::infinity();
      for (double h : held) {
        total += h;
        best = std::max(best, h);
      }
      const double tolerance = (dtype == DType::float64 ? 1e-15 : 1e-6) * (1.0 + n);
      INFO("n = " << n << ", " << (dtype == DType::float64 ? "float64" : "float32"));
      CHECK(std::abs(sum(x).item() - static_cast<double>(total)) <= tolerance);
      CHECK(std::abs(sum(x, {0}, true).item() - static_cast<double>(total)) <= tolerance);
      if (n > 0) CHECK(max(x).item() == best);
    }
  }
}

TEST_CASE("sum of a 2-D tensor into one element, and along each dim, agree with plain loops", "[tensor][reduce]") {
  Numbers numbers(6);
  const std::vector<double> v = numbers.uniform_vector(5 * 13, -1.0, 1.0);
  const Tensor x = from_vector(v, {5, 13}, DType::float64);
  double total = 0;
  std::vector<double> rows(5, 0.0), cols(13, 0.0);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 13; ++j) {
      total += v[i * 13 + j];
      rows[i] += v[i * 13 + j];
      cols[j] += v[i * 13 + j];
    }
  CHECK(std::abs(sum(x).item() - total) <= 1e-13);
  const std::vector<double> got_rows = sum(x, {1}).to_vector(), got_cols = sum(x, {0}).to_vector();
  for (int i = 0; i < 5; ++i) CHECK(std::abs(got_rows[i] - rows[i]) <= 1e-14);
  for (int j = 0; j < 13; ++j) CHECK(std::abs(got_cols[j] - cols[j]) <= 1e-14);
}

TEST_CASE("max of every element is NaN when any element is, wherever it sits", "[tensor][reduce]") {
  for (int64_t n : {1, 8, 9, 17}) {
    for (int64_t at = 0; at < n; ++at) {
      std::vector<double> v(static_cast<std::size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>(i);
      v[at] = std::numeric_limits<double>::quiet_NaN();
      INFO("n = " << n << ", NaN at " << at);
      CHECK(std::isnan(max(from_vector(v, {n}, DType::float64)).item()));
      CHECK(std::isnan(sum(from_vector(v, {n}, DType::float32)).item()));
    }
  }
}

TEST_CASE("max's gradient goes to the NaNs of a slice whose maximum is NaN, as PyTorch's", "[tensor][reduce]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Row 0 holds two NaNs (they share the gradient), row 1 none (its maximum takes it).
  const Tensor x = from_vector({1, nan, 3, nan, 4, 6, 5, 2}, {2, 4}, TensorOptions(DType::float64).requires_grad());
  const Tensor m = max(x, {1});
  CHECK(std::isnan(m.at({0})));
  CHECK(m.at({1}) == 6);
  sum(m * tensor({1.0, 10.0}, DType::float64)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0.5, 0, 0.5, 0, 10, 0, 0});
  CHECK(isnan(x).to_vector() == std::vector<double>{0, 1, 0, 1, 0, 0, 0, 0});
}

TEST_CASE("expanding one element fills the shape, and its gradient sums back", "[tensor][reduce]") {
  const Tensor x = from_vector({2.5}, {1, 1}, TensorOptions(DType::float64).requires_grad(true));
  const Tensor e = expand(x, Shape{3, 4});
  CHECK(e.to_vector() == std::vector<double>(12, 2.5));
  sum(e * e).backward();  // d/dx sum over 12 copies of x^2 = 24 x
  CHECK(x.grad().item() == 24 * 2.5);
  const Tensor f = expand(from_vector({1.5f}, {1}, DType::float32), Shape{2, 9});
  CHECK(f.to_vector() == std::vector<double>(18, 1.5));
}

TEST_CASE("broadcast elementwise ops agree with index arithmetic written out", "[tensor][reduce]") {
  Numbers numbers(7);
  struct Case {
    Shape a, b, out;
  };
  // Innermost dim broadcast on either side, outer dims broadcast, ranks that differ.
  const std::vector<Case> cases = {
      {{3, 1}, {1, 5}, {3, 5}},       {{3, 5}, {5}, {3, 5}},          {{2, 3, 1}, {3, 4}, {2, 3, 4}},
      {{4, 1, 6}, {1, 3, 1}, {4, 3, 6}}, {{1}, {2, 2, 3}, {2, 2, 3}}, {{2, 1, 3, 1}, {5, 1, 2}, {2, 5, 3, 2}}};
  for (const Case& c : cases) {
    const std::vector<double> va = numbers.uniform_vector(static_cast<std::size_t>(c.a.numel()), -1, 1);
    const std::vector<double> vb = numbers.uniform_vector(static_cast<std::size_t>(c.b.numel()), -1, 1);
    const std::vector<double> got =
        (from_vector(va, c.a, DType::float64) * from_vector(vb, c.b, DType::float64)).to_vector();
    INFO("shapes " << c.a.str() << " and " << c.b.str());
    REQUIRE(static_cast<int64_t>(got.size()) == c.out.numel());
    // Operand index of an output index: its coordinates, aligned from the right, 0 where the
    // operand's extent is 1.
    auto index_in = [&c](const Shape& s, int64_t o) {
      int64_t index = 0, stride = 1, rest = o;
      for (int d = c.out.size() - 1, k = s.size() - 1; d >= 0; --d, --k) {
        const int64_t coordinate = rest % c.out[d];
        rest /= c.out[d];
        if (k < 0) continue;
        if (s[k] != 1) index += coordinate * stride;
        stride *= s[k];
      }
      return index;
    };
    for (int64_t o = 0; o < c.out.numel(); ++o) CHECK(got[o] == va[index_in(c.a, o)] * vb[index_in(c.b, o)]);
  }
}


TEST_CASE("a 0-d tensor takes dim 0 and -1 in reductions and transpose, as in PyTorch", "[tensor][reduce]") {
  const Tensor x = full({}, 2.5, TensorOptions(DType::float64).requires_grad());
  for (const int64_t d : {0, -1}) {
    for (const bool keepdim : {false, true}) {
      INFO("dim " << d << (keepdim ? ", keepdim" : ""));
      for (const Tensor& y : {sum(x, {d}, keepdim), mean(x, {d}, keepdim), max(x, {d}, keepdim)}) {
        CHECK(y.dim() == 0);
        CHECK(y.item() == 2.5);
      }
    }
    const Tensor t = transpose(x, d, 0);
    CHECK(t.dim() == 0);
    CHECK(t.item() == 2.5);
  }
  (sum(x, {0}) * 3 + transpose(x, -1, 0) + max(x, {-1})).backward();
  CHECK(x.grad().item() == 5.0);
  CHECK_THAT(testing::message_of<std::out_of_range>([&] { sum(x, {1}); }),
             Catch::Contains("sum: dim 1 is out of range for a tensor with 0 dimensions"));
  CHECK_THAT(testing::message_of<std::invalid_argument>([&] { sum(x, {0, -1}); }), Catch::Contains("appears more than once"));
  CHECK_THAT(testing::message_of<std::out_of_range>([&] { transpose(x, 0, -2); }), Catch::Contains("transpose: dim -2"));
}

// Found by a check of float32 sums over long dims: they accumulated in float, one element after
// another into each output, so five million 0.1s summed over a dim gave 478,275 instead of 500,000
// (4% short; a whole-tensor sum, in 8 partial sums, was closer but not exact). Sums accumulate in
// double now, whatever the dtype, as PyTorch's cascade keeps float32 sums near exact.
TEST_CASE("Tensor: float32 sums over long dims stay accurate", "[tensor][reduce]") {
  const int64_t n = 5'000'000;
  const double exact = 0.1f * static_cast<double>(n / 4);  // the float32 nearest 0.1, n / 4 times
  const Tensor cols = full({n / 4, 4}, 0.1, TensorOptions(DType::float32));
  for (double v : sum(cols, {0}).to_vector()) CHECK(v == Approx(exact).epsilon(1e-6));
  const Tensor rows = full({4, n / 4}, 0.1, TensorOptions(DType::float32));
  for (double v : sum(rows, {1}).to_vector()) CHECK(v == Approx(exact).epsilon(1e-6));
  CHECK(sum(rows).item() == Approx(4 * exact).epsilon(1e-6));
  CHECK(mean(cols, {0}).to_vector()[0] == Approx(0.1f).epsilon(1e-6));
}

// Found by the precision probe, beside the sum above: the fast sweep's un-broadcast (a bias added
// to [N, C] gets its gradient summed over N) and linear's bias gradient added float32 rows one
// after another (a million rows of 0.1: 100,958 against 100,000); a float64 sum of ten million
// 0.1s was off by 2e-11 (now a cascade, as PyTorch's).
TEST_CASE("Tensor: gradients summed over a million rows, and float64 sums, stay accurate", "[tensor][reduce]") {
  const int64_t n = 1'000'000;
  const double exact = 0.1f * static_cast<double>(n);
  const Tensor seed = full({n, 4}, 0.1, TensorOptions(DType::float32));
  Tensor b = zeros({4}, TensorOptions(DType::float32).requires_grad(true));
  (zeros({n, 4}, TensorOptions(DType::float32)) + b).backward(seed);  // broadcast: summed over n
  for (double v : b.grad().to_vector()) CHECK(v == Approx(exact).epsilon(1e-6));
  Tensor w = zeros({4, 3}, TensorOptions(DType::float32).requires_grad(true));
  Tensor bias = zeros({4}, TensorOptions(DType::float32).requires_grad(true));
  linear(zeros({n, 3}, TensorOptions(DType::float32)), w, bias).backward(seed);
  for (double v : bias.grad().to_vector()) CHECK(v == Approx(exact).epsilon(1e-6));
  const Tensor tenth = full({10'000'000}, 0.1, TensorOptions(DType::float64));
  CHECK(std::abs(sum(tenth).item() - 1e6) < 1e-8);  // within about 1e-14 relative (was 2e-11)
  // Over the last dim too (each row a contiguous run: the same cascade; was 9e-11 relative).
  for (double v : sum(reshape(tenth, {2, 5'000'000}), {1}).to_vector()) CHECK(std::abs(v - 5e5) < 5e-9);
}

}  // namespace
}  // namespace chainrule
