// The sweep's order and clean-up (autograd/tensor_engine.cpp): nodes run in reverse creation
// order, which must hold for a graph continued on another thread, a sweep that throws must not
// leave gradients behind for the next one, and a sweep nested in another frees its own graph only.
#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/tensor.h"

using namespace chainrule;

TEST_CASE("tensor engine: a graph continued on another thread runs its nodes in a valid order",
          "[autograd][engine]") {
  const auto p = TensorOptions(DType::float64).requires_grad(true);
  Tensor x = from_vector({0.5}, {1}, p);
  Tensor h;
  // One thread records h after many other ops, so h's node is far ahead in that thread's count.
  std::thread([&] {
    Tensor t = x;
    for (int i = 0; i < 1000; ++i) t = t * 1.0;
    h = x * 3.0;
  }).join();
  // A fresh thread's count starts low: a and b would sort before h if the count alone decided,
  // and h would run before a has handed it its gradient.
  std::thread([&] {
    Tensor a = h * 2.0;
    Tensor b = h * 5.0;
    Tensor y = a + b;
    y.backward();
  }).join();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().item() == Approx(21.0));  // y = 7h = 21x
}

TEST_CASE("tensor engine: a sweep that throws leaves no gradient in the nodes for the next sweep",
          "[autograd][engine]") {
  const auto p = TensorOptions(DType::float64).requires_grad(true);
  Tensor x = from_vector({0.5}, {1}, p);
  Tensor h = x * 3.0;
  Tensor e = exp(h);   // saves its output
  Tensor a = h * 2.0;  // recorded after e: runs first, and hands h its gradient
  Tensor y = a + e;
  {
    NoGradGuard no_grad;
    e += 1.0;  // exp's saved output is now stale: its rule throws
  }
  CHECK_THROWS_AS(y.backward(), std::logic_error);
  CHECK_FALSE(x.grad().defined());
  // a's sweep reaches h again: h must start from nothing, not from what the failed sweep gave it.
  a.backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().item() == Approx(6.0));
}

TEST_CASE("tensor engine: a sweep nested in a custom backward keeps its own list of nodes that ran",
          "[autograd][engine]") {
  // Each sweep frees the saved tensors of the nodes it ran, from a list that a thread reuses from
  // one sweep to the next: a sweep started inside another's rule must neither take the outer
  // sweep's list nor lose it.
  const auto p = TensorOptions(DType::float64).requires_grad(true);
  Tensor x = from_vector({0.5}, {1}, p);
  Tensor u = from_vector({2.0}, {1}, p);
  double inner_gradient = 0;
  auto forward = [](const std::vector<Tensor>& in) { return in[0] * 3.0; };
  auto backward = [&](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
    GradModeGuard recording(true);
    const Tensor inner = exp(u) * u;
    inner_gradient = grad({inner}, {u})[0].item();  // (1 + u) e^u
    CHECK_THROWS_WITH(grad({inner}, {u}), Catch::Contains("second time"));
    return std::vector<Tensor>{g * 3.0};
  };
  const Tensor y = exp(custom_op("triple", {x}, forward, backward)) * x;
  y.backward();
  CHECK(inner_gradient == Approx(3.0 * std::exp(2.0)));
  REQUIRE(x.grad().defined());
  CHECK(x.grad().item() == Approx(2.5 * std::exp(1.5)));  // d/dx e^(3x) x = e^(3x) (3x + 1)
  CHECK_FALSE(u.grad().defined());
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("second time"));
}
