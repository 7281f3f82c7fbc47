// backward_and_update (autograd/tensor.h) and Optimizer::backward_and_step: the fused step equals
// backward() followed by the update, on every linear shape (deferred gemm or rank-one products into
// the weight), with shared weights, accumulated gradients, unreached parameters, a weight that is
// also the input; nothing changes when it throws; the update bumps versions; SGD's fused and
// unfused forms train a Dense network to the same weights.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "autograd/tensor.h"
#include "nn/nn.h"
#include "optim/adam.h"
#include "optim/sgd.h"
#include "tests/autograd/testing.h"

using namespace chainrule;
using Catch::Contains;
using chainrule::testing::message_of;

namespace {

double tolerance(DType d) { return d == DType::float64 ? 1e-12 : 2e-6; }

void check_close(const Tensor& got, const std::vector<double>& want, double tol) {
  const std::vector<double> g = got.to_vector();
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element " << i << ": " << g[i] << " vs " << want[i]);
    CHECK(std::abs(g[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

// scale * p + alpha * g, from values read before the step.
std::vector<double> updated(const std::vector<double>& p, const std::vector<double>& g, double alpha, double scale) {
  std::vector<double> out(p.size());
  for (size_t i = 0; i < p.size(); ++i) out[i] = scale * p[i] + alpha * g[i];
  return out;
}

struct Case {
  Shape x;
  int64_t out;
  bool bias;
};

// The shapes of tensor_linear_test.cpp: one row (a rank-one update), a few rows, many, a batch of
// matrices, and empty dims.
const std::vector<Case> cases = {
    {{5, 3}, 4, true},   {{5, 3}, 4, false}, {{2, 5, 3}, 4, true}, {{3}, 4, true},     {{1, 7}, 2, true},
    {{0, 3}, 4, true},   {{5, 0}, 4, true},  {{5, 3}, 0, true},    {{2, 1, 3}, 1, false}, {{1, 1, 7}, 3, false},
    {{16, 4}, 64, true}, {{2, 5}, 8, true},  {{40, 9}, 6, true},
    {{4, 3}, 4, true},  // out == rows: a missing transpose of the gradient would still fit
};

}  // namespace

TEST_CASE("backward_and_update: equals backward() then p = scale * p + alpha * grad, on every linear shape") {
  for (const DType dtype : {DType::float32, DType::float64}) {
    for (const Case& c : cases) {
      for (const bool x_requires_grad : {false, true}) {
        const int64_t in = c.x[c.x.size() - 1];
        INFO("x " << c.x.str() << ", out " << c.out << (c.bias ? ", bias" : "") << ", " << dtype_name(dtype)
                  << (x_requires_grad ? ", x requires grad" : ""));
        Generator gen(9);
        const TensorOptions opts = TensorOptions(dtype).requires_grad();
        const Tensor x = uniform(c.x, -1, 1, gen, TensorOptions(dtype).requires_grad(x_requires_grad));
        const Tensor w = uniform({c.out, in}, -1, 1, gen, opts);
        const Tensor b = c.bias ? uniform({c.out}, -1, 1, gen, opts) : Tensor();
        auto loss = [&] {
          const Tensor y = linear(x, w, b);
          return sum(y * y) * 0.5 + sum(y);
        };
        // The reference: backward(), then the update by hand.
        loss().backward();
        const std::vector<double> w0 = w.to_vector(), gw = w.grad().to_vector();
        const std::vector<double> b0 = c.bias ? b.to_vector() : std::vector<double>();
        const std::vector<double> gb = c.bias ? b.grad().to_vector() : std::vector<double>();
        const std::vector<double> gx = x_requires_grad ? x.grad().to_vector() : std::vector<double>();
        Tensor(w).zero_grad();
        if (c.bias) Tensor(b).zero_grad();
        if (x_requires_grad) Tensor(x).zero_grad();

        const uint32_t version = w.version();
        std::vector<ParamUpdate> updates = {{w, -0.1, 0.75}};
        if (c.bias) updates.push_back({b, -0.1, 0.75});
        backward_and_update(loss(), updates);
        check_close(w, updated(w0, gw, -0.1, 0.75), tolerance(dtype));
        if (c.bias) check_close(b, updated(b0, gb, -0.1, 0.75), tolerance(dtype));
        CHECK_FALSE(w.grad().defined());
        CHECK(w.version() > version);
        // A leaf that is not a parameter gets its .grad as from backward().
        if (x_requires_grad) check_close(x.grad(), gx, tolerance(dtype));
      }
    }
  }
}

TEST_CASE("backward_and_update: a weight shared by two layers and used elementwise too") {
  // w takes three contributions: two products (deferred into w) and 2 * w from sum(w * w) (summed
  // in the sweep and added at the end); b one from each layer.
  Generator gen(3);
  const TensorOptions opts = TensorOptions(DType::float64).requires_grad();
  const Tensor x = uniform({6, 4}, -1, 1, gen, DType::float64);
  const Tensor w = uniform({4, 4}, -1, 1, gen, opts), b = uniform({4}, -1, 1, gen, opts);
  auto loss = [&] { return sum(sigmoid(linear(tanh(linear(x, w, b)), w, b))) + sum(w * w); };
  loss().backward();
  const std::vector<double> want_w = updated(w.to_vector(), w.grad().to_vector(), -0.3, 1.0);
  const std::vector<double> want_b = updated(b.to_vector(), b.grad().to_vector(), -0.3, 1.0);
  Tensor(w).zero_grad();
  Tensor(b).zero_grad();
  backward_and_update(loss(), {{w, -0.3}, {b, -0.3}});
  check_close(w, want_w, 1e-12);
  check_close(b, want_b, 1e-12);
}

TEST_CASE("backward_and_update: the weight is also the input (linear(w, w)): not deferred, still right") {
  const Tensor w = tensor({{0.5, -1.0}, {2.0, 0.25}}, TensorOptions(DType::float64).requires_grad());
  auto loss = [&] { return sum(linear(w, w) * tensor({{1.0, 2.0}, {3.0, 4.0}}, DType::float64)); };
  loss().backward();
  const std::vector<double> want = updated(w.to_vector(), w.grad().to_vector(), -0.5, 1.0);
  Tensor(w).zero_grad();
  backward_and_update(loss(), {{w, -0.5}});
  check_close(w, want, 1e-12);
}

TEST_CASE("backward_and_update: an accumulated .grad is part of the update, an unreached parameter") {
  const TensorOptions opts = TensorOptions(DType::float64).requires_grad();
  const Tensor x = tensor({{1.0, 2.0}, {-1.0, 0.5}, {0.0, 3.0}}, DType::float64);
  const Tensor w = tensor({{0.1, 0.2}, {0.3, -0.4}}, opts);
  const Tensor unused = tensor({1.0, 2.0}, opts);        // not in the graph, no gradient: unchanged
  const Tensor stale = tensor({5.0, -5.0}, opts);        // not in the graph, but with a .grad
  auto loss = [&] { return sum(linear(x, w) * linear(x, w)); };
  loss().backward();                                      // one micro-batch accumulated earlier
  (sum(stale * stale)).backward();
  const std::vector<double> g_first = w.grad().to_vector(), g_stale = stale.grad().to_vector();
  loss().backward();
  const std::vector<double> g_total = w.grad().to_vector();  // what step() would use
  // Undo the second backward's accumulation: keep the first micro-batch only.
  Tensor(w).zero_grad();
  loss().backward();
  const std::vector<double> w0 = w.to_vector();
  CHECK(w.grad().to_vector() == g_first);
  backward_and_update(loss(), {{w, -0.01}, {unused, -0.01}, {stale, -0.01}});
  check_close(w, updated(w0, g_total, -0.01, 1.0), 1e-12);
  CHECK(unused.to_vector() == std::vector<double>{1.0, 2.0});
  CHECK_FALSE(unused.grad().defined());
  check_close(stale, updated({5.0, -5.0}, g_stale, -0.01, 1.0), 1e-12);
  CHECK_FALSE(stale.grad().defined());
}

TEST_CASE("backward_and_update: bad calls throw before anything is written") {
  const TensorOptions opts = TensorOptions(DType::float64).requires_grad();
  const Tensor x = tensor({{1.0, 2.0}}, DType::float64);
  const Tensor w = tensor({{0.1, 0.2}, {0.3, -0.4}}, opts);
  const Tensor frozen = tensor({1.0}, DType::float64);
  CHECK_THAT(message_of<std::invalid_argument>([&] { backward_and_update(sum(linear(x, w)), {{w, -1}, {w, -1}}); }),
             Contains("parameter 1 appears twice (also at 0)"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { backward_and_update(sum(linear(x, w)), {{frozen, -1}}); }),
             Contains("parameter 0 (shape [1]) must be a leaf that requires grad"));
  CHECK_THAT(message_of<std::invalid_argument>([&] { backward_and_update(linear(x, w), {{w, -1}}); }),
             Contains("backward_and_update: the output has shape [1, 2]"));
  CHECK(w.to_vector() == std::vector<double>{0.1, 0.2, 0.3, -0.4});
  CHECK_FALSE(w.grad().defined());

  // The sweep fails part-way (a saved tensor was modified in place): no parameter and no .grad
  // changes, not even those whose gradient was already computed.
  const Tensor b = tensor({0.5, 0.5}, opts);
  (sum(b) * 2).backward();
  Tensor h = linear(x, w) * 1.0;
  Tensor y = h * h;
  {
    NoGradGuard no_grad;
    h += 1.0;
  }
  const std::vector<double> b_grad = b.grad().to_vector();
  CHECK_THAT(message_of<std::logic_error>([&] { backward_and_update(sum(y) + sum(b), {{w, -1}, {b, -1}}); }),
             Contains("modified"));
  CHECK(w.to_vector() == std::vector<double>{0.1, 0.2, 0.3, -0.4});
  CHECK(b.to_vector() == std::vector<double>{0.5, 0.5});
  CHECK(b.grad().to_vector() == b_grad);
}

TEST_CASE("backward_and_update: the update is in place: a graph that saved the parameter refuses backward") {
  const TensorOptions opts = TensorOptions(DType::float64).requires_grad();
  const Tensor x = tensor({{1.0, 2.0}}, DType::float64);
  const Tensor w = tensor({{0.1, 0.2}, {0.3, -0.4}}, opts);
  const Tensor kept = sum(w * w);  // saves w
  const Tensor loss = sum(linear(x, w));
  backward_and_update(loss, {{w, -1}});
  CHECK_THAT(message_of<std::logic_error>([&] { kept.backward(); }), Contains("was modified in place after it was saved"));
  // The swept graph was freed, as by backward().
  CHECK_THAT(message_of<std::logic_error>([&] { backward_and_update(loss, {{w, -1}}); }), Contains("second time"));
}

TEST_CASE("optim: backward_and_step trains a Dense network as zero_grad, backward, step do") {
  // SGD plain and with weight decay runs fused; with momentum, and Adam, through the three calls.
  auto make_net = [] {
    return std::make_shared<nn::Sequential>(std::make_shared<nn::Dense>(nn::DenseOptions(5, 8)),
                                            std::make_shared<nn::ReLU>(),
                                            std::make_shared<nn::Dense>(nn::DenseOptions(8, 3)));
  };
  Generator gen(21);
  for (const int batch : {1, 4, 32}) {
    const Tensor x = uniform({batch, 5}, -1, 1, gen, DType::float32);
    std::vector<int64_t> labels;
    for (int i = 0; i < batch; ++i) labels.push_back(i % 3);
    for (int kind = 0; kind < 4; ++kind) {
      INFO("batch " << batch << ", optimizer " << kind);
      auto make_opt = [kind](std::vector<Tensor> params) -> std::unique_ptr<optim::Optimizer> {
        if (kind == 0) return std::make_unique<optim::SGD>(params, optim::SGDOptions(0.1));
        if (kind == 1) return std::make_unique<optim::SGD>(params, optim::SGDOptions(0.1).weight_decay(0.05));
        if (kind == 2) return std::make_unique<optim::SGD>(params, optim::SGDOptions(0.1).momentum(0.9));
        return std::make_unique<optim::Adam>(params, optim::AdamOptions(0.01));
      };
      auto a = make_net(), b = make_net();
      const std::vector<Tensor> pa = a->parameters(), pb = b->parameters();
      for (size_t k = 0; k < pa.size(); ++k) {
        Tensor dst = pb[k];
        std::copy(pa[k].data<float>(), pa[k].data<float>() + pa[k].numel(), dst.mutable_data<float>());
      }
      auto opt_a = make_opt(pa), opt_b = make_opt(pb);
      nn::CrossEntropyLoss loss_fn;
      for (int step = 0; step < 5; ++step) {
        opt_a->zero_grad();
        loss_fn(a->forward(x), labels).backward();
        opt_a->step();
        opt_b->backward_and_step(loss_fn(b->forward(x), labels));
      }
      for (size_t k = 0; k < pa.size(); ++k) {
        check_close(pb[k], pa[k].to_vector(), 1e-5);
        CHECK_FALSE(pb[k].grad().defined());
      }
    }
  }
}

namespace {

// matmul's shapes for the fused step; `param` says which operand is the parameter (0: a, 1: b, 2:
// both). b unbatched takes MatmulNode::apply_fast (its products deferred); a batched b takes
// apply().
struct MatmulCase {
  Shape a, b;
  int param;
};

const std::vector<MatmulCase> matmul_cases = {
    {{5, 3}, {3, 4}, 1},    {{1, 3}, {3, 4}, 1},    {{2, 5, 3}, {3, 4}, 1}, {{4, 3}, {3, 5}, 0},
    {{1, 3}, {3, 4}, 0},    {{5, 3}, {3, 4}, 2},    {{3}, {3, 4}, 1},       {{3}, {3, 4}, 0},
    {{5, 3}, {3}, 0},       {{5, 3}, {3}, 1},       {{3}, {3}, 2},          {{2, 5, 3}, {3}, 1},
    {{4, 1}, {1, 5}, 0},    {{4, 1}, {1, 5}, 1},    {{4, 3}, {3, 1}, 0},    {{2, 5, 3}, {1, 3, 4}, 1},
    {{0, 3}, {3, 4}, 1},    {{0, 3}, {3, 4}, 0},    {{5, 0}, {0, 4}, 1},    {{5, 0}, {0, 4}, 0},
    {{5, 3}, {3, 0}, 1},    {{5, 3}, {3, 0}, 0},    {{5, 3}, {2, 3, 4}, 0}, {{2, 5, 3}, {2, 3, 4}, 1},
    {{16, 4}, {4, 64}, 1},  {{40, 9}, {9, 6}, 2},
    // Square operands: a product missing a transpose would still fit (k == m, rows == k).
    {{4, 3}, {3, 3}, 0},    {{3, 3}, {3, 4}, 1},
};

}  // namespace

TEST_CASE("backward_and_update: equals backward() then the update, on every matmul shape") {
  for (const DType dtype : {DType::float32, DType::float64}) {
    for (const MatmulCase& c : matmul_cases) {
      for (const bool other_requires_grad : {false, true}) {
        if (c.param == 2 && other_requires_grad) continue;  // no other operand
        INFO(c.a.str() << " @ " << c.b.str() << ", parameter " << c.param << ", " << dtype_name(dtype)
                       << (other_requires_grad ? ", the other operand requires grad" : ""));
        Generator gen(5);
        const bool a_param = c.param != 1, b_param = c.param != 0;
        const Tensor a = uniform(c.a, -1, 1, gen, TensorOptions(dtype).requires_grad(a_param || other_requires_grad));
        const Tensor b = uniform(c.b, -1, 1, gen, TensorOptions(dtype).requires_grad(b_param || other_requires_grad));
        auto loss = [&] {
          const Tensor y = matmul(a, b);
          return sum(y * y) * 0.5 + sum(y);
        };
        loss().backward();
        const std::vector<double> a0 = a.to_vector(), b0 = b.to_vector();
        auto grad_of = [](const Tensor& t) {
          return t.grad().defined() ? t.grad().to_vector() : std::vector<double>();
        };
        const std::vector<double> ga = grad_of(a), gb = grad_of(b);
        Tensor(a).zero_grad();
        Tensor(b).zero_grad();

        std::vector<ParamUpdate> updates;
        if (a_param) updates.push_back({a, -0.1, 0.75});
        if (b_param) updates.push_back({b, -0.1, 0.75});
        backward_and_update(loss(), updates);
        check_close(a, a_param ? updated(a0, ga, -0.1, 0.75) : a0, tolerance(dtype));
        check_close(b, b_param ? updated(b0, gb, -0.1, 0.75) : b0, tolerance(dtype));
        // The operand that is not a parameter gets its .grad as from backward().
        if (!a_param && other_requires_grad) check_close(a.grad(), ga, tolerance(dtype));
        if (!b_param && other_requires_grad) check_close(b.grad(), gb, tolerance(dtype));
        if (a_param) CHECK_FALSE(a.grad().defined());
        if (b_param) CHECK_FALSE(b.grad().defined());
      }
    }
  }
}

TEST_CASE("backward_and_update: matmul(w, w) and a parameter used twice by matmul") {
  for (const DType dtype : {DType::float32, DType::float64}) {
    INFO(dtype_name(dtype));
    Generator gen(17);
    const TensorOptions opts = TensorOptions(dtype).requires_grad();
    const Tensor x = uniform({6, 4}, -1, 1, gen, dtype);
    const Tensor w = uniform({4, 4}, -1, 1, gen, opts), v = uniform({4, 4}, -1, 1, gen, opts);
    // The parameter is both operands of one product (neither gradient is deferred: each product
    // would read w); w as b of two products and as a of a third (w @ v: neither deferred, each
    // reads the other parameter); v as b twice and as a once.
    const std::vector<std::function<Tensor()>> losses = {
        [&] { return sum(matmul(w, w) * matmul(transpose(x, 0, 1), matmul(x, v))); },
        [&] { return sum(sigmoid(matmul(tanh(matmul(x, w)), w))) + sum(matmul(w, v)); },
        [&] { return sum(matmul(matmul(x, v), v) * 0.5) + sum(matmul(v, transpose(x, 0, 1))) + sum(matmul(x, w)); },
    };
    for (size_t i = 0; i < losses.size(); ++i) {
      INFO("loss " << i);
      losses[i]().backward();
      const std::vector<double> want_w = updated(w.to_vector(), w.grad().to_vector(), -0.2, 0.9);
      const std::vector<double> want_v = updated(v.to_vector(), v.grad().to_vector(), -0.2, 0.9);
      Tensor(w).zero_grad();
      Tensor(v).zero_grad();
      backward_and_update(losses[i](), {{w, -0.2, 0.9}, {v, -0.2, 0.9}});
      check_close(w, want_w, tolerance(dtype));
      check_close(v, want_v, tolerance(dtype));
    }
  }
}

TEST_CASE("backward_and_update: a product that reads another parameter is not deferred (linear(p, w))") {
  // dw = grad^T @ p reads p, which the update writes before the deferred products are added.
  const TensorOptions opts = TensorOptions(DType::float64).requires_grad();
  const Tensor p = tensor({{1.0, 2.0}, {-1.0, 0.5}, {0.0, 3.0}}, opts);
  const Tensor w = tensor({{0.1, 0.2}, {0.3, -0.4}}, opts);
  auto loss = [&] { return sum(linear(p, w) * linear(p, w)); };
  loss().backward();
  const std::vector<double> want_p = updated(p.to_vector(), p.grad().to_vector(), -0.1, 0.5);
  const std::vector<double> want_w = updated(w.to_vector(), w.grad().to_vector(), -0.1, 0.5);
  Tensor(p).zero_grad();
  Tensor(w).zero_grad();
  backward_and_update(loss(), {{p, -0.1, 0.5}, {w, -0.1, 0.5}});
  check_close(p, want_p, 1e-12);
  check_close(w, want_w, 1e-12);
}

TEST_CASE("backward_and_update: a matmul whose saved input was modified throws after another deferred") {
  // matmul(x_ok, w) runs first (recorded later) and defers dw; matmul(x_bad, w) then finds x_bad
  // modified: the step throws and neither w nor its .grad changes.
  const Tensor w = tensor({{0.1, 0.2}, {0.3, -0.4}}, TensorOptions(DType::float64).requires_grad());
  Tensor x_bad = tensor({{1.0, 2.0}}, DType::float64);
  const Tensor x_ok = tensor({{3.0, -1.0}, {0.5, 0.5}}, DType::float64);
  const Tensor loss = sum(matmul(x_bad, w)) + sum(matmul(x_ok, w));
  x_bad.set({0, 0}, 5);
  CHECK_THAT(message_of<std::logic_error>([&] { backward_and_update(loss, {{w, -1}}); }),
             Contains("matmul") && Contains("modified in place"));
  CHECK(w.to_vector() == std::vector<double>{0.1, 0.2, 0.3, -0.4});
  CHECK_FALSE(w.grad().defined());
}
