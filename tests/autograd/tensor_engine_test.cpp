// The sweep's order and clean-up (autograd/tensor_engine.cpp): nodes run in reverse creation
// order, which must hold for a graph continued on another thread, a sweep that throws must not
// leave gradients behind for the next one, and a sweep nested in another frees its own graph only
// and leaves the outer sweep's gradients alone.
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
    CHECK_THROWS_WITH(grad({inner}, {u}), Catch::Contains("second time") && Catch::Contains("GradOptions for grad()"));
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

TEST_CASE("tensor engine: grad() in a custom backward over nodes the outer sweep shares is exact",
          "[autograd][engine]") {
  // The custom op's input a = 2x is also used by a * a, so when the custom node runs, the outer
  // sweep holds 2a at a's node, waiting for the custom op's share. A grad() inside the backward
  // that reaches a's node (asking for in[0] or for x) used to write its own gradient into that
  // node and overwrite 2a: both gradients came out wrong (x.grad 6 instead of 10).
  const auto p = TensorOptions(DType::float64).requires_grad(true);
  const double e = std::exp(1.0);
  struct Case {
    const char* name;
    int inner;          // which grad() the backward calls
    bool outer_grad;    // the outer sweep is grad({y}, {x}) instead of y.backward()
    double expected_inner;
  };
  const Case cases[] = {
      {"d exp(in0) / d in0", 0, false, e},     {"d exp(a) a / d a", 1, false, 2 * e},
      {"d exp(a) / d x, retained", 2, false, 2 * e}, {"d exp(in0) / d in0, outer grad()", 0, true, e},
      {"d exp(a) / d x, retained, outer grad()", 2, true, 2 * e},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Tensor x = from_vector({0.5}, {1}, p);
    const Tensor a = x * 2.0;
    double inner = 0;
    auto forward = [](const std::vector<Tensor>& in) { return in[0] * 3.0; };
    auto backward = [&](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
      GradModeGuard recording(true);
      if (c.inner == 0) inner = grad({exp(in[0])}, {in[0]})[0].item();
      if (c.inner == 1) inner = grad({exp(a) * a}, {a})[0].item();
      if (c.inner == 2) inner = grad({exp(a)}, {x}, {}, {.retain_graph = true})[0].item();
      return std::vector<Tensor>{g * 3.0};
    };
    // In this order (the operands of one + may be evaluated either way round): the sweep runs
    // a * a before the custom node, so a's node holds 2a when the backward runs.
    const Tensor tripled = custom_op("triple", {a}, forward, backward);
    const Tensor squared = a * a;
    const Tensor y = tripled + squared;
    // dy/dx = 3 * 2 + 2a * 2 = 10 at a = 1.
    if (c.outer_grad) {
      CHECK(grad({y}, {x})[0].item() == Approx(10.0));
      CHECK_FALSE(x.grad().defined());
    } else {
      y.backward();
      CHECK(x.grad().item() == Approx(10.0));
    }
    CHECK(inner == Approx(c.expected_inner));
  }
}

TEST_CASE("tensor engine: the same from a thread the custom backward starts and joins", "[autograd][engine]") {
  // Nesting was told per thread: a grad() on a worker thread (one thread at a time, as allowed)
  // wrote its state into the nodes the paused outer sweep shares, and both results were wrong
  // ([2, 4] and [16, 32] below).
  const Tensor x = from_vector({1.0, 2.0}, {2}, TensorOptions(DType::float64).requires_grad(true));
  const Tensor h = x * x;
  const Tensor other = sum(h * 3.0);  // d other / dx = 6x
  Tensor inner;
  auto forward = [](const std::vector<Tensor>& in) { return in[0] * 1.0; };
  auto backward = [&](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
    std::thread worker([&] { inner = grad({other}, {x}, {}, {.retain_graph = true})[0]; });
    worker.join();
    return std::vector<Tensor>{g};
  };
  const Tensor c = custom_op("ident", {h}, forward, backward);
  const Tensor loss = sum(c) + sum(h * 5.0);  // d loss / dx = 12x
  loss.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{12, 24});
  CHECK(inner.to_vector() == std::vector<double>{6, 12});
}

TEST_CASE("tensor engine: a grad() in a custom backward that frees a shared node makes the outer sweep throw",
          "[autograd][engine]") {
  // Without retain_graph the inner grad() frees what it ran, a's node included, which the outer
  // sweep still has to run: a clear error, as in PyTorch, not a gradient from freed tensors.
  const auto p = TensorOptions(DType::float64).requires_grad(true);
  Tensor x = from_vector({0.5}, {1}, p);
  const Tensor a = x * 2.0;
  auto forward = [](const std::vector<Tensor>& in) { return in[0] * 3.0; };
  auto backward = [&](const Tensor& g, const std::vector<Tensor>&, const Tensor&) {
    GradModeGuard recording(true);
    (void)grad({exp(a)}, {x});
    return std::vector<Tensor>{g * 3.0};
  };
  const Tensor tripled = custom_op("triple", {a}, forward, backward);
  const Tensor squared = a * a;
  const Tensor y = tripled + squared;
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("second time") && Catch::Contains("'mul'"));
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("tensor engine: grad() with respect to a tensor whose producer a backward freed", "[autograd][engine]") {
  // grad() runs only the nodes that lead to a wanted input: h's producer (freed by the first
  // backward) is not one of them, so it is neither run nor reported as freed (as in PyTorch).
  const auto p = TensorOptions(DType::float64).requires_grad(true);
  const Tensor x = from_vector({0.5, -1.0}, {2}, p);
  const Tensor h = tanh(x);
  sum(h).backward();
  const std::vector<Tensor> g = grad({sum(h * h)}, {h});
  const std::vector<double> hv = h.to_vector(), gv = g[0].to_vector();
  CHECK(gv[0] == Approx(2 * hv[0]));
  CHECK(gv[1] == Approx(2 * hv[1]));
  // With respect to x the freed tanh node is needed: that still throws.
  CHECK_THROWS_WITH(grad({sum(h * h)}, {x}), Catch::Contains("tanh") && Catch::Contains("freed"));
}
