// Tests for linear (autograd/tensor_linear.cpp): values by hand, forward and gradients against the
// composition it replaces (matmul(x, transpose(w, 0, 1)) + b), the plain backward (transposed gemms)
// against the recorded one (Tensor ops), saved inputs, and the error messages. Central differences
// and second derivatives are in gradcheck_table_test.cpp and second_order_test.cpp.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/anomaly.h"
#include "autograd/tensor.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::message_of;

namespace {

const TensorOptions f64 = TensorOptions(DType::float64);

void check_close(const Tensor& got, const Tensor& want, double tol) {
  REQUIRE(got.shape() == want.shape());
  CHECK(got.dtype() == want.dtype());
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element " << i << ": " << g[i] << " vs " << w[i]);
    CHECK(std::abs(g[i] - w[i]) <= tol * (1 + std::abs(w[i])));
  }
}

Tensor composed(const Tensor& x, const Tensor& w, const Tensor& b) {
  const Tensor y = matmul(x, transpose(w, 0, 1));
  return b.defined() ? y + b : y;
}

struct Case {
  Shape x;
  int64_t out;
  bool bias;
};

// x [..., in] with weight [out, in]; empty dims among them (no rows, in = 0, out = 0).
const std::vector<Case> cases = {
    {{5, 3}, 4, true},  {{5, 3}, 4, false}, {{2, 5, 3}, 4, true}, {{3}, 4, true},    {{1, 7}, 2, true},
    {{0, 3}, 4, true},  {{5, 0}, 4, true},  {{5, 3}, 0, true},    {{2, 1, 3}, 1, false},
    // One row takes gemv and an outer product instead of gemm, also with empty dims.
    {{1, 1, 7}, 3, false}, {{1, 0}, 4, true}, {{0}, 4, true}, {{1, 3}, 0, true}, {{3}, 0, false},
    // A few rows against many outputs compute y^T and transpose it.
    {{2, 5}, 8, true}, {{2, 2, 3}, 17, false}, {{16, 4}, 64, true}, {{3, 0}, 12, true},
};

}  // namespace

TEST_CASE("linear: values by hand") {
  const Tensor w = tensor({{1, 2}, {3, 4}, {5, 6}}, f64);  // [3, 2]: 2 inputs, 3 outputs
  const Tensor y = linear(tensor({{1, 1}}, f64), w, tensor({0.5, 0, -0.5}, f64));
  CHECK(y.shape() == Shape{1, 3});
  CHECK(y.dtype() == DType::float64);
  CHECK(y.to_vector() == std::vector<double>{3.5, 7, 10.5});
  CHECK(linear(tensor({{1, 0}, {0, -1}}, f64), w).to_vector() == std::vector<double>{1, 3, 5, -2, -4, -6});
  const Tensor v = linear(tensor({2, 1}), tensor({{1, 2}, {3, 4}, {5, 6}}));  // 1-D x, float32
  CHECK(v.shape() == Shape{3});
  CHECK(v.dtype() == DType::float32);
  CHECK(v.to_vector() == std::vector<double>{4, 10, 16});
}

TEST_CASE("linear: forward and gradients equal matmul(x, transpose(w)) + b") {
  for (const DType dtype : {DType::float32, DType::float64}) {
    const double tol = dtype == DType::float64 ? 1e-12 : 1e-5;
    for (const Case& c : cases) {
      const int64_t in = c.x[c.x.size() - 1];
      INFO("x " << c.x.str() << ", out " << c.out << (c.bias ? ", bias" : ", no bias") << ", " << dtype_name(dtype));
      Generator gen(5);
      const TensorOptions opts = TensorOptions(dtype).requires_grad();
      const Tensor x = uniform(c.x, -1, 1, gen, opts), w = uniform({c.out, in}, -1, 1, gen, opts);
      const Tensor b = c.bias ? uniform({c.out}, -1, 1, gen, opts) : Tensor();
      const Tensor y = linear(x, w, b);
      const Tensor want = composed(x, w, b);
      check_close(y, want, tol);
      CHECK(y.grad_fn_name() == "linear");

      const Tensor seed = uniform(y.shape(), -1, 1, gen, dtype);
      std::vector<Tensor> wrt = {x, w};
      if (c.bias) wrt.push_back(b);
      const auto plain = grad({y}, wrt, {seed});
      const auto reference = grad({want}, wrt, {seed});
      const auto recorded = grad({linear(x, w, b)}, wrt, {seed}, GradOptions{.create_graph = true});
      // Anomaly mode (and traces) run the rule that is neither fast nor recorded.
      std::vector<Tensor> unrecorded;
      {
        DetectAnomalyGuard anomaly;
        unrecorded = grad({linear(x, w, b)}, wrt, {seed});
      }
      for (size_t i = 0; i < wrt.size(); ++i) {
        INFO("input " << i);
        CHECK_FALSE(plain[i].requires_grad());
        check_close(plain[i], reference[i], tol);
        check_close(recorded[i], reference[i], tol);
        check_close(unrecorded[i], reference[i], tol);
      }
    }
  }
}

TEST_CASE("linear: gradients reach only the inputs that require grad, and accumulate") {
  const Tensor x = tensor({{1, 2}, {3, 4}}, f64);
  const Tensor w = tensor({{1, -1}, {0.5, 2}, {0, 1}}, TensorOptions(f64).requires_grad());
  const Tensor b = tensor({1, 2, 3}, TensorOptions(f64).requires_grad());
  sum(linear(x, w, b)).backward();
  // dw = grad^T @ x with grad all ones: every row of dw is the column sums of x.
  CHECK(w.grad().to_vector() == std::vector<double>{4, 6, 4, 6, 4, 6});
  CHECK(b.grad().to_vector() == std::vector<double>{2, 2, 2});
  CHECK_FALSE(x.grad().defined());
  sum(linear(x, w, b)).backward();
  CHECK(w.grad().to_vector() == std::vector<double>{8, 12, 8, 12, 8, 12});
  CHECK(b.grad().to_vector() == std::vector<double>{4, 4, 4});

  const Tensor x2 = tensor({{1, 2}}, TensorOptions(f64).requires_grad());
  sum(linear(x2, tensor({{1, -1}, {0.5, 2}, {0, 1}}, f64))).backward();  // dx = grad @ w: w's column sums
  CHECK(x2.grad().to_vector() == std::vector<double>{1.5, 2});
  {
    NoGradGuard no_grad;
    CHECK_FALSE(linear(x2, w, b).requires_grad());
  }
}

TEST_CASE("linear: a saved input changed in place invalidates the backward") {
  // dw = grad^T @ x reads x.
  Tensor x = tensor({{1, 1}}, f64);
  const Tensor w = tensor({{1, 2}, {3, 4}}, TensorOptions(f64).requires_grad());
  const Tensor y = linear(x, w);
  x.set({0, 0}, 5);
  CHECK_THROWS_WITH(sum(y).backward(), Contains("linear") && Contains("modified in place"));

  // w is not needed when x does not require grad: changing it does not invalidate dw.
  Tensor w2 = tensor({{1, 2}, {3, 4}}, TensorOptions(f64).requires_grad());
  const Tensor y2 = linear(tensor({{1, 2}}, f64), w2, tensor({0, 0}, f64));
  {
    NoGradGuard no_grad;
    w2.set({0, 0}, 7);
  }
  sum(y2).backward();
  CHECK(w2.grad().to_vector() == std::vector<double>{1, 2, 1, 2});
}

TEST_CASE("linear: errors name the op and the shapes") {
  const std::string in = message_of<std::invalid_argument>([] { linear(zeros({2, 3}), zeros({4, 5})); });
  CHECK_THAT(in, Contains("linear") && Contains("[2, 3]") && Contains("[4, 5]") && Contains("3 vs 5"));
  const std::string bias =
      message_of<std::invalid_argument>([] { linear(zeros({2, 3}), zeros({4, 3}), zeros({3})); });
  CHECK_THAT(bias, Contains("linear") && Contains("bias [3]") && Contains("[4, 3]") && Contains("expected [4]"));
  const std::string bias2 =
      message_of<std::invalid_argument>([] { linear(zeros({2, 3}), zeros({4, 3}), zeros({1, 4})); });
  CHECK_THAT(bias2, Contains("linear") && Contains("[1, 4]"));
  const std::string dtype =
      message_of<std::invalid_argument>([] { linear(zeros({2, 3}), zeros({4, 3}, DType::float64)); });
  CHECK_THAT(dtype, Contains("linear") && Contains("float32") && Contains("float64") && Contains("[2, 3]") &&
                        Contains("[4, 3]"));
  const std::string bias_dtype = message_of<std::invalid_argument>(
      [] { linear(zeros({2, 3}), zeros({4, 3}), zeros({4}, DType::float64)); });
  CHECK_THAT(bias_dtype, Contains("linear") && Contains("float32") && Contains("float64") && Contains("[4]"));
  const std::string w1 = message_of<std::invalid_argument>([] { linear(zeros({2, 3}), zeros({3})); });
  CHECK_THAT(w1, Contains("linear") && Contains("2-D") && Contains("[3]"));
  const std::string x0 = message_of<std::invalid_argument>([] { linear(Tensor(2.0), zeros({4, 1})); });
  CHECK_THAT(x0, Contains("linear") && Contains("[]") && Contains("[4, 1]"));
  CHECK_THROWS_WITH(linear(Tensor(), zeros({4, 3})), Contains("linear") && Contains("undefined"));
}
