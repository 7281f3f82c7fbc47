// Tensor::add_(other, alpha): self += alpha * other in place, the optimizers' update. Both paths (one
// in-place pass when nothing records, a recorded history otherwise) must agree with += on values,
// version counters, recorded history and errors.
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/tensor.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::message_of;
using Values = std::vector<double>;

TEST_CASE("Tensor::add_: values and version counter", "[autograd][tensor][add_]") {
  SECTION("same shape, float64: every handle sees the update, one version bump") {
    Tensor t = tensor({1, 2, 3}, DType::float64);
    const Tensor alias = t;
    const uint32_t v0 = t.version();
    t.add_(tensor({10, 20, 30}, DType::float64), -0.5);
    CHECK(alias.to_vector() == Values{-4, -8, -12});
    CHECK(t.version() == v0 + 1);
    t.add_(tensor({1, 1, 1}, DType::float64));  // alpha defaults to 1
    CHECK(t.to_vector() == Values{-3, -7, -11});
    CHECK(t.version() == v0 + 2);
  }
  SECTION("float32 matches p - lr * g computed out of place, to the rounding of a fused multiply-add") {
    const Tensor g = tensor({0.3, -1.7, 2.9, 1e-3}, DType::float32);
    Tensor p = tensor({1.1, 2.2, -3.3, 4.4}, DType::float32);
    const Values expected = (p - g * 0.01).to_vector();
    p.add_(g, -0.01);
    CHECK(p.dtype() == DType::float32);
    const Values got = p.to_vector();
    for (size_t i = 0; i < got.size(); ++i) CHECK(std::abs(got[i] - expected[i]) <= 0x1p-23 * std::abs(expected[i]));
  }
  SECTION("long tensors (the BLAS path) in both dtypes agree with a plain loop") {
    for (DType dtype : {DType::float32, DType::float64}) {
      chainrule::testing::Numbers numbers(3);
      const Values pv = numbers.uniform_vector(1000, -1, 1), gv = numbers.uniform_vector(1000, -1, 1);
      Tensor p = from_vector(pv, {10, 100}, dtype);
      const Tensor g = from_vector(gv, {10, 100}, dtype);
      const Values held_p = p.to_vector(), held_g = g.to_vector();
      const uint32_t v0 = p.version();
      p.add_(g, -0.125);  // a power of two: exact in both roundings, so the loop's values are exact
      const Values got = p.to_vector();
      for (size_t i = 0; i < got.size(); ++i) {
        const double expected = dtype == DType::float32
                                    ? static_cast<float>(held_p[i]) - 0.125f * static_cast<float>(held_g[i])
                                    : held_p[i] - 0.125 * held_g[i];
        CHECK(got[i] == expected);
      }
      CHECK(p.version() == v0 + 1);
    }
  }
  SECTION("the operand may be the tensor itself") {
    Tensor t = tensor({1, -2}, DType::float64);
    t.add_(t, 2.0);
    CHECK(t.to_vector() == Values{3, -6});
  }
  SECTION("a broadcasting operand") {
    Tensor t = tensor({{1, 2}, {3, 4}}, DType::float64);
    const uint32_t v0 = t.version();
    t.add_(tensor({10, 20}, DType::float64), 2.0);
    CHECK(t.to_vector() == Values{21, 42, 23, 44});
    CHECK(t.version() == v0 + 1);
  }
}

TEST_CASE("Tensor::add_: autograd rules", "[autograd][tensor][add_]") {
  const TensorOptions leaf = TensorOptions(DType::float64).requires_grad();
  SECTION("on a leaf under NoGradGuard (an optimizer step) the leaf stays a leaf") {
    Tensor w = tensor({1, 2}, leaf);
    sum(w * w).backward();
    {
      NoGradGuard no_grad;
      w.add_(w.grad(), -0.25);
    }
    CHECK(w.to_vector() == Values{0.5, 1});
    CHECK(w.is_leaf());
    CHECK(w.requires_grad());
  }
  SECTION("on a non-leaf it is recorded: the gradient sees the true history") {
    const Tensor x = tensor({1, 2}, leaf);
    Tensor y = x * 2.0;
    y.add_(x * x, 3.0);  // y = 2x + 3x^2
    CHECK(y.to_vector() == Values{5, 16});
    sum(y).backward();
    CHECK(x.grad().to_vector() == Values{8, 14});  // 2 + 6x
  }
  SECTION("a tensor saved by a recorded op and then changed with add_ fails that backward") {
    const Tensor x = tensor({1, 2}, leaf);
    Tensor w = tensor({3, 4}, DType::float64);
    const Tensor y = sum(x * w);
    w.add_(tensor({1, 1}, DType::float64));
    CHECK_THROWS_WITH(y.backward(), Contains("modified in place"));
  }
}

TEST_CASE("Tensor::add_: errors name the op, the shapes and the dtypes", "[autograd][tensor][add_][errors]") {
  const std::string shape = message_of<std::invalid_argument>([] {
    Tensor t = zeros({3}, DType::float64);
    t.add_(zeros({2, 3}, DType::float64), 0.5);
  });
  CHECK_THAT(shape, Contains("add_") && Contains("[2, 3]") && Contains("[3]"));

  const std::string dtype = message_of<std::invalid_argument>([] {
    Tensor t = zeros({2}, DType::float32);
    t.add_(zeros({2}, DType::float64));
  });
  CHECK_THAT(dtype, Contains("add_") && Contains("float32") && Contains("float64"));

  const std::string undefined = message_of<std::invalid_argument>([] {
    Tensor t = zeros({2}, DType::float64);
    t.add_(Tensor());
  });
  CHECK_THAT(undefined, Contains("add_") && Contains("undefined"));

  Tensor w = full({3}, 0.5, TensorOptions(DType::float64).requires_grad());
  const std::string leaf = message_of<std::logic_error>([&] { w.add_(ones({3}, DType::float64), -0.1); });
  CHECK_THAT(leaf, Contains("add_") && Contains("leaf") && Contains("[3]") && Contains("NoGradGuard"));
  CHECK(w.to_vector() == Values{0.5, 0.5, 0.5});  // untouched
}
