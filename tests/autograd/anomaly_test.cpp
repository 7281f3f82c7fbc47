// Anomaly mode (autograd/anomaly.h): NaN and infinity caught where they are produced, in a forward
// or only in a backward, naming the op and the line that recorded it, for Scalars and Tensors.
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/anomaly.h"
#include "autograd/scalar.h"
#include "autograd/tensor.h"

using namespace chainrule;
using Catch::Matchers::Contains;

namespace {

// Runs f, expects an AnomalyError and returns its message.
template <class F>
std::string anomaly_message(F&& f) {
  try {
    f();
  } catch (const AnomalyError& e) {
    return e.what();
  }
  FAIL("expected an AnomalyError, but nothing was thrown");
  return {};
}

std::string here(int line) { return "anomaly_test.cpp:" + std::to_string(line); }

}  // namespace

TEST_CASE("anomaly: log(0) in a Scalar forward throws, naming log and its line", "[autograd][anomaly]") {
  Scalar x = Scalar::leaf(0.0);
  DetectAnomalyGuard anomaly;
  int line = __LINE__ + 1;
  const std::string message = anomaly_message([&] { (void)log(x); });
  CHECK_THAT(message, Contains("forward of 'log'") && Contains("-inf") && Contains(here(line)));

  // A NaN (log of a negative number), and a constant operand (nothing is recorded: still checked).
  Scalar negative = Scalar::leaf(-1.0);
  line = __LINE__ + 1;
  const std::string nan = anomaly_message([&] { (void)log(negative); });
  CHECK_THAT(nan, Contains("'log'") && Contains("NaN") && Contains(here(line)));
  line = __LINE__ + 1;
  const std::string constant = anomaly_message([&] { (void)log(Scalar(0.0)); });
  CHECK_THAT(constant, Contains("'log'") && Contains(here(line)));
  // Operators are located too: 1 / 0.
  line = __LINE__ + 1;
  const std::string division = anomaly_message([&] { (void)(1.0 / (x * 1.0)); });
  CHECK_THAT(division, Contains("'div'") && Contains("inf") && Contains(here(line)));
}

TEST_CASE("anomaly: sqrt at 0 is finite forward and infinite only in backward (Scalar)", "[autograd][anomaly]") {
  Scalar x = Scalar::leaf(0.0);
  Scalar w = Scalar::leaf(2.0);
  DetectAnomalyGuard anomaly;
  const int line = __LINE__ + 1;
  const Scalar y = sqrt(x) * w;  // sqrt(0) = 0: the forward is fine
  CHECK(y.value() == 0.0);
  const std::string message = anomaly_message([&] { y.backward(); });
  CHECK_THAT(message, Contains("backward of 'sqrt'") && Contains("inf") && Contains(here(line)));
  // The sweep stopped before writing any leaf gradient.
  CHECK(x.grad() == 0.0);
  CHECK(w.grad() == 0.0);
}

TEST_CASE("anomaly: clone() is named at the caller's line, not inside the library", "[autograd][anomaly]") {
  const Tensor x = tensor({std::numeric_limits<double>::infinity(), 1.0}, TensorOptions(DType::float64).requires_grad());
  DetectAnomalyGuard anomaly;
  const int line = __LINE__ + 1;
  const std::string message = anomaly_message([&] { const Tensor y = x.clone(); });
  CHECK_THAT(message, Contains("'mul'") && Contains(here(line)));
}

TEST_CASE("anomaly: a recorded backward (create_graph) is checked too", "[autograd][anomaly]") {
  Scalar x = Scalar::leaf(0.0);
  DetectAnomalyGuard anomaly;
  const int line = __LINE__ + 1;
  const Scalar y = sqrt(x);
  const std::string message = anomaly_message([&] { (void)grad({y}, {x}, {}, {.create_graph = true}); });
  CHECK_THAT(message, Contains("'sqrt'") && Contains(here(line)));
}

TEST_CASE("anomaly: log(0) in a Tensor forward throws, naming log, its line and the shape", "[autograd][anomaly]") {
  const Tensor x = tensor({1.0, 0.0, 2.0}, TensorOptions(DType::float64).requires_grad());
  DetectAnomalyGuard anomaly;
  int line = __LINE__ + 1;
  const std::string message = anomaly_message([&] { (void)log(x); });
  CHECK_THAT(message, Contains("forward of 'log'") && Contains("-inf") && Contains(here(line)) && Contains("[3]"));
  // Not recorded (no grad): checked all the same.
  line = __LINE__ + 1;
  const std::string constant = anomaly_message([&] { (void)log(x.detach() - 1.5); });
  CHECK_THAT(constant, Contains("'log'") && Contains("NaN") && Contains(here(line)));
}

TEST_CASE("anomaly: sqrt at 0 is finite forward and infinite only in backward (Tensor)", "[autograd][anomaly]") {
  const Tensor x = tensor({4.0, 0.0}, TensorOptions(DType::float64).requires_grad());
  DetectAnomalyGuard anomaly;
  const int line = __LINE__ + 1;
  const Tensor y = sum(sqrt(x) * 3.0);
  CHECK(y.item() == 6.0);
  const std::string message = anomaly_message([&] { y.backward(); });
  CHECK_THAT(message, Contains("backward of 'sqrt'") && Contains("inf") && Contains(here(line)));
  CHECK_FALSE(x.grad().defined());  // leaves are written only after a sweep succeeds
}

TEST_CASE("anomaly: off by default, and the guard nests", "[autograd][anomaly]") {
  CHECK_FALSE(AnomalyMode::enabled());
  Scalar x = Scalar::leaf(0.0);
  const Scalar y = sqrt(x);
  CHECK(std::isinf(log(x).value()));
  y.backward();
  CHECK(std::isinf(x.grad()));
  const Tensor t = tensor({0.0}, TensorOptions(DType::float64).requires_grad());
  CHECK_NOTHROW(sum(sqrt(t)).backward());
  CHECK(std::isinf(t.grad().item()));
  {
    DetectAnomalyGuard outer;
    {
      DetectAnomalyGuard inner;
      CHECK(AnomalyMode::enabled());
    }
    CHECK(AnomalyMode::enabled());
  }
  CHECK_FALSE(AnomalyMode::enabled());
}

TEST_CASE("anomaly: a custom op's bad gradient is charged to the custom op", "[autograd][anomaly]") {
  // A forward that is fine and a backward that divides by the input.
  auto forward = [](std::span<const double> x) { return x[0] * x[0]; };
  auto backward = [](double grad, std::span<const double> x, double) { return std::vector<double>{grad / x[0]}; };
  Scalar x = Scalar::leaf(0.0);
  DetectAnomalyGuard anomaly;
  const int line = __LINE__ + 1;
  const Scalar y = custom_op("odd_square", {x}, forward, backward) + 1.0;
  CHECK_THAT(anomaly_message([&] { y.backward(); }), Contains("backward of 'odd_square'") && Contains(here(line)));

  const Tensor t = tensor({0.0, 1.0}, TensorOptions(DType::float64).requires_grad());
  const int tensor_line = __LINE__ + 1;
  const Tensor z = sum(custom_op(
      "odd_square", {t}, [](const std::vector<Tensor>& in) { return in[0] * in[0]; },
      [](const Tensor& grad, const std::vector<Tensor>& in, const Tensor&) { return std::vector<Tensor>{grad / in[0]}; }));
  CHECK_THAT(anomaly_message([&] { z.backward(); }), Contains("backward of 'odd_square'") && Contains(here(tensor_line)));
  // A custom forward that produces NaN is caught at once.
  auto nan_forward = [](std::span<const double>) { return std::numeric_limits<double>::quiet_NaN(); };
  const int forward_line = __LINE__ + 1;
  const std::string message = anomaly_message([&] { (void)custom_op("nan_op", {x}, nan_forward, backward); });
  CHECK_THAT(message, Contains("forward of 'nan_op'") && Contains("NaN") && Contains(here(forward_line)));
}
