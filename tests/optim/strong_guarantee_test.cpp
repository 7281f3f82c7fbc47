// A call that throws leaves what the user had as it was (found by the exception-safety probe): the
// Tensor engine's checks after the sweep run before the graph is freed and before any .grad is
// written; optimizer steps under anomaly mode put back what they wrote; Module::to converts every
// parameter before changing one; Sequential checks a name before moving a module in.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <vector>

#include "autograd/anomaly.h"
#include "nn/nn.h"
#include "optim/adam.h"
#include "optim/sgd.h"

using namespace chainrule;
using Catch::Contains;

namespace {

const TensorOptions kParam = TensorOptions().requires_grad(true);

// A module with one parameter, so that Module::to can convert it under a graph that did not save it.
struct One : nn::Module {
  explicit One(std::vector<double> values) : Module("One") {
    w = register_parameter("w", from_vector(values, {static_cast<int64_t>(values.size())}));
  }
  Tensor forward(const Tensor& x) override { return x; }
  Tensor w;
};

std::vector<double> values(const Tensor& t) { return t.defined() ? t.to_vector() : std::vector<double>{}; }

}  // namespace

TEST_CASE("grad: an unused input throws before the graph is freed") {
  const Tensor x = tensor({1.0, 2.0}, kParam), z = tensor({5.0}, kParam);
  const Tensor y = sum(x * x);
  CHECK_THROWS_WITH(grad({y}, {x, z}), Contains("input 1") && Contains("not used"));
  const std::vector<Tensor> g = grad({y}, {x, z}, {}, {.retain_graph = true, .allow_unused = true});
  CHECK(values(g[0]) == std::vector<double>{2.0, 4.0});
  CHECK(values(g[1]) == std::vector<double>{0.0});
  y.backward();
  CHECK(values(x.grad()) == std::vector<double>{2.0, 4.0});
}

TEST_CASE("backward: a leaf converted since the graph was recorded throws before the graph is freed") {
  One m({1.0, 2.0});
  const Tensor y = sum(m.w * 3.0);
  m.to(DType::float64);
  CHECK_THROWS_WITH(y.backward(), Contains("converted"));
  CHECK_FALSE(m.w.grad().defined());
  m.to(DType::float32);
  y.backward();  // the cause fixed, the same graph runs
  CHECK(values(m.w.grad()) == std::vector<double>{3.0, 3.0});
}

TEST_CASE("backward_and_step (fused SGD): a converted parameter throws before the graph is freed") {
  One m({1.0, 2.0});
  optim::SGD sgd(m.parameters(), optim::SGDOptions(0.5));
  const Tensor y = sum(m.w * 3.0);
  m.to(DType::float64);
  CHECK_THROWS(sgd.backward_and_step(y));
  CHECK(values(m.w) == std::vector<double>{1.0, 2.0});
  m.to(DType::float32);
  sgd.backward_and_step(y);
  CHECK(values(m.w) == std::vector<double>{-0.5, 0.5});
}

TEST_CASE("backward under anomaly mode: an overflow while adding to .grad writes no leaf's .grad") {
  const Tensor a = tensor({1.0}, kParam), b = tensor({1.0}, kParam);
  (sum(a * 1.0) + sum(b * 3e38)).backward();  // a.grad 1, b.grad 3e38 (float32)
  const Tensor y = sum(a * 1.0) + sum(b * 3e38);
  {
    const DetectAnomalyGuard anomaly;
    CHECK_THROWS_AS(y.backward(), AnomalyError);  // b's 3e38 + 3e38 overflows
  }
  CHECK(values(a.grad()) == std::vector<double>{1.0});
  CHECK(values(b.grad()) == std::vector<double>{static_cast<double>(3e38f)});
  y.backward();  // not freed: without anomaly mode it runs
  CHECK(values(a.grad()) == std::vector<double>{2.0});
  CHECK(std::isinf(values(b.grad())[0]));
}

TEST_CASE("optimizer steps under anomaly mode: an overflow part-way writes no parameter and no state") {
  SECTION("Adam") {
    const Tensor a = tensor({1.0, 2.0}, kParam), b = tensor({3.0, 4.0}, kParam);
    (sum(a * 1.0) + sum(b * 1e30)).backward();  // (1 - beta2) g^2 = 1e57 overflows float32
    optim::Adam adam({a, b}, optim::AdamOptions(0.1));
    {
      const DetectAnomalyGuard anomaly;
      CHECK_THROWS_AS(adam.step(), AnomalyError);
    }
    CHECK(values(a) == std::vector<double>{1.0, 2.0});
    CHECK(values(b) == std::vector<double>{3.0, 4.0});
    CHECK(a.version() == 0);
    for (size_t i = 0; i < 2; ++i) {
      CHECK(adam.state(i).step == 0);
      CHECK_FALSE(adam.state(i).exp_avg.defined());
    }
    adam.step();  // without anomaly mode it steps (a moves by lr)
    CHECK(values(a)[0] == Approx(0.9));
    CHECK(adam.state(0).step == 1);
  }
  SECTION("SGD with weight decay and momentum") {
    const Tensor a = tensor({1.0, 2.0}, kParam), b = tensor({3e38, 1.0}, kParam);
    optim::SGD sgd({a, b}, optim::SGDOptions(0.1).momentum(0.9).weight_decay(10.0));
    (sum(a * 1.0) + sum(b * 1.0)).backward();
    sgd.step();  // buffers exist now (b's is inf: the decay overflowed without anomaly mode)
    const std::vector<double> a1 = values(a), buffer0 = values(sgd.momentum_buffer(0));
    {
      const DetectAnomalyGuard anomaly;
      CHECK_THROWS_AS(sgd.step(), AnomalyError);
    }
    CHECK(values(a) == a1);
    CHECK(values(sgd.momentum_buffer(0)) == buffer0);
  }
}

TEST_CASE("Optimizer::backward_and_step: a state that no longer fits throws before the backward") {
  auto d = std::make_shared<nn::Dense>(nn::DenseOptions(2, 1).seed(3));
  optim::Adam adam(d->parameters(), optim::AdamOptions(0.1));
  const Tensor x = ones({1, 2});
  adam.backward_and_step(sum(d->forward(x)));
  d->to(DType::float64);
  const Tensor loss = sum(d->forward(x.to(DType::float64)));
  CHECK_THROWS_WITH(adam.backward_and_step(loss), Contains("float64") && Contains("state is float32"));
  for (const Tensor& p : d->parameters()) CHECK_FALSE(p.grad().defined());
  loss.backward();  // the graph was not freed
  CHECK(d->parameters()[0].grad().defined());
}

TEST_CASE("Module::to under anomaly mode: a conversion that throws leaves every parameter as it was") {
  auto first = std::make_shared<One>(std::vector<double>{1.0});
  auto second = std::make_shared<One>(std::vector<double>{2.0});
  nn::Sequential net(first, second);
  net.to(DType::float64);
  {
    const NoGradGuard no_grad;
    second->w.set({0}, 1e39);
  }
  sum(first->w * 1.0).backward();
  {
    const DetectAnomalyGuard anomaly;
    CHECK_THROWS_AS(net.to(DType::float32), AnomalyError);
  }
  CHECK(first->w.dtype() == DType::float64);
  CHECK(second->w.dtype() == DType::float64);
  CHECK(first->w.grad().defined());
}

TEST_CASE("Sequential::push_back(M&&): a name clash throws before the module is moved from") {
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Sigmoid>());  // "0"
  seq.push_back("2", std::make_shared<nn::Sigmoid>());
  nn::Dense d(nn::DenseOptions(2, 3));
  CHECK_THROWS_WITH(seq.push_back(std::move(d)), Contains("'2'"));
  CHECK(d.parameters().size() == 2);  // NOLINT(bugprone-use-after-move): the point of the test
  CHECK(d.weight().defined());
  CHECK(seq.size() == 2);
}

TEST_CASE("optimizer steps under anomaly mode: an in-place update that overflows throws, nothing written") {
  // optimizer.h says anomaly mode checks every op of an update; the in-place ops (add_'s axpy,
  // +=, *=) were not checked, and a float32 parameter at 3e38 stepped to inf silently.
  const TensorOptions f32 = TensorOptions(DType::float32).requires_grad(true);
  for (bool fused : {false, true}) {
    INFO((fused ? "backward_and_step" : "step"));
    const Tensor a = tensor({1.0, 2.0}, f32), p = tensor({3e38, 1.0}, f32);
    optim::SGD sgd({a, p}, optim::SGDOptions(1.0));
    const Tensor loss = sum(a * 1.0) - sum(p * 3e38);
    {
      const DetectAnomalyGuard anomaly;
      if (fused) {
        CHECK_THROWS_AS(sgd.backward_and_step(loss), AnomalyError);
      } else {
        loss.backward();
        CHECK_THROWS_AS(sgd.step(), AnomalyError);
      }
    }
    CHECK(values(a) == std::vector<double>{1.0, 2.0});
    CHECK(values(p) == std::vector<double>{3e38f, 1.0});
    if (!fused) CHECK(values(p.grad()) == std::vector<double>{-3e38f, -3e38f});
  }
  // Outside an optimizer too: the tensor keeps its values.
  Tensor t = tensor({3e38, 1.0}, DType::float32);
  {
    const DetectAnomalyGuard anomaly;
    CHECK_THROWS_AS(t += tensor({3e38, 1.0}, DType::float32), AnomalyError);
    CHECK_THROWS_AS(t.add_(tensor({3e38, 1.0}, DType::float32), 2.0), AnomalyError);
  }
  CHECK(values(t) == std::vector<double>{3e38f, 1.0});
}
