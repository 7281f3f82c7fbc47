// The one-element fast paths behind the tinyop benchmark: the fast sweep's per-element rules
// against the Tensor rules (create_graph runs those), every op on one element, plain numbers of
// the other dtype, saved numbers' version checks, a long chain against hand-written derivatives,
// and nodes with more inputs than their edges keep inline.
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/tensor.h"

using namespace chainrule;

namespace {

// d out / d x through the fast sweep (backward) and through the recorded Tensor rules.
template <class F>
void check_fast_matches_tensor_rules(DType dtype, F f) {
  Tensor x = from_vector({0.7, -1.3}, {2}, TensorOptions(dtype).requires_grad());
  sum(f(x)).backward();
  const std::vector<double> fast = x.grad().to_vector();
  const Tensor recorded = grad({sum(f(x))}, {x}, {}, GradOptions{.create_graph = true})[0];
  REQUIRE(recorded.dtype() == dtype);
  const std::vector<double> slow = recorded.to_vector();
  const double tol = dtype == DType::float32 ? 1e-5 : 1e-12;
  for (size_t i = 0; i < fast.size(); ++i) CHECK(fast[i] == Approx(slow[i]).epsilon(tol));
}

// The gradients of f(inputs) for every input, through the fast sweep (backward) and through the
// recorded Tensor rules (create_graph), which must agree in shape, dtype and value.
template <class F>
void check_fast_matches_tensor_rules(const std::vector<Tensor>& inputs, F f) {
  for (Tensor x : inputs) x.zero_grad();
  sum(f(inputs)).backward();
  const std::vector<Tensor> slow = grad({sum(f(inputs))}, inputs, {}, GradOptions{.create_graph = true});
  for (size_t k = 0; k < inputs.size(); ++k) {
    INFO("input " << k << " of shape " << inputs[k].shape().str());
    const Tensor fast = inputs[k].grad();
    REQUIRE(fast.defined());
    CHECK(fast.shape() == inputs[k].shape());
    CHECK(fast.shape() == slow[k].shape());
    CHECK(fast.dtype() == slow[k].dtype());
    const double tol = fast.dtype() == DType::float32 ? 1e-5 : 1e-12;
    for (size_t i = 0; i < fast.to_vector().size(); ++i)
      CHECK(fast.to_vector()[i] == Approx(slow[k].to_vector()[i]).epsilon(tol));
  }
}

}  // namespace

TEST_CASE("Tensor fast rules: every op on one element, against the Tensor rules", "[autograd][tensor]") {
  // One-element outputs take their own path in the fast sweep; here with inputs of shapes [1], []
  // and [1, 1] (so an input's gradient may have another shape than the output's), an input used
  // twice, and numbers of the other dtype.
  using V = std::vector<Tensor>;
  for (DType d : {DType::float32, DType::float64}) {
    for (const Shape& sx : {Shape{1}, Shape{}, Shape{1, 1}}) {
      for (const Shape& sy : {Shape{1}, Shape{}}) {
        INFO(dtype_name(d) << " x " << sx.str() << " y " << sy.str());
        const Tensor x = from_vector({0.7}, sx, TensorOptions(d).requires_grad());
        const Tensor y = from_vector({1.3}, sy, TensorOptions(d).requires_grad());
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return -in[0]; });
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return exp(in[0]); });
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return log(in[0]); });
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return sqrt(in[0]); });
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return sigmoid(in[0]); });
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return tanh(in[0]); });
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return relu(in[0]); });
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return abs(in[0]); });
        check_fast_matches_tensor_rules(V{x, y}, [](const V& in) { return in[0] + in[1]; });
        check_fast_matches_tensor_rules(V{x, y}, [](const V& in) { return in[0] - in[1]; });
        check_fast_matches_tensor_rules(V{x, y}, [](const V& in) { return in[0] * in[1]; });
        check_fast_matches_tensor_rules(V{x, y}, [](const V& in) { return in[0] / in[1]; });
        check_fast_matches_tensor_rules(V{x, y}, [](const V& in) { return pow(in[0], in[1]); });
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return in[0] * in[0]; });
        check_fast_matches_tensor_rules(V{x}, [](const V& in) { return sigmoid(in[0] * 0.9 + -0.2) * 2.0; });
        check_fast_matches_tensor_rules(V{x, y}, [](const V& in) { return sigmoid(in[0] * in[1] + in[1]); });
      }
    }
  }
}

TEST_CASE("Tensor fast rules: plain numbers of the other dtype", "[autograd][tensor]") {
  for (DType d : {DType::float32, DType::float64}) {
    INFO(dtype_name(d));
    check_fast_matches_tensor_rules(d, [](const Tensor& x) { return x * 0.3; });
    check_fast_matches_tensor_rules(d, [](const Tensor& x) { return 2.5 * x; });
    check_fast_matches_tensor_rules(d, [](const Tensor& x) { return x / 1.7; });
    check_fast_matches_tensor_rules(d, [](const Tensor& x) { return 1.7 / x; });
    check_fast_matches_tensor_rules(d, [](const Tensor& x) { return pow(x * x + 1.0, Tensor(1.5)); });
    check_fast_matches_tensor_rules(d, [](const Tensor& x) { return pow(Tensor(2.0), x); });
    check_fast_matches_tensor_rules(d, [](const Tensor& x) { return sigmoid(x * 0.9 + -0.2); });
  }
  // dtype of the exact values: 0.3 rounds to float32 before it multiplies, as in the forward.
  Tensor x = from_vector({1.0}, {1}, TensorOptions(DType::float32).requires_grad());
  (x * 0.3).backward();
  CHECK(x.grad().item() == static_cast<double>(0.3f));
}

TEST_CASE("Tensor fast rules: a saved number changed in place is still caught", "[autograd][tensor]") {
  Tensor x = from_vector({2.0}, {1}, TensorOptions(DType::float32).requires_grad());
  Tensor c(3.0);  // float64 number, saved by mul for x's gradient
  Tensor y = x * c;
  c.set({}, 4.0);
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("backward of 'mul'") && Catch::Contains("modified in place"));
}

TEST_CASE("Tensor fast rules: a long one-element chain matches hand-written derivatives", "[autograd][tensor]") {
  // y_{k+1} = sigmoid(y_k * w + b), as bench/tinyop.h; dy/dw and dy/db by forward accumulation.
  const double w0 = 0.9, b0 = -0.2, y0 = 0.3;
  double y = y0, dw = 0, db = 0;
  for (int k = 0; k < 1000; ++k) {
    const double s = 1 / (1 + std::exp(-(y * w0 + b0))), ds = s * (1 - s);
    dw = ds * (dw * w0 + y);
    db = ds * (db * w0 + 1);
    y = s;
  }
  for (DType d : {DType::float64, DType::float32}) {
    INFO(dtype_name(d));
    Tensor w = from_vector({w0}, {1}, TensorOptions(d).requires_grad());
    Tensor b = from_vector({b0}, {1}, TensorOptions(d).requires_grad());
    for (int run = 0; run < 2; ++run) {
      w.zero_grad();
      b.zero_grad();
      Tensor t = from_vector({y0}, {1}, d);
      for (int k = 0; k < 1000; ++k) t = sigmoid(t * w + b);
      t.backward();
      const double tol = d == DType::float32 ? 1e-4 : 1e-12;
      CHECK(t.item() == Approx(y).epsilon(tol));
      CHECK(w.grad().item() == Approx(dw).epsilon(tol));
      CHECK(b.grad().item() == Approx(db).epsilon(tol));
    }
  }
}

TEST_CASE("Tensor fast rules: ops with more inputs than a node keeps inline", "[autograd][tensor]") {
  std::vector<Tensor> xs;
  for (int i = 0; i < 5; ++i) xs.push_back(full({2}, i + 1.0, TensorOptions(DType::float64).requires_grad()));
  const Tensor y = concat(xs, 0);
  sum(y * y).backward();
  for (int i = 0; i < 5; ++i) CHECK(xs[i].grad().to_vector() == std::vector<double>{2.0 * (i + 1), 2.0 * (i + 1)});
}
