// The sweep's order and clean-up (autograd/tensor_engine.cpp): nodes run in reverse creation
// order, which must hold for a graph continued on another thread, and a sweep that throws must not
// leave gradients behind for the next one.
#include <stdexcept>
#include <thread>

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
