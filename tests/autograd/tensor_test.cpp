// Tensor: creation, element access, broadcasting, reductions, in-place updates and version
// counters, and the engine's contract (requires_grad flow, no-grad, detach, accumulation,
// retain_graph, seeds, functional grad, unneeded gradients not computed). matmul and the shape ops
// have their own files (tensor_matmul_test.cpp, tensor_shape_test.cpp).
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "autograd/tensor.h"

using namespace chainrule;
using Values = std::vector<double>;

namespace {
const TensorOptions kLeaf64 = TensorOptions(DType::float64).requires_grad();
}  // namespace

TEST_CASE("Tensor: creation", "[autograd][tensor]") {
  SECTION("from nested lists") {
    const Tensor t = tensor({{1, 2, 3}, {4, 5, 6}});
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.dim() == 2);
    CHECK(t.numel() == 6);
    CHECK(t.dtype() == DType::float32);  // the default, as LibTorch
    CHECK(t.to_vector() == Values{1, 2, 3, 4, 5, 6});
    CHECK(tensor({7.5}).shape() == Shape{1});
    CHECK(tensor({{{1}, {2}}}).shape() == Shape{1, 2, 1});
    CHECK_FALSE(t.requires_grad());
    CHECK(t.is_leaf());
  }
  SECTION("from a shape and values") {
    const Tensor t = from_vector({1, 2, 3, 4, 5, 6}, {3, 2}, DType::float64);
    CHECK(t.shape() == Shape{3, 2});
    CHECK(t.dtype() == DType::float64);
    CHECK(t.at({2, 1}) == 6);
    CHECK(from_vector({4.25}, {}, DType::float64).item() == 4.25);  // 0-d
    CHECK(from_vector({}, {0, 3}).numel() == 0);
  }
  SECTION("filled") {
    CHECK(zeros({2, 2}).to_vector() == Values{0, 0, 0, 0});
    CHECK(ones({3}, DType::float64).to_vector() == Values{1, 1, 1});
    CHECK(full({2}, -1.5, DType::float64).to_vector() == Values{-1.5, -1.5});
    const Tensor r = full({2, 3}, 2.0, kLeaf64);
    CHECK(r.requires_grad());
    CHECK(zeros_like(r).shape() == Shape{2, 3});
    CHECK(zeros_like(r).dtype() == DType::float64);
    CHECK_FALSE(zeros_like(r).requires_grad());
    CHECK(ones_like(r).to_vector() == Values(6, 1.0));
  }
  SECTION("arange") {
    CHECK(arange(0, 5).to_vector() == Values{0, 1, 2, 3, 4});
    CHECK(arange(1, 2, 0.25, DType::float64).to_vector() == Values{1, 1.25, 1.5, 1.75});
    CHECK(arange(5, 0, -2).to_vector() == Values{5, 3, 1});
    CHECK(arange(3, 3).numel() == 0);
    CHECK_THROWS_AS(arange(0, 1, 0), std::invalid_argument);
  }
  SECTION("random with an explicit, seedable generator") {
    Generator g1(42), g2(42), g3(43);
    const Tensor u1 = uniform({1000}, -2, 3, g1, DType::float64);
    const Tensor u2 = uniform({1000}, -2, 3, g2, DType::float64);
    CHECK(u1.to_vector() == u2.to_vector());
    CHECK(u1.to_vector() != uniform({1000}, -2, 3, g3, DType::float64).to_vector());
    for (double v : u1.to_vector()) {
      CHECK(v >= -2);
      CHECK(v < 3);
    }
    CHECK(mean(u1).item() == Approx(0.5).margin(0.15));

    Generator gn(7);
    const Values n = normal({20000}, 1.0, 2.0, gn, DType::float64).to_vector();
    const double m = std::accumulate(n.begin(), n.end(), 0.0) / n.size();
    double var = 0;
    for (double v : n) var += (v - m) * (v - m);
    var /= n.size();
    CHECK(m == Approx(1.0).margin(0.05));
    CHECK(std::sqrt(var) == Approx(2.0).margin(0.05));
    CHECK(uniform({2}, 0, 1, gn, kLeaf64).requires_grad());
  }
}

TEST_CASE("Tensor: element access", "[autograd][tensor]") {
  Tensor t = tensor({{1, 2, 3}, {4, 5, 6}}, DType::float64);
  CHECK(t.at({1, 2}) == 6);
  CHECK(t.size(0) == 2);
  CHECK(t.size(-1) == 3);
  const uint32_t v0 = t.version();
  t.set({0, 1}, -7);
  CHECK(t.at({0, 1}) == -7);
  CHECK(t.version() == v0 + 1);
  CHECK(t.data<double>()[1] == -7);
  t.mutable_data<double>()[5] = 60;
  CHECK(t.at({1, 2}) == 60);
  CHECK(t.version() == v0 + 2);
  CHECK(tensor({3.5}).item() == 3.5);
  CHECK(Tensor(2.25).item() == 2.25);  // a number is a 0-d tensor
  CHECK(Tensor(2.25).dim() == 0);

  // float32 stores float32.
  Tensor f = zeros({1});
  f.set({0}, 0.1);
  CHECK(f.item() == static_cast<double>(0.1f));
}

TEST_CASE("Tensor: broadcasting follows NumPy", "[autograd][tensor]") {
  const Tensor a = tensor({{1, 2, 3}, {4, 5, 6}}, DType::float64);
  CHECK((a + tensor({10, 20, 30}, DType::float64)).to_vector() == Values{11, 22, 33, 14, 25, 36});
  const Tensor col = tensor({{1}, {2}}, DType::float64), row = tensor({{10, 20, 30}}, DType::float64);
  const Tensor outer = col * row;
  CHECK(outer.shape() == Shape{2, 3});
  CHECK(outer.to_vector() == Values{10, 20, 30, 20, 40, 60});
  const Tensor s = from_vector({5}, {}, DType::float64) - tensor({1, 2}, DType::float64);
  CHECK(s.shape() == Shape{2});
  CHECK(s.to_vector() == Values{4, 3});
  CHECK((10.0 / a).at({1, 0}) == 2.5);
  CHECK((a - 1.0).at({0, 0}) == 0.0);
  CHECK((tensor({{{1}}, {{2}}}) + tensor({1, 2, 3})).shape() == Shape{2, 1, 3});

  // The gradient of a broadcast operand is summed back to its shape.
  Tensor b = tensor({1, 2, 3}, kLeaf64);
  Tensor c = tensor({{1}, {2}}, kLeaf64);
  (a * b + c).backward(ones({2, 3}, DType::float64));
  CHECK(b.grad().shape() == Shape{3});
  CHECK(b.grad().to_vector() == Values{5, 7, 9});
  CHECK(c.grad().shape() == Shape{2, 1});
  CHECK(c.grad().to_vector() == Values{3, 3});
}

TEST_CASE("Tensor: reductions", "[autograd][tensor]") {
  const Tensor x = tensor({{{1, 8}, {3, 4}, {5, 2}}, {{7, 0}, {9, 10}, {11, 6}}}, DType::float64);  // [2, 3, 2]
  CHECK(sum(x).item() == 66);
  CHECK(sum(x).dim() == 0);
  CHECK(sum(x, {1}).shape() == Shape{2, 2});
  CHECK(sum(x, {1}).to_vector() == Values{9, 14, 27, 16});
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 2});
  CHECK(sum(x, {0, -1}).to_vector() == Values{16, 26, 24});
  CHECK(sum(x, {0, 1, 2}, true).shape() == Shape{1, 1, 1});
  CHECK(mean(x).item() == 5.5);
  CHECK(mean(x, {2}).to_vector() == Values{4.5, 3.5, 3.5, 3.5, 9.5, 8.5});
  CHECK(max(x).item() == 11);
  CHECK(max(x, {1}).to_vector() == Values{5, 8, 11, 10});
  CHECK(max(x, {2}, true).shape() == Shape{2, 3, 1});
  CHECK(sum(Tensor(3.0)).item() == 3.0);

  SECTION("mean's gradient is 1/n") {
    Tensor t = tensor({{1, 2}, {3, 4}}, kLeaf64);
    mean(t).backward();
    CHECK(t.grad().to_vector() == Values{0.25, 0.25, 0.25, 0.25});
  }
  SECTION("max's gradient goes to the maximum and is shared equally among ties") {
    Tensor t = tensor({{1, 5, 5}, {2, 0, 1}}, kLeaf64);
    max(t).backward();
    CHECK(t.grad().to_vector() == Values{0, 0.5, 0.5, 0, 0, 0});
    t.zero_grad();
    max(t, {1}).backward(tensor({1, 10}, DType::float64));
    CHECK(t.grad().to_vector() == Values{0, 0.5, 0.5, 10, 0, 0});
    Tensor all_equal = full({4}, 2.0, kLeaf64);
    max(all_equal).backward();
    CHECK(all_equal.grad().to_vector() == Values{0.25, 0.25, 0.25, 0.25});
  }
}

TEST_CASE("Tensor: dtypes and conversion", "[autograd][tensor]") {
  Tensor x = tensor({1.5, -2}, TensorOptions(DType::float32).requires_grad());
  const Tensor y = x.to(DType::float64);
  CHECK(y.dtype() == DType::float64);
  CHECK(y.to_vector() == Values{1.5, -2});
  CHECK(y.grad_fn_name() == "cast");
  (y * y).backward(ones({2}, DType::float64));
  CHECK(x.grad().dtype() == DType::float32);
  CHECK(x.grad().to_vector() == Values{3, -4});
  // Converting to the same dtype is the identity.
  CHECK(x.to(DType::float32).impl() == x.impl());
  // Ops in float32 give float32 gradients.
  Tensor w = tensor({0.5f}, TensorOptions(DType::float32).requires_grad());
  sum(exp(w) * 2.0).backward();
  CHECK(w.grad().dtype() == DType::float32);
  CHECK(w.grad().item() == Approx(2 * std::exp(0.5)).epsilon(1e-6));
}

TEST_CASE("Tensor: requires_grad flows through ops", "[autograd][tensor]") {
  Tensor w = tensor({1, 2}, kLeaf64);
  const Tensor c = tensor({3, 4}, DType::float64);
  CHECK(w.is_leaf());
  CHECK(w.grad_fn_name().empty());
  const Tensor y = w * c;
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  CHECK(y.grad_fn_name() == "mul");
  CHECK(sum(y).grad_fn_name() == "sum");
  const Tensor k = c * c;
  CHECK_FALSE(k.requires_grad());
  CHECK(k.is_leaf());
  w.set_requires_grad(false);
  CHECK_FALSE((w * c).requires_grad());
  CHECK(y.requires_grad());  // recorded before: unaffected
  sum(y).backward();         // ... but w takes no gradient from it (as PyTorch's AccumulateGrad)
  CHECK_FALSE(w.grad().defined());
  CHECK_THAT(to_string(y), Catch::Contains("grad_fn=mul") && Catch::Contains("shape=[2]") &&
                               Catch::Contains("float64"));
  CHECK(to_string(zeros({0, 3})) == "Tensor([], shape=[0, 3], dtype=float32)");
  CHECK(to_string(Tensor()) == "Tensor(undefined)");
}

TEST_CASE("Tensor: NoGradGuard stops recording", "[autograd][tensor]") {
  Tensor w = tensor({1, 2}, kLeaf64);
  {
    NoGradGuard no_grad;
    const Tensor y = exp(w) * 2.0 + w;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn_name().empty());
    CHECK(y.to_vector()[0] == Approx(2 * std::exp(1.0) + 1).epsilon(1e-15));
  }
  CHECK((w * 2.0).requires_grad());
}

TEST_CASE("Tensor: detach and clone", "[autograd][tensor]") {
  Tensor x = tensor({1, 2}, kLeaf64);
  const Tensor h = x * x;
  Tensor d = h.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.to_vector() == Values{1, 4});
  d.set({0}, 100);  // its own storage
  CHECK(h.at({0}) == 1);
  const Tensor y = sum(h + h.detach() * x);  // dy/dx = 2x + x^2 (the detached factor is constant)
  y.backward();
  CHECK(x.grad().to_vector() == Values{3, 8});

  Tensor z = tensor({3}, kLeaf64);
  const Tensor c = z.clone();
  CHECK(c.requires_grad());
  CHECK(c.impl() != z.impl());
  sum(c * c).backward();
  CHECK(z.grad().item() == 6);
}

TEST_CASE("Tensor: gradients accumulate until zero_grad", "[autograd][tensor]") {
  Tensor w = tensor({1, -1}, kLeaf64);
  const Tensor x1 = tensor({2, 3}, DType::float64), x2 = tensor({5, 7}, DType::float64);
  sum(w * x1).backward();
  sum(w * x2).backward();
  CHECK(w.grad().to_vector() == Values{7, 10});
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  sum(w * x1).backward();
  CHECK(w.grad().to_vector() == Values{2, 3});
}

TEST_CASE("Tensor: backward with a seed on a non-scalar output", "[autograd][tensor]") {
  Tensor x = tensor({{1, 2}, {3, 4}}, kLeaf64);
  const Tensor y = x * x;
  y.backward(tensor({{1, 0}, {0.5, 2}}, DType::float64));
  CHECK(x.grad().to_vector() == Values{2, 0, 3, 16});
  // A one-element output of any rank seeds 1 by default.
  Tensor s = tensor({{2}}, kLeaf64);
  (s * 3.0).backward();
  CHECK(s.grad().to_vector() == Values{3});
}

// relu's and abs's backward are masks (step(x), sign(x)); float32 has its own helpers so that the
// loops vectorise (ops.h, CMakeLists.txt). The masks are exact in either dtype, so float32 must give
// the float64 gradients bit for bit, at the kink (relu'(0) = abs'(0) = 0) and on both sides, on a
// length that leaves a remainder after the vector part.
TEST_CASE("Tensor: relu and abs backward in float32 match float64, kinks included", "[autograd][tensor]") {
  Values x, seed;
  for (int i = 0; i < 37; ++i) {
    x.push_back(i % 5 == 0 ? 0.0 : (i % 2 ? 0.25 : -0.5) * (i + 1));
    seed.push_back(0.125 * (i % 7) - 0.25);
  }
  for (const char* op : {"relu", "abs"}) {
    INFO(op);
    Values grads[2];
    int k = 0;
    for (DType d : {DType::float64, DType::float32}) {
      Tensor leaf = from_vector(x, {37}, TensorOptions(d).requires_grad());
      const Tensor y = std::string(op) == "relu" ? relu(leaf) : abs(leaf);
      y.backward(from_vector(seed, {37}, d));
      grads[k++] = leaf.grad().to_vector();
    }
    CHECK(grads[1] == grads[0]);
    for (size_t i = 0; i < x.size(); ++i) {
      const double mask = std::string(op) == "relu" ? (x[i] > 0 ? 1 : 0) : (x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0);
      CHECK(grads[0][i] == seed[i] * mask);
    }
  }
}

TEST_CASE("Tensor: retain_graph allows a second backward, the graph is freed otherwise", "[autograd][tensor]") {
  Tensor x = tensor({1, 2}, kLeaf64);
  const Tensor y = sum(exp(x) * x);
  y.backward({.retain_graph = true});
  const Values once = x.grad().to_vector();
  y.backward();
  const Values twice = x.grad().to_vector();
  CHECK(twice[0] == Approx(2 * once[0]).epsilon(1e-15));
  CHECK(twice[1] == Approx(2 * once[1]).epsilon(1e-15));
  CHECK_THROWS_AS(y.backward(), std::logic_error);
  // A fresh graph from the same leaves is fine.
  x.zero_grad();
  sum(exp(x) * x).backward();
  CHECK(x.grad().to_vector() == once);
}

TEST_CASE("Tensor: functional grad", "[autograd][tensor]") {
  Tensor a = tensor({1, 2}, kLeaf64), b = tensor({3, 4}, kLeaf64), unused = tensor({0}, kLeaf64);
  SECTION("does not touch .grad; allow_unused gives zeros") {
    const Tensor y = sum(a * b);
    const std::vector<Tensor> g = grad({y}, {a, b, unused}, {}, {.allow_unused = true});
    CHECK(g[0].to_vector() == Values{3, 4});
    CHECK(g[1].to_vector() == Values{1, 2});
    CHECK(g[2].to_vector() == Values{0});
    CHECK(g[2].shape() == Shape{1});
    CHECK_FALSE(a.grad().defined());
    CHECK_FALSE(b.grad().defined());
    CHECK_FALSE(g[0].requires_grad());
  }
  SECTION("grad_outputs seed non-scalar outputs; several outputs sum") {
    const Tensor y1 = a * b;        // [2]
    const Tensor y2 = sum(a * a);   // []
    const std::vector<Tensor> g =
        grad({y1, y2}, {a}, {tensor({1, -1}, DType::float64), from_vector({0.5}, {}, DType::float64)});
    CHECK(g[0].to_vector() == Values{3 + 1, -4 + 2});
  }
  SECTION("with respect to an interior tensor, broadcast to the output") {
    const Tensor h = a * 2.0;                                   // [2]
    const Tensor y = sum(h * tensor({{1, 1}, {1, 1}, {1, 1}}, DType::float64));  // h broadcast to [3, 2]
    const std::vector<Tensor> g = grad({y}, {h});
    CHECK(g[0].shape() == Shape{2});
    CHECK(g[0].to_vector() == Values{3, 3});
  }
  SECTION("retain_graph allows a second call") {
    const Tensor y = sum(a * b);
    CHECK(grad({y}, {a}, {}, {.retain_graph = true})[0].to_vector() == Values{3, 4});
    CHECK(grad({y}, {b})[0].to_vector() == Values{1, 2});
    CHECK_THROWS_AS(grad({y}, {a}), std::logic_error);
  }
  SECTION("gradients nobody needs are not computed") {
    // b's branch saved w, which is then changed in place: running that branch would throw. The
    // gradient with respect to a alone never runs it.
    Tensor w = tensor({1, 1}, DType::float64);
    const Tensor y = sum(a * 3.0) + sum(b * w);
    w += 1.0;
    CHECK(grad({y}, {a}, {}, {.retain_graph = true})[0].to_vector() == Values{3, 3});
    CHECK_THROWS_AS(grad({y}, {b}), std::logic_error);
  }
}

TEST_CASE("Tensor: in-place updates and version counters", "[autograd][tensor]") {
  SECTION("values, broadcasting operand, version bumps") {
    Tensor t = tensor({{1, 2}, {3, 4}}, DType::float64);
    const uint32_t v0 = t.version();
    Tensor alias = t;  // handles are shallow
    t += tensor({10, 20}, DType::float64);
    CHECK(alias.to_vector() == Values{11, 22, 13, 24});
    t -= 1.0;
    t *= tensor({{2}, {-1}}, DType::float64);
    CHECK(t.to_vector() == Values{20, 42, -12, -23});
    CHECK(t.version() == v0 + 3);
  }
  SECTION("an optimizer step under NoGradGuard keeps the leaf a leaf") {
    Tensor w = tensor({1, 2}, kLeaf64);
    sum(w * w).backward();
    {
      NoGradGuard no_grad;
      w -= 0.25 * w.grad();
    }
    CHECK(w.to_vector() == Values{0.5, 1});
    CHECK(w.is_leaf());
    CHECK(w.requires_grad());
    w.zero_grad();
    sum(w * w).backward();
    CHECK(w.grad().to_vector() == Values{1, 2});
  }
  SECTION("in place on a non-leaf is recorded: the gradient sees the true history") {
    Tensor x = tensor({1, 2}, kLeaf64);
    Tensor y = x * 2.0;
    y += x * x;  // y = 2x + x^2
    CHECK(y.to_vector() == Values{3, 8});
    CHECK(y.grad_fn_name() == "add");
    y *= 3.0;    // y = 6x + 3x^2
    sum(y).backward();
    CHECK(x.grad().to_vector() == Values{12, 18});
  }
  SECTION("the tensor itself as the operand: its values before the update, and no cycle") {
    // y *= y is y = y_old * y_old. Recorded against y itself, y's new history would save y: a cycle
    // of counted references that kept every such graph alive (2 MiB a step in a loop of 1 MiB
    // tensors). Checked through the count of y's TensorImpl: its one handle, nothing else.
    Tensor x = tensor({1, 2}, kLeaf64);
    Tensor y = x * 2.0;
    y *= y;  // 4x^2
    CHECK(y.to_vector() == Values{4, 16});
    CHECK(y.impl()->refs == 1);
    Tensor same = y;  // another handle to the same tensor, and add_'s scaled form
    y.add_(same, 0.5);  // 6x^2
    CHECK(y.to_vector() == Values{6, 24});
    same = Tensor();
    CHECK(y.impl()->refs == 1);
    sum(y).backward();
    CHECK(x.grad().to_vector() == Values{12, 24});  // 12x
  }
  SECTION("an op keeps only what the gradients needed read: y += y * c works, as in PyTorch") {
    // mul's rule for y reads c only, so y is not saved: changing y in place afterwards breaks
    // nothing (before, y was saved, the backward threw "modified in place", and y's new history
    // saving y was a cycle that kept the graph alive).
    Tensor x = tensor({1, 2}, kLeaf64);
    Tensor y = x * 2.0;
    const Tensor c = tensor({3, 4}, DType::float64);
    y += y * c;  // y = 2x (1 + c)
    CHECK(y.impl()->refs == 1);
    sum(y).backward();
    CHECK(x.grad().to_vector() == Values{8, 10});
    // With c requiring grad, mul needs y for c's gradient: then y is saved, and the in-place
    // change is caught at backward as before.
    Tensor z = x * 2.0;
    const Tensor w = tensor({3, 4}, kLeaf64);
    z += z * w;
    CHECK_THROWS_WITH(sum(z).backward(), Catch::Contains("mul") && Catch::Contains("modified in place"));
  }
  SECTION("relu and div save what PyTorch's do: y += relu(y) and q = a / b; q *= 2 run") {
    // relu keeps its result (not x), div its operands (not the result), as PyTorch's: an in-place
    // change PyTorch accepts is accepted here too (before, both threw "modified in place").
    const Tensor x = tensor({1, -2}, kLeaf64);
    Tensor y = x * 2.0;
    y += relu(y);  // 2x + relu(2x)
    sum(y).backward();
    CHECK(x.grad().to_vector() == Values{4, 2});
    const Tensor a = tensor({1, 2}, kLeaf64), b = tensor({3, 4}, kLeaf64);
    Tensor q = a / b;
    q *= 2.0;
    sum(q).backward();
    const Values db = b.grad().to_vector(), da = a.grad().to_vector();
    CHECK(db[0] == Approx(-2.0 / 9));
    CHECK(db[1] == Approx(-4.0 / 16));
    CHECK(da[0] == Approx(2.0 / 3));
    CHECK(da[1] == Approx(2.0 / 4));
    // Changing what they do keep is still caught.
    Tensor r = x * 2.0;
    Tensor s = relu(r);
    s *= 2.0;
    CHECK_THROWS_WITH(sum(s).backward(), Catch::Contains("relu") && Catch::Contains("modified in place"));
  }
  SECTION("an op saved the tensor, then the tensor is changed in place: no cycle, backward throws") {
    // The op keeps the tensor's bytes and the history it had, not its TensorImpl: y's new history
    // reaches that op, so a kept TensorImpl was a cycle of counted references (every such graph
    // dropped without a backward leaked, 3.5 KB a step for 64 elements). One handle to y, and the
    // refusal at backward as before.
    const Tensor x = tensor({{1, 2}, {3, 4}}, kLeaf64);
    const Tensor w = tensor({{1, 0}, {0, 1}}, kLeaf64);
    auto square = [](const Tensor& t) {
      return custom_op("square", {t}, [](const std::vector<Tensor>& in) { return in[0] * in[0]; },
                       [](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
                         return std::vector<Tensor>{g * 2.0 * in[0]};
                       });
    };
    const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> saving = {
        {"log", [](const Tensor& t) { return log(t); }},
        {"mul", [](const Tensor& t) { return t * t; }},
        {"max", [](const Tensor& t) { return max(t); }},
        {"matmul", [&](const Tensor& t) { return matmul(t, w); }},
        {"linear", [&](const Tensor& t) { return linear(t, w); }},
        {"square", square},
    };
    for (const auto& [name, f] : saving) {
      INFO(name);
      Tensor y = x * 2.0;
      y *= f(y);
      CHECK(y.impl()->refs == 1);
      CHECK_THROWS_WITH(sum(y).backward(), Catch::Contains(name) && Catch::Contains("modified in place"));
    }
    // A constant saved by an op, then joining the graph through an in-place update by that op's
    // result.
    Tensor c = tensor({{1, 2}, {3, 4}}, DType::float64);
    c *= x * c;
    CHECK(c.requires_grad());
    CHECK(c.impl()->refs == 1);
    CHECK_THROWS_WITH(sum(c).backward(), Catch::Contains("mul") && Catch::Contains("modified in place"));
  }
  SECTION("a tensor that does not require grad, updated by one that does, joins the graph") {
    Tensor acc = zeros({2}, DType::float64);
    Tensor x = tensor({1, 2}, kLeaf64);
    acc += x * x;
    CHECK(acc.requires_grad());
    sum(acc).backward();
    CHECK(x.grad().to_vector() == Values{2, 4});
  }
  SECTION("an unrelated change after backward does not matter") {
    Tensor x = tensor({1, 2}, kLeaf64);
    Tensor w = tensor({3, 4}, DType::float64);
    sum(x * w).backward();
    w += 1.0;  // the graph was already swept
    CHECK(x.grad().to_vector() == Values{3, 4});
  }
}

TEST_CASE("Tensor: graphs on several threads at once", "[autograd][tensor]") {
  // A graph belongs to the thread that recorded it; threads that each train their own tensors share
  // no engine state (the ThreadSanitizer would flag any shared counter).
  auto train = [](double start) {
    Tensor w = full({4}, start, kLeaf64);
    for (int i = 0; i < 500; ++i) {
      sum(w * w * 0.5 + tanh(w)).backward();
      NoGradGuard no_grad;
      w -= 0.01 * w.grad();
      w.zero_grad();
    }
    return w.to_vector();
  };
  const Values serial_a = train(1.0), serial_b = train(-2.0);
  Values a, b;
  std::thread ta([&] { a = train(1.0); }), tb([&] { b = train(-2.0); });
  ta.join();
  tb.join();
  CHECK(a == serial_a);
  CHECK(b == serial_b);
}

TEST_CASE("Tensor: a saved tensor is what it was when saved, in the create_graph backward too", "[autograd][tensor]") {
  // c was a constant when x * x * c saved it: the recorded gradient 2 x c treats it as one, so
  // nothing reaches c.grad (PyTorch hands back c as it is now and gives c.grad = 2x). The price
  // of keeping bytes instead of the tensor, which is what frees graphs like y *= log(y).
  const Tensor x = tensor({1, 2}, TensorOptions(DType::float64).requires_grad());
  Tensor c = tensor({3, 4}, DType::float64);
  const Tensor y = sum(x * x * c);
  c.set_requires_grad(true);
  const std::vector<Tensor> g = grad({y}, {x}, {}, {.create_graph = true});
  CHECK(g[0].to_vector() == std::vector<double>{6, 16});
  sum(g[0]).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{6, 8});
  CHECK_FALSE(c.grad().defined());
}
